"""What the SDKs send in: events (`/e/{key}`), invocations (`/invoke/{slug}`); and the v1 event
listings with the runs they started. Here in runs, not in events: storing an event starts its runs."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.json_body import read_json_body
from events.api.envelope import v1_error, v1_response
from events.api.serializers import event_json
from events.group_commit import CommitTimeout
from events.keys import is_accepted
from events.meta import EventMetaError
from events.models import Event
from runs.api.serializers import run_json
from runs.intake import EventError, IngestResult, ingest, ingest_awaiting
from runs.invokes import find_function, invoke_function
from runs.models import Run

MAX_LIMIT = 100


KEY_NOT_FOUND = {"status": 401, "message": "Event key not found", "error": "Event key not found"}


class EventIngestView(APIView):
    parser_classes: list = []  # the body is parsed by runs.intake, which knows the limits

    def post(self, request: Request, event_key: str) -> Response:
        if not is_accepted(event_key):
            return Response(KEY_NOT_FOUND, status=401)
        try:
            body = request._request.body
        except RequestDataTooBig:  # behind inngest_project.middleware.BodyLimitMiddleware, which answers first
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return Response({"ids": [], "status": 413, "error": f"Request body is larger than {limit} bytes"}, status=413)
        status, payload = answer_events(body, request.headers.get("x-inngest-event-id-seed"))
        return Response(payload, status=status)


def answer_events(body: bytes, seed_header: str | None) -> tuple[int, dict]:
    """`POST /e/{key}`'s status and JSON answer once its key is accepted. Also served without
    Django's request cycle (inngest_project/event_route.py), in its thread pool for a large body."""
    try:
        return _answer_stored(ingest(body, seed_header))
    except _ANSWERED as exc:
        return _answer_refused(exc)


async def answer_events_awaiting(body: bytes, seed_header: str | None) -> tuple[int, dict]:
    """`answer_events` for the ASGI route's event loop (a small body): the same answers, the
    commit awaited rather than waited for in a thread."""
    try:
        return _answer_stored(await ingest_awaiting(body, seed_header))
    except _ANSWERED as exc:
        return _answer_refused(exc)


# The failures /e/ answers itself; anything else is a 500 from whoever serves the request.
_ANSWERED = (EventError, DatabaseError, CommitTimeout)


def _answer_stored(result: IngestResult) -> tuple[int, dict]:
    if result.error:  # the events before the bad one are stored, and their ids reported
        return 400, {"ids": result.ids, "status": 400, "error": result.error}
    return 200, {"ids": result.ids, "status": 200}


def _answer_refused(exc: Exception) -> tuple[int, dict]:
    if isinstance(exc, EventError):
        return 400, {"ids": [], "status": 400, "error": str(exc)}
    # Not stored (or not known to be): never a 200. The sender retries.
    return 503, {"ids": [], "status": 503, "error": f"events could not be stored: {type(exc).__name__}"}


class InvokeView(APIView):
    """`POST /invoke/{slug}`: run a function directly with an event-shaped body (§1.5)."""

    parser_classes: list = []

    def post(self, request: Request, slug: str) -> Response:
        # The cheap check first: the body (capped by BodyLimitMiddleware) is read only for a function that exists.
        function = find_function(unquote(slug))
        if function is None:
            return Response({"status": 404, "error": f"function not found: {unquote(slug)}"}, status=404)
        try:
            body = read_json_body(request._request.body or b"{}")
        except ValueError as exc:
            return Response({"status": 400, "error": f"Unable to parse body as JSON: {exc}"}, status=400)
        if not isinstance(body, dict):
            return Response({"status": 400, "error": "The body must be a JSON object"}, status=400)
        try:
            with transaction.atomic():
                event = invoke_function(function, body)
        except EventMetaError as exc:
            return Response({"status": 400, "error": str(exc)}, status=400)
        return Response({"id": event.internal_id, "status": 200})


class EventListView(APIView):
    def get(self, request: Request) -> Response:
        query = Event.objects.order_by("-internal_id", "-id")
        params = request.query_params
        if params.get("name"):
            query = query.filter(name=params["name"])
        if params.get("cursor"):
            query = query.filter(internal_id__lt=params["cursor"])
        for param, lookup in (("received_after", "received_at__gt"), ("received_before", "received_at__lt")):
            if params.get(param):
                try:
                    query = query.filter(**{lookup: datetime.fromisoformat(params[param].replace("Z", "+00:00"))})
                except ValueError:
                    return v1_error(f"{param} must be an RFC 3339 time", 400)
        try:
            limit = min(max(int(params.get("limit", 20)), 1), MAX_LIMIT)
        except ValueError:
            return v1_error("limit must be a number", 400)
        return v1_response([event_json(e) for e in query[:limit]])


class EventDetailView(APIView):
    def get(self, request: Request, internal_id: str) -> Response:
        event = Event.objects.filter(internal_id=internal_id).order_by("id").first()
        if event is None:
            return v1_error("event not found", 404)
        return v1_response(event_json(event))


class EventRunsView(APIView):
    def get(self, request: Request, internal_id: str) -> Response:
        runs = Run.objects.filter(event__internal_id=internal_id).select_related("function").order_by("id")
        return v1_response([run_json(run) for run in runs])
