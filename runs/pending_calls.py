"""Pending calls: the only module that changes PendingCall rows, and the broker messages for them.

The PendingCall row is the record; a message only says "look at call N". Messages are sent
only after the transaction that wrote the row commits, and the sweeper re-sends for rows whose
message was lost (broker restarted without its data) or whose worker died holding the lease;
a message still waiting in the broker's queue (runs/call_queue.py) is not taken for lost.

A call's state is not a column: it follows from its columns, as `CALL_STATES` below says, and
`CALL_TRANSITIONS` (runs/models.py, beside RUN_TRANSITIONS) lists how it moves. One exception:
the applier (runs/lifecycle.py) re-arms, replaces or deletes the call it applies a decision to
inside the decision's own transaction. Tasks are sent by name: nothing here imports the
project's Celery app.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from functions.models import Function
from runs.call_queue import EXECUTE_CALL_TASK, oldest_waiting_calls
from runs.models import CallState, PendingCall, Run
from runs.sql_batch import Together, columns_of, insert_select, instances_of, run_together

TICK_TASK = "executor.tick_timers"
# Countdowns longer than this are left to the sweeper: a message held for hours by a worker
# is more fragile than a row.
MAX_COUNTDOWN_SECONDS = 60.0
SWEEP_BATCH = 500

log = logging.getLogger(__name__)
_CLAIMED_MODELS = (PendingCall, Run, Function)
_CALLS, _RUNS, _FUNCTIONS = (model._meta.db_table for model in _CLAIMED_MODELS)
# Every claim is a new generation: an async checkpoint made under an earlier one is stale.
_CLAIM = f"""UPDATE {_CALLS} SET lease_owner = %(owner)s, lease_expires_at = %(lease_expires_at)s, parked_on = '',
    generation = generation + 1
    WHERE id = %(call_id)s AND due_at <= %(now)s AND (lease_expires_at IS NULL OR lease_expires_at < %(now)s)"""
# The run whose call this claim took (none if it took nothing): for statements sent with the claim.
CLAIMED_RUN = f"""(SELECT run_id FROM {_CALLS} WHERE id = %(call_id)s AND lease_owner = %(owner)s
    AND lease_expires_at = %(lease_expires_at)s)"""
# The row has this owner and this expiry only if this claim took it.
_CLAIMED = f"""SELECT {columns_of(_CLAIMED_MODELS)} FROM {_CALLS}
    JOIN {_RUNS} ON {_RUNS}.id = {_CALLS}.run_id JOIN {_FUNCTIONS} ON {_FUNCTIONS}.id = {_RUNS}.function_id
    WHERE {_CALLS}.id = %(call_id)s AND {_CALLS}.lease_owner = %(owner)s AND {_CALLS}.lease_expires_at = %(lease_expires_at)s"""
_RESET_ATTEMPTS = f"""UPDATE {_CALLS} SET attempt = 0, calls_without_progress = 0, job_stack = %(reset_job_stack)s
    WHERE id = %(reset_call_id)s"""


def lost_message_after() -> timedelta:
    """A message sent this long ago for a call that is still unclaimed is presumed lost."""
    return timedelta(seconds=settings.INNGEST_LOST_MESSAGE_SECONDS)


def enqueue_calls_on_commit(call_ids: list[int], due_at: datetime | None = None) -> None:
    if not call_ids:
        return
    countdown = 0.0
    if due_at is not None:
        countdown = (due_at - timezone.now()).total_seconds()
        if countdown > MAX_COUNTDOWN_SECONDS:
            return  # the sweeper sends it when it is due
    send_calls(call_ids, max(countdown, 0.0))


def tick_at_on_commit(due_at: datetime) -> None:
    """Ask for a timer tick when a sleep or wait comes due, rather than at the next beat second.

    The row stays the record: if this message is lost, the regular tick still finds it.
    """
    countdown = (due_at - timezone.now()).total_seconds()
    if countdown <= MAX_COUNTDOWN_SECONDS:
        transaction.on_commit(lambda: current_app.send_task(TICK_TASK, countdown=max(countdown, 0.0) or None))


def send_calls(call_ids: list[int], countdown: float = 0.0) -> None:
    """A message per call. Never from inside a transaction: it would name rows another worker
    cannot see yet, and a rollback could not take it back; so inside one it waits for the
    commit (outside one, on_commit sends at once)."""
    transaction.on_commit(lambda: _send_now(call_ids, countdown))


def _send_now(call_ids: list[int], countdown: float) -> None:
    # declare=[]: the message goes straight to the queue's list in Redis (the default exchange);
    # declaring the queue again on every send only cost the sender a copy of it. Workers declare
    # the queues they consume.
    for call_id in call_ids:
        current_app.send_task(EXECUTE_CALL_TASK, args=(call_id,), countdown=countdown or None, declare=[])


def call_states(now: datetime, queue_since: datetime | None = None) -> dict[CallState, Q]:
    """Each state of a pending call as a filter on its columns, at `now`. A row can match more
    than one (a lost call may also be parked); `unsent_due_calls` is what the sweeper reads.

    `queue_since`: when the oldest message still waiting in the broker's call queue was sent
    (`queue_waiting_since`). A message sent after it waits behind it, so a call sent to run at
    once is presumed lost only if it was sent more than lost_message_after before that one (the
    margin covers the commit between marking and sending, and other hosts' clocks): under a
    backlog its message is waiting, not lost. A countdown's message is held by a worker until it is due, or was never sent (past
    MAX_COUNTDOWN_SECONDS), so for a call sent before it was due, age alone tells."""
    stale = now - lost_message_after()
    behind_queue = min(now, queue_since or now) - lost_message_after()
    unleased = Q(lease_expires_at__isnull=True)
    # Due when sent: its message went to the queue at once (a countdown's did not).
    sent_due = Q(due_at__lte=F("enqueued_at"))
    trusted = Q(enqueued_at__gte=stale) | (sent_due & Q(enqueued_at__gte=behind_queue))
    silent = Q(enqueued_at__lt=stale) & (Q(due_at__gt=F("enqueued_at")) | Q(enqueued_at__lt=behind_queue))
    return {
        # Its time has come and no message was ever sent for it (the sweeper sends it).
        CallState.DUE: Q(due_at__lte=now) & unleased & Q(enqueued_at__isnull=True),
        # A message was sent (or a countdown) recently enough, or is still waiting in the queue;
        # no worker holds it yet.
        CallState.SENT: unleased & trusted,
        # A worker holds it (claim_call) and renews the lease while it calls the app.
        CallState.LEASED: Q(lease_expires_at__gte=now),
        # Waiting in a concurrency line for a free slot; due_at is its recheck time.
        CallState.PARKED: ~Q(parked_on=""),
        # Due, but its worker died (the lease ran out) or its message was sent too long ago.
        CallState.LOST: Q(due_at__lte=now) & (Q(lease_expires_at__lt=now) | (unleased & silent)),
    }


def queue_waiting_since() -> datetime | None:
    """When the oldest message still waiting in the broker's call queue was sent, as its call's
    `enqueued_at` says (the earliest of the oldest few, whose calls still exist). None when the
    queue is empty or cannot be read, or its calls are gone: the age rule alone then."""
    call_ids = oldest_waiting_calls()
    if not call_ids:
        return None
    return PendingCall.objects.filter(id__in=call_ids).aggregate(sent_at=Min("enqueued_at"))["sent_at"]


def unsent_due_calls(now: datetime, queue_since: datetime | None = None) -> Q:
    """Due calls with no message known to be in flight: due and never sent, or lost."""
    states = call_states(now, queue_since)
    return states[CallState.DUE] | states[CallState.LOST]


def resend_calls(call_ids: list[int], now: datetime) -> None:
    """Send these calls again. Marking them first keeps the next tick from sending them twice;
    an expired lease is cleared, so a worker that was only slow loses its guard and stops."""
    PendingCall.objects.filter(id__in=call_ids).update(enqueued_at=now, lease_owner="", lease_expires_at=None)
    send_calls(call_ids)


def resend_unsent_calls(now: datetime | None = None) -> int:
    """Send a message for every due call that has none in flight. Returns how many were sent."""
    now = now or timezone.now()
    unsent = unsent_due_calls(now, queue_waiting_since())
    call_ids = list(PendingCall.objects.filter(unsent).order_by("due_at").values_list("id", flat=True)[:SWEEP_BATCH])
    if not call_ids:
        return 0
    resend_calls(call_ids, now)
    log.info("sweeper sent %d due calls", len(call_ids))
    return len(call_ids)


# --- the changes of state, each one guarded update ------------------------------------------

def add_first_calls(due_times: dict[str, datetime], now: datetime) -> None:
    """New runs' first calls (run id → when it is due), sent after commit (SENT; a call due
    past the countdown limit waits for the sweeper, DUE then)."""
    calls = PendingCall.objects.bulk_create([PendingCall(run_id=run_id, due_at=due_at, enqueued_at=now) for run_id, due_at in due_times.items()])
    enqueue_calls_on_commit([call.id for call in calls if call.due_at <= now])
    for call in calls:
        if call.due_at > now:
            enqueue_calls_on_commit([call.id], due_at=call.due_at)


def first_call_cte(run_cte: str, name: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """A new run's first call, due now, as the CTE `name` of the statement that inserts the run
    (`run_cte` returns its id; no run, no call). The CTE returns the call's id: the caller hands
    it to enqueue_calls_on_commit (SENT), as add_first_calls does."""
    call = PendingCall(due_at=now, enqueued_at=now)
    sql, params = insert_select(call, name, f"FROM {run_cte} RETURNING id", {"run_id": f"{run_cte}.id"})
    return f"{name} AS ({sql})", params


def add_discovery_call(run_id: str, now: datetime) -> None:
    """A discovery call for a run whose wait ended (unless it has one already), sent after commit."""
    PendingCall.objects.bulk_create([PendingCall(run_id=run_id, due_at=now, enqueued_at=now)], ignore_conflicts=True)
    call_id = PendingCall.objects.filter(run_id=run_id, step_target="step").values_list("id", flat=True).first()
    if call_id is not None:
        enqueue_calls_on_commit([call_id])


def add_resume_call(run_id: str, due_at: datetime) -> None:
    """A Durable Endpoint run's discovery call, DUE when its request would have gone silent too
    long (runs/endpoint_runs.py); no message: the sweeper sends it then, unless a checkpoint moves it."""
    PendingCall.objects.create(run_id=run_id, step_target="step", attempt=0, due_at=due_at)


def add_unsent_calls(run_ids: list[str], now: datetime) -> None:
    """Discovery calls for orphaned runs, DUE with no message: the sweeper's next tick sends them."""
    PendingCall.objects.bulk_create([PendingCall(run_id=run_id, due_at=now, enqueued_at=None) for run_id in run_ids], ignore_conflicts=True)


