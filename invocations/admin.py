from django.contrib import admin

from .models import (
    Attempt,
    AuditEvent,
    FailurePolicy,
    Function,
    Invocation,
    QuotaAlert,
    Region,
)


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    list_display = ["name", "region", "endpoint_url", "memory_mb", "timeout_s"]
    search_fields = ["name"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False


@admin.register(Invocation)
class InvocationAdmin(admin.ModelAdmin):
    list_display = ["request_id", "function", "invocation_type", "status", "created_at"]
    list_filter = ["status", "invocation_type"]
    search_fields = ["request_id", "task_id"]
    raw_id_fields = ["function"]
    inlines = [AttemptInline]
    show_full_result_count = False


admin.site.register(FailurePolicy)
admin.site.register(Region)
admin.site.register(QuotaAlert)
admin.site.register(AuditEvent)
