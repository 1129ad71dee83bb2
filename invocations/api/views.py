import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import bulk, engine, policy
from ..filters import InvocationFilter
from ..models import (
    Attempt,
    BulkAction,
    FailurePolicy,
    Function,
    Invocation,
    QuotaAlert,
)
from ..roles import OPERATE_PERMISSION
from .serializers import (
    BulkActionSerializer,
    FunctionSerializer,
    InvocationDetailSerializer,
    InvocationSerializer,
    QuotaAlertSerializer,
)

logger = logging.getLogger(__name__)


class NewestFirstPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class AlertPagination(CursorPagination):
    ordering = ("-opened_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class IsOperator(permissions.BasePermission):
    message = "Retry and stop need the operator role."

    def has_permission(self, request, view):
        return request.user.has_perm(OPERATE_PERMISSION)


class FunctionWritePermission(permissions.BasePermission):
    message = "Creating and changing functions needs the admin role."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        codename = "add_function" if request.method == "POST" else "change_function"
        return request.user.has_perm(f"invocations.{codename}")


class FunctionViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Function.objects.all()
    serializer_class = FunctionSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    permission_classes = [permissions.IsAuthenticated, FunctionWritePermission]
    http_method_names = ["get", "post", "patch", "head", "options"]
    pagination_class = None

    def get_object(self):
        name = self.kwargs["name"]
        function = Function.objects.filter(name=name).first()
        if function is None:
            raise NotFound(
                f"Function {name!r} not found. GET /api/functions/ lists them."
            )
        self.check_object_permissions(self.request, function)
        return function


class InvokeFunctionView(APIView):
    """Invoke a function: Sync runs now, Async returns 202 and runs in a worker."""

    parser_classes = []

    @extend_schema(request=bytes, responses={202: None, 200: bytes})
    def post(self, request, name):
        function = Function.objects.filter(name=name).first()
        if function is None:
            raise NotFound(
                f"Function {name!r} not found. GET /api/functions/ lists them."
            )
        invocation_type = request.headers.get("X-Fc-Invocation-Type", "Sync")
        task_id = request.headers.get("X-Fc-Async-Task-Id")
        try:
            payload = request._request.body
        except RequestDataTooBig:
            return Response(
                {"detail": "Payload exceeds the 32 MB sync limit. Send a smaller one."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )

        try:
            engine.validate_invocation_type(invocation_type)
            if invocation_type == "Async":
                invocation = engine.accept_async(function, payload, task_id)
                response = Response(
                    {"request_id": invocation.request_id, "status": invocation.status},
                    status=status.HTTP_202_ACCEPTED,
                )
                response["X-Fc-Request-Id"] = invocation.request_id
                return response
            invocation, result = engine.run_sync(function, payload, task_id)
        except engine.InvocationRejected as error:
            return Response({"detail": error.message}, status=error.status)
        return sync_response(invocation, result)


def sync_response(invocation: Invocation, result) -> HttpResponse:
    """Build a sync invocation's response from the function's status and body."""
    if result.status_code is not None:
        response = HttpResponse(
            result.body,
            status=result.status_code,
            content_type="application/octet-stream",
        )
    else:
        # No HTTP reply from the function: 504 for a timeout, else 502.
        timed_out = result.failure is policy.Outcome.FUNCTION_TIMEOUT
        response = HttpResponse(
            json.dumps({"detail": result.error_message}),
            status=504 if timed_out else 502,
            content_type="application/json",
        )
    response["X-Fc-Request-Id"] = invocation.request_id
    # A 5xx here is the function's own response, not an fcdash failure, so
    # Django must not log it as an internal server error.
    # NOTE: _has_been_logged is a private flag of django.utils.log.
    response._has_been_logged = True
    error_type = invocation.last_error_type
    if error_type:
        response["X-Fc-Error-Type"] = error_type
    return response


class InvocationViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "request_id"
    lookup_value_regex = "[^/]+"
    filterset_class = InvocationFilter
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        return Invocation.objects.select_related("function").prefetch_related(
            Prefetch("attempts", queryset=Attempt.objects.order_by("number"))
        )

    def get_serializer_class(self):
        if self.action == "list":
            return InvocationSerializer
        return InvocationDetailSerializer

    def get_object(self):
        request_id = self.kwargs["request_id"]
        invocation = self.get_queryset().filter(request_id=request_id).first()
        if invocation is None:
            raise NotFound(f"Invocation with request id {request_id!r} not found.")
        return invocation

    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def retry(self, request, request_id=None):
        invocation = self.get_object()
        try:
            performed = engine.request_retry(invocation, request.user)
        except engine.ActionConflict as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        invocation.refresh_from_db()
        return Response(
            {
                "request_id": request_id,
                "action": performed,
                "status": invocation.status,
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def stop(self, request, request_id=None):
        invocation = self.get_object()
        try:
            new_status = engine.request_stop(invocation, request.user)
        except engine.ActionConflict as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(
            {"request_id": request_id, "action": "stop", "status": new_status},
            status=status.HTTP_202_ACCEPTED,
        )


class QuotaAlertViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = QuotaAlert.objects.select_related("acknowledged_by")
    serializer_class = QuotaAlertSerializer
    filterset_fields = ["region", "kind"]
    pagination_class = AlertPagination

    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def acknowledge(self, request, pk=None):
        alert = self.get_object()
        QuotaAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=request.user
        )
        alert.refresh_from_db()
        return Response(self.get_serializer(alert).data)


class PolicyView(APIView):
    """The failure table in force: its rows and its configurable values."""

    def get(self, request):
        failure_policy = FailurePolicy.current()
        disabled = set(failure_policy.retry_disabled)
        rows = [
            {
                "outcome": row.outcome,
                "error_type": row.error_type,
                "recognised_by": row.recognised_by,
                "retry": "none" if row.outcome in disabled else row.retry,
                "retry_switched_off": row.outcome in disabled,
                "billed": row.billed,
                "remediation": row.remediation,
            }
            for row in policy.ROWS
        ]
        return Response(
            {
                "rows": rows,
                "default_max_async_retry_attempts": (
                    policy.DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS
                ),
                "base_delay_s": failure_policy.base_delay_s,
                "infrastructure_window_s": failure_policy.infrastructure_window_s,
                "default_region_quota": failure_policy.default_region_quota,
                "sync_retried_automatically": False,
            }
        )


class BulkActionViewSet(viewsets.ReadOnlyModelViewSet):
    """Bulk retry or stop: POST /api/invocations/bulk creates one."""

    queryset = BulkAction.objects.select_related("created_by")
    serializer_class = BulkActionSerializer
    permission_classes = [permissions.IsAuthenticated, IsOperator]

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        bulk_action = self.get_object()
        if not bulk.cancel(bulk_action, request.user):
            return Response(
                {"detail": f"Bulk action {pk} already ended ({bulk_action.state})."},
                status=status.HTTP_409_CONFLICT,
            )
        bulk_action.refresh_from_db()
        return Response(self.get_serializer(bulk_action).data)


class CreateBulkActionView(APIView):
    """Retry or stop the given request ids, or every invocation a filter matches."""

    permission_classes = [permissions.IsAuthenticated, IsOperator]

    @extend_schema(request=None, responses=BulkActionSerializer)
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        try:
            bulk_action = bulk.create_bulk_action(
                data.get("action"),
                request.user,
                request_ids=data.get("request_ids"),
                filters=data.get("filters"),
            )
        except bulk.BulkRejected as error:
            return Response(error.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            BulkActionSerializer(bulk_action).data, status=status.HTTP_202_ACCEPTED
        )
