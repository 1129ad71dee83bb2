"""The retry engine's state machine: accept, claim, record, retry and stop.

Every transition runs with the invocation row locked (SELECT ... FOR UPDATE),
and a worker may start attempt n only while `attempts_made` is n - 1. So a
double click, a redelivered message, several workers or several beat
processes never make two attempts with the same number. Work is handed to the
broker only after the transaction that decided it commits.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import policy
from .invokers import InvokeRequest, InvokeResult, invoke_http
from .models import (
    FINAL_STATUSES,
    WAITING_STATUSES,
    Attempt,
    AuditEvent,
    FailurePolicy,
    Function,
    Invocation,
    InvocationType,
    Region,
    Status,
    Trigger,
)
from .validators import resolve_forbidden_address, validate_task_id

logger = logging.getLogger(__name__)

# A message may arrive this much before its invocation's next attempt time
# and still run: clocks of one machine, read a few microseconds apart.
EARLY_TOLERANCE = timedelta(milliseconds=50)


class InvocationRejected(Exception):
    """Bad input for a new invocation; nothing was written."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class ActionConflict(Exception):
    """A retry or stop that the invocation's status does not allow."""


class AlreadyRequested(ActionConflict):
    """A repeat of a retry or stop that already took effect: nothing changed."""


def policy_config_for(function: Function) -> policy.PolicyConfig:
    """Build the failure table values in force for a new invocation."""
    failure_policy = FailurePolicy.current()
    quota = (
        Region.objects.filter(name=function.region)
        .values_list("quota", flat=True)
        .first()
    )
    return policy.PolicyConfig(
        max_async_retry_attempts=function.max_async_retry_attempts,
        max_async_event_age_s=function.max_async_event_age_s,
        base_delay_s=failure_policy.base_delay_s,
        infrastructure_window_s=failure_policy.infrastructure_window_s,
        region_quota=quota or failure_policy.default_region_quota,
        retry_disabled=frozenset(
            policy.Outcome(name) for name in failure_policy.retry_disabled
        ),
    )


def validate_invocation_type(invocation_type: str) -> None:
    if invocation_type not in InvocationType.values:
        raise InvocationRejected(
            f"Invalid X-Fc-Invocation-Type {invocation_type!r}: use Sync or Async."
        )


def validate_invocation(
    function: Function, invocation_type: str, payload: bytes, task_id: str | None
) -> None:
    validate_invocation_type(invocation_type)
    if invocation_type == InvocationType.ASYNC:
        limit = settings.FCDASH_MAX_ASYNC_PAYLOAD_BYTES
    else:
        limit = settings.FCDASH_MAX_SYNC_PAYLOAD_BYTES
    if len(payload) > limit:
        raise InvocationRejected(
            f"Payload of {len(payload)} bytes exceeds the {invocation_type} "
            f"limit of {limit} bytes. Send a smaller payload or a reference "
            "to the data.",
            status=413,
        )
    if task_id is None:
        return
    if invocation_type != InvocationType.ASYNC:
        raise InvocationRejected(
            "X-Fc-Async-Task-Id is only valid with X-Fc-Invocation-Type Async."
        )
    try:
        validate_task_id(task_id)
    except Exception as error:
        raise InvocationRejected(error.messages[0]) from error
    if Invocation.objects.filter(function=function, task_id=task_id).exists():
        raise duplicate_task_id(function, task_id)


def duplicate_task_id(function: Function, task_id: str) -> InvocationRejected:
    return InvocationRejected(
        f"X-Fc-Async-Task-Id {task_id!r} was already used for function "
        f"{function.name}. Choose a new task id.",
        status=409,
    )


def new_invocation(
    function: Function,
    invocation_type: str,
    payload: bytes,
    task_id: str | None,
    now: datetime,
    content_type: str = "",
) -> Invocation:
    config = policy_config_for(function)
    expires_at = None
    if invocation_type == InvocationType.ASYNC:
        expires_at = now + timedelta(seconds=config.max_async_event_age_s)
    return Invocation(
        task_id=task_id,
        function=function,
        region=function.region,
        invocation_type=invocation_type,
        status=Status.ENQUEUED,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
        dispatched_at=now,
        expires_at=expires_at,
        policy=config.to_dict(),
        memory_mb=function.memory_mb,
        endpoint_url=function.endpoint_url,
        timeout_s=function.timeout_s,
        content_type=content_type[:255],
    )


def accept_async(
    function: Function,
    payload: bytes,
    task_id: str | None = None,
    content_type: str = "",
) -> Invocation:
    """Store an async invocation and hand its first attempt to a worker."""
    validate_invocation(function, InvocationType.ASYNC, payload, task_id)
    invocation = new_invocation(
        function, InvocationType.ASYNC, payload, task_id, timezone.now(), content_type
    )
    try:
        with transaction.atomic():
            invocation.save()
            hand_over(invocation.pk, 1)
    except IntegrityError as error:
        # Another request with the same task id committed first.
        if task_id is not None:
            raise duplicate_task_id(function, task_id) from error
        raise
    logger.info(
        "Accepted async invocation request_id=%s function=%s",
        invocation.request_id,
        function.name,
    )
    return invocation


