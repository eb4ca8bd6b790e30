"""Which run, function and step a log line is about, on every line, without passing them around.

The worker sets the context when it takes a call (`about_run`) and narrows it to the step
being called; a logging filter copies it onto every record, so the JSON lines (or the text
lines) of everything logged meanwhile, by our code or a library, carry `run_id`,
`function_id` and `step_id`.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_run_id: ContextVar[str] = ContextVar("run_id", default="")
_function_id: ContextVar[str] = ContextVar("function_id", default="")
_step_id: ContextVar[str] = ContextVar("step_id", default="")


@contextmanager
def about_run(run_id: str, function_id: str, step_id: str = "") -> Iterator[None]:
    tokens = (_run_id.set(run_id), _function_id.set(function_id), _step_id.set(step_id))
    try:
        yield
    finally:
        for var, token in zip((_run_id, _function_id, _step_id), tokens):
            var.reset(token)


def set_step(step_id: str) -> None:
    _step_id.set(step_id)


class RunContextFilter(logging.Filter):
    """Adds run_id, function_id and step_id ("-" outside a run) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = _run_id.get() or "-"
        record.function_id = _function_id.get() or "-"
        record.step_id = _step_id.get() or "-"
        return True
