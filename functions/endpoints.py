"""The functions of Durable Endpoints (protocol-next.md §1): HTTP routes of an app whose steps the
JS SDK checkpoints to the server. They are never synced; the first request to a route creates its
app (named by the route's origin, as Inngest does) and its function (the SDK's function id, or
"METHOD /path")."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from functions.config import MAX_NAME_LENGTH
from functions.models import App, Function

# The config key that marks a function as a Durable Endpoint; its value says how to call it.
ENDPOINT_KEY = "durableEndpoint"
FRAMEWORK = "durable-endpoint"


@dataclass(frozen=True)
class EndpointRoute:
    origin: str  # "https://example.com": scheme and host of the route
    method: str
    path: str
    name: str  # the SDK's function id, or "" for "METHOD /path"
    retries: int

    @property
    def function_name(self) -> str:
        return self.name or f"{self.method} {self.path}"


def upsert_endpoint_function(route: EndpointRoute) -> Function:
    """The route's function, created on its first request, its retries kept up to date."""
    app = _endpoint_app(route.origin)
    slug = _slug(app.name, route.function_name)
    config = {"id": slug, "name": route.function_name[:MAX_NAME_LENGTH], "triggers": [], ENDPOINT_KEY: {"method": route.method}}
    function = Function.objects.filter(slug=slug).first()
    if function is None:
        try:
            with transaction.atomic():
                return Function.objects.create(app=app, slug=slug, name=config["name"], url=route.origin + route.path,
                                               retries=route.retries, config=config)
        except IntegrityError:  # created by a concurrent first request
            function = Function.objects.get(slug=slug)
    if (function.retries, function.config, function.is_archived) != (route.retries, config, False):
        Function.objects.filter(id=function.id).update(retries=route.retries, config=config, is_archived=False,
                                                       updated_at=timezone.now())
        function.refresh_from_db()
    return function


def is_endpoint(function: Function) -> bool:
    return ENDPOINT_KEY in (function.config or {})


def _endpoint_app(origin: str) -> App:
    name = origin[:MAX_NAME_LENGTH]
    # No URL: the app is never synced or polled; each run is called at the URL of its request.
    app = App.objects.filter(name=name).first()
    if app is not None:
        return app
    try:
        with transaction.atomic():
            return App.objects.create(name=name, url="", framework=FRAMEWORK, sdk_language="js", synced_at=timezone.now())
    except IntegrityError:
        return App.objects.get(name=name)


def _slug(app_name: str, function_name: str) -> str:
    slug = f"{app_name}-{function_name}"
    if len(slug) <= MAX_NAME_LENGTH:
        return slug
    digest = hashlib.sha1(slug.encode()).hexdigest()[:16]
    return f"{slug[:MAX_NAME_LENGTH - 17]}-{digest}"
