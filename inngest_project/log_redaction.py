"""No key or token in any log line.

Event keys travel in URL paths (`POST /e/<key>`), and Django's request logger writes the path of
every 4xx answer (`Bad Request: /e/<key>`), as do gunicorn's access and error logs. Signing keys,
bearer and API tokens travel in headers and could reach a message or a traceback. The filter
rewrites each record before any formatter sees it: the message, a traceback, and the extras a
JSON formatter would print (django.request attaches the request, whose repr names the path).
"""
from __future__ import annotations

import hashlib
import logging
import re
from functools import lru_cache

from django.conf import settings

REDACTED = "[redacted]"
_PATTERNS = (
    (re.compile(r"(/e/)[^/\s?#\"'<>]+"), r"\1" + REDACTED),  # event keys in /e/<key>
    (re.compile(r"\b(signkey-\w+?-)[0-9a-fA-F]+"), r"\1" + REDACTED),  # signing keys with their prefix
    # Authorization values; a credential is a long run of token characters, ordinary words are not.
    (re.compile(r"\b(Bearer|Token|Basic)(\s+)[\w.~+/=-]{8,}", re.IGNORECASE), r"\1\2" + REDACTED),
    (re.compile(r"(://[^:/\s@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),  # passwords in URLs (database, broker)
)
# Short values would match ordinary text; real keys are long.
_MIN_SECRET_LENGTH = 12
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in _configured_secrets(settings.INNGEST_SIGNING_KEY, settings.INNGEST_SIGNING_KEY_FALLBACK,
                                      tuple(settings.INNGEST_EVENT_KEYS), settings.SECRET_KEY):
        text = text.replace(secret, REDACTED)
    return text


@lru_cache(maxsize=4)
def _configured_secrets(signing_key: str, fallback: str, event_keys: tuple[str, ...], secret_key: str) -> tuple[str, ...]:
    """The server's own secrets as they could appear in text: signing keys bare and as SDKs hash them."""
    values = [secret_key, *event_keys]
    for key in (signing_key, fallback):
        bare = re.sub(r"^signkey-\w+-", "", key)
        values.append(bare)
        try:
            values.append(hashlib.sha256(bytes.fromhex(bare)).hexdigest())
        except ValueError:
            pass  # settings refuse a key that is not hex; nothing more to hide then
    return tuple(v for v in values if len(v) >= _MIN_SECRET_LENGTH)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: logging reports it itself
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        self._redact_traceback(record)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and not isinstance(value, (int, float, bool, type(None))):
                text = str(value)
                if (cleaned_text := redact(text)) != text:
                    setattr(record, name, cleaned_text)
        return True

    @staticmethod
    def _redact_traceback(record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if (cleaned := redact(text)) != text:
                # Formatters print exc_text when exc_info is gone (a JSON formatter would re-render exc_info).
                record.exc_text, record.exc_info = cleaned, None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)


def redact_gunicorn_logs() -> None:
    """gunicorn logs through its own handlers, not the root logger's: filter its loggers too
    (its access log, when enabled, prints every path; its error log the path of a failed request)."""
    for name in ("gunicorn.error", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())
