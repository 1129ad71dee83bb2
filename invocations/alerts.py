"""Quota alerts: regions that throttle (429) or run near their concurrency quota.

The beat job calls `evaluate_alerts()` on every tick. A region's running
attempts are the attempts without an end whose lease has not expired, so an
attempt of a killed worker stops counting once its lease runs out, even
before the dispatcher closes it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max
from django.db.models.functions import Greatest
from django.utils import timezone

from .models import (
    AlertKind,
    Attempt,
    FailurePolicy,
    Invocation,
    QuotaAlert,
    Region,
    Status,
)
from .models import (
    RegionLoad as RegionLoadRow,
)
from .policy import Outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionLoad:
    region: str
    quota: int
    running: int
    throttled_recently: int
    last_throttled_at: datetime | None


def region_quotas() -> tuple[dict[str, int], int]:
    """Return the per-region quotas and the default quota."""
    default = FailurePolicy.current().default_region_quota
    return dict(Region.objects.values_list("name", "quota")), default


def running_attempts(now: datetime) -> dict[str, int]:
    rows = (
        Attempt.objects.filter(ended_at__isnull=True, lease_expires_at__gt=now)
        .values("invocation__region")
        .annotate(count=Count("id"))
    )
    return {row["invocation__region"]: row["count"] for row in rows}


def throttled_since(since: datetime) -> dict[str, tuple[int, datetime]]:
    """Return each region's count of 429 responses since `since`, and the latest."""
    rows = (
        Attempt.objects.filter(status_code=429, ended_at__gte=since)
        .values("invocation__region")
        .annotate(count=Count("id"), latest=Max("ended_at"))
    )
    return {row["invocation__region"]: (row["count"], row["latest"]) for row in rows}


def waiting_after_throttle() -> set[str]:
    """Return the regions with invocations waiting to retry after a 429."""
    return set(
        Invocation.objects.filter(
            status=Status.RETRYING, outcome=Outcome.CONCURRENCY_LIMIT_EXCEEDED
        )
        .values_list("region", flat=True)
        .distinct()
    )


def region_loads(now: datetime) -> list[RegionLoad]:
    """Measure every region that has running attempts, recent 429s or open alerts."""
    clear_after = timedelta(seconds=settings.FCDASH_ALERT_CLEAR_AFTER_S)
    quotas, default_quota = region_quotas()
    running = running_attempts(now)
    throttled = throttled_since(now - clear_after)
    # A region stays throttled while its throttled invocations wait for a
    # backoff longer than the clear time, so one episode keeps one alert.
    for region in waiting_after_throttle():
        count, _ = throttled.get(region, (0, None))
        throttled[region] = (count, now)
    open_regions = QuotaAlert.objects.filter(resolved_at__isnull=True).values_list(
        "region", flat=True
    )
    regions = set(running) | set(throttled) | set(open_regions)
    return [
        RegionLoad(
            region=region,
            quota=quotas.get(region, default_quota),
            running=running.get(region, 0),
            throttled_recently=throttled.get(region, (0, None))[0],
            last_throttled_at=throttled.get(region, (0, None))[1],
        )
        for region in sorted(regions)
    ]


def is_near_quota(load: RegionLoad) -> bool:
    return load.running >= settings.FCDASH_ALERT_NEAR_QUOTA_SHARE * load.quota


# Minutes of per-region peak load kept for the alerts page's charts.
LOAD_HISTORY = timedelta(hours=24)


def record_peak(region: str, running: int, now: datetime) -> None:
    """Raise the region's peak running count for the current minute."""
    minute = now.replace(second=0, microsecond=0)
    rows = RegionLoadRow.objects.filter(region=region, minute=minute)
    if rows.update(peak_running=Greatest(F("peak_running"), running)):
        return
    try:
        with transaction.atomic():
            RegionLoadRow.objects.create(
                region=region, minute=minute, peak_running=running
            )
    except IntegrityError:
        # Another beat created the minute's row first.
        rows.update(peak_running=Greatest(F("peak_running"), running))


def evaluate_alerts(now: datetime | None = None) -> None:
    """Record region loads, then open, update and resolve quota alerts."""
    now = now or timezone.now()
    clear_after = timedelta(seconds=settings.FCDASH_ALERT_CLEAR_AFTER_S)
    # About once a minute: the tick that lands in a minute's first second.
    if now.second == 0:
        RegionLoadRow.objects.filter(minute__lt=now - LOAD_HISTORY).delete()
    for load in region_loads(now):
        if load.running:
            record_peak(load.region, load.running, now)
        # When each condition was last seen, or None if it has been clear for
        # clear_after. Exactly at the quota with no 429 is not throttling.
        last_seen = {
            AlertKind.THROTTLING: load.last_throttled_at,
            AlertKind.NEAR_QUOTA: now if is_near_quota(load) else None,
        }
        for kind, seen_at in last_seen.items():
            if seen_at is not None:
                record_condition(load, kind, seen_at, now)
            else:
                resolve_if_clear(load.region, kind, now - clear_after, now)


def record_condition(
    load: RegionLoad, kind: str, seen_at: datetime, now: datetime
) -> None:
    """Open the region's alert of this kind, or update the open one."""
    alert = QuotaAlert.objects.filter(
        region=load.region, kind=kind, resolved_at__isnull=True
    ).first()
    if alert is None:
        try:
            with transaction.atomic():
                alert = QuotaAlert.objects.create(
                    region=load.region,
                    kind=kind,
                    quota=load.quota,
                    opened_at=now,
                    last_seen_at=seen_at,
                    peak_concurrency=load.running,
                )
        except IntegrityError:
            # Another beat opened it first: one open alert per region and kind.
            return
        alert.throttled_attempts = throttled_count(alert, now)
        alert.save(update_fields=["throttled_attempts"])
        logger.warning("Opened %s alert for region %s", kind, load.region)
        notify(alert, "opened")
        return

    alert.last_seen_at = max(alert.last_seen_at, seen_at)
    alert.peak_concurrency = max(alert.peak_concurrency, load.running)
    alert.throttled_attempts = throttled_count(alert, now)
    alert.save(update_fields=["last_seen_at", "peak_concurrency", "throttled_attempts"])


def throttled_count(alert: QuotaAlert, now: datetime) -> int:
    """Count the region's 429 responses since the condition began."""
    since = alert.opened_at - timedelta(seconds=settings.FCDASH_ALERT_CLEAR_AFTER_S)
    return Attempt.objects.filter(
        invocation__region=alert.region,
        status_code=429,
        ended_at__gte=since,
        ended_at__lte=now,
    ).count()


def resolve_if_clear(region: str, kind: str, clear_since: datetime, now: datetime):
    """Resolve the open alert whose condition was last seen before `clear_since`."""
    alert = QuotaAlert.objects.filter(
        region=region, kind=kind, resolved_at__isnull=True, last_seen_at__lt=clear_since
    ).first()
    if alert is None:
        return
    # Conditional update, so two beats resolve (and notify) only once.
    changed = QuotaAlert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
        resolved_at=now
    )
    if changed:
        alert.resolved_at = now
        logger.info("Resolved %s alert for region %s", kind, region)
        notify(alert, "resolved")


def notify(alert: QuotaAlert, event: str) -> None:
    """Queue the webhook and email notifications after the change commits."""
    from .tasks import send_alert_notification

    if not (settings.FCDASH_ALERT_WEBHOOK_URL or settings.FCDASH_ALERT_EMAILS):
        return
    transaction.on_commit(
        lambda: send_alert_notification.delay(alert.pk, event), robust=True
    )
