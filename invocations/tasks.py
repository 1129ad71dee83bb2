import logging

import httpx
from celery import shared_task
from django.conf import settings

from . import alerts, bulk, dispatch, engine, notifications
from .models import QuotaAlert

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
    """Recover lost attempts, expire old invocations, hand over due attempts.

    Then update quota alerts and resume stalled bulk actions.
    """
    dispatch.recover_lost_attempts()
    dispatch.expire_old_invocations()
    dispatch.dispatch_due()
    alerts.evaluate_alerts()
    bulk.resume_stalled()


@shared_task(name="invocations.tasks.run_bulk_action")
def run_bulk_action(bulk_id: int) -> None:
    """Handle one batch of a bulk action and enqueue the next."""
    if bulk.run_batch(bulk_id):
        run_bulk_action.delay(bulk_id)


@shared_task(name="invocations.tasks.send_alert_notification")
def send_alert_notification(alert_id: int, event: str) -> None:
    """Send an alert's "opened" or "resolved" notification by webhook and email."""
    alert = QuotaAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        return
    message = notifications.alert_message(alert, event)
    if settings.FCDASH_ALERT_WEBHOOK_URL:
        send_alert_webhook.delay(settings.FCDASH_ALERT_WEBHOOK_URL, message)
    if settings.FCDASH_ALERT_EMAILS:
        notifications.email_alert(message)


@shared_task(
    name="invocations.tasks.send_alert_webhook",
    autoretry_for=(httpx.HTTPError, notifications.WebhookFailed),
    retry_backoff=1,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=10,
)
def send_alert_webhook(url: str, message: dict) -> None:
    """POST an alert message to the webhook, retried with backoff on failure."""
    notifications.post_webhook(url, message)
    logger.info(
        "Sent %s webhook for alert id=%s", message["event"], message["alert_id"]
    )
