"""The failure table: how an attempt's outcome is classified, retried and billed.

This module is plain Python with no Django imports. The engine builds a
`PolicyConfig` from the database, snapshots it onto each invocation when the
invocation is accepted, and calls `decide()` after every attempt.
"""

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

SYNC = "Sync"
ASYNC = "Async"

DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS = 3
MAX_ASYNC_RETRY_ATTEMPTS_RANGE = (0, 8)
DEFAULT_MAX_ASYNC_EVENT_AGE_S = 86_400
MAX_ASYNC_EVENT_AGE_S_RANGE = (1, 604_800)
DEFAULT_BASE_DELAY_S = 0.5
DEFAULT_INFRASTRUCTURE_WINDOW_S = 5 * 3600
DEFAULT_REGION_QUOTA = 100

# Past this exponent every sane window is exceeded long before, and
# math.ldexp() would overflow a float near 2**1024.
_MAX_BACKOFF_EXPONENT = 512


class Outcome(StrEnum):
    """A row of the failure table."""

    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"
    CONCURRENCY_LIMIT_EXCEEDED = "concurrency_limit_exceeded"
    INTERNAL_SYSTEM_ERROR = "internal_system_error"
    INSUFFICIENT_RESOURCES = "insufficient_resources"
    FUNCTION_TIMEOUT = "function_timeout"
    CLIENT_ERROR = "client_error"
    OTHER_SERVER_ERROR = "other_server_error"
    UNEXPECTED_STATUS = "unexpected_status"
    CONNECTION_FAILED = "connection_failed"
    INVALID_RESPONSE = "invalid_response"
    WORKER_LOST = "worker_lost"


class ErrorType(StrEnum):
    """The error type recorded on an attempt: FC's names, then fcdash's own."""

    HANDLED = "HandledInvocationError"
    UNHANDLED = "UnhandledInvocationError"
    CONCURRENCY_LIMIT_EXCEEDED = "ConcurrencyLimitExceeded"
    INTERNAL_SYSTEM_ERROR = "InternalSystemError"
    INSUFFICIENT_RESOURCES = "InsufficientResources"
    FUNCTION_TIMEOUT = "FunctionTimeout"
    CLIENT_ERROR = "ClientError"
    OTHER_SERVER_ERROR = "ServerError"
    UNEXPECTED_STATUS = "UnexpectedStatus"
    CONNECTION_FAILED = "ConnectionFailed"
    INVALID_RESPONSE = "InvalidResponse"
    WORKER_LOST = "WorkerLost"


FUNCTION_ERROR_TYPES = frozenset({ErrorType.HANDLED, ErrorType.UNHANDLED})


class RetryKind(StrEnum):
    """The budget that pays for a retry of an outcome."""

    NONE = "none"
    FUNCTION = "function"
    INFRASTRUCTURE = "infrastructure"


class GiveUp(StrEnum):
    """The reason an attempt gets no automatic retry."""

    SUCCEEDED = "succeeded"
    SYNC = "sync"
    NOT_RETRYABLE = "not_retryable"
    RETRY_SWITCHED_OFF = "retry_switched_off"
    BUDGET_EXHAUSTED = "budget_exhausted"
    WINDOW_EXCEEDED = "window_exceeded"
    EVENT_AGE_EXCEEDED = "event_age_exceeded"


@dataclass(frozen=True)
class Row:
    outcome: Outcome
    error_type: ErrorType | None
    recognised_by: str
    retry: RetryKind
    billed: bool
    remediation: str


