"""The invocation detail page, its live partial, and the retry and stop actions."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from invocations import policy
from invocations.models import Attempt, AuditEvent, Status
from tests.test_pages_factories import (
    T0,
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def operator_client(client):
    client.force_login(make_user("operator"))
    return client


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def function():
    return make_function("resize", memory_mb=1024)


@pytest.fixture
def failed(function):
    """A failed async invocation whose two attempts got function errors."""
    invocation = make_invocation(
        function,
        Status.FAILED,
        request_id="req-failed",
        attempts_made=2,
        function_error_retries_used=1,
        infrastructure_retries_used=0,
        first_failure_at=T0 + timedelta(milliseconds=100),
        finished_at=T0 + timedelta(minutes=5, seconds=30),
        outcome=policy.Outcome.FUNCTION_ERROR,
        billed_attempts=2,
        billed_duration_ms=300,
    )
    make_attempt(
        invocation,
        1,
        started_at=T0,
        duration_ms=100,
        outcome=policy.Outcome.FUNCTION_ERROR,
        error_type="UnhandledInvocationError",
        error_message="division by zero",
    )
    make_attempt(
        invocation,
        2,
        started_at=T0 + timedelta(milliseconds=603),
        duration_ms=200,
        outcome=policy.Outcome.FUNCTION_ERROR,
        error_type="UnhandledInvocationError",
        error_message="division by zero",
        response_preview='{"errorMessage": "division by zero"}',
    )
    return invocation


def detail_url(invocation):
    return reverse("invocation-detail", args=[invocation.request_id])


def live_url(invocation):
    return reverse("invocation-live", args=[invocation.request_id])


def test_detail_shows_gap_between_attempts(viewer_client, failed):
    response = viewer_client.get(detail_url(failed))

    rows = response.context["attempt_rows"]
    assert rows[0].gap_ms is None
    assert rows[1].gap_ms == 503
    assert "0.503 s" in response.text


def test_detail_shows_budgets(viewer_client, failed):
    response = viewer_client.get(detail_url(failed))

    assert "function-error retries 1 of 3" in response.text
    assert "infrastructure window used 0:05 of 5:00" in response.text


def test_detail_window_counts_to_now_while_moving(viewer_client, function):
    invocation = make_invocation(
        function,
        Status.RETRYING,
        first_failure_at=T0,
        infrastructure_retries_used=3,
        next_attempt_at=T0 + timedelta(hours=1, minutes=20),
    )

    with time_machine.travel(T0 + timedelta(hours=1, minutes=12), tick=False):
        response = viewer_client.get(detail_url(invocation))

    assert "infrastructure window used 1:12 of 5:00" in response.text


def test_detail_window_uses_policy_snapshot(viewer_client, function):
    snapshot = policy.PolicyConfig(
        max_async_retry_attempts=8, infrastructure_window_s=600
    ).to_dict()
    invocation = make_invocation(
        function,
        Status.FAILED,
        policy=snapshot,
        first_failure_at=T0,
        finished_at=T0 + timedelta(hours=2),
    )

    response = viewer_client.get(detail_url(invocation))

    assert "function-error retries 0 of 8" in response.text
    assert "infrastructure window used 0:10 of 0:10" in response.text


def test_detail_countdown_has_iso_time(viewer_client, function):
    invocation = make_invocation(
        function, Status.RETRYING, next_attempt_at=T0 + timedelta(seconds=2)
    )

    response = viewer_client.get(detail_url(invocation))

    assert 'data-countdown="2025-03-01T12:00:02.000+00:00"' in response.text


def test_detail_shows_billing_per_attempt(viewer_client, failed):
    response = viewer_client.get(detail_url(failed))

    # 1024 MB for 0.1 s and 0.2 s.
    assert "0.100000" in response.text
    assert "0.200000" in response.text
    assert "0.300000 GB-s" in response.text


def test_detail_shows_remediation(viewer_client, failed):
    response = viewer_client.get(detail_url(failed))

    assert "Troubleshoot the function code" in response.text
    assert "(division by zero)" in response.text


def test_detail_draws_timeline(viewer_client, failed):
    response = viewer_client.get(detail_url(failed))

    timeline = response.context["timeline"]
    assert [bar.css_class for bar in timeline.bars] == ["outcome-function"] * 2
    assert len(timeline.gaps) == 1
    # The axis spans 0.803 s, so the 0.503 s gap starts at 100/803 of the width.
    assert timeline.gaps[0].x == pytest.approx(800 * 100 / 803, abs=0.01)
    assert 'class="timeline"' in response.text


def test_detail_escapes_error_message(viewer_client, function):
    invocation = make_invocation(function, Status.FAILED, outcome="function_error")
    make_attempt(
        invocation,
        1,
        started_at=T0,
        outcome=policy.Outcome.FUNCTION_ERROR,
        error_message="<script>alert('message')</script>",
        response_preview="<script>alert('preview')</script><img src=x onerror=1>",
    )

    response = viewer_client.get(detail_url(invocation))

    assert "<script>alert(" not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(&#x27;message&#x27;)" in response.text
    assert "&lt;script&gt;alert(&#x27;preview&#x27;)" in response.text


def test_detail_escapes_payload(viewer_client, function):
    invocation = make_invocation(function, payload=b"<b>bold</b>")

    response = viewer_client.get(detail_url(invocation))

    assert "<b>bold</b>" not in response.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in response.text


def test_detail_cuts_long_previews(viewer_client, function):
    invocation = make_invocation(function, payload=b"x" * 10_000)

    response = viewer_client.get(detail_url(invocation))

    assert "x" * 4096 in response.text
    assert "x" * 4097 not in response.text
    assert "First 4096 of 10000" in response.text


def test_live_partial_is_286_when_final(viewer_client, failed):
    response = viewer_client.get(live_url(failed), headers=HTMX)

    assert response.status_code == 286
    assert "<html" not in response.text
    assert 'id="invocation-live"' in response.text
    assert "hx-trigger" not in response.text


def test_live_partial_polls_while_moving(viewer_client, function):
    invocation = make_invocation(function, Status.RUNNING)
    make_attempt(invocation, 1, started_at=T0, duration_ms=None)

    response = viewer_client.get(live_url(invocation), headers=HTMX)

    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.text
    assert 'hx-sync="this:drop"' in response.text
    assert "running" in response.text


def test_live_partial_shows_new_attempt(viewer_client, function):
    invocation = make_invocation(function, Status.RETRYING)
    make_attempt(invocation, 1, started_at=T0, outcome="internal_system_error")
    first = viewer_client.get(live_url(invocation), headers=HTMX)

    make_attempt(invocation, 2, started_at=T0 + timedelta(seconds=1))
    invocation.status = Status.SUCCEEDED
    invocation.save()
    second = viewer_client.get(live_url(invocation), headers=HTMX)

    assert 'id="attempt-2"' not in first.text
    assert 'id="attempt-2"' in second.text
    assert second.status_code == 286


def test_retry_hands_failed_to_worker(
    operator_client, failed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_client.post(
            reverse("invocation-retry", args=["req-failed"])
        )

    failed.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == detail_url(failed)
    assert failed.status == Status.ENQUEUED
    assert failed.attempts.count() == 2
    assert len(callbacks) == 1
    event = AuditEvent.objects.get()
    assert event.action == "manual_retry"
    assert event.target == "req-failed"
    assert event.user.username == "operator-user"


def test_retry_htmx_returns_live_partial(operator_client, failed):
    response = operator_client.post(
        reverse("invocation-retry", args=["req-failed"]), headers=HTMX
    )

    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Manual retry requested" in response.text
    assert "status-enqueued" in response.text
    assert 'hx-trigger="every 1s"' in response.text


def test_retry_now_on_retrying(operator_client, function):
    invocation = make_invocation(
        function, Status.RETRYING, next_attempt_at=T0 + timedelta(hours=1)
    )

    with time_machine.travel(T0, tick=False):
        response = operator_client.post(
            reverse("invocation-retry", args=[invocation.request_id]), headers=HTMX
        )

    invocation.refresh_from_db()
    assert response.status_code == 200
    assert "Retry now requested" in response.text
    assert invocation.status == Status.RETRYING
    assert invocation.next_attempt_at == T0
    assert AuditEvent.objects.get().action == "retry_now"


def test_retry_conflict_is_409_with_message(operator_client, function):
    invocation = make_invocation(function, Status.RUNNING)

    response = operator_client.post(
        reverse("invocation-retry", args=[invocation.request_id])
    )

    assert response.status_code == 409
    assert "cannot be retried now" in response.text
    assert AuditEvent.objects.count() == 0


def test_stop_conflict_htmx_is_409_partial(operator_client, failed):
    response = operator_client.post(
        reverse("invocation-stop", args=["req-failed"]), headers=HTMX
    )

    assert response.status_code == 409
    assert "<html" not in response.text
    assert "there is nothing to stop" in response.text


def test_stop_retrying_invocation(operator_client, function):
    invocation = make_invocation(function, Status.RETRYING)

    response = operator_client.post(
        reverse("invocation-stop", args=[invocation.request_id]), follow=True
    )

    invocation.refresh_from_db()
    assert invocation.status == Status.STOPPED
    assert "Retries stopped" in response.text
    assert AuditEvent.objects.get().action == "stop"


def test_stop_running_goes_via_stopping(operator_client, function):
    invocation = make_invocation(function, Status.RUNNING)

    operator_client.post(reverse("invocation-stop", args=[invocation.request_id]))

    invocation.refresh_from_db()
    assert invocation.status == Status.STOPPING


def test_retry_without_csrf_token_is_403(failed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))

    response = client.post(reverse("invocation-retry", args=["req-failed"]))

    failed.refresh_from_db()
    assert response.status_code == 403
    assert failed.status == Status.FAILED
    assert AuditEvent.objects.count() == 0
    assert Attempt.objects.filter(invocation=failed).count() == 2


def test_retry_with_csrf_header_succeeds(failed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))
    page = client.get(detail_url(failed))
    token = page.context["csrf_token"]

    response = client.post(
        reverse("invocation-retry", args=["req-failed"]),
        headers={**HTMX, "X-CSRFToken": str(token)},
    )

    assert response.status_code == 200
    assert f'"X-CSRFToken": "{token}"' in page.text


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (Status.FAILED, ["Retry"]),
        (Status.SUCCEEDED, ["Retry"]),
        (Status.STOPPED, ["Retry"]),
        (Status.EXPIRED, ["Retry"]),
        (Status.INVALID, []),
        (Status.RETRYING, ["Retry now", "Stop"]),
        (Status.ENQUEUED, ["Stop"]),
        (Status.RUNNING, ["Stop"]),
        (Status.STOPPING, []),
    ],
)
def test_detail_buttons_by_status(operator_client, function, status, buttons):
    invocation = make_invocation(function, status)

    response = operator_client.get(detail_url(invocation))

    visible_buttons = [
        label
        for label in ("Retry", "Retry now", "Stop")
        if f">{label}</button>" in response.text
    ]
    assert visible_buttons == buttons
