"""Query filters for the invocation history (pages and API) and alerts (API)."""

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q

from .models import AlertKind, Attempt, Invocation, InvocationType, QuotaAlert, Status
from .validators import validate_error_type, validate_region


class InvocationFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error(
                "until",
                f"until {until.isoformat()} is not later than since "
                f"{since.isoformat()}: swap them or widen the range.",
            )
        return data


class InvocationFilter(django_filters.FilterSet):
    function = django_filters.CharFilter(field_name="function__name")
    region = django_filters.CharFilter(validators=[validate_region])
    status = django_filters.ChoiceFilter(choices=Status.choices)
    invocation_type = django_filters.ChoiceFilter(choices=InvocationType.choices)
    error_type = django_filters.CharFilter(
        method="filter_error_type",
        label="Error type (any attempt)",
        validators=[validate_error_type],
    )
    billed = django_filters.ChoiceFilter(
        choices=[("true", "yes"), ("false", "no")],
        method="filter_billed",
        label="Has a billed attempt",
    )
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="filter_id", label="Request id or task id")
    min_attempts = django_filters.NumberFilter(
        field_name="attempts_made", lookup_expr="gt", label="More than N attempts"
    )

    class Meta:
        model = Invocation
        fields = []
        form = InvocationFilterForm

    def filter_error_type(self, queryset, name, value):
        attempts = Attempt.objects.filter(invocation=OuterRef("pk"), error_type=value)
        return queryset.filter(Exists(attempts))

    def filter_billed(self, queryset, name, value):
        if value == "true":
            return queryset.filter(billed_attempts__gt=0)
        return queryset.filter(billed_attempts=0)

    def filter_id(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(request_id=value) | Q(task_id=value))


class QuotaAlertFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(validators=[validate_region])
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)

    class Meta:
        model = QuotaAlert
        fields = []
