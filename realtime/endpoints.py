"""`POST /v1/realtime/publish` (JSON or `text/stream`), `/v1/realtime/publish/tee` (a Durable
Endpoint's raw stream) and `/v1/realtime/token` (protocol-next.md §5)."""
from __future__ import annotations

import codecs
import json
import uuid

from django.conf import settings

from realtime.bus import current_bus
from realtime.http import BodyTooLarge, Request, Send, respond, respond_error, respond_json
from realtime.messages import RAW_FRAME, STREAM_TOPIC, Topic, as_json_text, message_frame, name_problem
from realtime.tokens import mint_token

MAX_TOPICS_PER_REQUEST = 100
# A streamed body is cut into messages of this many characters, as Inngest cuts it (1 KB).
STREAM_CHUNK_CHARACTERS = 1024
MAX_RUN_ID_LENGTH = 64


def publish_targets(request: Request) -> tuple[list[Topic], str | None, str | None]:
    """The topics a publish names, its run id, and what is wrong with them if anything."""
    channel, names = request.query("channel"), request.query_list("topic")
    problem = name_problem("channel", channel) or (None if names else "topic is required")
    problem = problem or next(filter(None, (name_problem("topic", name) for name in names)), None)
    if len(names) > MAX_TOPICS_PER_REQUEST:
        problem = f"at most {MAX_TOPICS_PER_REQUEST} topics per publish"
    run_id = request.query("run_id") or None
    if run_id and len(run_id) > MAX_RUN_ID_LENGTH:
        problem = f"run_id must be at most {MAX_RUN_ID_LENGTH} characters"
    return [Topic(channel=channel, name=name) for name in dict.fromkeys(names)], run_id, problem


async def publish(request: Request, send: Send) -> None:
    topics, run_id, problem = publish_targets(request)
    if problem:
        return await respond_error(send, 400, problem)
    if request.header("content-type").split(";")[0].strip().lower() == "text/stream":
        return await publish_stream(request, send, topics, run_id)
    limit = settings.INNGEST_REALTIME_MAX_MESSAGE_BYTES
    if request.declared_length() > limit:
        return await respond_error(send, 413, f"Request body is larger than {limit} bytes")
    try:
        body = await request.body(limit)
    except BodyTooLarge as exc:
        return await respond_error(send, 413, str(exc))
    data = as_json_text(body)
    bus = current_bus()
    for topic in topics:
        await bus.apublish(topic.key, message_frame("data", topic, data, run_id=run_id))
    await respond(send, 200)


async def publish_stream(request: Request, send: Send, topics: list[Topic], run_id: str | None) -> None:
    """`datastream-start`, the body's text in `chunk`s as it arrives, then `datastream-end`, which
    is sent whatever happens to the body, so subscribers never hold a stream that never ends."""
    bus, stream_id = current_bus(), uuid.uuid4().hex
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def to_all(kind: str, data_json: str) -> None:
        for topic in topics:
            await bus.apublish(topic.key, message_frame(kind, topic, data_json, run_id=run_id, stream_id=stream_id))

    await to_all("datastream-start", json.dumps(stream_id))
    try:
        async for piece in request.body_pieces(settings.INNGEST_REALTIME_MAX_STREAM_BYTES):
            text = decoder.decode(piece)
            for start in range(0, len(text), STREAM_CHUNK_CHARACTERS):
                await to_all("chunk", json.dumps(text[start:start + STREAM_CHUNK_CHARACTERS]))
        if tail := decoder.decode(b"", final=True):
            await to_all("chunk", json.dumps(tail))
    except BodyTooLarge as exc:
        return await respond_error(send, 413, str(exc))
    finally:
        await to_all("datastream-end", json.dumps(stream_id))
    await respond(send, 200)


async def publish_tee(request: Request, send: Send) -> None:
    channel = request.query("channel")
    if problem := name_problem("channel", channel):
        return await respond_error(send, 400, problem)
    key, bus = Topic(channel=channel, name=STREAM_TOPIC).key, current_bus()
    try:
        async for piece in request.body_pieces(settings.INNGEST_REALTIME_MAX_STREAM_BYTES):
            await bus.apublish(key, RAW_FRAME + piece)
    except BodyTooLarge as exc:
        return await respond_error(send, 413, str(exc))
    await respond(send, 200)


async def create_token(request: Request, send: Send) -> None:
    """`[{channel, name, kind}]` → `201 {"jwt"}`: a token that reads those topics."""
    try:
        wanted = json.loads(await request.body(settings.INNGEST_MAX_API_REQUEST_BYTES))
    except BodyTooLarge as exc:
        return await respond_error(send, 413, str(exc))
    except ValueError:
        return await respond_error(send, 400, "Invalid request: must provide a list of topics")
    topics, problem = requested_topics(wanted)
    if problem:
        return await respond_error(send, 400, f"Invalid request: {problem}")
    await respond_json(send, 201, {"jwt": mint_token(topics)})


def requested_topics(wanted: object) -> tuple[list[Topic], str | None]:
    if not isinstance(wanted, list) or not wanted:
        return [], "must provide a list of topics"
    if len(wanted) > MAX_TOPICS_PER_REQUEST:
        return [], f"at most {MAX_TOPICS_PER_REQUEST} topics per token"
    topics = []
    for entry in wanted:
        if not isinstance(entry, dict):
            return [], "each topic must be an object with channel and name"
        if entry.get("kind", "run") != "run":
            return [], "only topics of kind run are supported"
        if problem := name_problem("channel", entry.get("channel")) or name_problem("name", entry.get("name")):
            return [], problem
        topics.append(Topic(channel=entry["channel"], name=entry["name"]))
    return topics, None