# Remediation texts may use {region}, {quota} and {error_message}.
ROWS: tuple[Row, ...] = (
    Row(
        Outcome.SUCCESS,
        None,
        "2xx without X-Fc-Error-Type",
        RetryKind.NONE,
        True,
        "",
    ),
    Row(
        Outcome.FUNCTION_ERROR,
        None,
        "HTTP 200 with X-Fc-Error-Type HandledInvocationError or "
        "UnhandledInvocationError",
        RetryKind.FUNCTION,
        True,
        "Troubleshoot the function code: the function returned an error "
        "({error_message}). Read this attempt's error message and the "
        "function's logs.",
    ),
    Row(
        Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        ErrorType.CONCURRENCY_LIMIT_EXCEEDED,
        "HTTP 429",
        RetryKind.INFRASTRUCTURE,
        False,
        "Raise the concurrency quota of region {region} in Quota Center. "
        "The quota is {quota} instances per region per account here; "
        "the platform default is 100.",
    ),
    Row(
        Outcome.INTERNAL_SYSTEM_ERROR,
        ErrorType.INTERNAL_SYSTEM_ERROR,
        "HTTP 500",
        RetryKind.INFRASTRUCTURE,
        False,
        "Contact the platform's technical support: region {region} "
        "reported an internal system error.",
    ),
    Row(
        Outcome.INSUFFICIENT_RESOURCES,
        ErrorType.INSUFFICIENT_RESOURCES,
        "HTTP 503",
        RetryKind.INFRASTRUCTURE,
        False,
        "Contact the platform's technical support: region {region} "
        "reported insufficient resources.",
    ),
    Row(
        Outcome.FUNCTION_TIMEOUT,
        ErrorType.FUNCTION_TIMEOUT,
        "no reply within the function's timeout",
        RetryKind.FUNCTION,
        True,
        "The function did not reply within its timeout. Make it faster or "
        "raise the function's timeout_s.",
    ),
    Row(
        Outcome.CLIENT_ERROR,
        ErrorType.CLIENT_ERROR,
        "any other HTTP 4xx",
        RetryKind.NONE,
        False,
        "The endpoint rejected the request ({error_message}). Check the "
        "function's endpoint_url and the payload.",
    ),
    Row(
        Outcome.OTHER_SERVER_ERROR,
        ErrorType.OTHER_SERVER_ERROR,
        "any other HTTP 5xx",
        RetryKind.INFRASTRUCTURE,
        False,
        "The endpoint or a gateway in front of it failed ({error_message}). "
        "Check the platform's status for region {region}.",
    ),
    Row(
        Outcome.UNEXPECTED_STATUS,
        ErrorType.UNEXPECTED_STATUS,
        "an HTTP status outside 2xx, 4xx and 5xx",
        RetryKind.NONE,
        False,
        "The endpoint replied with an unexpected status ({error_message}). "
        "Check the function's endpoint_url.",
    ),
    Row(
        Outcome.CONNECTION_FAILED,
        ErrorType.CONNECTION_FAILED,
        "connection refused, reset or not resolved",
        RetryKind.INFRASTRUCTURE,
        False,
        "fcdash could not reach the endpoint ({error_message}). Check that "
        "the function's endpoint_url is right and the endpoint is up.",
    ),
    Row(
        Outcome.INVALID_RESPONSE,
        ErrorType.INVALID_RESPONSE,
        "a reply that is not valid HTTP",
        RetryKind.NONE,
        False,
        "The endpoint did not reply with HTTP ({error_message}). Check the "
        "function's endpoint_url.",
    ),
    Row(
        Outcome.WORKER_LOST,
        ErrorType.WORKER_LOST,
        "the fcdash worker running the attempt stopped before recording it",
        RetryKind.INFRASTRUCTURE,
        False,
        "An fcdash worker stopped in the middle of this attempt. Check the "
        "worker's logs and memory limits.",
    ),
)

ROWS_BY_OUTCOME: dict[Outcome, Row] = {row.outcome: row for row in ROWS}


