"""Function settings, the failure table, quota alerts and the audit log pages."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from invocations import policy
from invocations.models import AuditEvent, FailurePolicy, Function, QuotaAlert, Status
from tests.test_pages_factories import make_function, make_invocation, make_user

pytestmark = pytest.mark.django_db

VALID_FUNCTION = {
    "region": "cn-shanghai",
    "endpoint_url": "http://127.0.0.1:9000/resize",
    "memory_mb": "1024",
    "timeout_s": "30",
    "max_async_retry_attempts": "2",
    "max_async_event_age_s": "3600",
}
VALID_POLICY = {
    "base_delay_s": "1",
    "infrastructure_window_s": "7200",
    "default_region_quota": "50",
    "retry_disabled": ["internal_system_error", "insufficient_resources"],
}


def logged_in(client, role):
    client.force_login(make_user(role))
    return client


def test_function_list_shows_statistics(client):
    function = make_function("resize", memory_mb=2048)
    make_invocation(function, Status.SUCCEEDED, billed_duration_ms=1500)
    make_invocation(function, Status.SUCCEEDED, billed_duration_ms=500)
    make_invocation(function, Status.FAILED)
    make_invocation(function, Status.RETRYING)
    make_function("idle")

    response = logged_in(client, "viewer").get(reverse("function-list"))

    by_name = {function.name: function for function in response.context["functions"]}
    resize = by_name["resize"]
    assert resize.invocation_count == 4
    assert resize.success_rate == pytest.approx(2 / 3)
    assert resize.retrying_count == 1
    assert resize.failed_count == 1
    # 2 GB for 2 s in all.
    assert resize.billed_gb_seconds == pytest.approx(4.0)
    assert by_name["idle"].success_rate is None
    assert "66.7%" in response.text


def test_function_edit_saves_and_audits(client):
    make_function("resize")
    admin = logged_in(client, "admin")

    response = admin.post(reverse("function-detail", args=["resize"]), VALID_FUNCTION)

    function = Function.objects.get(name="resize")
    assert response.status_code == 302
    assert function.memory_mb == 1024
    assert function.region == "cn-shanghai"
    event = AuditEvent.objects.get()
    assert event.action == "function_change"
    assert event.target == "resize"
    assert event.detail["memory_mb"] == [512, 1024]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory_mb", "10", "greater than or equal to 64"),
        ("max_async_retry_attempts", "9", "less than or equal to 8"),
        ("endpoint_url", "http://169.254.169.254/latest", "cloud metadata"),
        ("endpoint_url", "ftp://example.test/fn", "scheme must be http or https"),
        ("region", "CN Hangzhou", "Invalid region"),
    ],
)
def test_function_edit_rejects_bad_value(client, field, value, message):
    make_function("resize")
    admin = logged_in(client, "admin")

    response = admin.post(
        reverse("function-detail", args=["resize"]), {**VALID_FUNCTION, field: value}
    )

    function = Function.objects.get(name="resize")
    assert response.status_code == 422
    assert message in response.text
    assert function.memory_mb == 512
    assert function.region == "cn-hangzhou"
    assert AuditEvent.objects.count() == 0


def test_bad_edit_keeps_stored_settings(client):
    make_function("resize")
    admin = logged_in(client, "admin")

    response = admin.post(
        reverse("function-detail", args=["resize"]),
        {**VALID_FUNCTION, "memory_mb": "10"},
    )

    assert response.context["function"].region == "cn-hangzhou"


def test_policy_page_shows_table_rows(client):
    response = logged_in(client, "viewer").get(reverse("policy"))

    for row in policy.ROWS:
        assert escape(row.recognised_by) in response.text
    assert "at most 15 when every attempt fails at once" in response.text
    assert "500 ms, 1 s, 2 s, 4 s" in response.text


def test_policy_edit_saves_and_audits(client):
    admin = logged_in(client, "admin")

    response = admin.post(reverse("policy"), VALID_POLICY)

    current = FailurePolicy.current()
    assert response.status_code == 302
    assert current.base_delay_s == 1
    assert current.infrastructure_window_s == 7200
    assert current.default_region_quota == 50
    assert current.retry_disabled == ["insufficient_resources", "internal_system_error"]
    event = AuditEvent.objects.get()
    assert event.action == "policy_change"
    assert event.user.username == "admin-user"
    assert event.detail["base_delay_s"] == [0.5, 1.0]
    assert event.detail["default_region_quota"] == [100, 50]


def test_policy_page_marks_switched_off_rows(client):
    admin = logged_in(client, "admin")
    admin.post(reverse("policy"), VALID_POLICY)

    response = admin.get(reverse("policy"))

    switched_off = [
        item["row"].outcome for item in response.context["rows"] if item["switched_off"]
    ]
    assert switched_off == ["internal_system_error", "insufficient_resources"]
    assert "switched off by an operator" in response.text


def test_unchanged_policy_writes_no_event(client):
    admin = logged_in(client, "admin")
    unchanged = {
        "base_delay_s": "0.5",
        "infrastructure_window_s": "18000",
        "default_region_quota": "100",
    }

    admin.post(reverse("policy"), unchanged)

    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_delay_s", "0"),
        ("base_delay_s", "nan"),
        ("infrastructure_window_s", "-5"),
        ("default_region_quota", "0"),
        ("retry_disabled", ["success"]),
    ],
)
def test_policy_edit_rejects_bad_value(client, field, value):
    admin = logged_in(client, "admin")

    response = admin.post(reverse("policy"), {**VALID_POLICY, field: value})

    current = FailurePolicy.current()
    assert response.status_code == 422
    assert 'class="error"' in response.text
    assert current.base_delay_s == policy.DEFAULT_BASE_DELAY_S
    assert current.retry_disabled == []
    assert AuditEvent.objects.count() == 0


@pytest.fixture
def alert():
    return QuotaAlert.objects.create(
        region="cn-hangzhou", kind="throttling", quota=100, throttled_attempts=7
    )


def test_alert_list_shows_remediation(client, alert):
    QuotaAlert.objects.filter(pk=alert.pk).update(peak_concurrency=100)

    response = logged_in(client, "viewer").get(reverse("alert-list"))

    assert "Raise the concurrency quota of region cn-hangzhou" in response.text
    assert "100 of 100" in response.text
    assert "Acknowledge</button>" not in response.text


def test_acknowledge_alert(client, alert):
    operator = logged_in(client, "operator")

    response = operator.post(reverse("alert-acknowledge", args=[alert.pk]))

    alert.refresh_from_db()
    assert response.status_code == 302
    assert alert.acknowledged_by.username == "operator-user"
    assert alert.acknowledged_at is not None
    assert AuditEvent.objects.get().action == "alert_acknowledge"


def test_acknowledge_twice_audits_once(client, alert):
    operator = logged_in(client, "operator")
    url = reverse("alert-acknowledge", args=[alert.pk])

    operator.post(url)
    first_time = QuotaAlert.objects.get().acknowledged_at
    response = operator.post(url, follow=True)

    assert QuotaAlert.objects.get().acknowledged_at == first_time
    assert AuditEvent.objects.count() == 1
    assert "already acknowledged" in response.text


def test_acknowledge_htmx_returns_row(client, alert):
    operator = logged_in(client, "operator")

    response = operator.post(
        reverse("alert-acknowledge", args=[alert.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response.text.strip().startswith(f'<tr id="alert-{alert.pk}">')
    assert "operator-user" in response.text


def test_audit_log_lists_events_newest_first(client):
    operator = make_user("operator")
    AuditEvent.objects.create(user=operator, action="stop", target="req-1")
    AuditEvent.objects.create(user=None, action="policy_change", target="failure table")

    response = logged_in(client, "admin").get(reverse("audit-log"))

    actions = [event.action for event in response.context["page"].rows]
    assert actions == ["policy_change", "stop"]
    assert reverse("invocation-detail", args=["req-1"]) in response.text
    assert "system" in response.text


def test_audit_log_shows_old_and_new(client):
    AuditEvent.objects.create(
        action="policy_change",
        target="failure table",
        detail={"retry_disabled": [[], ["internal_system_error"]]},
    )

    response = logged_in(client, "admin").get(reverse("audit-log"))

    assert "retry_disabled: none → internal_system_error" in response.text