def claim_call(call_id: int, owner: str, lease_seconds: float, now: datetime | None = None,
               together: Together | None = None) -> PendingCall | None:
    """Take the lease on a due call nobody holds (or whose holder's lease ran out): LEASED.
    The claim and the read of the call with its run and function are one round trip; `together`
    (statements guarded by CLAIMED_RUN, using `now`) runs between them."""
    now = now or timezone.now()
    at = connection.ops.adapt_datetimefield_value
    params = {"call_id": call_id, "owner": owner, "now": at(now), "lease_expires_at": at(now + timedelta(seconds=lease_seconds))}
    statements = [_CLAIM]
    if together is not None:
        statements += together.statements
        params |= together.params
    row = run_together(statements, params, _CLAIMED)
    if row is None:
        return None
    call, run, function = instances_of(_CLAIMED_MODELS, row)
    run.function, call.run = function, run
    return call


def claim_endpoint_call(run_id: str, owner: str, lease_seconds: float, now: datetime) -> PendingCall | None:
    """Take a Durable Endpoint run's discovery call for a checkpoint of its request, however far
    off it is due (runs/endpoint_runs.py): LEASED, and due now while held, so that what the
    checkpoint leaves of it (a discovery the SDK asks for) is made at once. None when the run has
    none free (it ended, or a worker is calling the endpoint right now)."""
    claimed = (
        PendingCall.objects.filter(run_id=run_id, step_target="step")
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds), parked_on="",
                generation=F("generation") + 1, due_at=now)
    )
    if not claimed:
        return None
    return PendingCall.objects.select_related("run", "run__function").filter(run_id=run_id, step_target="step").first()


