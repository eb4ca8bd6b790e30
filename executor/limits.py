"""Inngest's limits on a run (protocol.md §4.6): the size of a step's output, the size of the
run's state, the number of steps, and calls in a row that get nowhere.

Pure but for `configured_limits`: the decision asks whether its commands would take the run past
one. Sizes are lengths of the JSON text the values are stored as (core/json_text.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from django.conf import settings

from core.json_text import dump_json
from executor.responses import CallView, Limits, SdkResponse
from runs.decision_commands import Decision

STEP_OUTPUT_TOO_LARGE = "InngestErrStepOutputTooLarge"
STATE_OVERFLOWED = "InngestErrStateOverflowed"
FUNCTION_OVERFLOWED = "InngestErrFunctionOverflowed"
NO_PROGRESS = "InngestErrNoProgress"
# The stored text of a parsed answer is at most this many times longer than the answer (1e15 is
# written 1000000000000000.0; a lone surrogate as a 6-character escape): an answer shorter than
# a limit divided by this cannot break it, and nothing in it needs measuring.
MAX_EXPANSION = 6


@dataclass(frozen=True)
class Breach:
    name: str
    message: str
    is_retriable: bool  # an answer refused (the call is retried), or the run is past a limit (it fails)

    @property
    def error(self) -> dict[str, str]:
        return {"name": self.name, "message": self.message}


def makes_progress(decision: Decision, memoized: Collection[str]) -> bool:
    """Whether the run moved on: a new step finished, a wait or invoke opened for a step not yet
    done, or the run ended. An app answering the same finished step again gets nowhere."""
    if decision.finish is not None:
        return True
    steps = [c.step_id for c in (*decision.records, *decision.waits, *decision.invokes)]
    return any(step_id not in memoized for step_id in steps)


def breach_of(decision: Decision, call: CallView, response: SdkResponse) -> Breach | None:
    """The first limit the decision would break, or None."""
    finish = decision.finish
    if finish is not None and finish.status == "failed":
        return None  # failing is always allowed
    limits = call.limits
    records = [record for record in decision.records if record.step_id not in call.memoized]  # new steps
    if call.steps_recorded + len(records) > limits.max_steps:
        return Breach(FUNCTION_OVERFLOWED, f"The function run exceeded the step limit of {limits.max_steps} steps.", False)
    if not makes_progress(decision, call.memoized) and decision.calls_without_progress >= limits.max_calls_without_progress:
        return Breach(NO_PROGRESS, f"The app answered {decision.calls_without_progress} calls in a row without finishing "
                                   "a step, opening a wait or ending the run (empty answers?).", False)
    bound = response.body_bytes * MAX_EXPANSION
    if bound > limits.max_step_output_bytes:
        for record in records:
            size = record.output_bytes
            if size > limits.max_step_output_bytes:
                return Breach(STEP_OUTPUT_TOO_LARGE, f"The output of step {record.name or record.step_id!r} is {size} bytes, "
                                                     f"more than the limit of {limits.max_step_output_bytes}.", True)
    if call.state_bytes + bound > limits.max_state_bytes:
        added = sum(record.output_bytes for record in records)
        added += len(dump_json(finish.output)) if finish is not None else 0
        if call.state_bytes + added > limits.max_state_bytes:
            return Breach(STATE_OVERFLOWED, f"The run's state (events, step outputs and result) would be "
                                            f"{call.state_bytes + added} bytes, more than the limit of {limits.max_state_bytes}.", False)
    return None


def configured_limits() -> Limits:
    """The limits as the INNGEST_MAX_* settings give them."""
    return Limits(
        max_step_output_bytes=settings.INNGEST_MAX_STEP_OUTPUT_BYTES, max_state_bytes=settings.INNGEST_MAX_STATE_BYTES,
        max_steps=settings.INNGEST_MAX_STEPS_PER_RUN, max_ops_per_response=settings.INNGEST_MAX_OPS_PER_RESPONSE,
        max_calls_without_progress=settings.INNGEST_MAX_CALLS_WITHOUT_PROGRESS,
    )