@dataclass(frozen=True)
class PolicyConfig:
    """The configurable values of the failure table for one invocation."""

    max_async_retry_attempts: int = DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS
    max_async_event_age_s: int = DEFAULT_MAX_ASYNC_EVENT_AGE_S
    base_delay_s: float = DEFAULT_BASE_DELAY_S
    infrastructure_window_s: float = DEFAULT_INFRASTRUCTURE_WINDOW_S
    region_quota: int = DEFAULT_REGION_QUOTA
    # Outcomes whose automatic retry an operator switched off.
    retry_disabled: frozenset[Outcome] = field(default_factory=frozenset)

    def __post_init__(self):
        low, high = MAX_ASYNC_RETRY_ATTEMPTS_RANGE
        if not low <= self.max_async_retry_attempts <= high:
            raise ValueError(
                f"max_async_retry_attempts {self.max_async_retry_attempts} is "
                f"out of range: use {low} to {high}"
            )
        if not self.base_delay_s > 0:
            raise ValueError(f"base_delay_s {self.base_delay_s} must be positive")
        if not self.infrastructure_window_s > 0:
            raise ValueError(
                f"infrastructure_window_s {self.infrastructure_window_s} must be "
                "positive"
            )

    def retries(self, outcome: Outcome) -> RetryKind:
        if outcome in self.retry_disabled:
            return RetryKind.NONE
        return ROWS_BY_OUTCOME[outcome].retry

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_async_retry_attempts": self.max_async_retry_attempts,
            "max_async_event_age_s": self.max_async_event_age_s,
            "base_delay_s": self.base_delay_s,
            "infrastructure_window_s": self.infrastructure_window_s,
            "region_quota": self.region_quota,
            "retry_disabled": sorted(self.retry_disabled),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicyConfig":
        values = dict(data)
        values["retry_disabled"] = frozenset(
            Outcome(name) for name in values.get("retry_disabled", ())
        )
        return cls(**values)

    def with_values(self, **changes: Any) -> "PolicyConfig":
        return replace(self, **changes)


def classify(
    status_code: int | None,
    error_type_header: str | None = None,
    *,
    failure: Outcome | None = None,
) -> Outcome:
    """Map an attempt's HTTP status and X-Fc-Error-Type header to its row.

    `failure` names an outcome that had no HTTP status at all (a timeout, a
    refused connection, a reply that was not HTTP, a lost worker).
    """
    if failure is not None:
        return failure
    if status_code is None:
        return Outcome.INVALID_RESPONSE
    if 200 <= status_code < 300:
        return Outcome.FUNCTION_ERROR if error_type_header else Outcome.SUCCESS
    if status_code == 429:
        return Outcome.CONCURRENCY_LIMIT_EXCEEDED
    if status_code == 500:
        return Outcome.INTERNAL_SYSTEM_ERROR
    if status_code == 503:
        return Outcome.INSUFFICIENT_RESOURCES
    if 400 <= status_code < 500:
        return Outcome.CLIENT_ERROR
    if 500 <= status_code < 600:
        return Outcome.OTHER_SERVER_ERROR
    return Outcome.UNEXPECTED_STATUS


def error_type_for(outcome: Outcome, error_type_header: str | None) -> str | None:
    """Return the error type to record for an attempt with this outcome."""
    if outcome is Outcome.FUNCTION_ERROR:
        # Only FC's two function error types are recorded as sent; any other
        # X-Fc-Error-Type value still marks a function error.
        if error_type_header in FUNCTION_ERROR_TYPES:
            return error_type_header
        return str(ErrorType.UNHANDLED)
    row = ROWS_BY_OUTCOME[outcome]
    return str(row.error_type) if row.error_type else None


def is_billed(outcome: Outcome) -> bool:
    return ROWS_BY_OUTCOME[outcome].billed


def remediation(
    outcome: Outcome, *, region: str, quota: int, error_message: str = ""
) -> str | None:
    """Return what an operator should do about this outcome, or None."""
    template = ROWS_BY_OUTCOME[outcome].remediation
    if not template:
        return None
    return template.format(
        region=region, quota=quota, error_message=error_message or "no message"
    )


