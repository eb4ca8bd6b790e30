from django.contrib import admin

from core.read_only_admin import ReadOnlyAdmin
from events.models import Event, EventKey


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("internal_id", "name", "event_id", "received_at")
    search_fields = ("=internal_id", "=name", "=event_id")
    date_hierarchy = "received_at"
    show_full_result_count = False  # no COUNT(*) over a large table on every page


@admin.register(EventKey)
class EventKeyAdmin(ReadOnlyAdmin):
    """Keys are created and revoked with `manage.py event_keys` (the key is shown once); here they are listed."""

    list_display = ("name", "hint", "created_at", "revoked_at")
