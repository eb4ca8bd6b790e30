from django.contrib import admin

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("internal_id", "name", "event_id", "received_at")
    search_fields = ("=internal_id", "=name", "=event_id")
    readonly_fields = ("internal_id", "name", "event_id", "data", "user", "ts", "v", "received_at")
    date_hierarchy = "received_at"
    show_full_result_count = False  # no COUNT(*) over a large table on every page

    def has_add_permission(self, request) -> bool:
        return False
