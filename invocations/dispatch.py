"""The beat job's work: hand over due attempts, recover lost ones, expire old ones.

Each step is safe to run from several beat processes at once: rows are
claimed with SELECT ... FOR UPDATE SKIP LOCKED or changed by conditional
updates, and the worker's attempt-number claim makes a second message for
the same attempt harmless.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import engine, policy
from .invokers import InvokeResult
from .models import (
    WAITING_STATUSES,
    Attempt,
    Invocation,
    InvocationType,
    Status,
    Trigger,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


def dispatch_due(now: datetime | None = None) -> int:
    """Hand over the attempts due within the lookahead; return how many."""
    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.FCDASH_DISPATCH_LOOKAHEAD_S)
    stale = now - timedelta(seconds=settings.FCDASH_REDISPATCH_AFTER_S)
    with transaction.atomic():
        due = list(
            Invocation.objects.select_for_update(skip_locked=True)
            .filter(status__in=WAITING_STATUSES, next_attempt_at__lte=horizon)
            .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
            .order_by("next_attempt_at")
            .values_list(
                "pk", "request_id", "attempts_made", "next_attempt_at", "dispatched_at"
            )[:BATCH_SIZE]
        )
        if not due:
            return 0
        Invocation.objects.filter(pk__in=[row[0] for row in due]).update(
            dispatched_at=now
        )
        for pk, request_id, attempts_made, next_attempt_at, dispatched_at in due:
            if dispatched_at is not None:
                logger.warning(
                    "Handing over attempt %s of request_id=%s again: the first "
                    "message did not start it",
                    attempts_made + 1,
                    request_id,
                )
            engine.hand_over(pk, attempts_made + 1, eta=next_attempt_at)
    return len(due)


def recover_lost_attempts(now: datetime | None = None) -> int:
    """Close running attempts whose lease expired, as the WorkerLost row directs."""
    now = now or timezone.now()
    lost = list(
        Attempt.objects.filter(
            ended_at__isnull=True, lease_expires_at__lt=now
        ).values_list("pk", "started_at")[:BATCH_SIZE]
    )
    for attempt_id, started_at in lost:
        duration_ms = round((now - started_at).total_seconds() * 1000)
        invocation = engine.record_result(
            attempt_id,
            InvokeResult(
                status_code=None,
                error_type_header=None,
                body=b"",
                error_message=(
                    "The worker running this attempt stopped before recording "
                    "its result, and the attempt's lease expired."
                ),
                duration_ms=duration_ms,
                failure=policy.Outcome.WORKER_LOST,
            ),
        )
        logger.warning(
            "Recovered lost attempt id=%s of request_id=%s: now %s",
            attempt_id,
            invocation.request_id,
            invocation.status,
        )
    return len(lost)


def expire_old_invocations(now: datetime | None = None) -> int:
    """Mark waiting async invocations past their max event age as Expired."""
    now = now or timezone.now()
    count = Invocation.objects.filter(
        status__in=WAITING_STATUSES,
        invocation_type=InvocationType.ASYNC,
        next_attempt_trigger=Trigger.AUTOMATIC,
        expires_at__lte=now,
    ).update(
        status=Status.EXPIRED,
        give_up_reason=policy.GiveUp.EVENT_AGE_EXCEEDED,
        next_attempt_at=None,
        dispatched_at=None,
        finished_at=now,
    )
    if count:
        logger.info("Expired %s invocations past their max event age", count)
    return count
