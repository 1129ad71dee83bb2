"""Quota alerts: opening, one per region and kind, resolving, acknowledging."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from invocations import alerts
from invocations.models import (
    Attempt,
    Function,
    Invocation,
    QuotaAlert,
    Region,
)

from .conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.FCDASH_ALERT_CLEAR_AFTER_S = 60
    settings.FCDASH_ALERT_NEAR_QUOTA_SHARE = 0.8
    settings.FCDASH_ALERT_WEBHOOK_URL = ""
    settings.FCDASH_ALERT_EMAILS = []


def add_attempt(region="cn-hangzhou", *, status_code=None, running=False, ended=None):
    function, _ = Function.objects.get_or_create(
        name=f"fn-{region}",
        defaults={"region": region, "endpoint_url": "http://127.0.0.1:9/x"},
    )
    now = timezone.now()
    invocation = Invocation.objects.create(
        function=function,
        region=region,
        invocation_type="Async",
        status="Running" if running else "Retrying",
        payload=b"",
        memory_mb=512,
        attempts_made=1,
    )
    return Attempt.objects.create(
        invocation=invocation,
        number=1,
        trigger="automatic",
        started_at=now,
        ended_at=None if running else (ended or now),
        status_code=status_code,
        lease_expires_at=now + timedelta(seconds=60) if running else None,
    )


def open_alerts(kind=None):
    alerts_query = QuotaAlert.objects.filter(resolved_at__isnull=True)
    if kind:
        alerts_query = alerts_query.filter(kind=kind)
    return list(alerts_query)


def test_429_opens_throttling_alert():
    add_attempt(status_code=429)
    alerts.evaluate_alerts()
    [alert] = open_alerts("throttling")
    assert alert.region == "cn-hangzhou"
    assert alert.throttled_attempts == 1
    assert alert.quota == 100
    assert "Quota Center" in alert.remediation


def test_throttling_keeps_one_alert():
    add_attempt(status_code=429)
    alerts.evaluate_alerts()
    for _ in range(3):
        add_attempt(status_code=429)
        alerts.evaluate_alerts()
    assert QuotaAlert.objects.count() == 1
    assert QuotaAlert.objects.get().throttled_attempts == 4


def test_throttling_resolves_after_clear_time():
    add_attempt(status_code=429)
    alerts.evaluate_alerts()
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        alerts.evaluate_alerts()
    assert len(open_alerts()) == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        alerts.evaluate_alerts()
    assert open_alerts() == []
    assert QuotaAlert.objects.get().resolved_at is not None


def test_new_throttling_after_resolve_opens_new_alert():
    add_attempt(status_code=429)
    alerts.evaluate_alerts()
    later = timezone.now() + timedelta(seconds=120)
    with time_machine.travel(later):
        alerts.evaluate_alerts()
        add_attempt(status_code=429)
        alerts.evaluate_alerts()
    assert QuotaAlert.objects.count() == 2
    assert len(open_alerts()) == 1


def test_near_quota_at_share():
    Region.objects.create(name="cn-hangzhou", quota=5)
    for _ in range(4):
        add_attempt(running=True)
    alerts.evaluate_alerts()
    [alert] = open_alerts()
    assert alert.kind == "near_quota"
    assert alert.peak_concurrency == 4
    assert alert.quota == 5


def test_below_share_opens_nothing():
    Region.objects.create(name="cn-hangzhou", quota=5)
    for _ in range(3):
        add_attempt(running=True)
    alerts.evaluate_alerts()
    assert open_alerts() == []


def test_exactly_at_quota_is_not_throttling():
    Region.objects.create(name="cn-hangzhou", quota=2)
    add_attempt(running=True)
    add_attempt(running=True)
    alerts.evaluate_alerts()
    assert [alert.kind for alert in open_alerts()] == ["near_quota"]


def test_expired_lease_stops_counting():
    for _ in range(3):
        add_attempt(running=True)
    lost = add_attempt(running=True)
    Attempt.objects.filter(pk=lost.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert alerts.running_attempts(timezone.now()) == {"cn-hangzhou": 3}


def test_regions_are_separate():
    add_attempt("cn-hangzhou", status_code=429)
    add_attempt("cn-beijing", status_code=429)
    alerts.evaluate_alerts()
    assert sorted(alert.region for alert in open_alerts()) == [
        "cn-beijing",
        "cn-hangzhou",
    ]


def test_open_notifies_once(settings, django_capture_on_commit_callbacks):
    settings.FCDASH_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    add_attempt(status_code=429)
    with django_capture_on_commit_callbacks() as callbacks:
        alerts.evaluate_alerts()
        alerts.evaluate_alerts()
    assert len(callbacks) == 1


def test_api_lists_and_acknowledges(operator, viewer):
    add_attempt(status_code=429)
    alerts.evaluate_alerts()
    listed = token_client(viewer).get("/api/alerts/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert rows[0]["kind"] == "throttling"
    assert rows[0]["region"] == "cn-hangzhou"
    assert "Quota Center" in rows[0]["remediation"]
    alert_id = rows[0]["id"]

    denied = token_client(viewer).post(f"/api/alerts/{alert_id}/acknowledge")
    assert denied.status_code == 403
    done = token_client(operator).post(f"/api/alerts/{alert_id}/acknowledge")
    assert done.status_code == 200
    assert done.json()["acknowledged_by"] == operator.username
    assert done.json()["acknowledged_at"] is not None


def test_throttling_stays_open_while_retry_waits():
    attempt = add_attempt(status_code=429)
    Invocation.objects.filter(pk=attempt.invocation_id).update(
        status="Retrying", outcome="concurrency_limit_exceeded"
    )
    alerts.evaluate_alerts()
    # The backoff (here 128 s) outlasts the 60 s clear time.
    with time_machine.travel(timezone.now() + timedelta(seconds=120)):
        alerts.evaluate_alerts()
    assert len(open_alerts("throttling")) == 1
    Invocation.objects.filter(pk=attempt.invocation_id).update(status="Succeeded")
    with time_machine.travel(timezone.now() + timedelta(seconds=240)):
        alerts.evaluate_alerts()
    assert open_alerts("throttling") == []
    assert QuotaAlert.objects.count() == 1
