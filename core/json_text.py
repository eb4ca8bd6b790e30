"""A model field that keeps a JSON value as its text, for data that comes from apps and users.

PostgreSQL's jsonb refuses values that Python's json module and the SDKs produce: strings
holding the NUL character or half of a surrogate pair, and NaN or Infinity (the Python SDK
writes them for float('nan')). A step that returns one is the user's data, not ours to refuse,
and a jsonb column that refuses it fails the whole transaction recording the step. Stored as
JSON text (`json.dumps`, which escapes what a text column cannot hold) the value comes back
exactly as it was, and reading it skips jsonb's parse on the hot path. Sizes of step outputs
and run state (executor/limits.py) are lengths of this text. Nothing queries inside these
columns; the server's own JSON (a function's config, a run's pending parallel steps) stays jsonb.
"""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models


def dump_json(value: Any) -> str:
    """The stored text of a JSON value. json.dumps always escapes NUL; a lone surrogate cannot
    be sent to the database as UTF-8, so a value holding one is stored with ASCII escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return text


class JSONTextField(models.TextField):
    """A JSON value (any: object, list, string, number, null) stored as JSON text.

    Python None is SQL NULL, as with Django's JSONField.
    """

    description = "A JSON value stored as text"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        return value  # any Python value that json.dumps takes is already the value itself

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else dump_json(value)

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)  # serializers write the value itself, as for JSONField

    def formfield(self, **kwargs: Any) -> forms.Field:
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})
