"""Secure by default: production does not start open by accident.

Production (a DATABASE_URL) needs a signing key (without one, /fn/register, /v0, /v1 and /invoke
are open and any event key is taken: anyone who reaches the port could re-register an app's
functions to their own URL), a secret key of its own and the host names it answers to. Each
entry point refuses to start while one is missing: `start` and every management command through
the system check below, the WSGI application and celery worker and beat through
`refuse_insecure_production`. INNGEST_INSECURE (`start --insecure`) runs it open on purpose; then
every process says so at start, and /health's body says so too. `manage.py dev` is open by design.
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks.security.base import SECRET_KEY_INSECURE_PREFIX, SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE_CHARACTERS
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

HINT = ("Set them (README, Production), or run the server open on purpose with `start --insecure` "
        "or INNGEST_INSECURE=1.")


def production_gaps() -> list[str]:
    """What keeps production from being closed; empty in dev mode and when all is set."""
    return [message for _, message in _gaps()]


def _gaps() -> list[tuple[str, str]]:
    if settings.INNGEST_DEV_MODE or not settings.IS_PRODUCTION:
        return []
    gaps = []
    if not settings.INNGEST_SIGNING_KEY:
        gaps.append(("inngest.E001", "INNGEST_SIGNING_KEY (start --signing-key) is not set: /fn/register, /v0, /v1 "
                                     "and /invoke open to anyone, any event key accepted"))
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        gaps.append(("inngest.E002", "DJANGO_SECRET_KEY is not set: sessions signed with a key published in the "
                                     "source"))
    elif not _is_strong(settings.SECRET_KEY):
        gaps.append(("inngest.E002", f"DJANGO_SECRET_KEY is too weak: at least {SECRET_KEY_MIN_LENGTH} characters, "
                                     f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different"))
    if "*" in settings.ALLOWED_HOSTS:
        gaps.append(("inngest.E003", "DJANGO_ALLOWED_HOSTS is not set (or is '*'): any Host header answered"))
    return gaps


def is_insecure_production() -> bool:
    """Running open because INNGEST_INSECURE said so."""
    return settings.INNGEST_INSECURE and bool(production_gaps())


def insecure_warning() -> str:
    """One line for /health and the logs; empty unless running open on purpose."""
    if not is_insecure_production():
        return ""
    return "INSECURE (INNGEST_INSECURE is set): " + "; ".join(production_gaps())


def refuse_insecure_production() -> None:
    """Raise unless production is closed or told to run open; announce it when it is told."""
    gaps = production_gaps()
    if gaps and not settings.INNGEST_INSECURE:
        raise ImproperlyConfigured("production is not secure: " + "; ".join(gaps) + ". " + HINT)
    if gaps:
        log.warning("%s\n%s\n%s", "*" * 78, insecure_warning(), "*" * 78)


def check_production_security(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The system check: an error per gap (so `start`, `migrate` and the rest stop), or one loud
    warning when INNGEST_INSECURE allows them."""
    gaps = _gaps()
    if not gaps:
        return []
    if settings.INNGEST_INSECURE:
        return [checks.Warning(insecure_warning(), id="inngest.W001")]
    errors = [checks.Error(message, id=code) for code, message in gaps]
    errors[-1].hint = HINT
    return errors


def _is_strong(secret_key: str) -> bool:
    """Django's own measure (its deploy check's W009), made a refusal here."""
    return (len(secret_key) >= SECRET_KEY_MIN_LENGTH and len(set(secret_key)) >= SECRET_KEY_MIN_UNIQUE_CHARACTERS
            and not secret_key.startswith(SECRET_KEY_INSECURE_PREFIX))
