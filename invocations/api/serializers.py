from datetime import UTC

from django.db import models
from rest_framework import serializers

from ..bulk import MAX_REQUEST_IDS
from ..models import (
    Attempt,
    BulkAction,
    Function,
    Invocation,
    InvocationType,
    QuotaAlert,
    Status,
)
from ..policy import ErrorType


class UTCDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with milliseconds, for example 2026-01-02T03:04:05.678Z."""

    def to_representation(self, value):
        if value is None:
            return None
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")


class BaseModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


class FunctionSerializer(BaseModelSerializer):
    class Meta:
        model = Function
        fields = [
            "name",
            "region",
            "endpoint_url",
            "memory_mb",
            "timeout_s",
            "max_async_retry_attempts",
            "max_async_event_age_s",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_name(self, value):
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError(
                f"The name of function {self.instance.name} cannot change; "
                "create a new function instead."
            )
        return value


class AttemptSerializer(BaseModelSerializer):
    billed_gb_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = Attempt
        fields = [
            "number",
            "trigger",
            "started_at",
            "ended_at",
            "duration_ms",
            "status_code",
            "error_type",
            "error_message",
            "outcome",
            "billed",
            "billed_duration_ms",
            "billed_gb_seconds",
        ]


class AttemptDetailSerializer(AttemptSerializer):
    class Meta(AttemptSerializer.Meta):
        fields = [*AttemptSerializer.Meta.fields, "response_preview"]


class InvocationSerializer(BaseModelSerializer):
    function = serializers.CharField(source="function.name", read_only=True)
    billed_gb_seconds = serializers.FloatField(read_only=True)
    remediation = serializers.CharField(read_only=True, allow_null=True)
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Invocation
        fields = [
            "request_id",
            "task_id",
            "function",
            "region",
            "invocation_type",
            "status",
            "created_at",
            "next_attempt_at",
            "function_error_retries_used",
            "infrastructure_retries_used",
            "billed_attempts",
            "unbilled_attempts",
            "billed_gb_seconds",
            "remediation",
            "attempts",
        ]


class InvocationDetailSerializer(InvocationSerializer):
    attempts = AttemptDetailSerializer(many=True, read_only=True)
    max_async_retry_attempts = serializers.IntegerField(
        source="policy_config.max_async_retry_attempts", read_only=True
    )
    billing = serializers.SerializerMethodField()

    class Meta(InvocationSerializer.Meta):
        fields = [
            *InvocationSerializer.Meta.fields,
            "first_failure_at",
            "finished_at",
            "expires_at",
            "outcome",
            "give_up_reason",
            "max_async_retry_attempts",
            "policy",
            "billing",
        ]

    def get_billing(self, invocation) -> dict:
        return {
            "billed_attempts": invocation.billed_attempts,
            "unbilled_attempts": invocation.unbilled_attempts,
            "billed_duration_ms": invocation.billed_duration_ms,
            "billed_gb_seconds": invocation.billed_gb_seconds,
            "memory_mb": invocation.memory_mb,
        }


class QuotaAlertSerializer(BaseModelSerializer):
    remediation = serializers.CharField(read_only=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", read_only=True, default=None
    )

    class Meta:
        model = QuotaAlert
        fields = [
            "id",
            "region",
            "kind",
            "quota",
            "opened_at",
            "last_seen_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "peak_concurrency",
            "throttled_attempts",
            "remediation",
        ]


class BulkActionSerializer(BaseModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, default=None
    )

    class Meta:
        model = BulkAction
        fields = [
            "id",
            "action",
            "state",
            "filters",
            "request_ids",
            "total",
            "processed",
            "succeeded",
            "skipped",
            "created_by",
            "created_at",
            "finished_at",
        ]


# The serializers below only describe requests and responses in the OpenAPI
# schema. The views build those responses and validate those requests themselves.


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What failed and what to do about it.")


class AsyncAcceptedSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)


class InvocationActionSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    # A CharField, because an enum here would clash in the schema with the
    # enum of BulkAction.action, which has the same field name.
    action = serializers.CharField(
        help_text=(
            "manual_retry starts a new attempt of a finished invocation, "
            "retry_now runs a scheduled retry at once, stop ends the retries."
        ),
    )
    status = serializers.ChoiceField(
        choices=Status.choices, help_text="The invocation's status after the action."
    )


class BulkFiltersSerializer(serializers.Serializer):
    """The filters of GET /api/invocations/, as an object."""

    function = serializers.CharField(required=False)
    region = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    invocation_type = serializers.ChoiceField(
        choices=InvocationType.choices, required=False
    )
    error_type = serializers.ChoiceField(
        choices=[kind.value for kind in ErrorType],
        required=False,
        help_text="An error type of any attempt.",
    )
    billed = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        help_text="Whether the invocation has a billed attempt.",
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    q = serializers.CharField(required=False, help_text="A request id or task id.")
    min_attempts = serializers.IntegerField(
        required=False, help_text="Only invocations with more than this many attempts."
    )


class BulkActionRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=BulkAction.Action.choices)
    request_ids = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=MAX_REQUEST_IDS,
        help_text="The invocations to act on. Send either request_ids or filters.",
    )
    filters = BulkFiltersSerializer(
        required=False,
        help_text="Act on every invocation that these filters match.",
    )
