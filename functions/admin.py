from django.contrib import admin

from functions.models import App, ExpressionFailure, Function, Trigger
from core.read_only_admin import ReadOnlyAdmin, ReadOnlyInline


class FunctionInline(ReadOnlyInline):
    model = Function
    fields = ("slug", "name", "retries", "version", "is_archived", "updated_at")
    show_change_link = True


@admin.register(App)
class AppAdmin(ReadOnlyAdmin):
    """As the app's last sync left it; a re-sync (the UI, `sync_apps`) is how it changes."""

    list_display = ("name", "url", "sdk_language", "sdk_version", "framework", "synced_at", "error")
    search_fields = ("name", "url")
    inlines = [FunctionInline]


class TriggerInline(ReadOnlyInline):
    model = Trigger
    fields = ("event_name", "expression", "cron")


class ExpressionFailureInline(ReadOnlyInline):
    model = ExpressionFailure
    fields = ("field", "expression", "message", "count", "first_at", "last_at")


@admin.register(Function)
class FunctionAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "app", "retries", "version", "is_archived", "updated_at")
    list_filter = ("is_archived", "app")
    list_select_related = ("app",)
    search_fields = ("slug", "name")
    inlines = [TriggerInline, ExpressionFailureInline]
