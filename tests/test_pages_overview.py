"""The overview page: counters per window and the attempts chart."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invocations import policy
from invocations.models import QuotaAlert, Status
from tests.test_pages_factories import (
    T0,
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=1)


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


def test_overview_query_count_is_constant(viewer_client, history):
    with CaptureQueriesContext(connection) as few:
        get_overview(viewer_client)
    function = make_function("more")
    for index in range(20):
        invocation = make_invocation(function, created_at=NOW - timedelta(hours=1))
        make_attempt(invocation, 1, started_at=NOW - timedelta(minutes=index))

    with CaptureQueriesContext(connection) as many:
        get_overview(viewer_client)

    assert len(many.captured_queries) == len(few.captured_queries)
