"""Syncing apps (protocol.md §1.7, §7.2): the SDK POSTs /fn/register (here), after the server
PUT the app (functions/sync_request.py)."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from functions.config import MAX_NAME_LENGTH, REQUEST_KEYS, ConfigError, FunctionSpec, canonical_keys, read_function
from functions.expression_failures import forget_failures
from functions.flow_config import starts_when_claimed
from functions.models import App, Function, Trigger
from functions.schedules import remove_cron_schedules, sync_cron_schedules

# What a sync error shows of the app's or the SDK's own words: a line each, a few of them.
MAX_MESSAGE_CHARS = 300
MAX_LISTED_ERRORS = 20
activity = logging.getLogger("inngest.activity")


class RegisterError(ValueError):
    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class RegisterResult:
    app: App
    is_modified: bool


def register_app(body: Any, expected_server_kind: str | None = None) -> RegisterResult:
    """Store an app and its functions from a /fn/register body; RegisterError says why not."""
    if expected_server_kind and expected_server_kind != settings.INNGEST_SERVER_KIND:
        raise RegisterError(f"Expected server kind {settings.INNGEST_SERVER_KIND}, got {expected_server_kind}")
    if not isinstance(body, dict):
        raise RegisterError("Invalid request: the body must be a JSON object")
    request = canonical_keys(body, REQUEST_KEYS)
    app_name = request.get("appName")
    if not isinstance(app_name, str) or not app_name:
        raise RegisterError("Invalid request: appName is required")
    if len(app_name) > MAX_NAME_LENGTH:
        raise RegisterError(f"Invalid request: appName is longer than {MAX_NAME_LENGTH} characters")
    url = _strip_sync_params(str(request.get("url") or ""))
    checksum = _checksum(request)
    existing = App.objects.filter(name=app_name).first()
    if existing and existing.checksum == checksum and not existing.error:
        # Nothing changed, but the app did sync: "Last sync" says when the server last heard
        # from it (one UPDATE, no function rewritten).
        existing.synced_at = timezone.now()
        App.objects.filter(id=existing.id).update(synced_at=existing.synced_at)
        # DEBUG: dev mode re-syncs every few seconds, and an unchanged sync is not news.
        activity.debug("app %s synced from %s: unchanged", existing.name, existing.url, extra={"ui_path": "/apps/"})
        return RegisterResult(existing, is_modified=False)
    specs = _read_functions(request.get("functions"), app_name, url)
    with transaction.atomic():
        app = _upsert_app(app_name, url, request, checksum)
        _replace_functions(app, specs)
    activity.info("app %s synced from %s: %d function%s", app_name, url or "?", len(specs), "s" if len(specs) != 1 else "",
                  extra={"ui_path": "/apps/"})
    return RegisterResult(app, is_modified=True)


def _read_functions(raw: Any, app_name: str, url: str) -> list[FunctionSpec]:
    specs, errors = [], []
    for item in raw if isinstance(raw, list) else []:
        try:
            specs.append(read_function(item))
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        listed = [short_text(error) for error in errors[:MAX_LISTED_ERRORS]]
        if len(errors) > MAX_LISTED_ERRORS:
            listed.append(f"and {len(errors) - MAX_LISTED_ERRORS} more")
        App.objects.filter(name=app_name).update(error="; ".join(listed))
        raise RegisterError("At least one function is invalid", data={"errors": listed})
    return specs


def _upsert_app(app_name: str, url: str, request: dict, checksum: str) -> App:
    sdk = str(request.get("sdk") or "")
    language, _, version = sdk.partition(":")
    # Informational: cut to their columns rather than refuse the sync.
    fields = {
        "url": url, "sdk_language": language[:32], "sdk_version": version.lstrip("v")[:64],
        "framework": str(request.get("framework") or "")[:64], "app_version": str(request.get("appVersion") or "")[:255],
        "checksum": checksum, "error": "", "synced_at": timezone.now(),
    }
    app, _ = App.objects.update_or_create(name=app_name, defaults=fields)
    # A URL given with --urls waited under its own name until the app said who it is.
    App.objects.filter(name=url, functions__isnull=True).exclude(id=app.id).delete()
    return app


def _replace_functions(app: App, specs: list[FunctionSpec]) -> None:
    now = timezone.now()
    kept = []
    for spec in specs:
        function, created = Function.objects.get_or_create(
            slug=spec.slug, defaults={"app": app, "name": spec.name, "url": spec.url, "retries": spec.retries, "config": spec.config,
                                      "starts_when_claimed": starts_when_claimed(spec.config)}
        )
        if not created:
            if function.config != spec.config:
                forget_failures(function.id)
            function.app, function.name, function.url = app, spec.name, spec.url
            function.retries, function.config, function.is_archived = spec.retries, spec.config, False
            function.starts_when_claimed = starts_when_claimed(spec.config)
            function.version += 1
            function.updated_at = now
            function.save()
        function.triggers.all().delete()
        Trigger.objects.bulk_create(
            [Trigger(function=function, event_name=t.event, expression=t.expression, cron=t.cron) for t in spec.triggers]
        )
        sync_cron_schedules(function)
        kept.append(function.id)
    gone = list(app.functions.exclude(id__in=kept).filter(is_archived=False).values_list("id", flat=True))
    app.functions.filter(id__in=gone).update(is_archived=True, updated_at=now)
    remove_cron_schedules(gone)


def _checksum(request: dict) -> str:
    material = {k: v for k, v in request.items() if k != "featureObservations"}
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _strip_sync_params(url: str) -> str:
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and not p.startswith(("deployId=", "probe="))]
    return urlunsplit(parts._replace(query="&".join(kept)))


def short_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """One printable line of at most `limit` characters: what an app, an SDK or a config said,
    safe to show in the UI, the REST answers and the logs. A long one loses its middle: the
    start names the function or field, the end says what is wrong with it."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(line) <= limit:
        return line
    head = (limit - 1) // 2
    return line[:head] + "…" + line[len(line) - (limit - 1 - head):]
