"""The overview page: counters per time window and attempts by outcome."""

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
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
from .charts import hourly_outcome_chart

WINDOWS = (
    ("hour", "Last hour", timedelta(hours=1)),
    ("day", "Last 24 hours", timedelta(hours=24)),
    ("week", "Last 7 days", timedelta(days=7)),
)
CHART_HOURS = 24


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


def hourly_outcomes(now: datetime):
    """Count attempts per started hour and outcome over the last CHART_HOURS."""
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=CHART_HOURS - 1
    )
    counts = (
        Attempt.objects.filter(started_at__gte=first_hour)
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "outcome")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return first_hour, list(counts)


@login_required
def overview(request):
    now = timezone.now()
    first_hour, counts = hourly_outcomes(now)
    context = {
        "section": "overview",
        "now": now,
        "windows": window_rows(now),
        "current": current_counts(),
        "chart": hourly_outcome_chart(first_hour, CHART_HOURS, counts),
    }
    return render(request, "invocations/overview.html", context)