def run_sync(
    function: Function,
    payload: bytes,
    task_id: str | None = None,
    content_type: str = "",
) -> tuple[Invocation, InvokeResult]:
    """Run a sync invocation's only automatic attempt now, in this process.

    `task_id` is accepted only to reject it: task ids belong to Async.
    """
    validate_invocation(function, InvocationType.SYNC, payload, task_id)
    now = timezone.now()
    invocation = new_invocation(
        function, InvocationType.SYNC, payload, None, now, content_type
    )
    with transaction.atomic():
        invocation.save()
        attempt = start_attempt(invocation, 1, now)
    result = execute(attempt)
    invocation = record_result(attempt.pk, result)
    return invocation, result


def hand_over(invocation_id: int, number: int, eta: datetime | None = None) -> None:
    """Send attempt `number` to the broker once the current transaction commits."""
    from .tasks import run_attempt

    def send():
        run_attempt.apply_async((invocation_id, number), eta=eta)

    # robust: a broker that is down must not fail the request that committed;
    # the dispatcher hands the attempt over again later.
    transaction.on_commit(send, robust=True)


def start_attempt(invocation: Invocation, number: int, now: datetime) -> Attempt:
    lease = invocation.timeout_s + settings.FCDASH_LEASE_GRACE_S
    attempt = Attempt.objects.create(
        invocation=invocation,
        number=number,
        trigger=invocation.next_attempt_trigger,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=lease),
    )
    invocation.status = Status.RUNNING
    invocation.attempts_made = number
    invocation.next_attempt_at = None
    invocation.dispatched_at = None
    invocation.save(
        update_fields=["status", "attempts_made", "next_attempt_at", "dispatched_at"]
    )
    return attempt


def claim_attempt(invocation_id: int, number: int) -> Attempt | None:
    """Start attempt `number` unless another worker did or the invocation moved on.

    Returns the new attempt, or None when there is nothing to run.
    """
    forbidden = forbidden_endpoint_address(invocation_id)
    now = timezone.now()
    with transaction.atomic():
        invocation = (
            Invocation.objects.select_for_update()
            .select_related("function")
            .filter(pk=invocation_id)
            .first()
        )
        if invocation is None:
            logger.warning("Invocation id=%s not found; message dropped", invocation_id)
            return None
        if (
            invocation.status not in WAITING_STATUSES
            or invocation.attempts_made != number - 1
        ):
            # Another worker got there first, or the invocation was stopped.
            logger.info(
                "Skipped attempt %s of request_id=%s: status %s, %s attempts made",
                number,
                invocation.request_id,
                invocation.status,
                invocation.attempts_made,
            )
            return None
        if forbidden:
            mark_invalid(invocation, forbidden, now)
            return None
        automatic = invocation.next_attempt_trigger == Trigger.AUTOMATIC
        if automatic and invocation.expires_at and invocation.expires_at <= now:
            finish(invocation, Status.EXPIRED, policy.GiveUp.EVENT_AGE_EXCEEDED, now)
            invocation.save()
            return None
        if (
            invocation.next_attempt_at
            and invocation.next_attempt_at > now + EARLY_TOLERANCE
        ):
            invocation.dispatched_at = now
            invocation.save(update_fields=["dispatched_at"])
            hand_over(invocation.pk, number, eta=invocation.next_attempt_at)
            return None
        return start_attempt(invocation, number, now)


def forbidden_endpoint_address(invocation_id: int) -> str | None:
    endpoint_url = (
        Invocation.objects.filter(pk=invocation_id)
        .values_list("endpoint_url", flat=True)
        .first()
    )
    return resolve_forbidden_address(endpoint_url) if endpoint_url else None


def mark_invalid(invocation: Invocation, address: str, now: datetime) -> None:
    logger.warning(
        "Rejected request_id=%s: endpoint resolves to forbidden address %s",
        invocation.request_id,
        address,
    )
    invocation.status = Status.INVALID
    invocation.give_up_reason = "forbidden_endpoint"
    invocation.next_attempt_at = None
    invocation.dispatched_at = None
    invocation.finished_at = now
    invocation.save()


def execute(attempt: Attempt) -> InvokeResult:
    invocation = attempt.invocation
    return invoke_http(
        InvokeRequest(
            endpoint_url=invocation.endpoint_url,
            payload=bytes(invocation.payload),
            request_id=invocation.request_id,
            invocation_type=invocation.invocation_type,
            attempt_number=attempt.number,
            timeout_s=invocation.timeout_s,
            task_id=invocation.task_id,
            content_type=invocation.content_type,
        )
    )


