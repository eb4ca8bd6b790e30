"""WSGI entry point: `gunicorn inngest_project.wsgi`.

An open production refuses to serve (the worker fails to boot, and gunicorn stops): nothing
else runs the system checks on this path. `manage.py dev` serves its own application.
"""
import os

from django.core.wsgi import get_wsgi_application

from inngest_project.log_redaction import redact_gunicorn_logs
from inngest_project.security import refuse_insecure_production

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")
application = get_wsgi_application()
refuse_insecure_production()
redact_gunicorn_logs()
