from django.contrib import admin

from core.read_only_admin import ReadOnlyAdmin, ReadOnlyInline
from runs.models import PendingCall, Run, Step, StepAttempt, Wait


class StepInline(ReadOnlyInline):
    model = Step
    fields = ("position", "name", "step_id", "op", "output", "created_at")


class StepAttemptInline(ReadOnlyInline):
    model = StepAttempt
    fields = ("started_at", "ended_at", "step_target", "step_name", "attempt", "status_code", "opcode", "output", "error")


class PendingCallInline(ReadOnlyInline):
    model = PendingCall
    fields = ("step_target", "attempt", "due_at", "enqueued_at", "lease_owner", "lease_expires_at", "parked_on")


class WaitInline(ReadOnlyInline):
    model = Wait
    fields = ("kind", "step_name", "event_name", "expression", "expires_at", "created_at")


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    """Every field as the engine wrote it; cancel and rerun are the UI's run page's buttons."""

    list_display = ("id", "function", "status", "flow_action", "created_at", "started_at", "ended_at")
    list_filter = ("status", "flow_action")
    list_select_related = ("function",)
    search_fields = ("=id",)
    raw_id_fields = ("function", "event", "rerun_of")
    inlines = [StepInline, StepAttemptInline, PendingCallInline, WaitInline]
    show_full_result_count = False
