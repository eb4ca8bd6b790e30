"""Reruns: a new run of the same function with the same events, from the first step or from a
chosen step. From a step, the steps before it are copied as memoized outputs, so the SDK skips
them and runs the chosen step (or, given an edited output, takes that as its result) and what
follows. The new run points at the one it repeats (`rerun_of`)."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from ulid import ULID

from runs.creation import RunRequest, create_runs
from runs.models import Run, Step

# Ops whose memo is a step's own output: the steps a rerun can start at.
RERUNNABLE_OPS = ("StepRun", "Step", "StepFailed")


class RerunError(ValueError):
    pass


def rerun(run: Run, from_step_id: str = "", output: Any = None, use_output: bool = False) -> Run:
    """Start the rerun; its first call is sent after the copied steps are committed with it."""
    with transaction.atomic():
        chosen = _chosen_step(run, from_step_id) if from_step_id else None
        (new_run,) = create_runs([RunRequest(run.function, run.event, run.events or [], f"rerun-{ULID()}")])
        if chosen is not None:
            _copy_steps_before(run, new_run, chosen, {"data": output} if use_output else None)
        label = (chosen.name or chosen.step_id) if chosen is not None else ""
        Run.objects.filter(id=new_run.id).update(rerun_of=run, rerun_from_step=label[:255])
        new_run.rerun_of, new_run.rerun_from_step = run, label[:255]
    return new_run


def _chosen_step(run: Run, step_id: str) -> Step:
    step = Step.objects.filter(run=run, step_id=step_id).first()
    if step is None:
        raise RerunError(f"run {run.id} has no step {step_id}")
    if step.op not in RERUNNABLE_OPS:
        raise RerunError(f"a rerun can start at a step.run step, not at a {step.op}")
    return step


def _copy_steps_before(run: Run, new_run: Run, chosen: Step, edited: dict | None) -> None:
    earlier = list(Step.objects.filter(run=run, position__lt=chosen.position).order_by("position"))
    copies = [Step(run=new_run, step_id=s.step_id, name=s.name, op=s.op, output=s.output, position=i)
              for i, s in enumerate(earlier)]
    if edited is not None:
        copies.append(Step(run=new_run, step_id=chosen.step_id, name=chosen.name, op="StepRun", output=edited,
                           position=len(copies)))
    Step.objects.bulk_create(copies)
