from django.contrib import admin

from functions.models import App, ExpressionFailure, Function, Trigger


class FunctionInline(admin.TabularInline):
    model = Function
    fields = ("slug", "name", "retries", "version", "is_archived", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "sdk_language", "sdk_version", "framework", "synced_at", "error")
    search_fields = ("name", "url")
    readonly_fields = ("id", "checksum", "synced_at", "created_at")
    inlines = [FunctionInline]


class TriggerInline(admin.TabularInline):
    model = Trigger
    extra = 0


class ExpressionFailureInline(admin.TabularInline):
    model = ExpressionFailure
    fields = ("field", "expression", "message", "count", "first_at", "last_at")
    readonly_fields = fields
    extra = 0


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "app", "retries", "version", "is_archived", "updated_at")
    list_filter = ("is_archived", "app")
    list_select_related = ("app",)
    search_fields = ("slug", "name")
    readonly_fields = ("id", "config", "version", "created_at", "updated_at")
    inlines = [TriggerInline, ExpressionFailureInline]
