FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 inngest && chown -R inngest /app
USER inngest

EXPOSE 8288
# The probe names a host the server answers to: the first of DJANGO_ALLOWED_HOSTS.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import os, sys, urllib.request; host = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.') or 'localhost'; probe = urllib.request.Request('http://127.0.0.1:8288/health', headers={'Host': host}); sys.exit(0 if urllib.request.urlopen(probe, timeout=2).status == 200 else 1)"

# The HTTP server (ASGI workers: realtime's long-lived connections, inngest_project/asgi.py); workers and beat run the same image with another command (docker-compose.yml).
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn inngest_project.asgi:application --bind 0.0.0.0:8288 --workers 2 --worker-class uvicorn_worker.UvicornWorker --graceful-timeout 10"]
