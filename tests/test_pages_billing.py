"""The billing page: periods, figures summed from attempts, estimates, exports."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from invocations import policy
from invocations.models import Attempt
from invocations.views.billing import chart_days, read_period
from tests.test_pages_factories import (
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

BILLING = reverse("billing")
PRICE_PER_GB_SECOND = "0.0000166667"
PRICE_PER_MILLION = "0.2"
INFRASTRUCTURE = {
    policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
    policy.Outcome.INTERNAL_SYSTEM_ERROR,
    policy.Outcome.INSUFFICIENT_RESOURCES,
}


@pytest.fixture
def no_prices(settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = None
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = None


@pytest.fixture
def prices(settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = PRICE_PER_GB_SECOND
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = PRICE_PER_MILLION


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def attempts():
    """Attempts of two functions in two regions over the last ten days."""
    now = timezone.now()
    resize = make_function("resize", "cn-hangzhou", memory_mb=1024)
    thumbnail = make_function("thumbnail", "cn-shanghai", memory_mb=512)
    outcomes = [
        (resize, 1, policy.Outcome.SUCCESS, 200, 1200),
        (resize, 2, policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED, 429, 5),
        (resize, 50, policy.Outcome.FUNCTION_ERROR, 200, 300),
        (thumbnail, 3, policy.Outcome.INTERNAL_SYSTEM_ERROR, 500, 40),
        (thumbnail, 30, policy.Outcome.SUCCESS, 200, 700),
        (thumbnail, 100, policy.Outcome.INSUFFICIENT_RESOURCES, 503, 15),
        # Older than 7 days: only the 30-day period includes it.
        (thumbnail, 240, policy.Outcome.SUCCESS, 200, 9000),
    ]
    for index, (function, hours_ago, outcome, status_code, duration) in enumerate(
        outcomes
    ):
        invocation = make_invocation(
            function, request_id=f"bill-{index}", created_at=now
        )
        make_attempt(
            invocation,
            1,
            started_at=now - timedelta(hours=hours_ago),
            duration_ms=duration,
            outcome=outcome,
            status_code=status_code,
        )
    # A running attempt has no billing figures yet.
    running = make_invocation(resize, request_id="bill-running", created_at=now)
    make_attempt(running, 1, started_at=now - timedelta(minutes=1), duration_ms=None)
    return now


def expected_figures(since: datetime, until: datetime | None = None) -> dict:
    """Sum the ended attempts that started in the period, one row at a time."""
    rows = Attempt.objects.filter(
        started_at__gte=since, ended_at__isnull=False
    ).select_related("invocation")
    if until:
        rows = rows.filter(started_at__lt=until)
    rows = list(rows)
    billed = [row for row in rows if row.billed]
    mb_ms = sum(row.invocation.memory_mb * row.billed_duration_ms for row in billed)
    saved = [row for row in rows if not row.billed and row.outcome in INFRASTRUCTURE]
    return {
        "attempts": len(rows),
        "billed_attempts": len(billed),
        "unbilled_attempts": len(rows) - len(billed),
        "mb_ms": mb_ms,
        "billed_gb_seconds": round(mb_ms / 1024 / 1000, 6),
        "saved_share": round(len(saved) / len(rows), 4),
    }


def expected_cost(mb_ms: int, billed_attempts: int) -> str:
    cost = Decimal(mb_ms) / 1024 / 1000 * Decimal(PRICE_PER_GB_SECOND)
    cost += billed_attempts * Decimal(PRICE_PER_MILLION) / 1_000_000
    return str(cost.quantize(Decimal("0.000001")))


def test_billing_requires_login(client):
    response = client.get(BILLING)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_billing_readable_by_roles(client, role):
    client.force_login(make_user(role))

    response = client.get(BILLING)

    assert response.status_code == 200


def test_nav_links_billing(viewer_client):
    response = viewer_client.get(reverse("overview"))

    assert f'href="{BILLING}"' in response.text
    assert ">Billing</a>" in response.text


@pytest.mark.parametrize("period", ["7d", "30d"])
def test_totals_match_attempt_rows(viewer_client, attempts, no_prices, period):
    length = timedelta(days=int(period[:-1]))

    response = viewer_client.get(BILLING, {"period": period})

    expected = expected_figures(response.context["period"].since)
    totals = response.context["totals"]
    assert response.context["period"].since == pytest.approx(
        attempts - length, abs=timedelta(seconds=5)
    )
    assert totals["attempts"] == expected["attempts"]
    assert totals["billed_attempts"] == expected["billed_attempts"]
    assert totals["unbilled_attempts"] == expected["unbilled_attempts"]
    assert totals["billed_gb_seconds"] == expected["billed_gb_seconds"]
    assert totals["saved_share"] == expected["saved_share"]
    assert f">{expected['billed_attempts']}</span>" in response.text
    assert f">{expected['billed_gb_seconds']:.3f}</span>" in response.text
    assert f">{expected['saved_share'] * 100:.1f}%</span>" in response.text


def test_seven_days_excludes_older(viewer_client, attempts, no_prices):
    week = viewer_client.get(BILLING, {"period": "7d"}).context["totals"]
    month = viewer_client.get(BILLING, {"period": "30d"}).context["totals"]

    assert week["attempts"] == 6
    assert month["attempts"] == 7
    assert week["billed_attempts"] == 3
    assert week["unbilled_attempts"] == 3
    assert week["saved_share"] == 0.5


def test_groups_match_attempt_rows(viewer_client, attempts, no_prices):
    response = viewer_client.get(BILLING, {"period": "7d"})

    groups = {group["key"]: group["rows"] for group in response.context["groups"]}
    since = response.context["period"].since
    by_function = {row["name"]: row for row in groups["function"]}
    by_region = {row["name"]: row for row in groups["region"]}
    assert set(by_function) == {"resize", "thumbnail"}
    assert set(by_region) == {"cn-hangzhou", "cn-shanghai"}
    for name, region in (("resize", "cn-hangzhou"), ("thumbnail", "cn-shanghai")):
        rows = Attempt.objects.filter(
            invocation__function__name=name,
            started_at__gte=since,
            ended_at__isnull=False,
        )
        billed = rows.filter(billed=True).count()
        assert by_function[name]["billed_attempts"] == billed
        assert by_function[name]["unbilled_attempts"] == rows.count() - billed
        assert by_region[region]["billed_attempts"] == billed
    day_total = sum(row["attempts"] for row in groups["day"])
    assert day_total == 6


def test_custom_period_in_utc(viewer_client, attempts, no_prices):
    since = attempts - timedelta(hours=60)
    until = attempts - timedelta(minutes=30)
    # What a datetime-local input sends: no time zone, read as UTC.
    query = {
        "since": f"{since:%Y-%m-%dT%H:%M:%S}",
        "until": f"{until:%Y-%m-%dT%H:%M:%S}",
    }

    response = viewer_client.get(BILLING, query)

    period = response.context["period"]
    expected = expected_figures(period.since, period.until)
    assert response.status_code == 200
    assert period.key == "custom"
    assert period.since == since.replace(microsecond=0)
    assert response.context["totals"]["attempts"] == expected["attempts"]
    assert expected["attempts"] == 5
    assert f'value="{query["since"]}"' in response.text


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"since": "yesterday"}, "'yesterday'"),
        ({"until": "2025-13-01T00:00"}, "'2025-13-01T00:00'"),
        ({"since": "2025-03-02", "until": "2025-03-01"}, "'2025-03-02'"),
        ({"period": "1y"}, "'1y'"),
        ({"since": "0001-01-01T00:00+05:00"}, "'0001-01-01T00:00+05:00'"),
    ],
)
def test_bad_period_names_value(viewer_client, attempts, query, named):
    response = viewer_client.get(BILLING, query)

    assert response.status_code == 400
    assert "Invalid" in response.text
    assert named.replace("'", "&#x27;") in response.text
    assert "totals" not in response.context


@pytest.mark.parametrize(
    "query",
    [{"until": "0001-01-01T00:00"}, {"since": "9999-12-31T23:59:59"}],
)
def test_extreme_period_renders(viewer_client, attempts, no_prices, query):
    response = viewer_client.get(BILLING, query)

    assert response.status_code == 200
    assert response.context["totals"]["attempts"] == 0


def test_export_links_keep_period(viewer_client, attempts, no_prices):
    query = {"since": "2025-03-01T00:00", "until": "2025-03-08T00:00"}

    response = viewer_client.get(BILLING, query)

    export = reverse("api:billing-export")
    links = {group["key"]: group["export_url"] for group in response.context["groups"]}
    assert set(links) == {"function", "region", "day"}
    for group_by, link in links.items():
        parts = urlsplit(link)
        params = parse_qs(parts.query)
        assert parts.path == export
        assert params["group_by"] == [group_by]
        assert params["since"] == ["2025-03-01T00:00:00+00:00"]
        assert params["until"] == ["2025-03-08T00:00:00+00:00"]
        assert f'href="{link.replace("&", "&amp;")}"' in response.text


def test_export_link_downloads_csv(viewer_client, attempts, no_prices):
    response = viewer_client.get(BILLING, {"period": "7d"})
    link = response.context["groups"][0]["export_url"]

    export = viewer_client.get(link)

    body = b"".join(export.streaming_content).decode()
    assert export.status_code == 200
    assert export["Content-Type"] == "text/csv"
    assert body.splitlines()[0].startswith("function,attempts,")
    assert len(body.splitlines()) == 3


def test_estimate_hidden_without_prices(viewer_client, attempts, no_prices):
    response = viewer_client.get(BILLING)

    assert response.context["prices_configured"] is False
    assert "estimated_cost" not in response.context["totals"]
    assert "Estimated cost" not in response.text
    assert "estimate" not in response.text.lower()


def test_estimate_shown_with_prices(viewer_client, attempts, prices):
    response = viewer_client.get(BILLING, {"period": "7d"})

    expected = expected_figures(response.context["period"].since)
    cost = expected_cost(expected["mb_ms"], expected["billed_attempts"])
    assert response.context["prices_configured"] is True
    assert response.context["totals"]["estimated_cost"] == cost
    assert f">{cost}</span>" in response.text
    assert "Estimated cost (estimate)" in response.text
    assert PRICE_PER_GB_SECOND in response.text


def test_chart_has_billed_and_unbilled(viewer_client, attempts, no_prices):
    response = viewer_client.get(BILLING, {"period": "7d"})

    chart = response.context["chart"]
    assert chart.days == 8
    assert '<svg class="chart"' in response.text
    assert 'class="billing-billed"' in response.text
    assert 'class="billing-unbilled"' in response.text
    titles = " ".join(segment.title for segment in chart.segments)
    assert "billed attempts" in titles
    assert "unbilled attempts" in titles


def test_empty_period_renders(viewer_client, no_prices):
    response = viewer_client.get(BILLING, {"period": "24h"})

    assert response.status_code == 200
    assert response.context["totals"]["attempts"] == 0
    assert "No ended attempts in this period." in response.text


def test_chart_days_clipped():
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    period, errors = read_period({"since": "2024-01-01", "until": "2025-03-05"}, now)

    first, days = chart_days(period, [], now)

    assert errors == []
    assert days == 366
    assert first + timedelta(days=days - 1) == datetime(2025, 3, 4).date()


def test_chart_days_from_year_one():
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    period, errors = read_period({"until": "0001-01-01T00:00"}, now)

    first, days = chart_days(period, [], now)

    assert errors == []
    assert first == datetime(1, 1, 1).date()
    assert days == 1
