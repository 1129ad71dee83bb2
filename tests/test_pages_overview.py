"""The overview page: counters per window, hourly charts, top failing functions."""

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invocations import policy
from invocations.models import Attempt, QuotaAlert, Status
from tests.test_pages_factories import (
    T0,
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=1)
# The first hour of the hourly charts. NOW is on the hour and starts the
# charts' last bar.
FIRST_CHART_HOUR = NOW - timedelta(hours=23)
HISTORY_LINK = re.compile(r'href="([^"]*\?function=[^"]*)"')


@pytest.fixture
def history():
    """Invocations 30 minutes, 5 hours and 3 days before NOW, and a quota alert."""
    function = make_function("resize")
    recent = make_invocation(
        function, Status.SUCCEEDED, created_at=NOW - timedelta(minutes=30)
    )
    make_attempt(recent, 1, started_at=NOW - timedelta(minutes=30))
    earlier = make_invocation(
        function, Status.FAILED, created_at=NOW - timedelta(hours=5)
    )
    make_attempt(
        earlier,
        1,
        started_at=NOW - timedelta(hours=5),
        outcome=policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        status_code=429,
    )
    make_attempt(
        earlier,
        2,
        started_at=NOW - timedelta(hours=5) + timedelta(seconds=1),
        outcome=policy.Outcome.FUNCTION_ERROR,
    )
    make_invocation(function, Status.RETRYING, created_at=NOW - timedelta(days=3))
    QuotaAlert.objects.create(
        region="cn-hangzhou",
        kind="throttling",
        quota=100,
        opened_at=NOW - timedelta(hours=5),
    )


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


def get_overview(client):
    with time_machine.travel(NOW, tick=False):
        return client.get(reverse("overview"))


def test_overview_counts_per_window(viewer_client, history):
    response = get_overview(viewer_client)

    hour, day, week = response.context["windows"]
    assert [hour["invocations"], day["invocations"], week["invocations"]] == [1, 2, 3]
    assert [hour["failed"], day["failed"], week["failed"]] == [0, 1, 1]
    assert [hour["retrying"], day["retrying"], week["retrying"]] == [0, 0, 1]
    assert [hour["billed"], day["billed"], week["billed"]] == [1, 2, 2]
    assert [hour["unbilled"], day["unbilled"], week["unbilled"]] == [0, 1, 1]
    assert [hour["alerts_opened"], day["alerts_opened"]] == [0, 1]
    assert hour["success_rate"] == 1.0
    assert day["success_rate"] == 0.5


def test_overview_shows_current_counts(viewer_client, history):
    response = get_overview(viewer_client)

    assert response.context["current"]["retrying"] == 1
    assert response.context["open_alert_count"] == 1


def test_overview_chart_stacks_outcomes(viewer_client, history):
    response = get_overview(viewer_client)

    chart = response.context["chart"]
    totals = {key: count for key, _, count in chart.legend}
    assert chart.total == 3
    assert totals["success"] == 1
    assert totals["throttled"] == 1
    assert totals["function"] == 1
    assert len(chart.segments) == 3
    assert '<svg class="chart"' in response.text


def test_overview_empty_database(viewer_client):
    response = get_overview(viewer_client)

    assert response.status_code == 200
    assert response.context["windows"][0]["success_rate"] is None
    assert response.context["chart"].total == 0
    assert response.context["billing_chart"].total == 0
    assert response.context["top_failing"] == []
    assert "No failed invocations in the last 24 hours." in response.text


