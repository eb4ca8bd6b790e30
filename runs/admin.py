from django.contrib import admin

from runs.models import PendingCall, Run, Step, StepAttempt


class StepInline(admin.TabularInline):
    model = Step
    fields = ("position", "name", "step_id", "op", "output", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


class StepAttemptInline(admin.TabularInline):
    model = StepAttempt
    fields = ("started_at", "ended_at", "step_target", "step_name", "attempt", "status_code", "opcode", "output", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False


class PendingCallInline(admin.TabularInline):
    model = PendingCall
    fields = ("step_target", "attempt", "due_at", "enqueued_at", "lease_owner", "lease_expires_at", "parked_on")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "function", "status", "flow_action", "created_at", "started_at", "ended_at")
    list_filter = ("status", "flow_action")
    list_select_related = ("function",)
    search_fields = ("=id",)
    raw_id_fields = ("function", "event")
    readonly_fields = ("id", "function", "event", "events", "status", "flow_action", "flow_reason", "singleton_key",
                       "output", "request_version",
                       "is_immediate_execution_disabled", "created_at", "started_at", "ended_at")
    inlines = [StepInline, StepAttemptInline, PendingCallInline]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False
