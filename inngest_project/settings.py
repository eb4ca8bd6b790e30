"""One settings module for every mode, read from environment variables.

Dev mode is what you get with nothing set: SQLite in `.inngest/`, Celery on the in-memory
transport (the `dev` command runs the worker in-process). Production sets DATABASE_URL
(PostgreSQL) and REDIS_URL (the Celery broker). The helpers below fail loudly on bad values.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = env_float(name, float(default), float(minimum))
    if value != int(value):
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}")
    return int(value)


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- Django core -----------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
# Dev mode's key, published here: production refuses to start on it (inngest_project/security.py).
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or DEV_SECRET_KEY
# "*" (any Host header) is dev mode's default; production refuses to start on it.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS") or ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "events",
    "functions",
    "runs",
    "executor",
    "ui",
    "inngest_project",
]

MIDDLEWARE = [
    "inngest_project.middleware.ServerKindMiddleware",
    "inngest_project.middleware.RefuseNulMiddleware",
    "inngest_project.middleware.SigningKeyAuthMiddleware",
    "inngest_project.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "inngest_project.urls"
WSGI_APPLICATION = "inngest_project.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
DEV_DATA_DIR = Path(env_str("INNGEST_DEV_DATA_DIR", str(BASE_DIR / ".inngest")))
# INNGEST_POSTGRES_URI and INNGEST_REDIS_URI are `inngest start`'s names for the same settings.
DATABASE_URL = env_str("DATABASE_URL") or env_str("INNGEST_POSTGRES_URI")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with no health check on a connection used a moment ago (core/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "core.postgresql"
else:
    DEV_DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DEV_DATA_DIR / "dev.sqlite3"),
            # WAL lets the HTTP threads read while the in-process worker writes; IMMEDIATE
            # transactions take the write lock up front, so two writers queue instead of failing.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
IS_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time, static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT") or None  # only for `collectstatic`; not needed to serve
# The admin's CSS and JS, served by the app itself in both modes (no web server in front
# needed); found in the installed apps, so no collectstatic step either.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Step outputs are stored as the SDK sent them (core/json_text.py): NaN (the Python SDK
    # writes it) is shown as NaN, and lone surrogates as \u escapes, which UTF-8 cannot carry.
    "STRICT_JSON": False,
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inngest-compatible server: operator API",
    "DESCRIPTION": "Functions, events and runs for people and tools that operate the server. "
                   "Production: `Authorization: Token <token>` (`manage.py drf_create_token <user>`) or a UI session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served by the server itself: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "PREPROCESSING_HOOKS": ["inngest_project.openapi.only_operator_api"],
}

# `json` (one object per line, for log shippers) or `text`. Lines about a run carry its run id,
# function id and step id in both (executor/log_context.py).
INNGEST_LOG_FORMAT = env_str("INNGEST_LOG_FORMAT", "text")
if INNGEST_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"INNGEST_LOG_FORMAT must be json or text, got {INNGEST_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Event keys (in /e/<key> paths), signing keys and tokens never reach a log line.
    "filters": {"run_context": {"()": "executor.log_context.RunContextFilter"},
                "redact_secrets": {"()": "inngest_project.log_redaction.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s run_id=%(run_id)s function_id=%(function_id)s "
                           "step_id=%(step_id)s %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(run_id)s %(function_id)s %(step_id)s %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": INNGEST_LOG_FORMAT,
                            "filters": ["run_context", "redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env_str("INNGEST_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# --- Celery ----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or env_str("INNGEST_REDIS_URI")
CELERY_BROKER_URL = REDIS_URL or "memory://"
if REDIS_URL.split("://")[0] in ("redis", "rediss"):
    # kombu's Redis transport with a worker-crash fix (see the module).
    CELERY_BROKER_TRANSPORT = "inngest_project.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Call workers run their calls in threads by default: a call mostly waits for the app (libcurl
# and the database driver let go of the GIL meanwhile), and threads share one process's
# connections and memory, with no hand-over from a parent process to a child per message. The
# Python part of each call is small enough that one process keeps two cores busy; more
# processes (or machines) scale past that. INNGEST_WORKER_POOL=prefork runs one process per slot.
CELERY_WORKER_POOL = env_str("INNGEST_WORKER_POOL") or "threads"
if CELERY_WORKER_POOL not in ("threads", "prefork"):
    raise ImproperlyConfigured(f"INNGEST_WORKER_POOL must be threads or prefork, got {CELERY_WORKER_POOL!r}")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "inngest"
# Timers and sweepers have a queue and a worker of their own. A call to an app holds its worker
# slot until the app answers, so a few hanging apps can fill every slot of the call workers;
# sleeps, retries, timeouts, debounces, batches, cron and the sweeper that recovers lost calls
# must go on regardless. Run history pruning stays on the call queue: it can take minutes, and a
# day's delay costs nothing.
INNGEST_TIMER_QUEUE = "inngest-timers"
CELERY_TASK_ROUTES = {
    name: {"queue": INNGEST_TIMER_QUEUE}
    for name in ("executor.tick_timers", "runs.requeue_stuck_runs", "runs.cron_tick",
                 "executor.sweep_due_calls", "functions.fire_cron")  # the last two: old names of the first and third
}
# Pool size of the timer worker `start` runs (read here so that `start` checks it first).
INNGEST_TIMER_CONCURRENCY = env_int("INNGEST_TIMER_CONCURRENCY", 2, minimum=1)
# Recovery of a dead worker's run comes from database leases (executor/leases.py) and the
# sweeper, not from the broker redelivering: the Redis transport keeps no copy of the messages a
# worker holds (inngest_project/broker.py), so it has no visibility timeout to set.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless told to reuse
# it; a new connection per task costs more than the task. CONN_MAX_AGE and health checks still
# retire stale connections.
CELERY_DB_REUSE_MAX = 1000

# --- The server's own knobs ------------------------------------------------------------------
INNGEST_SIGNING_KEY = env_str("INNGEST_SIGNING_KEY")
# Accepted wherever the signing key is (bearer tokens, answers' signatures): key rotation.
INNGEST_SIGNING_KEY_FALLBACK = env_str("INNGEST_SIGNING_KEY_FALLBACK")
for _name, _key in (("INNGEST_SIGNING_KEY", INNGEST_SIGNING_KEY), ("INNGEST_SIGNING_KEY_FALLBACK", INNGEST_SIGNING_KEY_FALLBACK)):
    if _key:
        from executor.signing import check_key

        if _problem := check_key(_name, _key):
            raise ImproperlyConfigured(_problem)
if INNGEST_SIGNING_KEY_FALLBACK and not INNGEST_SIGNING_KEY:
    raise ImproperlyConfigured("INNGEST_SIGNING_KEY_FALLBACK needs INNGEST_SIGNING_KEY")
# Event keys given to the server as `inngest start` takes them (INNGEST_EVENT_KEY, comma-separated
# for several), accepted beside the keys created with `manage.py event_keys create`.
INNGEST_EVENT_KEYS = env_list("INNGEST_EVENT_KEY")
# Production /e/{key} accepts only those keys; on by default whenever a signing key or an event
# key is set (dev mode accepts any key).
INNGEST_REQUIRE_EVENT_KEYS = env_bool("INNGEST_REQUIRE_EVENT_KEYS", bool(INNGEST_SIGNING_KEY or INNGEST_EVENT_KEYS))
# Without a signing key the server cannot talk to cloud-mode SDKs, so it presents itself as a
# dev server (SDKs in dev mode refuse a `cloud` server and vice versa).
INNGEST_SERVER_KIND = env_str("INNGEST_SERVER_KIND", "cloud" if INNGEST_SIGNING_KEY else "dev")
if INNGEST_SERVER_KIND not in ("dev", "cloud"):
    raise ImproperlyConfigured(f"INNGEST_SERVER_KIND must be dev or cloud, got {INNGEST_SERVER_KIND!r}")
# Linear retry backoff in seconds (like `inngest dev --retry-interval`); 0 = Inngest's table.
INNGEST_RETRY_INTERVAL = env_float("INNGEST_RETRY_INTERVAL", 0.0)
# A worker holding a run renews its lease every third of this; a dead worker's run is picked
# up again by the sweeper once the lease has run out.
INNGEST_LEASE_SECONDS = env_float("INNGEST_LEASE_SECONDS", 30.0, minimum=1.0)
# How long one worker keeps calling the app for one run before going back through the queue.
INNGEST_TIME_SLICE_SECONDS = env_float("INNGEST_TIME_SLICE_SECONDS", 10.0, minimum=0.0)
# The whole of one call to an app: connecting, sending, and reading the entire answer (Inngest
# allows 2 hours). A call past it is recorded as a failed attempt and retried.
INNGEST_CALL_TIMEOUT_SECONDS = env_float("INNGEST_CALL_TIMEOUT_SECONDS", 7200.0, minimum=1.0)
# Async checkpointing (JS SDK v4): calls tell the SDK which pending call it may report steps
# against, and it runs several steps per call. Off: one call per step, as before.
INNGEST_ASYNC_CHECKPOINTING = env_bool("INNGEST_ASYNC_CHECKPOINTING", True)
# Durable Endpoints: a run whose endpoint request has reported nothing for this long (its process
# died?) is resumed by calling the endpoint; how long GET /v1/http/runs/{id}/output waits for the end.
INNGEST_ENDPOINT_RESUME_SECONDS = env_float("INNGEST_ENDPOINT_RESUME_SECONDS", 600.0, minimum=1.0)
INNGEST_ENDPOINT_OUTPUT_WAIT_SECONDS = env_float("INNGEST_ENDPOINT_OUTPUT_WAIT_SECONDS", 300.0, minimum=0.0)
INNGEST_SYNC_POLL_SECONDS = env_float("INNGEST_SYNC_POLL_SECONDS", 5.0)
INNGEST_SWEEP_SECONDS = env_float("INNGEST_SWEEP_SECONDS", 1.0, minimum=0.05)
# A call whose message was sent this long ago and that nobody has claimed is presumed lost (a
# broker restarted without its data) and is sent again. Too low only costs a duplicate message,
# which the claim discards. With Redis as the broker the time counts from when the oldest message
# still waiting in the call queue was sent, so a backlog's messages are not taken for lost.
INNGEST_LOST_MESSAGE_SECONDS = env_float("INNGEST_LOST_MESSAGE_SECONDS", 30.0, minimum=1.0)
# The hot path's statements are prepared once per PostgreSQL connection (runs/sql_batch.py).
# Turn off behind a pooler in transaction mode (PgBouncer's pool_mode=transaction).
INNGEST_DB_PREPARED_STATEMENTS = env_bool("INNGEST_DB_PREPARED_STATEMENTS", True)
# Rate-limit and throttle tokens are taken in the transaction that admits a run, recorded with
# what the run is for and confirmed when it commits; one still unconfirmed after this long (its
# transaction rolled back and was not retried) is given back. A transaction that takes longer
# to commit only gets its token back early: the limit errs on the lenient side.
INNGEST_UNCONFIRMED_TOKEN_SECONDS = env_float("INNGEST_UNCONFIRMED_TOKEN_SECONDS", 60.0, minimum=0.1)
INNGEST_MAX_EVENT_BYTES = env_int("INNGEST_MAX_EVENT_BYTES", 3 * 1024 * 1024, minimum=1)
INNGEST_MAX_EVENTS_PER_REQUEST = env_int("INNGEST_MAX_EVENTS_PER_REQUEST", 5000, minimum=1)
# Request body caps, checked against Content-Length before anything reads the body; over one,
# the answer is a 413 in the endpoint's error shape (inngest_project/middleware.py, BodyLimitMiddleware).
# /e/: events are up to 3 MiB each and 5,000 per request, and the event API checks those with
# the documented 400s; this only bounds what one request may make the server hold.
INNGEST_MAX_REQUEST_BYTES = env_int("INNGEST_MAX_REQUEST_BYTES", 256 * 1024 * 1024, minimum=1024)
# What SDKs send besides events: /fn/register (an app's whole configuration) and the /v1 calls
# that carry a run's data (checkpoints, signals): a run's state is at most 32 MB.
INNGEST_MAX_SDK_REQUEST_BYTES = env_int("INNGEST_MAX_SDK_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)
# The rest of /v0, /v1 and /api/v1 take small JSON documents (queries, cancellations).
INNGEST_MAX_API_REQUEST_BYTES = env_int("INNGEST_MAX_API_REQUEST_BYTES", 1024 * 1024, minimum=1024)
# Everything else (the UI's forms, the admin) carries one event's data at most, URL-encoded
# (up to three bytes per character); /invoke/{slug} takes one event, INNGEST_MAX_EVENT_BYTES.
INNGEST_MAX_FORM_BYTES = 3 * INNGEST_MAX_EVENT_BYTES
# Django's own cap, behind the per-endpoint ones above: the largest of them.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INNGEST_MAX_REQUEST_BYTES, INNGEST_MAX_SDK_REQUEST_BYTES, INNGEST_MAX_FORM_BYTES)
# `batchEvents.maxSize` above this is refused at sync. Inngest's plans allow 5 to 500 events per
# batch ("custom" above that); a batch is one row rewritten with every event it takes.
INNGEST_MAX_BATCH_SIZE = env_int("INNGEST_MAX_BATCH_SIZE", 1000, minimum=2)
# A call body larger than this is sent with `use_api`: the SDK fetches the run's events and
# steps from /v0/runs/{id}/batch and /actions instead (frameworks cap request bodies, e.g. 8 MB).
INNGEST_MAX_CALL_BODY_BYTES = env_int("INNGEST_MAX_CALL_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
# Inngest's limits on a run (protocol.md §4.6); past one the run fails with a named error.
# Sizes are lengths of the values' JSON text.
INNGEST_MAX_STEP_OUTPUT_BYTES = env_int("INNGEST_MAX_STEP_OUTPUT_BYTES", 4 * 1024 * 1024, minimum=1)
INNGEST_MAX_STATE_BYTES = env_int("INNGEST_MAX_STATE_BYTES", 32 * 1024 * 1024, minimum=1)  # events + outputs + result
INNGEST_MAX_STEPS_PER_RUN = env_int("INNGEST_MAX_STEPS_PER_RUN", 1000, minimum=1)
# step.fetch and step.ai.infer: requests the server makes for a function (executor/gateway.py).
# Their answer becomes the step's output; the whole request (connect to last byte) has a deadline.
INNGEST_GATEWAY_TIMEOUT_SECONDS = env_float("INNGEST_GATEWAY_TIMEOUT_SECONDS", 300.0, minimum=1.0)
INNGEST_GATEWAY_MAX_RESPONSE_BYTES = env_int("INNGEST_GATEWAY_MAX_RESPONSE_BYTES", INNGEST_MAX_STEP_OUTPUT_BYTES, minimum=1)
# In production, hosts on private, loopback and link-local networks are refused unless listed
# here as CIDRs (e.g. "10.1.0.0/16,127.0.0.1/32"); dev mode allows them all (executor/url_policy.py).
INNGEST_GATEWAY_ALLOWED_NETWORKS = env_list("INNGEST_GATEWAY_ALLOWED_NETWORKS")
for _cidr in INNGEST_GATEWAY_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"INNGEST_GATEWAY_ALLOWED_NETWORKS: {_cidr!r} is not a network (CIDR)") from None
INNGEST_MAX_OPS_PER_RESPONSE = env_int("INNGEST_MAX_OPS_PER_RESPONSE", 1000, minimum=1)
# Calls in a row that finish no step and open no wait (an app answering empty 206s) before the
# run fails; counted on the pending call, a small integer column.
INNGEST_MAX_CALLS_WITHOUT_PROGRESS = env_int("INNGEST_MAX_CALLS_WITHOUT_PROGRESS", 100, minimum=2)
if INNGEST_MAX_CALLS_WITHOUT_PROGRESS > 32767:
    raise ImproperlyConfigured(f"INNGEST_MAX_CALLS_WITHOUT_PROGRESS must be <= 32767, got {INNGEST_MAX_CALLS_WITHOUT_PROGRESS}")
# The operator UI (ui/) and the operator REST API (/api/v1) need a signed-in Django user (or, for
# the API, a token: `manage.py drf_create_token <user>`); `manage.py dev` turns this off, like
# Inngest's dev server, unless the variable is set.
INNGEST_OPERATOR_LOGIN = env_bool("INNGEST_OPERATOR_LOGIN", True)
LOGIN_URL = "ui:login"
LOGIN_REDIRECT_URL = "ui:runs"
LOGOUT_REDIRECT_URL = "ui:login"
# Days of run history kept; older ended runs and their events are pruned daily (0 = keep all).
INNGEST_RUN_RETENTION_DAYS = env_int("INNGEST_RUN_RETENTION_DAYS", 30)

# --- Realtime (realtime/) --------------------------------------------------------------------
# Threads per HTTP process serving everything but realtime (inngest_project/asgi.py), as
# gunicorn's gthread worker had them.
INNGEST_HTTP_THREADS = env_int("INNGEST_HTTP_THREADS", 8, minimum=1)
# One published message (Inngest's limit: 512 KB); a `text/stream` publish or a Durable Endpoint's
# tee is cut into messages and may carry this much in all (Inngest: 1,000 chunks of 1 KB).
INNGEST_REALTIME_MAX_MESSAGE_BYTES = env_int("INNGEST_REALTIME_MAX_MESSAGE_BYTES", 512 * 1024, minimum=1024)
INNGEST_REALTIME_MAX_STREAM_BYTES = env_int("INNGEST_REALTIME_MAX_STREAM_BYTES", 1024 * 1024, minimum=1024)
# Open subscriptions one token may hold at once, across every process.
INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN = env_int("INNGEST_REALTIME_MAX_SUBSCRIBERS_PER_TOKEN", 10, minimum=1)
# Messages queued for one subscriber; a subscriber that falls this far behind is disconnected
# (it reconnects with a new token) instead of holding up anything else.
INNGEST_REALTIME_SUBSCRIBER_BUFFER = env_int("INNGEST_REALTIME_SUBSCRIBER_BUFFER", 1000, minimum=1)
# A subscription that has delivered nothing for this long is closed (Inngest closes its
# connections after 15 minutes); keepalives keep proxies from closing it sooner.
INNGEST_REALTIME_IDLE_SECONDS = env_float("INNGEST_REALTIME_IDLE_SECONDS", 900.0, minimum=1.0)
INNGEST_REALTIME_KEEPALIVE_SECONDS = env_float("INNGEST_REALTIME_KEEPALIVE_SECONDS", 15.0, minimum=0.1)
# How long a subscription token may be used to open a subscription (Inngest: a minute).
INNGEST_REALTIME_TOKEN_SECONDS = env_int("INNGEST_REALTIME_TOKEN_SECONDS", 60, minimum=1)

# --- Secure by default (production) ----------------------------------------------------------
# Production (a DATABASE_URL) without a signing key, a secret key or allowed hosts would be open
# to anyone who reaches the port; its entry points (`start`, every management command's system
# checks, the WSGI application, celery worker and beat) refuse to start that way unless told so
# with INNGEST_INSECURE, and then say so loudly (inngest_project/security.py).
IS_PRODUCTION = bool(DATABASE_URL)
INNGEST_INSECURE = env_bool("INNGEST_INSECURE", False)
# Set by `manage.py dev` in its own process, never from the environment: dev mode is open on
# purpose, and a production deploy cannot turn it on by accident.
INNGEST_DEV_MODE = False

# --- Behind TLS (production) -----------------------------------------------------------------
# INNGEST_HTTPS=true when the server is reached over HTTPS (usually a proxy terminating TLS):
# secure cookies, HSTS, redirects to HTTPS (not for /health and /metrics, which probes and
# scrapers call directly). `manage.py check --deploy` is clean with it and a real secret key.
INNGEST_HTTPS = env_bool("INNGEST_HTTPS", False)
if INNGEST_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("INNGEST_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("INNGEST_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("INNGEST_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
