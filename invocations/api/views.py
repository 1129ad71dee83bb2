import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import bulk, engine, policy
from ..filters import InvocationFilter, QuotaAlertFilter
from ..models import (
    Attempt,
    AuditEvent,
    BulkAction,
    FailurePolicy,
    Function,
    Invocation,
    QuotaAlert,
)
from ..roles import OPERATE_PERMISSION
from ..validators import TASK_ID_RE
from .serializers import (
    AsyncAcceptedSerializer,
    BulkActionRequestSerializer,
    BulkActionSerializer,
    ErrorSerializer,
    FunctionSerializer,
    InvocationActionSerializer,
    InvocationDetailSerializer,
    InvocationSerializer,
    QuotaAlertSerializer,
)

logger = logging.getLogger(__name__)


ACKNOWLEDGE_PERMISSION = "invocations.change_quotaalert"
ERROR_RESPONSE = OpenApiResponse(ErrorSerializer)


class CheckedCursorPagination(CursorPagination):
    """Cursor pages that return 400 for an invalid `cursor` or `limit`.

    DRF's CursorPagination returns 404 for an invalid cursor and ignores an
    invalid limit.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param, "")
        if text == "":
            return self.page_size
        try:
            size = int(text)
        except ValueError:
            size = None
        if size is None or not 1 <= size <= self.max_page_size:
            message = (
                f"Invalid limit {text!r}: use a whole number from 1 to "
                f"{self.max_page_size}."
            )
            raise ValidationError({"limit": [message]})
        return size

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (NotFound, DjangoValidationError):
            # NotFound comes from decode_cursor. A cursor that decodes but
            # whose position is not a valid value fails when it is filtered on.
            raise invalid_cursor(request) from None


def invalid_cursor(request) -> ValidationError:
    text = request.query_params.get("cursor", "")
    message = (
        f"Invalid cursor {text[:100]!r}. Start from the first page, without a "
        "cursor, and follow the next and previous links."
    )
    return ValidationError({"cursor": [message]})


class NewestFirstPagination(CheckedCursorPagination):
    ordering = ("-created_at", "-id")


class AlertPagination(CheckedCursorPagination):
    ordering = ("-opened_at", "-id")


class IsOperator(permissions.BasePermission):
    """The operator role, which admins have as well."""

    permission = OPERATE_PERMISSION
    message = "Retry and stop need the operator role."

    def has_permission(self, request, view):
        return request.user.has_perm(self.permission)


class CanInvoke(IsOperator):
    message = "Invoking functions needs the operator role."


class CanAcknowledgeAlerts(IsOperator):
    permission = ACKNOWLEDGE_PERMISSION
    message = "Acknowledging alerts needs the operator role."


class LengthRequired(APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = (
        "Chunked transfer encoding is not supported. Send the payload with a "
        "Content-Length header."
    )
    default_code = "length_required"


class ContentLengthRequiredMixin:
    """Reject a request body sent with Transfer-Encoding, with 411.

    Django reads exactly CONTENT_LENGTH bytes of a body, so it would take a
    chunked body, which comes without Content-Length, for an empty one.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH") and request.META.get(
            "HTTP_TRANSFER_ENCODING"
        ):
            raise LengthRequired()


class FunctionWritePermission(permissions.BasePermission):
    message = "Creating and changing functions needs the admin role."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        codename = "add_function" if request.method == "POST" else "change_function"
        return request.user.has_perm(f"invocations.{codename}")


# The function fields an audit event of a new function records.
FUNCTION_SETTINGS = [
    "region",
    "endpoint_url",
    "memory_mb",
    "timeout_s",
    "max_async_retry_attempts",
    "max_async_event_age_s",
]


