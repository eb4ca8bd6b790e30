from django.contrib import admin

from events.models import Event, EventKey


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("internal_id", "name", "event_id", "received_at")
    search_fields = ("=internal_id", "=name", "=event_id")
    readonly_fields = ("internal_id", "name", "event_id", "data", "user", "ts", "v", "received_at")
    date_hierarchy = "received_at"
    show_full_result_count = False  # no COUNT(*) over a large table on every page

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(EventKey)
class EventKeyAdmin(admin.ModelAdmin):
    """Keys are created with `manage.py event_keys create` (the key is shown once); here they are listed."""

    list_display = ("name", "hint", "created_at", "revoked_at")
    readonly_fields = ("name", "hint", "key_hash", "created_at", "revoked_at")

    def has_add_permission(self, request) -> bool:
        return False
