"""The admin shows the server's internal state and changes none of it: runs, steps, calls, waits,
events, apps and functions are written by the engine, syncs and ingestion, whose invariants a
hand edit (a pending call added, "parallel pending" changed, a trigger edited) would break. What
operators may do goes through the UI's actions and the management commands."""
from __future__ import annotations

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff; no add, change or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