def reset_attempts(call: PendingCall, stack_before: int) -> Together | None:
    """Steps reported by an async checkpoint moved the run on: the call's failures so far no
    longer count, and the call's job keeps the id it began with (`stack_before`: the steps
    memoized before the checkpoint's, when it is the first to move the stack). The statement to
    send with the checkpoint's steps, None when it would change nothing; the instance is updated
    as it will be. The caller holds the call's row."""
    job_stack = stack_before if call.job_stack is None else call.job_stack
    if not (call.attempt or call.calls_without_progress or call.job_stack != job_stack):
        return None
    call.attempt, call.calls_without_progress, call.job_stack = 0, 0, job_stack
    return Together([_RESET_ATTEMPTS], {"reset_call_id": call.id, "reset_job_stack": job_stack})


def release_call(call: PendingCall, owner: str) -> None:
    """Give a held call back to the queue (time slice used up) and nudge a worker at once: SENT."""
    released = PendingCall.objects.filter(id=call.id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, enqueued_at=timezone.now()
    )
    if released:
        enqueue_calls_on_commit([call.id])


def renew_leases(held: list[tuple[int, str]], expires_at: datetime) -> None:
    """Keep LEASED the calls these owners still hold (a lost lease stays lost)."""
    for call_id, owner in held:
        PendingCall.objects.filter(id=call_id, lease_owner=owner).update(lease_expires_at=expires_at)


