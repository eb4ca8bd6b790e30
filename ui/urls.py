from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView
from django.templatetags.static import static

from ui import actions, pages, run_pages

app_name = "ui"

urlpatterns = [
    path("", pages.home, name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("ui/favicon.svg"), permanent=True), name="favicon"),
    path("login/", auth_views.LoginView.as_view(template_name="ui/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("apps/", pages.apps, name="apps"),
    path("apps/<uuid:app_id>/sync", actions.resync_app, name="app-sync"),
    path("functions/", pages.functions, name="functions"),
    path("functions/<path:slug>/send", actions.send_event, name="function-send"),
    path("functions/<path:slug>/invoke", actions.invoke, name="function-invoke"),
    path("functions/<path:slug>/runs", pages.function_runs, name="function-runs"),
    path("functions/<path:slug>", pages.function_detail, name="function"),
    path("events/", pages.events, name="events"),
    path("events/rows", pages.event_rows, name="event-rows"),
    path("events/send", pages.send_event_page, name="event-send-page"),
    path("events/send/post", actions.send_any_event, name="event-send"),
    path("events/<str:internal_id>/replay", actions.replay_event, name="event-replay"),
    path("events/<str:internal_id>", pages.event_detail, name="event"),
    path("runs/", run_pages.runs, name="runs"),
    path("runs/rows", run_pages.run_rows, name="run-rows"),
    path("runs/<str:run_id>/live", run_pages.run_live, name="run-live"),
    path("runs/<str:run_id>/cancel", actions.cancel_run, name="run-cancel"),
    path("runs/<str:run_id>/rerun", actions.rerun_run, name="run-rerun"),
    path("runs/<str:run_id>", run_pages.run_detail, name="run"),
]
