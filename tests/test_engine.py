"""The engine's state machine, driven by calling the worker's task directly.

Each test talks to PostgreSQL and, over real HTTP, to the demo function
server. Time jumps use time-machine so a 0.5 s retry runs without waiting.
"""

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.utils import timezone

from invocations import dispatch, engine, tasks
from invocations.models import Attempt, AuditEvent, FailurePolicy, Invocation, Status

pytestmark = pytest.mark.django_db


def run_next(invocation: Invocation) -> Invocation:
    """Run the invocation's next attempt at its scheduled time, as a worker would."""
    invocation.refresh_from_db()
    when = invocation.next_attempt_at or timezone.now()
    with time_machine.travel(when, tick=True):
        tasks.run_attempt(invocation.pk, invocation.attempts_made + 1)
    invocation.refresh_from_db()
    return invocation


def requests_seen(demo_server: str, request_id: str) -> list[dict]:
    response = httpx.get(f"{demo_server}/requests", params={"request_id": request_id})
    return response.json()


def test_async_chain_503_503_200(make_function, demo_server):
    function = make_function(behaviour="sequence?codes=503,503,200")
    invocation = engine.accept_async(function, b'{"order": 1}')
    assert invocation.status == Status.ENQUEUED

    invocation = run_next(invocation)
    assert invocation.status == Status.RETRYING
    first = invocation.attempts.get(number=1)
    assert invocation.next_attempt_at - first.ended_at == timedelta(seconds=0.5)

    invocation = run_next(invocation)
    assert invocation.status == Status.RETRYING
    second = invocation.attempts.get(number=2)
    assert invocation.next_attempt_at - second.ended_at == timedelta(seconds=1)

    invocation = run_next(invocation)
    assert invocation.status == Status.SUCCEEDED
    attempts = list(invocation.attempts.order_by("number"))
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert [a.billed for a in attempts] == [False, False, True]
    assert [a.error_type for a in attempts] == [
        "InsufficientResources",
        "InsufficientResources",
        "",
    ]
    assert invocation.infrastructure_retries_used == 2
    assert invocation.function_error_retries_used == 0
    assert invocation.billed_attempts == 1
    assert invocation.unbilled_attempts == 2
    assert invocation.first_failure_at == first.ended_at
    seen = requests_seen(demo_server, invocation.request_id)
    assert [entry["attempt"] for entry in seen] == [1, 2, 3]


def test_function_errors_stop_after_four_attempts(make_function):
    function = make_function(behaviour="error?type=handled")
    invocation = engine.accept_async(function, b"{}")
    for _ in range(6):
        if invocation.is_final:
            break
        invocation = run_next(invocation)
    assert invocation.status == Status.FAILED
    assert invocation.attempts.count() == 4
    assert invocation.billed_attempts == 4
    assert invocation.function_error_retries_used == 3
    assert invocation.give_up_reason == "budget_exhausted"
    assert set(invocation.attempts.values_list("error_type", flat=True)) == {
        "HandledInvocationError"
    }


def test_zero_retry_budget_makes_one_attempt(make_function):
    function = make_function(behaviour="error", max_async_retry_attempts=0)
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.FAILED
    assert invocation.attempts.count() == 1


def test_policy_snapshot_survives_function_edit(make_function):
    function = make_function(behaviour="error", max_async_retry_attempts=1)
    invocation = engine.accept_async(function, b"{}")
    function.max_async_retry_attempts = 8
    function.save()
    invocation = run_next(run_next(invocation))
    assert invocation.status == Status.FAILED
    assert invocation.attempts.count() == 2


def test_redelivered_message_makes_one_attempt(make_function, demo_server):
    function = make_function(behaviour="ok")
    invocation = engine.accept_async(function, b"{}")
    tasks.run_attempt(invocation.pk, 1)
    tasks.run_attempt(invocation.pk, 1)
    invocation.refresh_from_db()
    assert invocation.status == Status.SUCCEEDED
    assert invocation.attempts.count() == 1
    assert len(requests_seen(demo_server, invocation.request_id)) == 1


