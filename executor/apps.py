from django.apps import AppConfig


class ExecutorConfig(AppConfig):
    name = "executor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_postrun
        from django.core.signals import request_finished

        from executor import metrics

        # Metric increments are buffered per process and written once per request or task.
        request_finished.connect(lambda **_: metrics.flush(), weak=False, dispatch_uid="metrics-flush-request")
        task_postrun.connect(lambda **_: metrics.flush(), weak=False, dispatch_uid="metrics-flush-task")
