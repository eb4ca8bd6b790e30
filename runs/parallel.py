"""Coalescing discovery after parallel steps (protocol.md §4.4).

When the SDK plans several steps at once, each finishes on its own (a targeted call, a sleep,
a wait, an invoke). Discovery, the call that lets the function go on, must run once when the
whole group is done ("wait" mode) or after each step ("race" mode). The set of steps still
pending lives on the run row and is changed under its row lock, since group members finish
on different workers at the same time.
"""
from __future__ import annotations

from dataclasses import dataclass

from runs.models import Run


@dataclass(frozen=True)
class GroupProgress:
    may_discover: bool  # whether a discovery call should be made now
    pending: tuple[str, ...]  # steps of the group still running
    is_immediate_execution_disabled: bool | None  # the run's new flag, when it changed


def record_group_progress(
    run_id: str, finished: list[str], planned: tuple[str, ...] = (), mode: str = "", is_sleep_end: bool = False
) -> GroupProgress:
    """Add newly planned steps, strike finished ones; must run inside the caller's transaction.

    The run's immediate execution comes back when the group is done, except when a sleep's end
    completes it: as in Inngest, whose sleep's end is itself the discovery call, that call still
    asks the SDK to plan the next step, and the flag is cleared after it (runs/lifecycle.py)."""
    row = Run.objects.select_for_update().filter(id=run_id).values("parallel_pending", "parallel_mode").first()
    pending = set(row["parallel_pending"] or []) if row else set()
    if not pending and not planned:
        return GroupProgress(may_discover=True, pending=(), is_immediate_execution_disabled=None)
    mode = mode or (row or {}).get("parallel_mode") or "wait"
    pending = (pending | set(planned)) - set(finished)
    changes: dict = {"parallel_pending": sorted(pending), "parallel_mode": mode if pending else ""}
    flag = None
    if not pending and not is_sleep_end:
        flag = changes["is_immediate_execution_disabled"] = False  # the group is done
    Run.objects.filter(id=run_id).update(**changes)
    return GroupProgress(may_discover=not pending or mode == "race", pending=tuple(sorted(pending)),
                         is_immediate_execution_disabled=flag)