def test_early_message_is_handed_over_again(
    make_function, django_capture_on_commit_callbacks
):
    function = make_function(behaviour="sequence?codes=500,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.RETRYING
    with django_capture_on_commit_callbacks() as callbacks:
        assert engine.claim_attempt(invocation.pk, 2) is None
    assert len(callbacks) == 1
    assert invocation.attempts.count() == 1


def test_sync_is_never_retried(make_function):
    function = make_function(behaviour="sequence?codes=500,200")
    invocation, result = engine.run_sync(function, b"{}")
    assert result.status_code == 500
    assert invocation.status == Status.FAILED
    assert invocation.next_attempt_at is None
    attempt = invocation.attempts.get()
    assert attempt.billed is False
    assert attempt.error_type == "InternalSystemError"


def test_manual_retry_adds_one_manual_attempt(make_function, operator):
    function = make_function(behaviour="error")
    invocation, _ = engine.run_sync(function, b"{}")
    action = engine.request_retry(invocation, operator)
    assert action == "manual_retry"
    invocation.refresh_from_db()
    assert invocation.status == Status.ENQUEUED

    invocation = run_next(invocation)
    assert invocation.status == Status.FAILED
    second = invocation.attempts.get(number=2)
    assert second.trigger == "manual"
    assert second.billed is True
    assert invocation.function_error_retries_used == 0
    assert AuditEvent.objects.filter(action="manual_retry", user=operator).count() == 1


def test_manual_retry_of_async_starts_no_chain(make_function, operator):
    function = make_function(
        behaviour="sequence?codes=handled,handled,handled,handled,503"
    )
    invocation = engine.accept_async(function, b"{}")
    while not invocation.is_final:
        invocation = run_next(invocation)
    assert invocation.attempts.count() == 4
    engine.request_retry(invocation, operator)
    invocation = run_next(invocation)
    assert invocation.status == Status.FAILED
    assert invocation.attempts.count() == 5
    assert invocation.next_attempt_at is None


def test_manual_retry_of_success(make_function, operator):
    function = make_function(behaviour="ok")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.SUCCEEDED
    engine.request_retry(invocation, operator)
    invocation = run_next(invocation)
    assert invocation.status == Status.SUCCEEDED
    assert invocation.attempts.count() == 2


def test_second_retry_request_conflicts(make_function, operator):
    function = make_function(behaviour="error")
    invocation, _ = engine.run_sync(function, b"{}")
    engine.request_retry(invocation, operator)
    with pytest.raises(engine.AlreadyRequested, match="requested"):
        engine.request_retry(invocation, operator)
    run_next(invocation)
    assert invocation.attempts.count() == 2


def test_retry_now_keeps_automatic_chain(make_function, operator):
    function = make_function(behaviour="sequence?codes=503,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.RETRYING
    with time_machine.travel(invocation.attempts.get().ended_at, tick=False):
        action = engine.request_retry(invocation, operator)
        invocation.refresh_from_db()
        assert action == "retry_now"
        assert invocation.next_attempt_at == timezone.now()
        tasks.run_attempt(invocation.pk, 2)
    invocation.refresh_from_db()
    assert invocation.status == Status.SUCCEEDED
    assert invocation.attempts.get(number=2).trigger == "automatic"


def test_stop_retrying_invocation(make_function, operator):
    function = make_function(behaviour="sequence?codes=503,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert engine.request_stop(invocation, operator) == Status.STOPPED
    tasks.run_attempt(invocation.pk, 2)
    invocation.refresh_from_db()
    assert invocation.status == Status.STOPPED
    assert invocation.attempts.count() == 1


def test_stop_running_goes_through_stopping(make_function, operator):
    function = make_function(behaviour="sequence?codes=503,200")
    invocation = engine.accept_async(function, b"{}")
    attempt = engine.claim_attempt(invocation.pk, 1)
    assert engine.request_stop(invocation, operator) == Status.STOPPING
    engine.record_result(attempt.pk, engine.execute(attempt))
    invocation.refresh_from_db()
    assert invocation.status == Status.STOPPED
    assert invocation.next_attempt_at is None


def test_stop_finished_conflicts(make_function, operator):
    function = make_function(behaviour="ok")
    invocation = run_next(engine.accept_async(function, b"{}"))
    with pytest.raises(engine.ActionConflict, match="already Succeeded"):
        engine.request_stop(invocation, operator)


def test_lost_worker_attempt_recovered(make_function, demo_server):
    function = make_function(behaviour="ok", timeout_s=5)
    invocation = engine.accept_async(function, b"{}")
    attempt = engine.claim_attempt(invocation.pk, 1)
    invocation.refresh_from_db()
    assert invocation.status == Status.RUNNING

    with time_machine.travel(attempt.lease_expires_at + timedelta(seconds=1)):
        assert dispatch.recover_lost_attempts() == 1
    attempt.refresh_from_db()
    invocation.refresh_from_db()
    assert attempt.error_type == "WorkerLost"
    assert attempt.billed is False
    assert invocation.status == Status.RETRYING
    assert invocation.infrastructure_retries_used == 1

    # The original worker's late result changes nothing.
    engine.record_result(attempt.pk, engine.execute(attempt))
    attempt.refresh_from_db()
    assert attempt.error_type == "WorkerLost"

    invocation = run_next(invocation)
    assert invocation.status == Status.SUCCEEDED
    assert invocation.attempts.count() == 2


def test_running_attempt_within_lease_not_recovered(make_function):
    function = make_function(behaviour="ok", timeout_s=5)
    invocation = engine.accept_async(function, b"{}")
    engine.claim_attempt(invocation.pk, 1)
    assert dispatch.recover_lost_attempts() == 0


def test_old_invocation_expires(make_function):
    function = make_function(behaviour="ok", max_async_event_age_s=60)
    invocation = engine.accept_async(function, b"{}")
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert dispatch.expire_old_invocations() == 1
    invocation.refresh_from_db()
    assert invocation.status == Status.EXPIRED
    tasks.run_attempt(invocation.pk, 1)
    assert invocation.attempts.count() == 0


def test_retry_past_event_age_expires(make_function):
    function = make_function(behaviour="error", max_async_event_age_s=1)
    invocation = engine.accept_async(function, b"{}")
    with time_machine.travel(invocation.created_at + timedelta(seconds=0.7)):
        tasks.run_attempt(invocation.pk, 1)
    invocation.refresh_from_db()
    assert invocation.status == Status.EXPIRED
    assert invocation.attempts.count() == 1


def test_function_timeout_is_billed_and_retried(make_function):
    function = make_function(behaviour="slow?ms=3000", timeout_s=1)
    invocation = run_next(engine.accept_async(function, b"{}"))
    attempt = invocation.attempts.get()
    assert attempt.error_type == "FunctionTimeout"
    assert attempt.billed is True
    assert 900 <= attempt.duration_ms < 2500
    assert invocation.status == Status.RETRYING
    assert invocation.function_error_retries_used == 1


def test_refused_connection_is_unbilled_infrastructure_retry(make_function):
    function = make_function()
    function.endpoint_url = "http://127.0.0.1:9/closed"
    function.save()
    invocation = run_next(engine.accept_async(function, b"{}"))
    attempt = invocation.attempts.get()
    assert attempt.error_type == "ConnectionFailed"
    assert attempt.status_code is None
    assert attempt.billed is False
    assert invocation.status == Status.RETRYING
    assert invocation.infrastructure_retries_used == 1


def test_client_error_not_retried(make_function):
    function = make_function(behaviour="sequence?codes=404,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.FAILED
    assert invocation.attempts.get().error_type == "ClientError"


def test_metadata_endpoint_is_invalid_without_attempt(make_function):
    function = make_function()
    # Saved without validation, as if the address check had been bypassed.
    function.endpoint_url = "http://169.254.169.254/latest/meta-data"
    function.save()
    invocation = engine.accept_async(function, b"{}")
    tasks.run_attempt(invocation.pk, 1)
    invocation.refresh_from_db()
    assert invocation.status == Status.INVALID
    assert invocation.attempts.count() == 0


def test_retry_switched_off_by_operator(make_function):
    failure_policy = FailurePolicy.current()
    failure_policy.retry_disabled = ["internal_system_error"]
    failure_policy.save()
    function = make_function(behaviour="sequence?codes=500,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    assert invocation.status == Status.FAILED
    assert invocation.give_up_reason == "retry_switched_off"


def test_dispatch_hands_over_due_once(
    make_function, django_capture_on_commit_callbacks
):
    function = make_function(behaviour="sequence?codes=500,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    # Simulate a retry whose hand-over was lost.
    Invocation.objects.filter(pk=invocation.pk).update(dispatched_at=None)
    with django_capture_on_commit_callbacks() as callbacks:
        assert dispatch.dispatch_due() == 1
        assert dispatch.dispatch_due() == 0
    assert len(callbacks) == 1
    later = timezone.now() + timedelta(seconds=16)
    with (
        time_machine.travel(later),
        django_capture_on_commit_callbacks() as callbacks,
    ):
        assert dispatch.dispatch_due() == 1
    assert len(callbacks) == 1


def test_dispatch_ignores_retries_beyond_lookahead(make_function):
    function = make_function(behaviour="ok")
    invocation = engine.accept_async(function, b"{}")
    Invocation.objects.filter(pk=invocation.pk).update(
        status=Status.RETRYING,
        dispatched_at=None,
        next_attempt_at=timezone.now() + timedelta(hours=2),
    )
    assert dispatch.dispatch_due() == 0


def test_attempt_numbers_are_unique(make_function):
    function = make_function()
    invocation = engine.accept_async(function, b"{}")
    engine.claim_attempt(invocation.pk, 1)
    assert engine.claim_attempt(invocation.pk, 1) is None
    assert Attempt.objects.filter(invocation=invocation).count() == 1


def test_endpoint_snapshot_survives_function_edit(make_function, demo_server):
    function = make_function(behaviour="sequence?codes=503,200", timeout_s=10)
    invocation = run_next(engine.accept_async(function, b"{}"))
    function.endpoint_url = f"{demo_server}/cn-hangzhou/error"
    function.timeout_s = 1
    function.save()
    invocation = run_next(invocation)
    assert invocation.status == Status.SUCCEEDED
    assert invocation.timeout_s == 10
    assert [
        entry["attempt"] for entry in requests_seen(demo_server, invocation.request_id)
    ] == [1, 2]


def test_content_type_forwarded(make_function):
    function = make_function(behaviour="ok")
    invocation, result = engine.run_sync(
        function, b"{}", content_type="application/json"
    )
    assert invocation.content_type == "application/json"
    assert result.content_type.startswith("application/json")


def test_stop_wins_over_successful_attempt(make_function, operator):
    function = make_function(behaviour="ok")
    invocation = engine.accept_async(function, b"{}")
    attempt = engine.claim_attempt(invocation.pk, 1)
    assert engine.request_stop(invocation, operator) == Status.STOPPING
    engine.record_result(attempt.pk, engine.execute(attempt))
    invocation.refresh_from_db()
    attempt.refresh_from_db()
    assert invocation.status == Status.STOPPED
    assert attempt.status_code == 200


def test_stop_sync_conflicts(make_function, operator):
    function = make_function(behaviour="error")
    invocation, _ = engine.run_sync(function, b"{}")
    engine.request_retry(invocation, operator)
    with pytest.raises(engine.ActionConflict, match="Sync"):
        engine.request_stop(invocation, operator)
    invocation.refresh_from_db()
    assert invocation.status == Status.ENQUEUED


def test_retry_now_twice_conflicts(make_function, operator):
    function = make_function(behaviour="sequence?codes=503,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    engine.request_retry(invocation, operator)
    with pytest.raises(engine.AlreadyRequested, match="requested"):
        engine.request_retry(invocation, operator)
    assert AuditEvent.objects.filter(action="retry_now").count() == 1


def test_duration_matches_timestamps(make_function):
    function = make_function(behaviour="slow?ms=300")
    invocation = run_next(engine.accept_async(function, b"{}"))
    attempt = invocation.attempts.get()
    wall_ms = (attempt.ended_at - attempt.started_at).total_seconds() * 1000
    assert abs(attempt.duration_ms - wall_ms) <= 1
    assert 300 <= attempt.billed_duration_ms <= attempt.duration_ms


def test_oversized_response_keeps_status(make_function, monkeypatch):
    from invocations.invokers import http

    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 10)
    function = make_function(behaviour="ok")
    invocation, result = engine.run_sync(function, b"{}")
    attempt = invocation.attempts.get()
    assert attempt.status_code == 200
    assert attempt.error_type == "InvalidResponse"
    assert "over 10 bytes" in attempt.error_message
    assert result.failure is not None


def test_resent_retry_after_attempt_makes_none(make_function, operator):
    function = make_function(behaviour="error")
    invocation, _ = engine.run_sync(function, b"{}")
    engine.request_retry(invocation, operator)
    invocation = run_next(invocation)
    assert invocation.status == Status.FAILED
    # The same request sent again after its attempt ended.
    with pytest.raises(engine.AlreadyRequested):
        engine.request_retry(invocation, operator)
    assert invocation.attempts.count() == 2


def test_retry_allowed_after_repeat_window(make_function, operator, settings):
    settings.FCDASH_RETRY_REPEAT_WINDOW_S = 5
    function = make_function(behaviour="error")
    invocation, _ = engine.run_sync(function, b"{}")
    engine.request_retry(invocation, operator)
    invocation = run_next(invocation)
    with time_machine.travel(timezone.now() + timedelta(seconds=6)):
        assert engine.request_retry(invocation, operator) == "manual_retry"


def test_stop_twice_is_already_requested(make_function, operator):
    function = make_function(behaviour="sequence?codes=503,200")
    invocation = run_next(engine.accept_async(function, b"{}"))
    engine.request_stop(invocation, operator)
    with pytest.raises(engine.AlreadyRequested, match="already Stopped"):
        engine.request_stop(invocation, operator)