def test_overview_query_count_is_constant(viewer_client, history):
    with CaptureQueriesContext(connection) as few:
        get_overview(viewer_client)
    function = make_function("more")
    for index in range(20):
        invocation = make_invocation(function, created_at=NOW - timedelta(hours=1))
        make_attempt(invocation, 1, started_at=NOW - timedelta(minutes=index))
    # More failing functions than the table shows, with billed and unbilled
    # attempts in several hours.
    for number in range(8):
        failing = make_function(f"failing-{number}")
        for index in range(number + 1):
            invocation = make_invocation(
                failing, Status.FAILED, created_at=NOW - timedelta(hours=index)
            )
            make_attempt(
                invocation,
                1,
                started_at=NOW - timedelta(hours=index),
                outcome=policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
                status_code=429,
            )
            make_attempt(
                invocation,
                2,
                started_at=NOW - timedelta(hours=index) + timedelta(seconds=1),
                outcome=policy.Outcome.FUNCTION_ERROR,
            )

    with CaptureQueriesContext(connection) as many:
        response = get_overview(viewer_client)

    assert len(response.context["top_failing"]) == 5
    assert response.context["billing_chart"].total == 3 + 20 + 2 * 36
    assert len(many.captured_queries) == len(few.captured_queries)


def make_billing_attempts():
    """Create billed, unbilled and running attempts in and out of the chart."""
    function = make_function("bill")
    outcomes = [
        policy.Outcome.SUCCESS,
        policy.Outcome.FUNCTION_ERROR,
        policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        policy.Outcome.INTERNAL_SYSTEM_ERROR,
    ]
    # Minutes before NOW. 1410 minutes (23.5 h) is inside the counters' day
    # but before the chart's first hour, and 2880 (2 days) is outside both.
    minutes_before = [0, 5, 59, 61, 300, 301, 700, 1379, 1380, 1410, 2880]
    for index, minutes in enumerate(minutes_before):
        started_at = NOW - timedelta(minutes=minutes)
        invocation = make_invocation(function, created_at=started_at)
        for number in (1, 2):
            make_attempt(
                invocation,
                number,
                started_at=started_at + timedelta(seconds=number),
                outcome=outcomes[(index + number) % len(outcomes)],
            )
        if index % 3 == 0:
            make_attempt(
                invocation,
                3,
                started_at=started_at + timedelta(seconds=3),
                duration_ms=None,
            )


def test_overview_billing_chart_counts_attempts(viewer_client):
    make_billing_attempts()

    chart = get_overview(viewer_client).context["billing_chart"]

    in_chart = Attempt.objects.filter(
        started_at__gte=FIRST_CHART_HOUR, ended_at__isnull=False
    )
    billed = in_chart.filter(billed=True).count()
    unbilled = in_chart.filter(billed=False).count()
    totals = {key: count for key, _, count in chart.legend}
    assert billed > 0
    assert unbilled > 0
    assert totals["billed"] == billed
    assert totals["unbilled"] == unbilled
    assert chart.total == billed + unbilled


def test_overview_billing_chart_leaves_out_running(viewer_client):
    make_billing_attempts()

    chart = get_overview(viewer_client).context["billing_chart"]

    started_in_chart = Attempt.objects.filter(started_at__gte=FIRST_CHART_HOUR)
    running = started_in_chart.filter(ended_at__isnull=True).count()
    assert running > 0
    assert chart.total == started_in_chart.count() - running


def test_overview_billing_chart_bars_per_hour(viewer_client):
    function = make_function("bill")
    invocation = make_invocation(function, created_at=NOW - timedelta(hours=5))
    started_at = NOW - timedelta(hours=5) + timedelta(minutes=10)
    make_attempt(invocation, 1, started_at=started_at, outcome=policy.Outcome.SUCCESS)
    make_attempt(
        invocation,
        2,
        started_at=started_at + timedelta(seconds=1),
        outcome=policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        status_code=429,
    )

    response = get_overview(viewer_client)

    segments = response.context["billing_chart"].segments
    assert [segment.css_class for segment in segments] == [
        "billing-billed",
        "billing-unbilled",
    ]
    assert segments[0].title == "07:00 UTC: 1 billed attempts"
    assert segments[1].title == "07:00 UTC: 1 unbilled attempts"
    assert segments[0].x == segments[1].x
    assert 'class="billing-billed"' in response.text


def make_invocations(function, status, count, *, hours_ago=1):
    for _ in range(count):
        make_invocation(function, status, created_at=NOW - timedelta(hours=hours_ago))


