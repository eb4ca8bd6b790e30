from django.apps import AppConfig
from django.core import checks

from inngest_project.security import check_production_security


class InngestProjectConfig(AppConfig):
    """The project as an app: its HTTP middleware, security checks, /health and /metrics, and
    the `dev` and `start` launchers (management commands)."""

    name = "inngest_project"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Not deploy-only: `migrate`, `runserver` and every other command refuse an open production too.
        checks.register(check_production_security, checks.Tags.security)
