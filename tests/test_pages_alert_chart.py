"""The alerts page's load charts: running attempts and 429s per minute."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from invocations import alerts, policy
from invocations.models import FailurePolicy, Region, RegionLoad
from invocations.views.alerts import (
    CHART_MINUTES,
    running_per_minute,
    throttled_per_minute,
)
from tests.test_pages_factories import (
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

ALERTS = reverse("alert-list")
# A fixed clock for the counting tests: 12:30:30, so the window starts 11:31.
NOW = datetime(2025, 3, 1, 12, 30, 30, tzinfo=UTC)
FIRST_MINUTE = datetime(2025, 3, 1, 11, 31, tzinfo=UTC)


def minute_index(moment: datetime) -> int:
    return int((moment - FIRST_MINUTE) / timedelta(minutes=1))


def add_attempt(function, request_id, *, started_at, ended_at=None, **fields):
    """Create an attempt from `started_at` to `ended_at`, or a running one."""
    invocation = make_invocation(function, request_id=request_id)
    duration_ms = None
    if ended_at is not None:
        duration_ms = int((ended_at - started_at) / timedelta(milliseconds=1))
    lease_expires_at = None if ended_at else started_at + timedelta(hours=1)
    fields.setdefault("lease_expires_at", lease_expires_at)
    return make_attempt(
        invocation, 1, started_at=started_at, duration_ms=duration_ms, **fields
    )


def add_throttled(function, request_id, ended_at):
    return add_attempt(
        function,
        request_id,
        started_at=ended_at - timedelta(milliseconds=5),
        ended_at=ended_at,
        outcome=policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        status_code=429,
        error_type="ConcurrencyLimitExceeded",
    )


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def busy_region():
    """A region with a quota of 2, two running attempts and three 429s.

    The beat job's alert evaluation records the running peak, as it does
    every second in production.
    """
    Region.objects.create(name="cn-tiny", quota=2)
    function = make_function("tiny", "cn-tiny")
    now = timezone.now()
    add_attempt(function, "running-1", started_at=now - timedelta(minutes=5))
    add_attempt(function, "running-2", started_at=now - timedelta(minutes=2))
    for index in range(3):
        add_throttled(function, f"throttled-{index}", now - timedelta(minutes=3))
    alerts.evaluate_alerts()
    return function


def test_alerts_requires_login(client):
    response = client.get(ALERTS)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_chart_draws_quota_line(viewer_client, busy_region):
    response = viewer_client.get(ALERTS)

    charts = response.context["region_charts"]
    chart = charts[0]
    assert response.status_code == 200
    assert [chart.region for chart in charts] == ["cn-tiny"]
    assert chart.quota == 2
    assert chart.peak_running == 2
    assert chart.throttled_total == 3
    assert len(chart.throttled_bars) == 1
    assert chart.running_bars
    assert 'class="quota-line"' in response.text
    assert f'y1="{chart.quota_line.y1}"' in response.text
    assert ">quota 2</text>" in response.text
    assert "3 429 responses" in response.text
    assert 'class="outcome-running"' in response.text
    assert 'class="outcome-throttled"' in response.text


def test_quota_line_below_top(viewer_client, busy_region):
    chart = viewer_client.get(ALERTS).context["region_charts"][0]

    assert chart.running_bottom > chart.quota_line.y1 > chart.count_labels[1].y - 4
    assert chart.quota_line.y1 == chart.quota_line.y2


def test_default_quota_without_region(viewer_client):
    FailurePolicy.objects.update_or_create(pk=1, defaults={"default_region_quota": 7})
    function = make_function("plain", "cn-plain")
    add_attempt(function, "plain-1", started_at=timezone.now() - timedelta(minutes=1))
    alerts.evaluate_alerts()

    chart = viewer_client.get(ALERTS).context["region_charts"][0]

    assert chart.region == "cn-plain"
    assert chart.quota == 7


def test_no_load_shows_no_chart(viewer_client):
    response = viewer_client.get(ALERTS)

    assert response.context["region_charts"] == []
    assert "No region ran attempts or returned 429" in response.text
    assert "<svg" not in response.text


def test_running_uses_recorded_peaks():
    function = make_function("fn", "cn-hangzhou")
    first = add_attempt(
        function, "a", started_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    )
    add_attempt(function, "b", started_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    add_attempt(function, "c", started_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    # Three running at 12:10:05, one of them ends, two at 12:10:40: the
    # minute's peak stays 3. At 12:11:20 two still run.
    with time_machine.travel(datetime(2025, 3, 1, 12, 10, 5, tzinfo=UTC)):
        alerts.evaluate_alerts()
    first.ended_at = datetime(2025, 3, 1, 12, 10, 30, tzinfo=UTC)
    first.save()
    with time_machine.travel(datetime(2025, 3, 1, 12, 10, 40, tzinfo=UTC)):
        alerts.evaluate_alerts()
    with time_machine.travel(datetime(2025, 3, 1, 12, 11, 20, tzinfo=UTC)):
        alerts.evaluate_alerts()

    counts = running_per_minute(FIRST_MINUTE)["cn-hangzhou"]

    minute = minute_index(datetime(2025, 3, 1, 12, 10, tzinfo=UTC))
    assert len(counts) == CHART_MINUTES
    assert counts[minute : minute + 2] == [3, 2]
    assert sum(counts) == 5


def test_expired_lease_stops_counting():
    function = make_function("fn", "cn-hangzhou")
    add_attempt(function, "live", started_at=datetime(2025, 3, 1, 12, 10, tzinfo=UTC))
    add_attempt(
        function,
        "lost",
        started_at=datetime(2025, 3, 1, 12, 10, 0, tzinfo=UTC),
        lease_expires_at=datetime(2025, 3, 1, 12, 12, 30, tzinfo=UTC),
    )
    with time_machine.travel(datetime(2025, 3, 1, 12, 12, 10, tzinfo=UTC)):
        alerts.evaluate_alerts()
    with time_machine.travel(datetime(2025, 3, 1, 12, 13, 10, tzinfo=UTC)):
        alerts.evaluate_alerts()

    counts = running_per_minute(FIRST_MINUTE)["cn-hangzhou"]

    minute = minute_index(datetime(2025, 3, 1, 12, 12, tzinfo=UTC))
    assert counts[minute : minute + 2] == [2, 1]


def test_old_load_rows_pruned():
    function = make_function("fn", "cn-hangzhou")
    add_attempt(
        function,
        "live",
        started_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        lease_expires_at=datetime(2025, 3, 3, tzinfo=UTC),
    )
    with time_machine.travel(datetime(2025, 3, 1, 12, 10, 5, tzinfo=UTC)):
        alerts.evaluate_alerts()
    with time_machine.travel(datetime(2025, 3, 2, 12, 11, 0, tzinfo=UTC), tick=False):
        alerts.evaluate_alerts()
    assert list(RegionLoad.objects.values_list("minute", flat=True)) == [
        datetime(2025, 3, 2, 12, 11, tzinfo=UTC)
    ]


def test_throttled_counts_by_end_minute():
    tiny = make_function("tiny", "cn-tiny")
    other = make_function("other", "cn-other")
    add_throttled(tiny, "t-1", datetime(2025, 3, 1, 12, 20, 1, tzinfo=UTC))
    add_throttled(tiny, "t-2", datetime(2025, 3, 1, 12, 20, 59, tzinfo=UTC))
    add_throttled(other, "t-3", datetime(2025, 3, 1, 11, 31, 0, tzinfo=UTC))
    add_throttled(other, "t-old", datetime(2025, 3, 1, 11, 30, 59, tzinfo=UTC))

    counts = throttled_per_minute(FIRST_MINUTE, NOW)

    assert (
        counts["cn-tiny"][minute_index(datetime(2025, 3, 1, 12, 20, tzinfo=UTC))] == 2
    )
    assert sum(counts["cn-tiny"]) == 2
    assert counts["cn-other"][0] == 1
    assert sum(counts["cn-other"]) == 1


def test_chart_queries_bounded(viewer_client, busy_region):
    for index in range(5):
        function = make_function(f"fn-{index}", f"cn-region-{index}")
        add_attempt(function, f"r-{index}", started_at=timezone.now())
        add_throttled(function, f"t-{index}", timezone.now() - timedelta(seconds=10))
    alerts.evaluate_alerts()

    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(ALERTS)

    attempt_queries = [
        query for query in queries if "invocations_attempt" in query["sql"]
    ]
    assert len(response.context["region_charts"]) == 6
    assert len(attempt_queries) == 1
