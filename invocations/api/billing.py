from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import billing, exports
from ..filters import InvocationFilter
from ..models import Invocation


def parse_period(params) -> tuple:
    """Read `since` and `until` (ISO 8601) from query parameters."""
    period = []
    for name in ("since", "until"):
        text = params.get(name)
        value = parse_datetime(text) if text else None
        if text and (value is None or value.tzinfo is None):
            raise ValidationError(
                {
                    name: f"Invalid {name} {text!r}: use ISO 8601 with a time zone, "
                    "for example 2026-01-31T00:00:00Z."
                }
            )
        period.append(value)
    return tuple(period)


def parse_group_by(params, default=None) -> str | None:
    group_by = params.get("group_by", default)
    if group_by is not None and group_by not in billing.GROUPINGS:
        choices = ", ".join(billing.GROUPINGS)
        raise ValidationError(
            {"group_by": f"Invalid group_by {group_by!r}: use one of {choices}."}
        )
    return group_by


class BillingView(APIView):
    """Billed and unbilled attempts and GB-seconds for a period, grouped."""

    def get(self, request):
        since, until = parse_period(request.query_params)
        group_by = parse_group_by(request.query_params)
        return Response(billing.summarize(since, until, group_by))


class BillingExportView(APIView):
    """The billing figures as CSV, one row per group (default: day)."""

    def get(self, request):
        since, until = parse_period(request.query_params)
        group_by = parse_group_by(request.query_params, default="day")
        return exports.export_billing(
            billing.summarize(since, until, group_by), group_by
        )


class InvocationExportView(APIView):
    """The invocation history as CSV, with the same filters as the list."""

    def get(self, request):
        filterset = InvocationFilter(
            request.query_params, queryset=Invocation.objects.all()
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return exports.export_invocations(filterset.qs)
