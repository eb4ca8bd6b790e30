FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 inngest && chown -R inngest /app
USER inngest

EXPOSE 8288
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8288/health', timeout=2).status == 200 else 1)"

# The HTTP server; workers and beat run the same image with another command (docker-compose.yml).
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn inngest_project.wsgi --bind 0.0.0.0:8288 --workers 2 --worker-class gthread --threads 8"]
