"""A run's end in the database, in one round trip: its status, and the rows only an active run has.

Ending a run takes its pending calls' row locks first (a worker applying a decision holds its
call's row, then updates the run: the same order here, so a cancel and a worker never
deadlock), moves the run to its terminal status if it may go there, and drops its pending
calls and waits. The same message asks whether anything listens to the events the end emits
(`inngest/function.*`: a trigger, or an open wait for that name), so that a run whose end
nobody listens to costs no trigger or wait look-up: the answer is read in the transaction that
stores those events, so it is as fresh as a look-up would be. It also reads the run's
`has_defers` as it stands then, so that a run without deferred runs reads no defer.

A run's last answer (runs/lifecycle.py) sends its recording first in the same message, and,
when nothing listens, the end's events after it: the whole end is then that one message, a
transaction of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from core.json_text import dump_json
from events.triggers import name_patterns
from functions.models import Function, Trigger
from runs.models import PendingCall, Run, Wait, WaitKind, sources_of
from runs.recording import HELD
from runs.sql_batch import Together, for_update, run_together

_CALLS, _RUNS, _WAITS = (model._meta.db_table for model in (PendingCall, Run, Wait))
_TRIGGERS, _FUNCTIONS = Trigger._meta.db_table, Function._meta.db_table
ENDED_HERE = f"EXISTS (SELECT 1 FROM {_RUNS} WHERE id = %(run_id)s AND status = %(status)s AND ended_at = %(ended_at)s)"


@dataclass(frozen=True)
class Ended:
    """The run ended here; whether its events have a trigger or an open wait to look up, and
    whether it has deferred runs to start."""

    is_triggering: bool
    is_awaited: bool
    has_defers: bool


@dataclass(frozen=True)
class LastAnswerEnd:
    """What the message of a run's last answer did: `ended` as end_run says, and whether the
    answer's recording took effect (it may have, when something listens, without the end)."""

    ended: Ended | None
    is_recorded: bool


def end_run(run_id: str, status: str, output: Any, now: datetime, event_names: list[str]) -> Ended | None:
    """Move the run to `status` and drop its calls and waits; None if it may not go there
    (already ended by someone else, who dropped them)."""
    row = _end(run_id, status, output, now, event_names)
    return _ended(row)


def end_with_last_answer(
    run_id: str, status: str, output: Any, now: datetime, event_names: list[str], recording: Together, events: Together
) -> LastAnswerEnd:
    """The same end, in the message that records the run's last answer (`recording`, sent first:
    the run ends only if it took effect, runs/recording.py HELD) and stores the events the end
    emits (`events`, sent after it, each conditioned on ENDED_HERE). The run ends there only if
    nothing listens to those events and it has no deferred run to start, so that the message
    is the whole end, in a transaction of its own; otherwise the caller ends it in one."""
    row = _end(run_id, status, output, now, event_names, recording, events)
    # The recording's call is gone once the run ended; until the message commits nobody else can renew it.
    return LastAnswerEnd(ended=_ended(row), is_recorded=row is not None and bool(row[0] or row[4]))


def _end(
    run_id: str, status: str, output: Any, now: datetime, event_names: list[str],
    recording: Together | None = None, unheard: Together | None = None,
) -> tuple | None:
    sources = sources_of(status)
    patterns = sorted({pattern for name in event_names for pattern in name_patterns(name)}) or [""]
    params: dict[str, Any] = {
        "run_id": run_id, "status": status, "output": None if output is None else dump_json(output),
        "ended_at": connection.ops.adapt_datetimefield_value(now),
        **{f"from{i}": source for i, source in enumerate(sources)},
        **{f"pattern{i}": pattern for i, pattern in enumerate(patterns)},
        **{f"name{i}": name for i, name in enumerate(event_names or [""])},
        "event_kind": WaitKind.EVENT, "cancel_kind": WaitKind.CANCEL,
        **(recording.params if recording else {}), **(unheard.params if unheard else {}),
    }
    is_triggering = (
        f"EXISTS (SELECT 1 FROM {_TRIGGERS} t JOIN {_FUNCTIONS} f ON f.id = t.function_id "
        f"WHERE t.event_name IN ({_placeholders('pattern', patterns)}) AND NOT f.is_archived)"
    )
    is_awaited = (
        f"EXISTS (SELECT 1 FROM {_WAITS} WHERE event_name IN ({_placeholders('name', event_names or [''])}) "
        f"AND kind IN (%(event_kind)s, %(cancel_kind)s) AND run_id <> %(run_id)s)"
    )
    conditions = [f"id = %(run_id)s AND status IN ({_placeholders('from', sources)})"]
    if recording:
        conditions.append(HELD)
    if unheard:
        conditions.append(f"NOT has_defers AND NOT {is_triggering} AND NOT {is_awaited}")
    statements = [
        *(recording.statements if recording else []),
        *for_update(f"SELECT id FROM {_CALLS} WHERE run_id = %(run_id)s ORDER BY id"),
        f"UPDATE {_RUNS} SET status = %(status)s, output = %(output)s, ended_at = %(ended_at)s WHERE {' AND '.join(conditions)}",
        f"DELETE FROM {_CALLS} WHERE run_id = %(run_id)s AND {ENDED_HERE}",
        f"DELETE FROM {_WAITS} WHERE run_id = %(run_id)s AND {ENDED_HERE}",
        *(unheard.statements if unheard else []),
    ]
    result = (f"SELECT {ENDED_HERE}, {is_triggering}, {is_awaited}, (SELECT has_defers FROM {_RUNS} WHERE id = %(run_id)s)"
              + (f", {HELD}" if recording else ""))
    return run_together(statements, params, result)


def _ended(row: tuple | None) -> Ended | None:
    if row is None or not row[0]:
        return None
    return Ended(is_triggering=bool(row[1]), is_awaited=bool(row[2]), has_defers=bool(row[3]))


def _placeholders(prefix: str, values: list[Any]) -> str:
    return ", ".join(f"%({prefix}{i})s" for i in range(len(values)))