def record_result(attempt_id: int, result: InvokeResult) -> Invocation:
    """Store an attempt's result and move its invocation on by the failure table."""
    with transaction.atomic():
        # Lock order everywhere: invocation, then attempt.
        invocation_id = Attempt.objects.values_list("invocation_id", flat=True).get(
            pk=attempt_id
        )
        invocation = Invocation.objects.select_for_update().get(pk=invocation_id)
        attempt = Attempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.ended_at is not None:
            # The lease expired and the dispatcher recorded the attempt as lost.
            logger.warning(
                "Result of attempt %s of request_id=%s arrived after it was closed",
                attempt.number,
                invocation.request_id,
            )
            return invocation

        ended_at = timezone.now()
        outcome = policy.classify(
            result.status_code, result.error_type_header, failure=result.failure
        )
        fill_attempt(attempt, result, outcome, ended_at)
        attempt.save()

        update_totals(invocation, attempt, outcome)
        move_on(invocation, attempt, outcome, ended_at)
        if (
            outcome is not policy.Outcome.SUCCESS
            and invocation.first_failure_at is None
        ):
            invocation.first_failure_at = ended_at
        invocation.save()
    return invocation


def fill_attempt(
    attempt: Attempt, result: InvokeResult, outcome: policy.Outcome, ended_at: datetime
) -> None:
    billed = policy.is_billed(outcome)
    attempt.ended_at = ended_at
    # duration_ms spans started_at to ended_at, so it agrees with the
    # timestamps; only the function call itself, as the invoker timed it,
    # is billed.
    attempt.duration_ms = max(
        result.duration_ms,
        round((ended_at - attempt.started_at).total_seconds() * 1000),
    )
    attempt.status_code = result.status_code
    attempt.error_type = policy.error_type_for(outcome, result.error_type_header) or ""
    attempt.error_message = result.error_message
    attempt.outcome = outcome
    attempt.billed = billed
    # Billed duration is the measured duration, rounded up to 1 ms.
    attempt.billed_duration_ms = max(1, result.duration_ms) if billed else 0
    preview = result.body[: settings.FCDASH_RESPONSE_PREVIEW_BYTES]
    attempt.response_preview = preview.decode("utf-8", errors="replace")
    attempt.lease_expires_at = None


def update_totals(
    invocation: Invocation, attempt: Attempt, outcome: policy.Outcome
) -> None:
    invocation.outcome = outcome
    invocation.last_error_type = attempt.error_type
    invocation.last_status_code = attempt.status_code
    if attempt.billed:
        invocation.billed_attempts += 1
        invocation.billed_duration_ms += attempt.billed_duration_ms
    else:
        invocation.unbilled_attempts += 1


def move_on(
    invocation: Invocation,
    attempt: Attempt,
    outcome: policy.Outcome,
    ended_at: datetime,
) -> None:
    """Set the invocation's next status after an attempt ended."""
    succeeded = outcome is policy.Outcome.SUCCESS
    if invocation.status == Status.STOPPING:
        # The operator's stop wins even over a successful last attempt; the
        # attempt itself still shows its outcome.
        finish(invocation, Status.STOPPED, "stopped", ended_at)
        return
    if attempt.trigger == Trigger.MANUAL:
        # A manual retry never starts an automatic chain.
        status = Status.SUCCEEDED if succeeded else Status.FAILED
        finish(invocation, status, "manual_retry", ended_at)
        return

    decision = policy.decide(
        invocation.policy_config,
        outcome,
        policy.RetryState(
            invocation_type=invocation.invocation_type,
            function_error_retries_used=invocation.function_error_retries_used,
            infrastructure_retries_used=invocation.infrastructure_retries_used,
            first_failure_at=invocation.first_failure_at,
            expires_at=invocation.expires_at,
        ),
        ended_at,
    )
    if decision.retries:
        schedule_retry(invocation, attempt, decision, ended_at)
        return
    if decision.give_up is policy.GiveUp.SUCCEEDED:
        status = Status.SUCCEEDED
    elif decision.give_up is policy.GiveUp.EVENT_AGE_EXCEEDED:
        status = Status.EXPIRED
    else:
        status = Status.FAILED
    finish(invocation, status, decision.give_up, ended_at)
    if status != Status.SUCCEEDED:
        logger.info(
            "Gave up request_id=%s after attempt %s: %s",
            invocation.request_id,
            attempt.number,
            decision.give_up,
        )


