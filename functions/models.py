"""Apps and their functions as registered by SDK syncs."""
from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class App(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The SDK's app id; a URL given with --urls before its first sync stands in as the name.
    name = models.CharField(max_length=255, unique=True)
    url = models.TextField(blank=True, default="")
    sdk_language = models.CharField(max_length=32, blank=True, default="")
    sdk_version = models.CharField(max_length=64, blank=True, default="")
    framework = models.CharField(max_length=64, blank=True, default="")
    app_version = models.CharField(max_length=255, blank=True, default="")
    checksum = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Function(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="functions")
    # The composite id the SDK registers ("<app>-<fn>"); the SDK finds the function by it.
    slug = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    url = models.TextField()
    # Number of retries after the first attempt (Inngest's `retries.attempts`).
    retries = models.PositiveSmallIntegerField(default=4)
    # The whole function config as registered (keys normalised), for flow control and the UI.
    config = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    # No concurrency limit and no timeouts (starts_when_claimed in functions/flow_config.py): a
    # worker's claim of a queued run's first call also starts the run, in the same message.
    starts_when_claimed = models.BooleanField(default=False)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


class Trigger(models.Model):
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="triggers")
    # An exact event name or a wildcard pattern such as "app/*" or "app/user.*".
    event_name = models.CharField(max_length=255, blank=True, default="", db_index=True)  # trigger matching: event_name IN (…)
    expression = models.TextField(blank=True, default="")
    cron = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return self.event_name or f"cron {self.cron}"


class ExpressionFailure(models.Model):
    """One of a function's expressions that could not be evaluated: how often, the last error.

    Evaluation failures are no match (or an invalid key) and affect nothing else; this row is how
    the operator learns of them (the functions pages, /metrics). Written after the evaluating
    transaction commits (functions/expression_failures.py); removed when the function's config
    changes at a sync.
    """

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="expression_failures")
    # Where the expression sits: 'trigger "shop/order.paid" expression', 'waitForEvent "s1" if',
    # 'concurrency.key', ...
    field = models.CharField(max_length=255)
    expression = models.TextField()  # shortened
    message = models.TextField()
    count = models.PositiveBigIntegerField(default=0)
    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Also the index of the function pages' lookup by function.
        constraints = [models.UniqueConstraint(fields=["function", "field"], name="expression_failure_unique")]

    def __str__(self) -> str:
        return f"{self.function_id} {self.field}"
