"""What `manage.py dev` prints: a banner that says where the UI is and how to point an app at
it, then one line per app sync and per run started, completed, failed or cancelled (the
`inngest.activity` logger) with a link to its page. Celery, beat and kombu speak only when
something is wrong (WARNING), and our own other loggers too unless INNGEST_LOG_LEVEL says
otherwise."""
from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

QUIET_LOGGERS = ("celery", "celery.beat", "celery.worker", "celery.app.trace", "kombu", "django_celery_beat", "httpx")


class ActivityFormatter(logging.Formatter):
    """`03:04:05  run 01J… of app-fn completed in 120 ms  http://127.0.0.1:8288/runs/01J…`"""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def format(self, record: logging.LogRecord) -> str:
        moment = self.formatTime(record, "%H:%M:%S")
        link = getattr(record, "ui_path", "")
        mark = "!" if record.levelno >= logging.WARNING else " "
        return f"{moment} {mark} {record.getMessage()}" + (f"  {self.base_url}{link}" if link else "")


def quiet_logging(base_url: str, stream: TextIO = sys.stdout) -> None:
    """Route `inngest.activity` to the terminal in the dev format; everything else at WARNING."""
    activity = logging.getLogger("inngest.activity")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ActivityFormatter(base_url))
    activity.handlers = [handler]
    activity.setLevel(logging.INFO)
    activity.propagate = False
    if "INNGEST_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def banner(base_url: str, database: str, urls: list[str], poll: bool) -> str:
    syncing = (f"Syncing {', '.join(urls)}{' every few seconds' if poll else ' once'}." if urls else
               "No app yet: start this server with --urls <your app's serve URL>, or PUT your app's serve URL\n"
               "  (curl -X PUT http://127.0.0.1:8000/api/inngest) once it runs.")
    return "\n".join([
        "",
        "Inngest-compatible dev server",
        f"  UI          {base_url}/",
        f"  Event API   {base_url}/e/<any key>",
        f"  Your app    INNGEST_DEV={base_url} python my_app.py   (or node, ...)",
        f"  Data        {database}",
        f"  {syncing}",
        "  Ctrl-C stops it. Runs in flight resume when it starts again.",
        "",
    ])