def park_call(call: PendingCall, owner: str, line_key: str, recheck_at: datetime, now: datetime) -> None:
    """A held call that found no free concurrency slot waits in that slot's line: PARKED."""
    PendingCall.objects.filter(id=call.id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, parked_on=line_key, due_at=recheck_at, enqueued_at=now,
    )


def parked_lines(call_ids: list[int]) -> dict[int, str]:
    """call id → the line it is parked on ("" when not parked), for the calls that still exist."""
    return dict(PendingCall.objects.filter(id__in=call_ids).values_list("id", "parked_on"))


def wake_parked_calls(call_ids: list[int]) -> list[int]:
    """Make these parked calls due now and send them (PARKED → SENT); returns those woken."""
    now = timezone.now()
    woken = list(PendingCall.objects.filter(id__in=call_ids).exclude(parked_on="").values_list("id", flat=True))
    PendingCall.objects.filter(id__in=woken).update(parked_on="", due_at=now, enqueued_at=now)
    send_calls(woken)
    return woken


def drop_call(call: PendingCall) -> None:
    PendingCall.objects.filter(id=call.id).delete()


def unclaimed_due_at(call_id: int) -> datetime | None:
    """When a call nobody holds is due (None: held, or gone)."""
    return PendingCall.objects.filter(id=call_id, lease_owner="").values_list("due_at", flat=True).first()


def queue_depth(now: datetime) -> dict[str, int]:
    """The calls by state, for the queue-depth gauge."""
    return PendingCall.objects.aggregate(
        due=Count("id", filter=Q(due_at__lte=now, lease_owner="", parked_on="")),
        running=Count("id", filter=~Q(lease_owner="")),
        parked=Count("id", filter=~Q(parked_on="")),
        later=Count("id", filter=Q(due_at__gt=now, lease_owner="", parked_on="")),
    )
