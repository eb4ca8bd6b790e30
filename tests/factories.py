"""Plain factory functions for rows the tests need."""
from __future__ import annotations

import uuid

from functions.models import App, Function, Trigger


def make_function(event: str = "test/event", expression: str = "", slug: str | None = None, retries: int = 4) -> Function:
    app, _ = App.objects.get_or_create(name="factory-app", defaults={"url": "http://127.0.0.1:9/api/inngest"})
    slug = slug or f"factory-app-{uuid.uuid4().hex[:8]}"
    function = Function.objects.create(
        app=app, slug=slug, name=slug, retries=retries,
        url=f"http://127.0.0.1:9/api/inngest?fnId={slug}&stepId=step",
    )
    Trigger.objects.create(function=function, event_name=event, expression=expression)
    return function
