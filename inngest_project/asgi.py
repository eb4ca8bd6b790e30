"""ASGI entry point: `gunicorn inngest_project.asgi -k uvicorn_worker.UvicornWorker` (what `start`
and the Dockerfile run), and `manage.py dev`'s server.

Realtime subscriptions are long-lived connections (server-sent events, WebSockets), which the
ASGI worker holds for the cost of a coroutine each instead of a thread each. Only `/v1/realtime/*`
(and WebSockets), `POST /e/{key}` (inngest_project/event_route.py: the rate of event sends) and
`POST /v1/checkpoint/{runId}/async` (inngest_project/checkpoint_route.py: a JS SDK's every step)
are served natively here (inngest_project/native_route.py). Everything else is the same Django
WSGI application as before, run in a fixed pool of threads per process, like gunicorn's gthread
worker: the ORM is synchronous, and a fixed pool keeps each thread's persistent database
connection (CONN_MAX_AGE), where Django's own ASGI handler gives every request a thread, and so a
database connection, of its own.
"""
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inngest_project.settings")

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from inngest_project.wsgi import application as wsgi_application  # noqa: E402  (refuses an open production)
from executor import signing  # noqa: E402
from inngest_project import checkpoint_route, event_route, native_route  # noqa: E402
from realtime.asgi import PREFIX, RealtimeApp  # noqa: E402


def is_signing_key(authorization: str) -> bool:
    keys = signing.configured_keys()
    return not keys or signing.is_authorized(authorization, keys)


realtime_application = RealtimeApp(is_signing_key)
# The native routes share one pool of threads, so one set of database connections per process.
_routes_pool = ThreadPoolExecutor(settings.INNGEST_HTTP_THREADS, thread_name_prefix="native-route")
django_application = native_route.in_front_of(
    WSGIMiddleware(wsgi_application, workers=settings.INNGEST_HTTP_THREADS),
    event_route.EventRoute(_routes_pool),
    checkpoint_route.CheckpointRoute(_routes_pool),
)


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await serve_lifespan(receive, send)
    if scope["type"] == "websocket" or scope["path"].startswith(PREFIX):
        return await realtime_application(scope, receive, send)
    await django_application(scope, receive, send)


async def serve_lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await realtime_application.startup()
            except Exception as exc:  # noqa: BLE001 - reported to the server, which refuses to start
                await send({"type": "lifespan.startup.failed", "message": f"realtime could not start: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await realtime_application.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
