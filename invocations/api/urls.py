from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from . import billing, views


class OptionalSlashRouter(DefaultRouter):
    """A router whose routes match with and without a trailing slash.

    Both /api/invocations/{request_id}/retry and .../retry/ then work.
    """

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("functions", views.FunctionViewSet, basename="function")
router.register("invocations", views.InvocationViewSet, basename="invocation")
router.register("alerts", views.QuotaAlertViewSet, basename="alert")
router.register("bulk-actions", views.BulkActionViewSet, basename="bulk-action")

urlpatterns = [
    path(
        "functions/<str:name>/invocations",
        views.InvokeFunctionView.as_view(),
        name="function-invoke",
    ),
    path("functions/<str:name>/invocations/", views.InvokeFunctionView.as_view()),
    path("policy/", views.PolicyView.as_view(), name="policy"),
    path("billing/", billing.BillingView.as_view(), name="billing"),
    path(
        "billing/export.csv",
        billing.BillingExportView.as_view(),
        name="billing-export",
    ),
    path(
        "invocations/bulk",
        views.CreateBulkActionView.as_view(),
        name="invocation-bulk",
    ),
    path("invocations/bulk/", views.CreateBulkActionView.as_view()),
    path(
        "invocations/export.csv",
        billing.InvocationExportView.as_view(),
        name="invocation-export",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    *router.urls,
]
