"""A hostile app for the property test of tests/executor/test_hostile_apps.py: an HTTP server, not
an SDK, that answers each call of a run with the next answer of that run's script, and the
hypothesis strategies that draw the scripts.

An answer is whatever an app could send: any status (200, 206, 201, 500, 4xx, odd ones), SDK
headers present, absent or odd, and bodies from valid op lists to invalid ops, wrong types, huge
or deeply nested JSON, odd Unicode (NUL, lone surrogates, bytes that are not UTF-8), NaN,
truncated JSON, answers cut off mid-body, and answers that come slowly or later than the call's
deadline. Each run's event carries a case number; the app answers call k of that run with
script[min(k, len - 1)], so the last answer repeats for as long as the server keeps calling.
"""
from __future__ import annotations

import collections
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import strategies as st

from tests.sdk_app import free_port

APP_NAME = "hostile"
FUNCTION_SLUG = "hostile-fn"
TRIGGER = "hostile/run"
WAKE = "hostile/wake"  # what the WaitForEvent ops wait for; the test sends it to /e/ with every batch
RETRIES = 1
CHILD_ANSWER_BODY = b'{"child": true}'  # what an invoked run (its event has no case) gets: done at once


@dataclass(frozen=True)
class HostileAnswer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the status line: slow, or past the call's deadline
    delivery: str = "whole"  # "whole", "cut" (Content-Length promises more, then the connection closes), "trickle"


