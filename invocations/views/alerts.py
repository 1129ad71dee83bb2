"""Quota alerts: the list, the per-region load charts and the acknowledge action."""

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ..alerts import region_quotas
from ..models import Attempt, AuditEvent, QuotaAlert, RegionLoad
from .access import login_required
from .charts import QuotaChart, quota_chart

TEMPLATE = "invocations/alert_list.html"
ACKNOWLEDGE_PERMISSION = "invocations.change_quotaalert"
# Resolved alerts shown below the open ones, newest first.
RESOLVED_SHOWN = 100
# The load charts show the last CHART_MINUTES one-minute buckets, the last of
# them the current minute so far.
CHART_MINUTES = 60


def running_per_minute(first_minute: datetime) -> dict[str, list[int]]:
    """Return each region's peak running attempts per minute, as the beat job
    recorded them; a minute without a record had none running."""
    counts: dict[str, list[int]] = {}
    rows = RegionLoad.objects.filter(minute__gte=first_minute).values_list(
        "region", "minute", "peak_running"
    )
    for region, minute, peak in rows:
        index = int((minute - first_minute) / timedelta(minutes=1))
        if 0 <= index < CHART_MINUTES:
            counts.setdefault(region, [0] * CHART_MINUTES)[index] = peak
    return counts


def throttled_per_minute(first_minute: datetime, now: datetime) -> dict[str, list[int]]:
    """Count each region's 429 responses per minute of their end time."""
    rows = (
        Attempt.objects.filter(
            status_code=429, ended_at__gte=first_minute, ended_at__lte=now
        )
        .annotate(minute=TruncMinute("ended_at"))
        .values("invocation__region", "minute")
        .annotate(count=Count("pk"))
        .order_by()
    )
    counts: dict[str, list[int]] = {}
    for row in rows:
        index = int((row["minute"] - first_minute) / timedelta(minutes=1))
        if 0 <= index < CHART_MINUTES:
            region_counts = counts.setdefault(
                row["invocation__region"], [0] * CHART_MINUTES
            )
            region_counts[index] += row["count"]
    return counts


def region_charts(
    now: datetime, open_regions: set[str]
) -> tuple[datetime, list[QuotaChart]]:
    """Chart every region with load in the window or an open alert."""
    first_minute = now.replace(second=0, microsecond=0) - timedelta(
        minutes=CHART_MINUTES - 1
    )
    running = running_per_minute(first_minute)
    throttled = throttled_per_minute(first_minute, now)
    quotas, default_quota = region_quotas()
    empty = [0] * CHART_MINUTES
    regions = sorted(set(running) | set(throttled) | open_regions)
    charts = [
        quota_chart(
            region,
            quotas.get(region, default_quota),
            first_minute,
            running.get(region, empty),
            throttled.get(region, empty),
        )
        for region in regions
    ]
    return first_minute, charts


@login_required
def alert_list(request):
    open_alerts = QuotaAlert.objects.filter(resolved_at__isnull=True).select_related(
        "acknowledged_by"
    )
    resolved_alerts = QuotaAlert.objects.filter(
        resolved_at__isnull=False
    ).select_related("acknowledged_by")[:RESOLVED_SHOWN]
    open_regions = {alert.region for alert in open_alerts}
    first_minute, charts = region_charts(timezone.now(), open_regions)
    context = {
        "section": "alerts",
        "region_charts": charts,
        "chart_start": first_minute,
        "chart_minutes": CHART_MINUTES,
        "open_alerts": open_alerts,
        "resolved_alerts": resolved_alerts,
        "resolved_shown": RESOLVED_SHOWN,
        "can_acknowledge": request.user.has_perm(ACKNOWLEDGE_PERMISSION),
    }
    return render(request, TEMPLATE, context)


@login_required
@require_POST
@permission_required(ACKNOWLEDGE_PERMISSION, raise_exception=True)
def alert_acknowledge(request, alert_id):
    alert = get_object_or_404(QuotaAlert, pk=alert_id)
    # A conditional update, so a second click or a second operator changes
    # nothing and writes no second audit event.
    acknowledged = QuotaAlert.objects.filter(
        pk=alert.pk, acknowledged_at__isnull=True
    ).update(acknowledged_at=timezone.now(), acknowledged_by=request.user)
    if acknowledged:
        AuditEvent.objects.create(
            user=request.user,
            action="alert_acknowledge",
            target=str(alert),
            detail={"alert_id": alert.pk, "region": alert.region, "kind": alert.kind},
        )

    if request.htmx:
        alert.refresh_from_db()
        context = {"alert": alert, "can_acknowledge": True}
        return render(request, f"{TEMPLATE}#alert-row", context)
    if acknowledged:
        messages.success(request, f"Acknowledged the {alert} alert.")
    else:
        messages.info(request, f"The {alert} alert was already acknowledged.")
    return redirect("alert-list")
