from django.urls import path

from .views import (
    alerts,
    audit,
    billing,
    bulk,
    detail,
    failure_table,
    functions,
    history,
    overview,
)

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("invocations/", history.invocation_list, name="invocation-list"),
    path("invocations/rows", history.invocation_rows, name="invocation-rows"),
    path(
        "invocations/<str:request_id>/",
        detail.invocation_detail,
        name="invocation-detail",
    ),
    path(
        "invocations/<str:request_id>/live",
        detail.invocation_live,
        name="invocation-live",
    ),
    path(
        "invocations/<str:request_id>/retry",
        detail.invocation_retry,
        name="invocation-retry",
    ),
    path(
        "invocations/<str:request_id>/stop",
        detail.invocation_stop,
        name="invocation-stop",
    ),
    path("functions/", functions.function_list, name="function-list"),
    path("functions/<str:name>/", functions.function_detail, name="function-detail"),
    path("policy/", failure_table.failure_table, name="policy"),
    path("alerts/", alerts.alert_list, name="alert-list"),
    path(
        "alerts/<int:alert_id>/acknowledge",
        alerts.alert_acknowledge,
        name="alert-acknowledge",
    ),
    path("audit/", audit.audit_log, name="audit-log"),
    path("billing/", billing.billing_page, name="billing"),
    path("bulk/", bulk.bulk_create, name="bulk-create"),
    path("bulk/<int:bulk_id>/", bulk.bulk_action_detail, name="bulk-action"),
    path(
        "bulk/<int:bulk_id>/progress",
        bulk.bulk_action_progress,
        name="bulk-action-progress",
    ),
    path(
        "bulk/<int:bulk_id>/cancel",
        bulk.bulk_action_cancel,
        name="bulk-action-cancel",
    ),
]
