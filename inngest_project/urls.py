from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from functions.api.operator import FunctionsView
from functions.api.sdk import DevInfoView, RegisterView
from inngest_project.monitoring import HealthView, metrics_view
from runs.api.gql import graphql_view
from runs.api.intake import EventDetailView, EventIngestView, EventListView, EventRunsView, InvokeView
from runs.api.operator import RunsView, RunView
from runs.api.operator_events import EventsView
from runs.api.sdk import (
    CancellationDetailView, CancellationListView, LegacyRunCancelView, RunActionsView, RunBatchView, RunDetailView,
)

urlpatterns = [
    path("health", HealthView.as_view()),
    path("metrics", metrics_view),
    path("dev", DevInfoView.as_view()),
    path("e/<str:event_key>", EventIngestView.as_view()),
    path("fn/register", RegisterView.as_view()),
    path("invoke/<path:slug>", InvokeView.as_view()),
    path("v1/events", EventListView.as_view()),
    path("v1/events/<str:internal_id>", EventDetailView.as_view()),
    path("v1/events/<str:internal_id>/runs", EventRunsView.as_view()),
    path("v1/runs/<str:run_id>", RunDetailView.as_view()),
    path("v0/gql", graphql_view),
    path("v0/runs/<str:run_id>", LegacyRunCancelView.as_view()),
    path("v0/runs/<str:run_id>/batch", RunBatchView.as_view()),
    path("v0/runs/<str:run_id>/actions", RunActionsView.as_view()),
    path("v1/cancellations", CancellationListView.as_view()),
    path("v1/cancellations/<str:cancellation_id>", CancellationDetailView.as_view()),
    path("api/v1/functions", FunctionsView.as_view()),
    path("api/v1/events", EventsView.as_view()),
    path("api/v1/runs", RunsView.as_view()),
    path("api/v1/runs/<str:run_id>", RunView.as_view()),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("ui.urls")),
]