def test_overview_top_failing_order_and_counts(viewer_client):
    alpha = make_function("alpha")
    make_invocations(alpha, Status.FAILED, 4)
    make_invocations(alpha, Status.SUCCEEDED, 1)
    # Older than 24 hours, so neither failed nor invocations count them.
    make_invocations(alpha, Status.FAILED, 2, hours_ago=25)
    bravo = make_function("bravo")
    make_invocations(bravo, Status.FAILED, 3)
    charlie = make_function("charlie")
    make_invocations(charlie, Status.FAILED, 3)
    make_invocations(charlie, Status.RETRYING, 3)
    delta = make_function("delta")
    make_invocations(delta, Status.FAILED, 1)
    make_invocations(delta, Status.SUCCEEDED, 3)
    echo = make_function("echo")
    make_invocations(echo, Status.FAILED, 1)
    foxtrot = make_function("foxtrot")
    make_invocations(foxtrot, Status.FAILED, 1)
    make_invocations(foxtrot, Status.SUCCEEDED, 1)

    rows = get_overview(viewer_client).context["top_failing"]

    # Most failed first, then the higher failure rate. delta is sixth.
    assert [row["function_name"] for row in rows] == [
        "alpha",
        "bravo",
        "charlie",
        "echo",
        "foxtrot",
    ]
    assert [row["failed"] for row in rows] == [4, 3, 3, 1, 1]
    assert [row["invocations"] for row in rows] == [5, 3, 6, 1, 2]
    assert [row["failure_rate"] for row in rows] == pytest.approx(
        [0.8, 1.0, 0.5, 1.0, 0.5]
    )


def test_overview_top_failing_shows_rates(viewer_client):
    function = make_function("resize")
    make_invocations(function, Status.FAILED, 1)
    make_invocations(function, Status.SUCCEEDED, 2)

    response = get_overview(viewer_client)

    assert "33.3%" in response.text


def test_overview_top_failing_leaves_out_no_failures(viewer_client):
    failing = make_function("failing")
    make_invocations(failing, Status.FAILED, 1)
    healthy = make_function("healthy")
    make_invocations(healthy, Status.SUCCEEDED, 5)
    make_invocations(healthy, Status.RETRYING, 2)
    failed_long_ago = make_function("failed-long-ago")
    make_invocations(failed_long_ago, Status.FAILED, 3, hours_ago=30)
    make_invocations(failed_long_ago, Status.SUCCEEDED, 1)

    response = get_overview(viewer_client)

    names = [row["function_name"] for row in response.context["top_failing"]]
    assert names == ["failing"]
    assert "function=healthy" not in response.text
    assert "function=failed-long-ago" not in response.text


def test_overview_top_failing_links_to_history(viewer_client):
    function = make_function("resize")
    make_invocations(function, Status.FAILED, 2)
    make_invocations(function, Status.SUCCEEDED, 1)
    other = make_function("other")
    make_invocations(other, Status.FAILED, 1, hours_ago=2)

    response = get_overview(viewer_client)

    links = [html.unescape(href) for href in HISTORY_LINK.findall(response.text)]
    assert len(links) == 2
    url = urlsplit(links[0])
    assert url.path == reverse("invocation-list")
    query = parse_qs(url.query)
    since = datetime.fromisoformat(query.pop("since")[0]).replace(tzinfo=UTC)
    assert query == {"function": ["resize"], "status": ["Failed"]}
    window = response.context["now"] - since
    assert timedelta(hours=24) <= window < timedelta(hours=24, minutes=1)
    other_query = parse_qs(urlsplit(links[1]).query)
    assert other_query.pop("since") == [f"{since:%Y-%m-%dT%H:%M}"]
    assert other_query == {"function": ["other"], "status": ["Failed"]}

    history = viewer_client.get(links[0])
    listed = history.context["invocations"]
    assert len(listed) == 2
    assert {invocation.function.name for invocation in listed} == {"resize"}
    assert {invocation.status for invocation in listed} == {Status.FAILED}
