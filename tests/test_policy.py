"""The failure table's numbers, pinned case by case."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from invocations.policy import (
    ASYNC,
    SYNC,
    GiveUp,
    Outcome,
    PolicyConfig,
    RetryKind,
    RetryState,
    backoff_delay,
    classify,
    decide,
    error_type_for,
    infrastructure_retry_delay,
    is_billed,
    max_infrastructure_retries,
    remediation,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT = PolicyConfig()


@pytest.mark.parametrize(
    ("status_code", "header", "expected"),
    [
        (200, None, Outcome.SUCCESS),
        (202, None, Outcome.SUCCESS),
        (200, "HandledInvocationError", Outcome.FUNCTION_ERROR),
        (200, "UnhandledInvocationError", Outcome.FUNCTION_ERROR),
        (429, None, Outcome.CONCURRENCY_LIMIT_EXCEEDED),
        (500, None, Outcome.INTERNAL_SYSTEM_ERROR),
        (503, None, Outcome.INSUFFICIENT_RESOURCES),
        (400, None, Outcome.CLIENT_ERROR),
        (404, None, Outcome.CLIENT_ERROR),
        (502, None, Outcome.OTHER_SERVER_ERROR),
        (504, None, Outcome.OTHER_SERVER_ERROR),
        (302, None, Outcome.UNEXPECTED_STATUS),
        (None, None, Outcome.INVALID_RESPONSE),
    ],
)
def test_classify_by_status_and_header(status_code, header, expected):
    assert classify(status_code, header) is expected


def test_classify_failure_without_status():
    assert classify(None, failure=Outcome.FUNCTION_TIMEOUT) is Outcome.FUNCTION_TIMEOUT


@pytest.mark.parametrize(
    ("outcome", "billed"),
    [
        (Outcome.SUCCESS, True),
        (Outcome.FUNCTION_ERROR, True),
        (Outcome.FUNCTION_TIMEOUT, True),
        (Outcome.CONCURRENCY_LIMIT_EXCEEDED, False),
        (Outcome.INTERNAL_SYSTEM_ERROR, False),
        (Outcome.INSUFFICIENT_RESOURCES, False),
        (Outcome.CONNECTION_FAILED, False),
        (Outcome.WORKER_LOST, False),
    ],
)
def test_billed_by_table(outcome, billed):
    assert is_billed(outcome) is billed


def test_error_type_recorded():
    assert error_type_for(Outcome.FUNCTION_ERROR, "HandledInvocationError") == (
        "HandledInvocationError"
    )
    assert error_type_for(Outcome.CONCURRENCY_LIMIT_EXCEEDED, None) == (
        "ConcurrencyLimitExceeded"
    )
    assert error_type_for(Outcome.INTERNAL_SYSTEM_ERROR, None) == "InternalSystemError"
    assert error_type_for(Outcome.INSUFFICIENT_RESOURCES, None) == (
        "InsufficientResources"
    )
    assert error_type_for(Outcome.SUCCESS, None) is None


def test_unknown_error_type_header_is_unhandled():
    assert classify(200, "<b>Oops</b>") is Outcome.FUNCTION_ERROR
    assert error_type_for(Outcome.FUNCTION_ERROR, "<b>Oops</b>") == (
        "UnhandledInvocationError"
    )


@pytest.mark.parametrize(
    ("retry_number", "delay"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (15, 8192.0), (16, 16384.0)],
)
def test_backoff_doubles_from_half_second(retry_number, delay):
    assert backoff_delay(retry_number, 0.5) == delay


@pytest.mark.parametrize("retry_number", [600, 1025, 10**6, 10**18])
def test_backoff_huge_retry_number_is_infinite(retry_number):
    assert backoff_delay(retry_number, 0.5) == math.inf


def test_backoff_rejects_retry_zero():
    with pytest.raises(ValueError, match="retry_number 0"):
        backoff_delay(0, 0.5)


def test_infrastructure_schedule_with_instant_failures():
    elapsed = 0.0
    starts = []
    for retry_number in range(1, 40):
        delay = infrastructure_retry_delay(
            retry_number,
            seconds_since_first_failure=elapsed,
            base_delay_s=0.5,
            window_s=5 * 3600,
        )
        if delay is None:
            break
        elapsed += delay
        starts.append(elapsed)
    assert len(starts) == 15
    assert starts[:4] == [0.5, 1.5, 3.5, 7.5]
    assert starts[-1] == 16383.5


def test_sixteenth_retry_falls_outside_window():
    delay = infrastructure_retry_delay(
        16, seconds_since_first_failure=16383.5, base_delay_s=0.5, window_s=18000
    )
    assert delay is None


def test_max_infrastructure_retries_default_is_fifteen():
    assert max_infrastructure_retries(DEFAULT) == 15


@pytest.mark.parametrize("retry_number", [1, 2, 16, 100, 1024, 10**9])
def test_infrastructure_delay_never_zero_or_negative(retry_number):
    delay = infrastructure_retry_delay(
        retry_number, seconds_since_first_failure=0, base_delay_s=0.5, window_s=10**12
    )
    assert delay is None or delay > 0


def test_infrastructure_huge_retry_number_gives_up():
    delay = infrastructure_retry_delay(
        10**12, seconds_since_first_failure=0, base_delay_s=0.5, window_s=18000
    )
    assert delay is None


def run_chain(config, outcomes, invocation_type=ASYNC):
    """Feed instant-failure outcomes to decide(); return attempts made and decisions."""
    state = RetryState(invocation_type=invocation_type)
    now = T0
    decisions = []
    for outcome in outcomes:
        decision = decide(config, outcome, state, now)
        decisions.append(decision)
        if not decision.retries:
            break
        used_function = state.function_error_retries_used
        used_infrastructure = state.infrastructure_retries_used
        if decision.retry_kind is RetryKind.FUNCTION:
            used_function += 1
        else:
            used_infrastructure += 1
        state = RetryState(
            invocation_type=invocation_type,
            function_error_retries_used=used_function,
            infrastructure_retries_used=used_infrastructure,
            first_failure_at=state.first_failure_at or now,
        )
        now = decision.retry_at
    return decisions


def test_function_error_default_budget_is_four_attempts():
    decisions = run_chain(DEFAULT, [Outcome.FUNCTION_ERROR] * 10)
    assert len(decisions) == 4
    assert decisions[-1].give_up is GiveUp.BUDGET_EXHAUSTED
    assert all(decision.billed for decision in decisions)


def test_function_error_delays_follow_doubling_series():
    decisions = run_chain(DEFAULT, [Outcome.FUNCTION_ERROR] * 10)
    gaps = []
    previous = T0
    for decision in decisions[:-1]:
        gaps.append((decision.retry_at - previous).total_seconds())
        previous = decision.retry_at
    assert gaps == [0.5, 1.0, 2.0]


def test_function_error_budget_zero_is_one_attempt():
    config = DEFAULT.with_values(max_async_retry_attempts=0)
    decisions = run_chain(config, [Outcome.FUNCTION_ERROR] * 10)
    assert len(decisions) == 1
    assert decisions[0].give_up is GiveUp.BUDGET_EXHAUSTED


def test_function_error_budget_eight_is_nine_attempts():
    config = DEFAULT.with_values(max_async_retry_attempts=8)
    assert len(run_chain(config, [Outcome.FUNCTION_ERROR] * 20)) == 9


@pytest.mark.parametrize("value", [-1, 9, 100])
def test_function_error_budget_out_of_range(value):
    with pytest.raises(ValueError, match=f"max_async_retry_attempts {value}"):
        PolicyConfig(max_async_retry_attempts=value)


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        Outcome.INTERNAL_SYSTEM_ERROR,
        Outcome.INSUFFICIENT_RESOURCES,
    ],
)
def test_infrastructure_error_gets_sixteen_attempts(outcome):
    decisions = run_chain(DEFAULT, [outcome] * 40)
    assert len(decisions) == 16
    assert decisions[-1].give_up is GiveUp.WINDOW_EXCEEDED
    assert not any(decision.billed for decision in decisions)
    assert (decisions[-2].retry_at - T0).total_seconds() == 16383.5


def test_zero_function_budget_keeps_infrastructure_retries():
    config = DEFAULT.with_values(max_async_retry_attempts=0)
    decisions = run_chain(config, [Outcome.INSUFFICIENT_RESOURCES] * 40)
    assert len(decisions) == 16


def test_budgets_are_separate():
    outcomes = [
        Outcome.INSUFFICIENT_RESOURCES,
        Outcome.FUNCTION_ERROR,
        Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        Outcome.FUNCTION_ERROR,
        Outcome.FUNCTION_ERROR,
        Outcome.INTERNAL_SYSTEM_ERROR,
        Outcome.FUNCTION_ERROR,
    ]
    decisions = run_chain(DEFAULT, outcomes)
    assert len(decisions) == 7
    kinds = [decision.retry_kind for decision in decisions[:-1]]
    assert kinds == [
        RetryKind.INFRASTRUCTURE,
        RetryKind.FUNCTION,
        RetryKind.INFRASTRUCTURE,
        RetryKind.FUNCTION,
        RetryKind.FUNCTION,
        RetryKind.INFRASTRUCTURE,
    ]
    # Infrastructure retries 1, 2, 3 wait 0.5, 1 and 2 s: function errors in
    # between do not reset the backoff.
    infrastructure_gaps = [
        (decisions[i].retry_at - T0).total_seconds() for i in (0, 2, 5)
    ]
    assert infrastructure_gaps[0] == 0.5
    assert decisions[6].give_up is GiveUp.BUDGET_EXHAUSTED


def test_infrastructure_backoff_not_reset_by_function_error():
    state = RetryState(
        invocation_type=ASYNC,
        function_error_retries_used=2,
        infrastructure_retries_used=3,
        first_failure_at=T0,
    )
    ended = T0 + timedelta(seconds=10)
    decision = decide(DEFAULT, Outcome.CONCURRENCY_LIMIT_EXCEEDED, state, ended)
    assert (decision.retry_at - ended).total_seconds() == 4.0


@pytest.mark.parametrize(
    "outcome",
    [Outcome.FUNCTION_ERROR, Outcome.CONCURRENCY_LIMIT_EXCEEDED, Outcome.SUCCESS],
)
def test_sync_never_retried(outcome):
    decision = decide(DEFAULT, outcome, RetryState(invocation_type=SYNC), T0)
    assert not decision.retries


def test_sync_function_error_gives_up_as_sync():
    decision = decide(DEFAULT, Outcome.FUNCTION_ERROR, RetryState(SYNC), T0)
    assert decision.give_up is GiveUp.SYNC
    assert decision.billed


def test_success_gives_up_as_succeeded():
    decision = decide(DEFAULT, Outcome.SUCCESS, RetryState(ASYNC), T0)
    assert decision.give_up is GiveUp.SUCCEEDED


@pytest.mark.parametrize(
    "outcome",
    [Outcome.CLIENT_ERROR, Outcome.UNEXPECTED_STATUS, Outcome.INVALID_RESPONSE],
)
def test_not_retryable_outcomes(outcome):
    decision = decide(DEFAULT, outcome, RetryState(ASYNC), T0)
    assert decision.give_up is GiveUp.NOT_RETRYABLE


def test_timeout_uses_function_budget():
    decisions = run_chain(DEFAULT, [Outcome.FUNCTION_TIMEOUT] * 10)
    assert len(decisions) == 4
    assert decisions[0].retry_kind is RetryKind.FUNCTION


def test_connection_failure_bounded_by_window():
    decisions = run_chain(DEFAULT, [Outcome.CONNECTION_FAILED] * 40)
    assert len(decisions) == 16


def test_retry_switched_off_for_row():
    config = DEFAULT.with_values(
        retry_disabled=frozenset({Outcome.INTERNAL_SYSTEM_ERROR})
    )
    decision = decide(config, Outcome.INTERNAL_SYSTEM_ERROR, RetryState(ASYNC), T0)
    assert decision.give_up is GiveUp.RETRY_SWITCHED_OFF
    other = decide(config, Outcome.INSUFFICIENT_RESOURCES, RetryState(ASYNC), T0)
    assert other.retries


def test_window_counts_from_first_failure():
    state = RetryState(
        invocation_type=ASYNC, infrastructure_retries_used=1, first_failure_at=T0
    )
    ended = T0 + timedelta(seconds=18000)
    decision = decide(DEFAULT, Outcome.INSUFFICIENT_RESOURCES, state, ended)
    assert decision.give_up is GiveUp.WINDOW_EXCEEDED


def test_event_age_stops_retry():
    state = RetryState(invocation_type=ASYNC, expires_at=T0 + timedelta(seconds=0.25))
    decision = decide(DEFAULT, Outcome.FUNCTION_ERROR, state, T0)
    assert decision.give_up is GiveUp.EVENT_AGE_EXCEEDED


def test_config_round_trips_through_dict():
    config = DEFAULT.with_values(
        max_async_retry_attempts=5,
        retry_disabled=frozenset({Outcome.INSUFFICIENT_RESOURCES}),
    )
    assert PolicyConfig.from_dict(config.to_dict()) == config


def test_remediation_names_region_and_quota():
    text = remediation(
        Outcome.CONCURRENCY_LIMIT_EXCEEDED, region="cn-hangzhou", quota=100
    )
    assert "Quota Center" in text
    assert "cn-hangzhou" in text
    assert "100" in text


def test_remediation_for_success_is_none():
    assert remediation(Outcome.SUCCESS, region="cn-hangzhou", quota=100) is None


def test_remediation_for_function_error_quotes_message():
    text = remediation(
        Outcome.FUNCTION_ERROR, region="r", quota=1, error_message="KeyError: 'id'"
    )
    assert "function code" in text
    assert "KeyError: 'id'" in text
