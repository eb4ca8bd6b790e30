from django.contrib.auth import views as auth_views
from django.urls import path

from ui import actions, pages

app_name = "ui"

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="ui/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("apps/", pages.apps, name="apps"),
    path("apps/<uuid:app_id>/sync", actions.resync_app, name="app-sync"),
    path("functions/", pages.functions, name="functions"),
    path("functions/<path:slug>/send", actions.send_event, name="function-send"),
    path("functions/<path:slug>/invoke", actions.invoke, name="function-invoke"),
    path("functions/<path:slug>", pages.function_detail, name="function"),
    path("events/", pages.events, name="events"),
    path("events/rows", pages.event_rows, name="event-rows"),
    path("events/<str:internal_id>", pages.event_detail, name="event"),
    path("runs/", pages.runs, name="runs"),
    path("runs/<str:run_id>", pages.run_detail, name="run"),
    path("runs/<str:run_id>/cancel", actions.cancel_run, name="run-cancel"),
    path("runs/<str:run_id>/rerun", actions.rerun, name="run-rerun"),
]
