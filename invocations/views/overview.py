"""The overview page: counters per time window, hourly charts and failing functions."""

from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, Q
from django.db.models.functions import Cast, TruncHour
from django.shortcuts import render
from django.utils import timezone

from ..models import (
    FINAL_STATUSES,
    Attempt,
    Invocation,
    QuotaAlert,
    Status,
)
from .access import login_required
from .hourly_charts import hourly_billing_chart, hourly_outcome_chart

WINDOWS = (
    ("hour", "Last hour", timedelta(hours=1)),
    ("day", "Last 24 hours", timedelta(hours=24)),
    ("week", "Last 7 days", timedelta(days=7)),
)
CHART_HOURS = 24
# The top failing functions count invocations created in this window.
TOP_FAILING_WINDOW = timedelta(hours=24)
TOP_FAILING_LIMIT = 5


def invocation_counts(now: datetime) -> dict[str, dict[str, int]]:
    """Count invocations per window in one aggregate query."""
    aggregates = {}
    for key, _, span in WINDOWS:
        in_window = Q(created_at__gte=now - span)
        aggregates[f"{key}_invocations"] = Count("pk", filter=in_window)
        aggregates[f"{key}_finished"] = Count(
            "pk", filter=in_window & Q(status__in=FINAL_STATUSES)
        )
        for status in (Status.SUCCEEDED, Status.FAILED, Status.RETRYING):
            aggregates[f"{key}_{status.lower()}"] = Count(
                "pk", filter=in_window & Q(status=status)
            )
    longest = max(span for _, _, span in WINDOWS)
    totals = Invocation.objects.filter(created_at__gte=now - longest).aggregate(
        **aggregates
    )
    return split_by_window(totals)


def attempt_counts(now: datetime) -> dict[str, dict[str, int]]:
    """Count billed and unbilled ended attempts per window in one query."""
    aggregates = {}
    for key, _, span in WINDOWS:
        in_window = Q(started_at__gte=now - span, ended_at__isnull=False)
        aggregates[f"{key}_billed"] = Count("pk", filter=in_window & Q(billed=True))
        aggregates[f"{key}_unbilled"] = Count("pk", filter=in_window & Q(billed=False))
    longest = max(span for _, _, span in WINDOWS)
    totals = Attempt.objects.filter(started_at__gte=now - longest).aggregate(
        **aggregates
    )
    return split_by_window(totals)


def alert_counts(now: datetime) -> dict[str, dict[str, int]]:
    aggregates = {
        f"{key}_alerts_opened": Count("pk", filter=Q(opened_at__gte=now - span))
        for key, _, span in WINDOWS
    }
    return split_by_window(QuotaAlert.objects.aggregate(**aggregates))


def split_by_window(totals: dict[str, int]) -> dict[str, dict[str, int]]:
    """Turn {"hour_failed": 3, ...} into {"hour": {"failed": 3, ...}, ...}."""
    windows: dict[str, dict[str, int]] = {key: {} for key, _, _ in WINDOWS}
    for name, value in totals.items():
        key, _, counter = name.partition("_")
        windows[key][counter] = value
    return windows


def window_rows(now: datetime) -> list[dict]:
    invocations = invocation_counts(now)
    attempts = attempt_counts(now)
    alerts = alert_counts(now)
    rows = []
    for key, label, _ in WINDOWS:
        counts = {**invocations[key], **attempts[key], **alerts[key]}
        finished = counts["finished"]
        counts["success_rate"] = counts["succeeded"] / finished if finished else None
        rows.append({"key": key, "label": label, **counts})
    return rows


def current_counts() -> dict[str, int]:
    """Count what is moving right now, in one query."""
    return Invocation.objects.filter(
        status__in=[Status.RETRYING, Status.RUNNING, Status.ENQUEUED]
    ).aggregate(
        retrying=Count("pk", filter=Q(status=Status.RETRYING)),
        running=Count("pk", filter=Q(status=Status.RUNNING)),
        enqueued=Count("pk", filter=Q(status=Status.ENQUEUED)),
    )


def hourly_attempts(now: datetime):
    """Count attempts per started hour and outcome over the last CHART_HOURS.

    Each row also counts its billed and unbilled attempts, so that one query
    serves both hourly charts. Those counts leave out running attempts,
    because an attempt's billing is known only once it ends.
    """
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=CHART_HOURS - 1
    )
    ended = Q(ended_at__isnull=False)
    counts = (
        Attempt.objects.filter(started_at__gte=first_hour)
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "outcome")
        .annotate(
            count=Count("pk"),
            billed_count=Count("pk", filter=ended & Q(billed=True)),
            unbilled_count=Count("pk", filter=ended & Q(billed=False)),
        )
        .order_by()
    )
    return first_hour, list(counts)


def top_failing_functions(now: datetime) -> list[dict]:
    """Count recent invocations per function and keep the most failing, in one query.

    Counts invocations created in the last TOP_FAILING_WINDOW. Each row has
    `function_name`, `invocations`, `failed` (status Failed now) and
    `failure_rate` (failed / invocations). Functions without a failed
    invocation are left out. Rows are ordered by failed count, then by
    failure rate, both descending, then by name.
    """
    rows = (
        Invocation.objects.filter(created_at__gte=now - TOP_FAILING_WINDOW)
        .values(function_name=F("function__name"))
        .annotate(
            invocations=Count("pk"),
            failed=Count("pk", filter=Q(status=Status.FAILED)),
        )
        .filter(failed__gt=0)
        .annotate(failure_rate=Cast("failed", FloatField()) / F("invocations"))
        .order_by("-failed", "-failure_rate", "function_name")
    )
    return list(rows[:TOP_FAILING_LIMIT])


@login_required
def overview(request):
    now = timezone.now()
    first_hour, counts = hourly_attempts(now)
    context = {
        "section": "overview",
        "now": now,
        "windows": window_rows(now),
        "current": current_counts(),
        "chart": hourly_outcome_chart(first_hour, CHART_HOURS, counts),
        "billing_chart": hourly_billing_chart(first_hour, CHART_HOURS, counts),
        "top_failing": top_failing_functions(now),
        # The history's since filter for the top failing functions' links,
        # in the form its datetime-local field shows (UTC, whole minutes).
        "top_failing_since": f"{now - TOP_FAILING_WINDOW:%Y-%m-%dT%H:%M}",
    }
    return render(request, "invocations/overview.html", context)
