from django.apps import AppConfig
from django.core import checks

from executor.security import check_production_security


class ExecutorConfig(AppConfig):
    name = "executor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Not deploy-only: `migrate`, `runserver` and every other command refuse an open production too.
        checks.register(check_production_security, checks.Tags.security)
