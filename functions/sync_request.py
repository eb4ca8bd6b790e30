"""The server's side of a sync (protocol.md §1.7): PUT the app's URL, and its SDK registers.

The URL is whatever was registered or typed in, and whatever answers it is untrusted: redirects
are followed only within the app's origin (scheme, host and port: anything else could send the
server's request, and later its signed calls, somewhere the operator never named), the answer is
read up to SYNC_MAX_ANSWER_BYTES within SYNC_TIMEOUT_SECONDS, and what the operator is shown of
a failure (UI, REST, `sync_apps`, logs) is one short line in our words: the status with the
SDK's own message when it sent JSON, or the content type and size of anything else, never the
body itself.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from functions.models import App
from functions.sync import short_text

activity = logging.getLogger("inngest.activity")  # sync failures: the dev terminal shows them
SYNC_TIMEOUT_SECONDS = 10
SYNC_MAX_ANSWER_BYTES = 1024 * 1024  # an SDK answers a sync with a few hundred bytes of JSON
SYNC_MAX_REDIRECTS = 5
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"\)]+)")


class SyncRefused(Exception):
    """The app's answer is not one we read: another origin, too large, too slow."""


def request_sync(url: str) -> str:
    """PUT the app so its SDK registers; returns "" on success or the error stored on the app."""
    try:
        status, content_type, body = _put_app(url)
    except SyncRefused as exc:
        return _record_sync_error(url, str(exc))
    except requests.RequestException as exc:
        return _record_sync_error(url, _unreachable(exc))
    answer = _json_or_none(body)
    if status != 200:
        return _record_sync_error(url, describe_failure(status, content_type, body, answer))
    if isinstance(answer, dict) and answer.get("error"):
        # The SDK answers 200 even when its register call failed.
        return _record_sync_error(url, short_text(str(answer["error"])))
    return ""


def sync_known_apps(extra_urls: list[str] | None = None) -> None:
    """Re-sync every known app and the given URLs (dev-mode polling; unchanged syncs are no-ops)."""
    urls = list(dict.fromkeys([*(extra_urls or []), *App.objects.exclude(url="").values_list("url", flat=True)]))
    for url in urls:
        request_sync(url)


def _put_app(url: str) -> tuple[int, str, bytes]:
    """The status, content type and body of the app's answer, after same-origin redirects."""
    target = url
    with requests.Session() as session:
        for _ in range(SYNC_MAX_REDIRECTS + 1):
            with session.put(target, json={"url": url}, timeout=SYNC_TIMEOUT_SECONDS, allow_redirects=False, stream=True,
                             headers={"X-Inngest-Server-Kind": settings.INNGEST_SERVER_KIND}) as answer:
                if not answer.is_redirect:
                    return answer.status_code, answer.headers.get("Content-Type", ""), _read_capped(answer)
                location = urljoin(target, answer.headers["Location"])
            if _origin(location) != _origin(url):
                raise SyncRefused(f"HTTP {answer.status_code} from app: redirected to another origin "
                                  f"({short_text(_origin_text(location), 120)}); sync the app at its final URL")
            target = location
    raise SyncRefused(f"more than {SYNC_MAX_REDIRECTS} redirects from the app")


def _read_capped(answer: requests.Response) -> bytes:
    deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
    chunks, size = [], 0
    for chunk in answer.iter_content(64 * 1024):
        size += len(chunk)
        if size > SYNC_MAX_ANSWER_BYTES:
            raise SyncRefused(f"HTTP {answer.status_code} from app: answer larger than {SYNC_MAX_ANSWER_BYTES // 1024} KB")
        if time.monotonic() > deadline:
            raise SyncRefused(f"HTTP {answer.status_code} from app: answer not finished within {SYNC_TIMEOUT_SECONDS} s")
        chunks.append(chunk)
    return b"".join(chunks)


def describe_failure(status: int, content_type: str, body: bytes, answer: Any) -> str:
    """`HTTP 401 from app: <the SDK's message>`, or `HTTP 502 from app (text/html, 1.2 KB)`."""
    message = (answer.get("message") or answer.get("error")) if isinstance(answer, dict) else None
    if isinstance(message, str) and message.strip():
        return f"HTTP {status} from app: {short_text(message)}"
    kind = short_text(content_type.split(";")[0].strip(), 60) or "no content type"
    return f"HTTP {status} from app ({kind}, {_size(len(body))})"


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.1f} KB"
    return f"{count / 1_000_000:.1f} MB"


def _unreachable(exc: requests.RequestException) -> str:
    """Why the app could not be reached, without the library's long repr of the connection."""
    if isinstance(exc, requests.Timeout):
        return f"unreachable: no answer within {SYNC_TIMEOUT_SECONDS} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "unreachable: TLS handshake failed"
    if found := _ERRNO.search(str(exc)):
        return f"unreachable: {short_text(found.group(1), 120)}"
    return f"unreachable: {type(exc).__name__}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _record_sync_error(url: str, error: str) -> str:
    # Logged when it is news: dev mode re-syncs every few seconds, and an app that is down
    # would otherwise repeat the same line until it is back.
    is_news = not App.objects.filter(url=url, error=error).exists()
    updated = App.objects.filter(url=url).update(error=error)
    if not updated:
        App.objects.update_or_create(name=url, defaults={"url": url, "error": error})
    if is_news:
        activity.warning("sync of %s failed: %s", url, error, extra={"ui_path": "/apps/"})
    return error
