"""Billing figures summed from the attempts table.

An attempt is billed when its row of the failure table is billed. Its GB-seconds are the
invocation's memory in GB times the attempt's billed duration. Money is
shown only when the operator configured prices, and always as an estimate.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate

from . import policy
from .models import Attempt

# Outcomes the platform does not bill, that fcdash retries with backoff.
INFRASTRUCTURE_OUTCOMES = [
    str(row.outcome)
    for row in policy.ROWS
    if row.retry is policy.RetryKind.INFRASTRUCTURE and not row.billed
]

GROUPINGS = {
    "function": "invocation__function__name",
    "region": "invocation__region",
    "day": "day",
}

# MB x ms per GB-second.
MB_MS_PER_GB_S = 1024 * 1000


@dataclass(frozen=True)
class Prices:
    per_gb_second: Decimal
    per_million_invocations: Decimal


def configured_prices() -> Prices | None:
    per_gb_second = settings.FCDASH_PRICE_PER_GB_SECOND
    per_million = settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS
    if per_gb_second is None and per_million is None:
        return None
    return Prices(
        per_gb_second=Decimal(per_gb_second or 0),
        per_million_invocations=Decimal(per_million or 0),
    )


def attempts_in_period(since: datetime | None, until: datetime | None) -> QuerySet:
    attempts = Attempt.objects.filter(ended_at__isnull=False)
    if since:
        attempts = attempts.filter(started_at__gte=since)
    if until:
        attempts = attempts.filter(started_at__lt=until)
    return attempts


def aggregates() -> dict:
    return {
        "attempts": Count("id"),
        "billed_attempts": Count("id", filter=Q(billed=True)),
        "unbilled_attempts": Count("id", filter=Q(billed=False)),
        "unbilled_infrastructure_errors": Count(
            "id", filter=Q(billed=False, outcome__in=INFRASTRUCTURE_OUTCOMES)
        ),
        # Not named billed_duration_ms: an alias may not shadow the field
        # that the next sum reads.
        "billed_ms": Coalesce(Sum("billed_duration_ms"), 0),
        "billed_mb_ms": Coalesce(
            Sum(F("billed_duration_ms") * F("invocation__memory_mb")), 0
        ),
    }


def finish_row(row: dict, prices: Prices | None) -> dict:
    """Turn raw sums into the figures shown: GB-seconds, saved share, estimate."""
    mb_ms = row.pop("billed_mb_ms")
    row["billed_duration_ms"] = row.pop("billed_ms")
    row["billed_gb_seconds"] = round(mb_ms / MB_MS_PER_GB_S, 6)
    attempts = row["attempts"]
    saved = row["unbilled_infrastructure_errors"]
    row["saved_share"] = round(saved / attempts, 4) if attempts else 0.0
    if prices is not None:
        row["estimated_cost"] = estimate_cost(mb_ms, row["billed_attempts"], prices)
    return row


def estimate_cost(billed_mb_ms: int, billed_attempts: int, prices: Prices) -> str:
    """Estimate the cost of billed attempts from the configured prices."""
    cost = Decimal(billed_mb_ms) / MB_MS_PER_GB_S * prices.per_gb_second
    cost += billed_attempts * prices.per_million_invocations / 1_000_000
    return str(cost.quantize(Decimal("0.000001")))


def summarize(
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str | None = None,
) -> dict:
    """Return the period's totals and, with `group_by`, one row per group."""
    if group_by:
        return summarize_groupings(since, until, [group_by])[group_by]
    prices = configured_prices()
    totals = attempts_in_period(since, until).aggregate(**aggregates())
    return {
        "totals": finish_row(totals, prices),
        "groups": [],
        "prices_configured": prices is not None,
    }


def summarize_groupings(
    since: datetime | None, until: datetime | None, groupings: list[str]
) -> dict[str, dict]:
    """Summarize the period once per grouping, from a single grouped query.

    The query groups by function, region and day together, so the attempts
    table is read once. Its rows are few (one per function, region and day),
    and each grouping's sums and the totals are added up from them.
    """
    prices = configured_prices()
    keys = list(GROUPINGS.values())
    rows = list(
        attempts_in_period(since, until)
        .annotate(day=TruncDate("started_at"))
        .values(*keys)
        .annotate(**aggregates())
        .order_by()
    )
    sum_fields = list(aggregates())
    totals = finish_row(add_up(rows, sum_fields), prices)
    summaries = {}
    for group_by in groupings:
        key = GROUPINGS[group_by]
        buckets: dict = {}
        for row in rows:
            buckets.setdefault(row[key], []).append(row)
        groups = [
            {group_by: str(value), **finish_row(add_up(members, sum_fields), prices)}
            for value, members in sorted(buckets.items(), key=lambda item: item[0])
        ]
        summaries[group_by] = {
            "totals": totals,
            "groups": groups,
            "prices_configured": prices is not None,
        }
    return summaries


def add_up(rows: list[dict], fields: list[str]) -> dict:
    return {field: sum(row[field] for row in rows) for field in fields}
