"""Django's own ASGI handler over the whole project, for bench/http_servers.py's comparison only:
what inngest_project/asgi.py would be without its thread pool."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")
from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
