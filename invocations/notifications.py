"""Alert notifications: a JSON webhook and email through Django's backend."""

import logging

import httpx
from django.conf import settings
from django.core.mail import send_mail

from .models import QuotaAlert
from .validators import validate_endpoint_url

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 10


class WebhookFailed(Exception):
    """The webhook receiver responded with a status other than 2xx."""


def alert_message(alert: QuotaAlert, event: str) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "event": event,
        "alert_id": alert.pk,
        "region": alert.region,
        "kind": alert.kind,
        "quota": alert.quota,
        "opened_at": iso(alert.opened_at),
        "last_seen_at": iso(alert.last_seen_at),
        "resolved_at": iso(alert.resolved_at),
        "peak_concurrency": alert.peak_concurrency,
        "throttled_attempts": alert.throttled_attempts,
        "remediation": alert.remediation,
    }


def post_webhook(url: str, message: dict) -> None:
    validate_endpoint_url(url)
    response = httpx.post(url, json=message, timeout=WEBHOOK_TIMEOUT_S)
    if not response.is_success:
        raise WebhookFailed(
            f"Webhook {url} failed: HTTP {response.status_code}; the call is retried"
        )


def email_alert(message: dict) -> None:
    subject = (
        f"[fcdash] {message['kind']} alert {message['event']} in {message['region']}"
    )
    lines = [f"{key}: {value}" for key, value in message.items()]
    send_mail(
        subject,
        "\n".join(lines),
        settings.DEFAULT_FROM_EMAIL,
        settings.FCDASH_ALERT_EMAILS,
    )