def schedule_retry(
    invocation: Invocation,
    attempt: Attempt,
    decision: policy.Decision,
    ended_at: datetime,
) -> None:
    if decision.retry_kind is policy.RetryKind.FUNCTION:
        invocation.function_error_retries_used += 1
    else:
        invocation.infrastructure_retries_used += 1
    invocation.status = Status.RETRYING
    invocation.next_attempt_at = decision.retry_at
    invocation.next_attempt_trigger = Trigger.AUTOMATIC
    invocation.dispatched_at = None
    lookahead = timedelta(seconds=settings.FCDASH_DISPATCH_LOOKAHEAD_S)
    if decision.retry_at <= ended_at + lookahead:
        # Hand a near retry over now, so the broker's latency passes while the
        # worker keeps the message until its ETA, not after it is due.
        invocation.dispatched_at = ended_at
        hand_over(invocation.pk, attempt.number + 1, eta=decision.retry_at)
    logger.info(
        "Scheduled %s retry of request_id=%s: attempt %s at %s after %s",
        decision.retry_kind,
        invocation.request_id,
        attempt.number + 1,
        decision.retry_at.isoformat(),
        decision.outcome,
    )


def finish(invocation: Invocation, status: str, reason: str, now: datetime) -> None:
    invocation.status = status
    invocation.give_up_reason = reason or ""
    invocation.next_attempt_at = None
    invocation.dispatched_at = None
    invocation.finished_at = now


def request_retry(invocation: Invocation, user, *, audited: bool = True) -> str:
    """Retry a finished invocation once, or run a scheduled retry now.

    Returns the audited action: "retry_now" or "manual_retry".
    """
    now = timezone.now()
    window = timedelta(seconds=settings.FCDASH_RETRY_REPEAT_WINDOW_S)
    with transaction.atomic():
        invocation = Invocation.objects.select_for_update().get(pk=invocation.pk)
        requested_at = invocation.retry_requested_at
        if requested_at and now - requested_at < window:
            # A double click, a re-sent request or a second operator: the
            # first request's attempt is the one they all asked for.
            raise AlreadyRequested(
                f"A retry of invocation {invocation.request_id} was requested "
                f"{(now - requested_at).total_seconds():.1f} s ago; it makes one "
                "attempt. Retry again once that attempt has ended."
            )
        if invocation.status == Status.RETRYING:
            if invocation.next_attempt_at and invocation.next_attempt_at <= now:
                raise AlreadyRequested(
                    f"Invocation {invocation.request_id}'s next attempt is already "
                    "due and starting; wait for it to finish."
                )
            action = "retry_now"
        elif (
            invocation.status in FINAL_STATUSES and invocation.status != Status.INVALID
        ):
            action = "manual_retry"
            invocation.status = Status.ENQUEUED
            invocation.next_attempt_trigger = Trigger.MANUAL
            invocation.finished_at = None
            invocation.give_up_reason = ""
        else:
            raise ActionConflict(
                f"Invocation {invocation.request_id} is {invocation.status}, so it "
                "cannot be retried now. Wait until its current attempt ends."
            )
        invocation.next_attempt_at = now
        invocation.dispatched_at = now
        invocation.retry_requested_at = now
        invocation.save()
        hand_over(invocation.pk, invocation.attempts_made + 1)
        if audited:
            audit(user, action, invocation)
    logger.info("%s requested for request_id=%s", action, invocation.request_id)
    return action


def request_stop(invocation: Invocation, user, *, audited: bool = True) -> str:
    """Stop an invocation's retries; one with an attempt in flight goes via Stopping.

    Returns the invocation's new status.
    """
    now = timezone.now()
    with transaction.atomic():
        invocation = Invocation.objects.select_for_update().get(pk=invocation.pk)
        if invocation.invocation_type == InvocationType.SYNC:
            raise ActionConflict(
                f"Invocation {invocation.request_id} is Sync: its caller owns it, "
                "so it cannot be stopped. Sync invocations end Succeeded or Failed."
            )
        if invocation.status in WAITING_STATUSES:
            finish(invocation, Status.STOPPED, "stopped", now)
        elif invocation.status == Status.RUNNING:
            invocation.status = Status.STOPPING
        elif invocation.status == Status.STOPPED:
            raise AlreadyRequested(
                f"Invocation {invocation.request_id} is already Stopped."
            )
        elif invocation.status != Status.STOPPING:
            raise ActionConflict(
                f"Invocation {invocation.request_id} is already {invocation.status}; "
                "there is nothing to stop."
            )
        invocation.save()
        if audited:
            audit(user, "stop", invocation)
    logger.info(
        "Stop requested for request_id=%s: now %s",
        invocation.request_id,
        invocation.status,
    )
    return invocation.status


def audit(user, action: str, invocation: Invocation) -> None:
    AuditEvent.objects.create(
        user=user if user and user.is_authenticated else None,
        action=action,
        target=invocation.request_id,
        detail={"function": invocation.function.name, "status": invocation.status},
    )