def backoff_delay(retry_number: int, base_delay_s: float) -> float:
    """Return the wait in seconds before the n-th retry: base * 2**(n - 1).

    Returns math.inf instead of overflowing, so callers can compare it with a
    window however large `retry_number` is.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number {retry_number} must be 1 or more")
    if retry_number - 1 > _MAX_BACKOFF_EXPONENT:
        return math.inf
    return math.ldexp(base_delay_s, retry_number - 1)


def infrastructure_retry_delay(
    retry_number: int,
    *,
    seconds_since_first_failure: float,
    base_delay_s: float,
    window_s: float,
) -> float | None:
    """Return the wait before the n-th infrastructure retry, or None to give up.

    A retry is made only if it would start within `window_s` of the end of
    the invocation's first failed attempt.
    """
    delay = backoff_delay(retry_number, base_delay_s)
    if seconds_since_first_failure + delay > window_s:
        return None
    return delay


@dataclass(frozen=True)
class RetryState:
    """The retry budgets an invocation has used so far, as the engine stores them."""

    invocation_type: str
    function_error_retries_used: int = 0
    infrastructure_retries_used: int = 0
    first_failure_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """The failure table's decision about one automatic attempt."""

    outcome: Outcome
    billed: bool
    retry_kind: RetryKind = RetryKind.NONE
    retry_at: datetime | None = None
    give_up: GiveUp | None = None

    @property
    def retries(self) -> bool:
        return self.retry_at is not None


def decide(
    config: PolicyConfig,
    outcome: Outcome,
    state: RetryState,
    ended_at: datetime,
) -> Decision:
    """Decide whether an automatic attempt that ended at `ended_at` is retried.

    Function errors and infrastructure errors have separate budgets, and the
    infrastructure window counts from `state.first_failure_at`, or from
    `ended_at` when this is the first failure.
    """
    billed = is_billed(outcome)

    def give_up(reason: GiveUp) -> Decision:
        return Decision(outcome, billed, give_up=reason)

    if outcome is Outcome.SUCCESS:
        return give_up(GiveUp.SUCCEEDED)
    if state.invocation_type != ASYNC:
        return give_up(GiveUp.SYNC)

    kind = config.retries(outcome)
    if kind is RetryKind.NONE:
        table_retries = ROWS_BY_OUTCOME[outcome].retry is not RetryKind.NONE
        return give_up(
            GiveUp.RETRY_SWITCHED_OFF if table_retries else GiveUp.NOT_RETRYABLE
        )

    if kind is RetryKind.FUNCTION:
        retry_number = state.function_error_retries_used + 1
        if retry_number > config.max_async_retry_attempts:
            return give_up(GiveUp.BUDGET_EXHAUSTED)
        delay = backoff_delay(retry_number, config.base_delay_s)
    else:
        first_failure_at = state.first_failure_at or ended_at
        delay = infrastructure_retry_delay(
            state.infrastructure_retries_used + 1,
            seconds_since_first_failure=(ended_at - first_failure_at).total_seconds(),
            base_delay_s=config.base_delay_s,
            window_s=config.infrastructure_window_s,
        )
        if delay is None:
            return give_up(GiveUp.WINDOW_EXCEEDED)

    if state.expires_at is not None:
        seconds_left = (state.expires_at - ended_at).total_seconds()
        if delay > seconds_left:
            return give_up(GiveUp.EVENT_AGE_EXCEEDED)
    retry_at = ended_at + timedelta(seconds=delay)
    return Decision(outcome, billed, retry_kind=kind, retry_at=retry_at)


def max_infrastructure_retries(config: PolicyConfig) -> int:
    """Return how many infrastructure retries instant failures would get."""
    retries = 0
    elapsed = 0.0
    while True:
        delay = infrastructure_retry_delay(
            retries + 1,
            seconds_since_first_failure=elapsed,
            base_delay_s=config.base_delay_s,
            window_s=config.infrastructure_window_s,
        )
        if delay is None:
            return retries
        retries += 1
        elapsed += delay