class FunctionViewSet(
    ContentLengthRequiredMixin,
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

    def perform_create(self, serializer):
        with transaction.atomic():
            function = serializer.save()
            AuditEvent.objects.create(
                user=self.request.user,
                action="function_create",
                target=function.name,
                detail={
                    field: serializer.data[field]
                    for field in FUNCTION_SETTINGS
                    if field in serializer.data
                },
            )

    def perform_update(self, serializer):
        """Save the change and audit each changed field's old and new value."""
        with transaction.atomic():
            stored = Function.objects.select_for_update().get(pk=serializer.instance.pk)
            changes = {
                field: [getattr(stored, field), value]
                for field, value in serializer.validated_data.items()
                if getattr(stored, field) != value
            }
            function = serializer.save()
            if changes:
                AuditEvent.objects.create(
                    user=self.request.user,
                    action="function_change",
                    target=function.name,
                    detail=changes,
                )

    def get_object(self):
        name = self.kwargs["name"]
        function = Function.objects.filter(name=name).first()
        if function is None:
            raise NotFound(
                f"Function {name!r} not found. GET /api/functions/ lists them."
            )
        self.check_object_permissions(self.request, function)
        return function


class InvokeFunctionView(ContentLengthRequiredMixin, APIView):
    """Invoke a function: Sync runs now, Async returns 202 and runs in a worker."""

    parser_classes = []
    # JSON only: the browsable API needs a parser to draw its form and
    # this view reads the raw body itself.
    renderer_classes = [JSONRenderer]
    permission_classes = [permissions.IsAuthenticated, CanInvoke]

    @extend_schema(
        summary="Invoke a function",
        parameters=[
            OpenApiParameter(
                "X-Fc-Invocation-Type",
                str,
                OpenApiParameter.HEADER,
                enum=["Sync", "Async"],
                default="Sync",
                description="Sync runs the function now and returns its response. "
                "Async returns 202 at once and runs the function in a worker, "
                "with retries.",
            ),
            OpenApiParameter(
                "X-Fc-Async-Task-Id",
                str,
                OpenApiParameter.HEADER,
                pattern=TASK_ID_RE.pattern,
                description="Async only: a task id of the caller's choice, unique "
                "per function. A repeated task id returns 409.",
            ),
            OpenApiParameter(
                "X-Fc-Request-Id",
                str,
                OpenApiParameter.HEADER,
                response=[200, 202],
                description="The request id of the new invocation.",
            ),
            OpenApiParameter(
                "X-Fc-Error-Type",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="Set when the function or fcdash reported an error.",
            ),
        ],
        request={"*/*": OpenApiTypes.BINARY},
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Sync: the function's own status, body and Content-Type.",
            ),
            202: OpenApiResponse(
                AsyncAcceptedSerializer, description="Async: the invocation is stored."
            ),
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ErrorSerializer, description="The async task id was already used."
            ),
            411: OpenApiResponse(
                ErrorSerializer, description="The body was sent without Content-Length."
            ),
            413: OpenApiResponse(
                ErrorSerializer, description="The payload exceeds the size limit."
            ),
            502: OpenApiResponse(
                ErrorSerializer, description="Sync: the function sent no HTTP response."
            ),
            504: OpenApiResponse(
                ErrorSerializer, description="Sync: the function timed out."
            ),
        },
    )
    def post(self, request, name):
        function = Function.objects.filter(name=name).first()
        if function is None:
            raise NotFound(
                f"Function {name!r} not found. GET /api/functions/ lists them."
            )
        invocation_type = request.headers.get("X-Fc-Invocation-Type", "Sync")
        task_id = request.headers.get("X-Fc-Async-Task-Id")
        content_type = request.META.get("CONTENT_TYPE", "")
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
                invocation = engine.accept_async(
                    function, payload, task_id, content_type=content_type
                )
                response = Response(
                    {"request_id": invocation.request_id, "status": invocation.status},
                    status=status.HTTP_202_ACCEPTED,
                )
                response["X-Fc-Request-Id"] = invocation.request_id
                return response
            invocation, result = engine.run_sync(
                function, payload, task_id, content_type=content_type
            )
        except engine.InvocationRejected as error:
            return Response({"detail": error.message}, status=error.status)
        return sync_response(invocation, result)


def sync_response(invocation: Invocation, result) -> HttpResponse:
    """Build a sync invocation's response from the function's status and body."""
    if result.status_code is not None and result.failure is None:
        response = HttpResponse(
            result.body,
            status=result.status_code,
            content_type=result.content_type or "application/octet-stream",
        )
        # The body is the function's, so a browser must not run it as
        # fcdash's own page, whatever its Content-Type.
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    else:
        # No usable HTTP reply from the function: 504 for a timeout, else 502.
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

    @extend_schema(
        request=None,
        responses={
            202: InvocationActionSerializer,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ErrorSerializer,
                description="The invocation's status does not allow a retry now.",
            ),
        },
    )
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

    @extend_schema(
        request=None,
        responses={
            202: InvocationActionSerializer,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ErrorSerializer, description="The invocation has already ended."
            ),
        },
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
    filterset_class = QuotaAlertFilter
    pagination_class = AlertPagination

    @extend_schema(
        request=None,
        responses={200: QuotaAlertSerializer, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permissions.IsAuthenticated, CanAcknowledgeAlerts],
    )
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

    @extend_schema(
        request=None,
        responses={
            200: BulkActionSerializer,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ErrorSerializer, description="The bulk action has already ended."
            ),
        },
    )
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


class CreateBulkActionView(ContentLengthRequiredMixin, APIView):
    """Retry or stop the given request ids, or every invocation a filter matches."""

    permission_classes = [permissions.IsAuthenticated, IsOperator]

    @extend_schema(
        request={"application/json": BulkActionRequestSerializer},
        responses={
            202: BulkActionSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The invalid fields, each with what to send instead.",
            ),
            403: ERROR_RESPONSE,
        },
    )
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
