"""The billing page: billed and unbilled attempts and GB-seconds for a period."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.http import urlencode

from .. import billing
from .access import login_required
from .charts import BILLING_SERIES, daily_billing_chart

TEMPLATE = "invocations/billing.html"

# Preset periods: URL value, label, length.
PRESETS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_PRESET = "7d"
CUSTOM = "custom"
# The chart shows at most this many days, the latest ones.
MAX_CHART_DAYS = 366

GROUP_TITLES = {"function": "By function", "region": "By region", "day": "By day"}
GROUP_HEADINGS = {"function": "Function", "region": "Region", "day": "Day (UTC)"}


@dataclass(frozen=True)
class Period:
    # A PRESETS key, or CUSTOM for a since/until chosen in the form.
    key: str
    label: str
    since: datetime | None
    until: datetime | None


class InvalidPeriod(ValueError):
    pass


def parse_time(name: str, text: str) -> datetime:
    """Parse a since or until value into a UTC time.

    Accepts what a datetime-local input sends (2025-03-01T12:00), ISO 8601
    with a time zone, or a date alone, which means its midnight. A value
    without a time zone is UTC.
    """
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            value = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        # parse_datetime and parse_date raise on well-formed impossible dates.
        value = None
    if value is None:
        raise InvalidPeriod(
            f"Invalid {name} {text!r}: use a date and time such as "
            "2025-03-01T12:00 (UTC), or ISO 8601 with a time zone."
        )
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidPeriod(
            f"Invalid {name} {text!r}: the time is out of range in UTC."
        ) from None


def read_period(params, now: datetime) -> tuple[Period, list[str]]:
    """Read the period from the query string and return it with any errors.

    A since or until in the URL makes a custom period. Otherwise `period`
    names a preset. With errors, the returned period is the default preset,
    for the form only: the page shows no figures.
    """
    since_text = params.get("since", "").strip()
    until_text = params.get("until", "").strip()
    default = preset_period(DEFAULT_PRESET, now)
    if not since_text and not until_text:
        key = params.get("period", DEFAULT_PRESET)
        if key not in PRESETS:
            choices = ", ".join(PRESETS)
            error = (
                f"Invalid period {key!r}: use one of {choices}, "
                "or a custom since and until."
            )
            return default, [error]
        return preset_period(key, now), []

    errors = []
    times = {}
    for name, text in (("since", since_text), ("until", until_text)):
        if not text:
            times[name] = None
            continue
        try:
            times[name] = parse_time(name, text)
        except InvalidPeriod as error:
            errors.append(str(error))
    if errors:
        return default, errors
    since, until = times["since"], times["until"]
    if since and until and since >= until:
        return default, [
            f"Invalid period: since {since_text!r} is not before until {until_text!r}."
        ]
    return Period(
        key=CUSTOM, label=custom_label(since, until), since=since, until=until
    ), []


def preset_period(key: str, now: datetime) -> Period:
    label, length = PRESETS[key]
    return Period(key=key, label=label, since=now - length, until=None)


def custom_label(since: datetime | None, until: datetime | None) -> str:
    start = f"{since:%Y-%m-%d %H:%M}" if since else "the first attempt"
    end = f"{until:%Y-%m-%d %H:%M}" if until else "now"
    return f"From {start} to {end} UTC"


def export_url(period: Period, group_by: str) -> str:
    params = {"group_by": group_by}
    if period.since:
        params["since"] = period.since.isoformat()
    if period.until:
        params["until"] = period.until.isoformat()
    return f"{reverse('api:billing-export')}?{urlencode(params)}"


def chart_days(
    period: Period, data_days: list[date], now: datetime
) -> tuple[date, int]:
    """Return the chart's first day and its number of days.

    The chart spans the period, clipped to today (or the last day with data)
    and to the latest MAX_CHART_DAYS days. A period open at the start begins
    with the first day that has data. Days are counted as ordinals, so a
    period that starts in year 1 cannot overflow.
    """
    last = max([now.date(), *data_days]).toordinal()
    if period.until:
        until_day = period.until.date().toordinal()
        # until is exclusive, so an until at midnight ends the day before.
        if period.until.time() == time.min:
            until_day -= 1
        last = max(1, min(last, until_day))
    if period.since:
        first = period.since.date().toordinal()
    else:
        first = min(data_days, default=date.fromordinal(last)).toordinal()
    first = min(max(first, last - MAX_CHART_DAYS + 1), last)
    return date.fromordinal(first), last - first + 1


def billing_figures(period: Period, now: datetime) -> dict:
    """Sum the period's attempts per function, region and day, with the chart."""
    summaries = billing.summarize_groupings(
        period.since, period.until, list(billing.GROUPINGS)
    )
    day_counts = {
        date.fromisoformat(row["day"]): {
            "billed": row["billed_attempts"],
            "unbilled": row["unbilled_attempts"],
        }
        for row in summaries["day"]["groups"]
    }
    first_day, days = chart_days(period, sorted(day_counts), now)
    groups = [
        {
            "key": group_by,
            "title": GROUP_TITLES[group_by],
            "heading": GROUP_HEADINGS[group_by],
            "rows": [{"name": row[group_by], **row} for row in summary["groups"]],
            "export_url": export_url(period, group_by),
        }
        for group_by, summary in summaries.items()
    ]
    return {
        "totals": summaries["day"]["totals"],
        "prices_configured": summaries["day"]["prices_configured"],
        "groups": groups,
        "chart": daily_billing_chart(first_day, days, day_counts),
        "chart_series": BILLING_SERIES,
    }


@login_required
def billing_page(request):
    now = timezone.now()
    period, errors = read_period(request.GET, now)
    context = {
        "section": "billing",
        "presets": [(key, label) for key, (label, _) in PRESETS.items()],
        "period": period,
        "since_text": request.GET.get("since", ""),
        "until_text": request.GET.get("until", ""),
        "errors": errors,
        "prices": billing.configured_prices(),
    }
    if not errors:
        context.update(billing_figures(period, now))
    return render(request, TEMPLATE, context, status=400 if errors else 200)


def add_cost_estimates(functions: list) -> bool:
    """Set `estimated_cost` on functions annotated with their billed sums.

    Returns whether prices are configured. Without prices the functions are
    left unchanged.
    """
    prices = billing.configured_prices()
    if prices is None:
        return False
    for function in functions:
        function.estimated_cost = billing.estimate_cost(
            function.billed_mb_ms, function.billed_attempts, prices
        )
    return True


def invocation_cost_estimate(invocation) -> str | None:
    """Estimate one invocation's cost, or return None without prices."""
    prices = billing.configured_prices()
    if prices is None:
        return None
    billed_mb_ms = invocation.memory_mb * invocation.billed_duration_ms
    return billing.estimate_cost(billed_mb_ms, invocation.billed_attempts, prices)
