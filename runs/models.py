"""Runs, their memoized steps, every SDK call made for them, and the calls still to make."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.json_text import JSONTextField


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # refused by flow control (rate limit, idempotency, singleton skip) at creation


# The legal transitions, in one place. Every status change is a guarded update
# (`filter(status__in=<allowed sources>)`), so a worker that lost a race changes nothing.
#
#   queued ──► running ──► completed
#     │           ├──────► failed
#     │           └──────► cancelled
#     ├──────────────────► failed      (fails before its first call, e.g. unknown function)
#     └──────────────────► cancelled   (cancelled before its first call)
#   skipped                            (created skipped by flow control; never runs)
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.SKIPPED: frozenset(),
}
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


def sources_of(target: str) -> list[str]:
    """The statuses a run may move to `target` from."""
    return [source for source, targets in RUN_TRANSITIONS.items() if target in targets]


class CallState(models.TextChoices):
    """The states of a PendingCall. Not a column: each follows from the row's columns, as
    runs/pending_calls.py `call_states` defines; that module is the one that changes the rows."""

    DUE = "due"  # its time has come and no message was ever sent for it
    SENT = "sent"  # a broker message (or a countdown) is in flight for it
    LEASED = "leased"  # a worker holds it and is calling the app
    PARKED = "parked"  # waiting in a concurrency line for a free slot
    LOST = "lost"  # its message is presumed lost, or its worker died holding it


# How a call moves, and which function of runs/pending_calls.py moves it. A call leaves every
# state by being deleted (its run ended, or the applier replaced it with the next calls).
CALL_TRANSITIONS: dict[str, frozenset[str]] = {
    # resend_unsent_calls (the sweeper); claim_endpoint_call (a Durable Endpoint's checkpoint,
    # also before its resume call is due)
    CallState.DUE: frozenset({CallState.SENT, CallState.LEASED}),
    CallState.SENT: frozenset({CallState.LEASED, CallState.LOST}),  # claim_call; or nobody came
    # release_call, park_call; the applier re-arms it for its next call; the lease runs out
    CallState.LEASED: frozenset({CallState.SENT, CallState.PARKED, CallState.LOST}),
    CallState.PARKED: frozenset({CallState.SENT, CallState.LEASED}),  # wake_parked_calls; recheck claim
    CallState.LOST: frozenset({CallState.SENT, CallState.LEASED}),  # resend_unsent_calls; a late claim
}


class FlowAction(models.TextChoices):
    """What flow control last did to a run; `Run.flow_reason` says why."""

    NONE = ""
    DELAYED = "delayed"  # throttle, concurrency: it waited, then ran
    SKIPPED = "skipped"  # rate limit, idempotency, singleton skip: it never ran
    CANCELLED = "cancelled"  # singleton cancel: a newer run for the same key replaced it


class Run(models.Model):
    id = models.CharField(max_length=26, primary_key=True)  # ULID: sorts by creation time
    # Foreign keys whose look-ups an index of Meta already leads with have no index of their own
    # (each index is written on every insert, and on every update of an indexed column).
    function = models.ForeignKey("functions.Function", on_delete=models.PROTECT, related_name="runs", db_index=False)
    event = models.ForeignKey("events.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    # The event payloads the run was started with (one, or a batch), as sent to the SDK.
    # JSON as text (core/json_text.py): apps' and users' data, stored as they sent it.
    events = JSONTextField(default=list)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    output = JSONTextField(null=True, blank=True)
    # The SDK's execution version (x-inngest-req-version), -1 until it reports one.
    request_version = models.SmallIntegerField(default=-1)
    is_immediate_execution_disabled = models.BooleanField(default=False)
    # Whether it ever asked for a deferred run (runs/defers.py): most never do, and then neither
    # a call nor its end reads the defers table.
    has_defers = models.BooleanField(default=False)
    # Parallel steps still to finish before discovery runs again (protocol.md §4.4), and the
    # group's mode: "wait" (discover once all are done) or "race" (discover after each).
    parallel_pending = models.JSONField(default=list, blank=True)
    parallel_mode = models.CharField(max_length=8, blank=True, default="")
    flow_action = models.CharField(max_length=16, choices=FlowAction.choices, blank=True, default="")
    flow_reason = models.TextField(blank=True, default="")
    # The evaluated `singleton.key` (a digest), "" when the function is not a singleton.
    singleton_key = models.CharField(max_length=64, blank=True, default="")
    # The run-level concurrency slots (`concurrency.fn`) as evaluated when the run was created:
    # [{"key", "limit", "label"}]. The run takes and gives back exactly these, so a re-sync that
    # changes the key cannot leave the run's hold behind. null: created before they were kept.
    run_slots = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who or what cancelled it, in words ("the UI (user ops)", "event app/x.cancel 01H…",
    # "timeouts.finish"); shown on its page. "" for runs not cancelled, or cancelled before this was kept.
    cancelled_by = models.CharField(max_length=255, blank=True, default="")
    # A rerun (the UI, replay_run) points at the run it repeats; from a step: the step it restarted at.
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns", db_index=False)
    rerun_from_step = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [
            # Runs of a function, newest first (admin, UI, REST listings).
            models.Index(fields=["function", "-id"], name="run_function_newest"),
            models.Index(fields=["rerun_of"], name="run_reruns"),  # equality only: no pattern index
            # Runs filtered by status, newest first.
            models.Index(fields=["status", "-id"], name="run_status_newest"),
        ]
        constraints = [
            # Singleton (§6.9): at most one active run per (function, key), enforced by the
            # database itself, so two workers admitting runs at once cannot both win.
            models.UniqueConstraint(
                fields=["function", "singleton_key"], name="run_singleton_active",
                condition=models.Q(status__in=["queued", "running"]) & ~models.Q(singleton_key=""),
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.status not in ACTIVE_STATUSES


class RunIdempotencyKey(models.Model):
    """At most one run per (function, key) while the key is fresh (24 h, §6.7)."""

    function = models.ForeignKey("functions.Function", on_delete=models.CASCADE, db_index=False)  # run_idempotency_unique
    key = models.CharField(max_length=255)
    run_id = models.CharField(max_length=26)  # the run that won the key; no FK, it is inserted first
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "key"], name="run_idempotency_unique")]


class Step(models.Model):
    """A memoized step result: what the SDK gets back in `steps[step_id]` on every later call."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)  # step_unique_per_run
    step_id = models.CharField(max_length=64)  # the SDK's hashed step id
    name = models.CharField(max_length=255, blank=True, default="")
    op = models.CharField(max_length=32)
    output = JSONTextField(null=True, blank=True)
    # Position in the run's stack (completion order), sent back as ctx.stack.
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Recording a step twice (a redelivered task, a dead worker's retry) is a no-op.
            models.UniqueConstraint(fields=["run", "step_id"], name="step_unique_per_run"),
        ]
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"{self.name or self.step_id} of {self.run_id}"


