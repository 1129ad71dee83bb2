import logging

from celery import shared_task

from . import dispatch, engine

logger = logging.getLogger(__name__)


@shared_task(name="invocations.tasks.run_attempt")
def run_attempt(invocation_id: int, number: int) -> None:
    """Run attempt `number` of an invocation, unless it already ran."""
    attempt = engine.claim_attempt(invocation_id, number)
    if attempt is None:
        return
    result = engine.execute(attempt)
    engine.record_result(attempt.pk, result)


@shared_task(name="invocations.tasks.dispatch_due_retries")
def dispatch_due_retries() -> None:
    """Recover lost attempts, expire old invocations, hand over due attempts."""
    dispatch.recover_lost_attempts()
    dispatch.expire_old_invocations()
    dispatch.dispatch_due()