@dataclass
class HostileApp:
    """Serves FUNCTION_SLUG; `scripts[case]` holds the answers for the run started with that case."""

    scripts: dict[int, list[HostileAnswer]] = field(default_factory=dict)
    calls: collections.Counter = field(default_factory=collections.Counter)  # run id -> calls
    case_of_run: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def register(self, server_url: str, headers: dict[str, str]) -> None:
        function = {"id": FUNCTION_SLUG, "name": "hostile", "triggers": [{"event": TRIGGER}],
                    "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": RETRIES}, "runtime": {
                        "type": "http", "url": f"{self.url}?fnId={FUNCTION_SLUG}&stepId=step"}}}}
        body = {"appname": APP_NAME, "deploy_type": "ping", "framework": "none", "sdk": "py:v0.5.19",
                "url": self.url, "v": "0.1", "functions": [function]}
        answer = requests.post(f"{server_url}/fn/register", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text

    def next_answer(self, call: dict) -> HostileAnswer:
        run_id = call.get("ctx", {}).get("run_id", "")
        case = (call.get("event") or {}).get("data", {}).get("case")
        with self.lock:
            k = self.calls[run_id]
            self.calls[run_id] += 1
            if isinstance(case, int):
                self.case_of_run[run_id] = case
            script = self.scripts.get(case) if isinstance(case, int) else None
        if not script:
            return HostileAnswer(200, CHILD_ANSWER_BODY, (("X-Inngest-SDK", "py:v0.5.19"),))
        return script[min(k, len(script) - 1)]

    def stop(self) -> None:
        self._server.shutdown()


class _Handler(http.server.BaseHTTPRequestHandler):
    app: HostileApp

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        call = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        answer = self.app.next_answer(call)
        time.sleep(answer.delay)
        try:
            self._send(answer)
        except OSError:  # the server gave up on the call first (its deadline): nothing to answer
            pass

    def _send(self, answer: HostileAnswer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        promised = len(answer.body) + (100 if answer.delivery == "cut" else 0)
        self.send_header("Content-Length", str(promised))
        self.end_headers()
        if answer.delivery == "trickle":  # a streamed answer: a byte at a time, in a second at most
            pause = min(0.05, 1.0 / max(len(answer.body), 1))
            for i in range(0, len(answer.body), max(len(answer.body) // 20, 1)):
                self.wfile.write(answer.body[i:i + max(len(answer.body) // 20, 1)])
                self.wfile.flush()
                time.sleep(pause)
            return
        self.wfile.write(answer.body)
        self.close_connection = True


# --- What the answers are drawn from ---------------------------------------------------------

ODD_STRINGS = ("nul\x00byte", "half \ud800 pair", "\udfff", "\U0001f600", "\u202eRTL", "\ufeffbom", "", "x" * 300)
TEXT = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=12))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
STEP_IDS = st.one_of(st.sampled_from(["a", "b", "c", "d", "complete"]), st.sampled_from(["a", "b", "c"]), TEXT)
# Expressions an app's wait may carry: one that matches, ones that cannot compile or evaluate.
WAIT_IFS = st.sampled_from([
    "event.data.n == async.data.n", "async.data.n > 0", "(" * 300 + "async.data.a == 1" + ")" * 300,
    "date(1e300) > 0", "json_parse(async.data.s) == 1", "))((", "async.data.list.map(x, x.map(y, y))",
    "a" * 5000, 7,
])
# Durations short enough that every run ends within the test, and odd ones.
DURATIONS = st.sampled_from(["1s", "0s", "500ms", "2s", "-1s", "abc", "", 5, None, "1s" * 200])


def _op(name: str, **fields: Any) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"op": st.just(name), "id": STEP_IDS, **fields},
                                 optional={"name": TEXT, "displayName": TEXT})


VALID_OPS = st.one_of(
    _op("StepRun", data=JSON_VALUES),
    _op("StepPlanned", opts=st.one_of(st.just({}), st.just({"parallelMode": "race"}))),
    _op("Sleep", opts=st.fixed_dictionaries({"duration": DURATIONS})),
    _op("WaitForEvent", opts=st.fixed_dictionaries(
        {"event": st.sampled_from([WAKE, WAKE, "e" * 300, "", 5]), "timeout": DURATIONS}, optional={"if": WAIT_IFS})),
    _op("InvokeFunction", opts=st.fixed_dictionaries({
        "function_id": st.sampled_from([FUNCTION_SLUG, "hostile-missing", 7, ""]),
        "payload": st.one_of(st.fixed_dictionaries({"data": JSON_VALUES}), JSON_VALUES), "timeout": DURATIONS})),
    _op("StepError", error=st.one_of(
        st.fixed_dictionaries({"name": TEXT, "message": TEXT}), JSON_VALUES)),
    _op("RunComplete", data=JSON_VALUES),
)


def _broken(op: dict, field_name: str, value: Any) -> dict:
    return {k: v for k, v in {**op, field_name: value}.items() if v is not _DROP}


_DROP = object()
INVALID_OPS = st.one_of(
    st.builds(_broken, VALID_OPS, st.sampled_from(["op", "id", "opts", "data", "error"]),
              st.one_of(st.just(_DROP), JSON_VALUES)),
    st.fixed_dictionaries({"op": st.one_of(st.sampled_from(["Nope", "StepFailed", "Step", "", "steprun"]), JSON_VALUES)},
                          optional={"id": JSON_VALUES}),
    JSON_VALUES,
)
OP_LISTS = st.lists(st.one_of(VALID_OPS, VALID_OPS, VALID_OPS, INVALID_OPS), min_size=0, max_size=4)


def _encode(value: Any, ascii_only: bool) -> bytes:
    """JSON as Python writes it: NaN as NaN; lone surrogates escaped, or as bytes that are not UTF-8."""
    return json.dumps(value, allow_nan=True, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{\"a\":": "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


def _truncated(body: bytes, fraction: float) -> bytes:
    return body[:int(len(body) * fraction)]


def _envelope(status: Any, inner: bytes, as_string: bool, padding: int) -> bytes:
    """A streamed (201) answer: whitespace the SDK kept the connection alive with, then the real
    one, its body either as a JSON string or spliced in as it is (valid JSON or not)."""
    body = json.dumps(inner.decode("utf-8", "surrogateescape")).encode() if as_string else inner
    return b" " * padding + b'{"status": ' + json.dumps(status).encode() + b', "headers": {}, "body": ' + body + b"}"


ENCODINGS = st.booleans()
BODIES = st.one_of(
    st.builds(_encode, OP_LISTS, ENCODINGS),
    st.builds(_encode, OP_LISTS, ENCODINGS),
    st.builds(_encode, OP_LISTS, st.just(True)),
    st.builds(_encode, OP_LISTS, st.just(True)),
    st.builds(_encode, JSON_VALUES, ENCODINGS),
    st.builds(_encode, st.fixed_dictionaries({"name": TEXT, "message": TEXT}), ENCODINGS),
    st.builds(lambda n, c: json.dumps([{"op": "StepRun", "id": "big", "data": c * n}]).encode(),
              st.sampled_from([50_000, 150_000, 1_000_000]), st.sampled_from(["x", "\u00e9"])),
    st.builds(_deep, st.sampled_from([50, 300, 5_000, 100_000]), st.sampled_from(["[", "{\"a\":"])),
    st.sampled_from([b"", b"NaN", b"[NaN]", b'[{"op":"StepRun","id":"a","data":Infinity}]', b"\xff\xfe\x00",
                     b"null", b"<html>502 Bad Gateway</html>", b'"\\ud800"', b"[" * 10]),
    st.builds(_truncated, st.builds(_encode, OP_LISTS, st.just(True)), st.floats(0.05, 0.95)),
)
ENVELOPE_STATUSES = st.one_of(st.sampled_from([200, 206, 500, 400, 201, 999, -1]), JSON_VALUES)
STATUSES = st.sampled_from([206, 206, 206, 200, 200, 201, 500, 500, 400, 404, 408, 429, 204, 299, 302, 418, 503, 599])
# Each header: None (absent) or a value; an SDK's own headers are there most of the time.
HEADER_CHOICES = {
    "Content-Type": ["application/json"] * 4 + [None, "text/html", "application/json; charset=utf-16", "\u00b2"],
    "X-Inngest-SDK": ["py:v0.5.19"] * 5 + ["inngest-js:v3.30.0", None, "", "go:\u00b2"],
    "X-Inngest-Signature": [None] * 4 + ["t=\u00b2&s=00", "t=1&s=zz", "garbage", "t=99999999999999999999&s=" + "a" * 64],
    "X-Inngest-No-Retry": [None] * 4 + ["true", "false", "yes", ""],
    # Retry-After values whose schedule ends within the test: seconds, a past date, junk.
    "Retry-After": [None] * 6 + ["1", "0", "2", "-5", "abc", "2000-01-01T00:00:00Z", "\u00b2"],
    "X-Inngest-Req-Version": ["2", "2", "1", None, None, "-1", "x", "99999999999999999999"],
}
HEADERS = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in HEADER_CHOICES.items()})
DELAYS = st.sampled_from([0.0] * 12 + [0.3, 1.0, 3.0])  # 3 s is past the test stack's 2 s call deadline
DELIVERIES = st.sampled_from(["whole"] * 8 + ["cut", "trickle"])


@st.composite
def answers(draw: st.DrawFn) -> HostileAnswer:
    status, body = draw(STATUSES), draw(BODIES)
    if status == 201:
        body = _envelope(draw(ENVELOPE_STATUSES), body, draw(st.booleans()), draw(st.integers(0, 2000)))
    headers = tuple(sorted((name, value) for name, value in draw(HEADERS).items() if value is not None))
    return HostileAnswer(status, body, headers, draw(DELAYS), draw(DELIVERIES))


# What an SDK would send, so that runs also get far: steps, sleeps, waits, invokes, a result.
SDK_ANSWERS = st.builds(
    lambda status, body: HostileAnswer(status, body, (("Content-Type", "application/json"),
                                                      ("X-Inngest-Req-Version", "2"), ("X-Inngest-SDK", "py:v0.5.19"))),
    st.sampled_from([206, 206, 206, 200]), st.builds(_encode, st.lists(VALID_OPS, min_size=1, max_size=3), st.just(True)))
SCRIPTS = st.lists(st.one_of(answers(), SDK_ANSWERS), min_size=1, max_size=6)