class StepAttempt(models.Model):
    """One SDK call made for a run: what was asked, what came back, and when."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts", db_index=False)  # attempt_run_timeline
    step_target = models.CharField(max_length=64)  # the stepId query param: "step" or a hashed id
    step_id = models.CharField(max_length=64, blank=True, default="")  # step the answer was about
    step_name = models.CharField(max_length=255, blank=True, default="")
    attempt = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # null: no HTTP answer
    opcode = models.CharField(max_length=32, blank=True, default="")
    output = JSONTextField(null=True, blank=True)
    error = JSONTextField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    # A step the SDK ran inside a call and reported to /v1/checkpoint (async checkpointing), not
    # an answer to a call of ours: the run's history shows it; it is not a call.
    is_checkpointed = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["run", "started_at"], name="attempt_run_timeline")]  # a run's timeline
        ordering = ["run", "started_at", "id"]

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() * 1000


class PendingCall(models.Model):
    """A call to the SDK still to be made for a run: discovery ("step") or a targeted step.

    The row, not the broker message, is the record: a worker claims it with a lease, a lost
    message or a dead worker's expired lease is found again by the sweeper.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="pending_calls", db_index=False)  # pending_call_unique
    step_target = models.CharField(max_length=64, default="step")
    attempt = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last broker message sent for it
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The concurrency limit (counter key) it waits on, "" when not waiting: a released slot
    # wakes the head of that line; `due_at` is then a recheck in case the wake-up is lost.
    parked_on = models.CharField(max_length=255, blank=True, default="")
    # Calls in a row, up to this one, whose answers finished no step and opened no wait; the
    # run fails past INNGEST_MAX_CALLS_WITHOUT_PROGRESS (executor/limits.py).
    calls_without_progress = models.PositiveSmallIntegerField(default=0)
    # Bumped by every claim: a checkpoint from an SDK call made under an earlier claim (its worker
    # died or gave up on it) carries an older generation and is refused as stale (409).
    generation = models.PositiveIntegerField(default=0)
    # How many steps the run had memoized when this call's job began (the X-Inngest-Job-Id of a
    # discovery names it), noted by the first async checkpoint that adds steps under the call, so
    # that its retries keep the job's id; null while the stack has not moved under the call.
    job_stack = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "step_target"], name="pending_call_unique")]
        indexes = [models.Index(fields=["due_at"], name="pending_call_due")]  # the sweeper: due_at <= now

    def __str__(self) -> str:
        return f"{self.run_id} {self.step_target}#{self.attempt}"


class WaitKind(models.TextChoices):
    EVENT = "event"  # step.wait_for_event: the memo is the matching event, or null on timeout
    INVOKE = "invoke"  # step.invoke: the memo is the child's result or error
    CANCEL = "cancel"  # the function's `cancel` config: a matching event cancels the run
    SLEEP = "sleep"  # step.sleep: resumed with a null memo at `expires_at`
    TIMEOUT = "timeout"  # the function's `timeouts.start` / `timeouts.finish`: cancels the run when due
    SIGNAL = "signal"  # step.waitForSignal: resumed by POST /v1/signals ({signal, data}), or null at timeout


class Wait(models.Model):
    """A run waiting on an event: a wait_for_event or invoke step (resumed by the event or the
    timeout), or one of its function's `cancel` entries (cancelled by the event; gone at timeout)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="waits", db_index=False)  # wait_unique_per_step
    kind = models.CharField(max_length=16, choices=WaitKind.choices, default=WaitKind.EVENT)
    # For invokes: "<parent run id>.<step id>", carried by the child's function.finished event.
    correlation_id = models.CharField(max_length=128, blank=True, default="")  # wait_correlation
    step_id = models.CharField(max_length=64)
    step_name = models.CharField(max_length=255, blank=True, default="")
    event_name = models.CharField(max_length=255)
    # CEL over `event` (the run's triggering event) and `async` (the candidate event).
    expression = models.TextField(blank=True, default="")
    # When the expression is `event.<a> == async.<b>`, the value it needs: ingestion looks the
    # wait up by (event_name, match_path, match_value) instead of evaluating every open wait.
    match_path = models.CharField(max_length=255, blank=True, default="")  # "<b>" of async.<b>
    match_value = models.CharField(max_length=255, blank=True, default="")  # JSON of event.<a>
    # For signal waits: the signal's name, unique among open waits; "" once another run's wait
    # replaced it (`onConflict: "replace"`), which then only times out.
    signal = models.CharField(max_length=255, blank=True, default="")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step_id"], name="wait_unique_per_step"),
            # One open wait per signal name: the database settles two runs claiming it at once.
            models.UniqueConstraint(fields=["signal"], condition=~models.Q(signal=""), name="wait_signal_unique"),
        ]
        indexes = [
            models.Index(fields=["event_name", "match_path", "match_value"], name="wait_match"),  # ingestion lookups
            models.Index(fields=["expires_at"], name="wait_expiry"),  # the sweeper: expired waits
            models.Index(fields=["correlation_id"], name="wait_correlation"),  # equality only: no pattern index
        ]

    def __str__(self) -> str:
        return f"{self.run_id} waits for {self.event_name}"


class Cancellation(models.Model):
    """A bulk cancellation (`POST /v1/cancellations`): the runs of a function started in a window."""

    id = models.CharField(max_length=26, primary_key=True)  # ULID
    app_id = models.CharField(max_length=255)
    function = models.ForeignKey("functions.Function", on_delete=models.CASCADE)
    started_after = models.DateTimeField(null=True, blank=True)
    started_before = models.DateTimeField()
    expression = models.TextField(blank=True, default="")
    cancelled_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)


class Debounce(models.Model):
    """A debounced run not started yet (§6.5): the latest event, and when it starts unless pushed out."""

    id = models.CharField(max_length=26, primary_key=True)  # ULID; the run's idempotency key
    function = models.ForeignKey("functions.Function", on_delete=models.CASCADE)
    key = models.CharField(max_length=64)  # digest of the evaluated `debounce.key`
    event = models.ForeignKey("events.Event", on_delete=models.SET_NULL, null=True, blank=True)
    payload = JSONTextField()
    first_at = models.DateTimeField()
    due_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "key"], name="debounce_unique_key")]
        indexes = [models.Index(fields=["due_at"], name="debounce_due")]  # the timer tick: due_at <= now


class EventBatch(models.Model):
    """Events collecting for one batched run (§6.6), until `maxSize` of them or the timeout."""

    id = models.CharField(max_length=26, primary_key=True)  # ULID; the run's idempotency key
    function = models.ForeignKey("functions.Function", on_delete=models.CASCADE)
    key = models.CharField(max_length=64)  # digest of the evaluated `batchEvents.key`
    first_event = models.ForeignKey("events.Event", on_delete=models.SET_NULL, null=True, blank=True)
    payloads = JSONTextField(default=list)
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "key"], name="batch_unique_key")]
        indexes = [models.Index(fields=["due_at"], name="batch_due")]  # the timer tick: due_at <= now


class DeferStatus(models.TextChoices):
    AFTER_RUN = "after_run"  # its run starts when the parent run ends
    ABORTED = "aborted"  # the parent called abort(): no run will ever start
    REJECTED = "rejected"  # refused by a limit (size): kept so the SDK's repeats are no-ops


class RunDefer(models.Model):
    """A deferred run asked for by `defer()` (op DeferAdd): an `inngest/deferred.schedule` event
    is sent for it when its parent run ends, which starts the `createDefer` function."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="defers")
    hashed_id = models.CharField(max_length=64)  # the op's id; the SDK is told of it in `defers`
    fn_slug = models.CharField(max_length=255)  # the deferred function's composite id
    input = JSONTextField(null=True, blank=True)
    meta = JSONTextField(null=True, blank=True)  # the event's `meta` (sessions), as the SDK sent it
    status = models.CharField(max_length=16, choices=DeferStatus.choices, default=DeferStatus.AFTER_RUN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "hashed_id"], name="defer_unique_per_run")]


class RunMetadata(models.Model):
    """One metadata update on a run or one of its steps (`POST /v1/runs/{id}/metadata`, or the
    `metadata` of a step's op): `kind` like "userland.default", `op` merge|set|delete|add."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metadata")
    scope = models.CharField(max_length=16, default="run")  # run, step, step_attempt, extended_trace
    step_id = models.CharField(max_length=255, blank=True, default="")  # the user's step id, "" for the run
    attempt = models.SmallIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=255)
    op = models.CharField(max_length=16)
    values = JSONTextField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["run", "created_at"], name="metadata_run_order")]
