"""The REST API: functions, invocations, bad input, permissions."""

import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from invocations.models import AlertKind, Function, Invocation, QuotaAlert

from .conftest import token_client

pytestmark = pytest.mark.django_db

MILLISECOND_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def function_body(**changes):
    body = {
        "name": "resize",
        "region": "cn-hangzhou",
        "endpoint_url": "http://127.0.0.1:9100/cn-hangzhou/ok",
        "memory_mb": 512,
        "timeout_s": 30,
        "max_async_retry_attempts": 3,
        "max_async_event_age_s": 3600,
    }
    body.update(changes)
    return body


def invoke(client, name, invocation_type="Async", payload=b"{}", **headers):
    return client.generic(
        "POST",
        f"/api/functions/{name}/invocations",
        payload,
        content_type="application/octet-stream",
        HTTP_X_FC_INVOCATION_TYPE=invocation_type,
        **headers,
    )


def test_create_function(api):
    response = api.post("/api/functions/", function_body(), format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "resize"
    assert MILLISECOND_UTC.match(response.json()["created_at"])


def test_function_defaults(api):
    body = {
        "name": "defaults",
        "region": "cn-hangzhou",
        "endpoint_url": "https://fn.example.test/run",
    }
    response = api.post("/api/functions/", body, format="json")
    assert response.status_code == 201
    assert response.json()["max_async_retry_attempts"] == 3
    assert response.json()["max_async_event_age_s"] == 86400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_async_retry_attempts", 9),
        ("max_async_retry_attempts", -1),
        ("max_async_event_age_s", 0),
        ("max_async_event_age_s", 604801),
        ("memory_mb", 0),
        ("timeout_s", 0),
        ("name", "1starts-with-digit"),
        ("name", ""),
        ("region", "CN Hangzhou"),
        ("endpoint_url", "ftp://127.0.0.1/fn"),
        ("endpoint_url", "file:///etc/passwd"),
        ("endpoint_url", "not a url"),
        ("endpoint_url", "http://169.254.169.254/latest/meta-data/"),
        ("endpoint_url", "http://100.100.100.200/latest/meta-data/"),
        ("endpoint_url", "http://metadata.google.internal/computeMetadata/v1/"),
        ("endpoint_url", "http://[fe80::1]/fn"),
        ("endpoint_url", "http://[::ffff:169.254.169.254]/"),
        ("endpoint_url", "http://[64:ff9b::a9fe:a9fe]/"),
        ("endpoint_url", "http://[64:ff9b::100.100.100.200]/"),
        ("endpoint_url", "http://[::169.254.169.254]/"),
        ("endpoint_url", "http://[::a9fe:1]/"),
        ("endpoint_url", "http://[2002:a9fe:a9fe::]/"),
        ("endpoint_url", "http://[2002:6464:64c8::1]/"),
        ("endpoint_url", "http://2852039166/latest/meta-data/"),
        ("endpoint_url", "http://0xA9FEA9FE/"),
        ("endpoint_url", "http://0251.0376.0251.0376/"),
        ("endpoint_url", "http://169.254.43518/"),
        ("endpoint_url", "http://METADATA.GOOGLE.INTERNAL./"),
        ("endpoint_url", "http://100.100.100.200./"),
    ],
)
def test_create_function_rejects_bad_field(api, field, value):
    response = api.post(
        "/api/functions/", function_body(**{field: value}), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not Function.objects.exists()


@pytest.mark.parametrize(
    "endpoint_url",
    [
        "http://[::1]:9100/fn",
        "http://[64:ff9b::a00:1]/fn",
        "http://[::a00:1]/fn",
        "http://[2002:a00:1::]/fn",
        "http://[2001:db8::1]/fn",
    ],
)
def test_create_function_accepts_ipv6_endpoint(api, endpoint_url):
    response = api.post(
        "/api/functions/", function_body(endpoint_url=endpoint_url), format="json"
    )
    assert response.status_code == 201, response.content


def test_create_function_malformed_json(api):
    response = api.post(
        "/api/functions/", b'{"name": "x",', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert not Function.objects.exists()


def test_create_function_duplicate_name(api):
    api.post("/api/functions/", function_body(), format="json")
    response = api.post("/api/functions/", function_body(), format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert Function.objects.count() == 1


def test_patch_function(api):
    api.post("/api/functions/", function_body(), format="json")
    response = api.patch(
        "/api/functions/resize/", {"max_async_retry_attempts": 0}, format="json"
    )
    assert response.status_code == 200
    assert Function.objects.get().max_async_retry_attempts == 0


def test_patch_function_out_of_range_changes_nothing(api):
    api.post("/api/functions/", function_body(), format="json")
    response = api.patch(
        "/api/functions/resize/",
        {"max_async_retry_attempts": 9, "timeout_s": 5},
        format="json",
    )
    assert response.status_code == 400
    function = Function.objects.get()
    assert function.max_async_retry_attempts == 3
    assert function.timeout_s == 30


def test_function_put_and_delete_not_allowed(api):
    api.post("/api/functions/", function_body(), format="json")
    assert (
        api.put("/api/functions/resize/", function_body(), format="json").status_code
        == 405
    )
    assert api.delete("/api/functions/resize/").status_code == 405


def test_unknown_function_is_404(api):
    response = api.get("/api/functions/nope/")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_viewer_cannot_create_function(viewer):
    response = token_client(viewer).post(
        "/api/functions/", function_body(), format="json"
    )
    assert response.status_code == 403
    assert not Function.objects.exists()


def test_anonymous_gets_401():
    assert APIClient().get("/api/invocations/").status_code == 401


def test_invoke_unknown_function_is_404(api):
    response = invoke(api, "ghost")
    assert response.status_code == 404
    assert "ghost" in response.json()["detail"]
    assert not Invocation.objects.exists()


def test_async_invoke_answers_202(api, make_function):
    make_function("resize")
    response = invoke(api, "resize", payload=b'{"id": 7}')
    assert response.status_code == 202
    request_id = response["X-Fc-Request-Id"]
    invocation = Invocation.objects.get(request_id=request_id)
    assert invocation.status == "Enqueued"
    assert bytes(invocation.payload) == b'{"id": 7}'


def test_invalid_invocation_type_is_400(api, make_function):
    make_function("resize")
    response = invoke(api, "resize", invocation_type="Later")
    assert response.status_code == 400
    assert "Later" in response.json()["detail"]
    assert not Invocation.objects.exists()


def test_async_payload_limit(api, make_function):
    make_function("resize")
    assert invoke(api, "resize", payload=b"x" * (128 * 1024)).status_code == 202
    response = invoke(api, "resize", payload=b"x" * (128 * 1024 + 1))
    assert response.status_code == 413
    assert "131073" in response.json()["detail"]
    assert Invocation.objects.count() == 1


def test_sync_payload_over_limit_is_413(api, make_function):
    make_function("resize")
    response = invoke(api, "resize", "Sync", payload=b"x" * (32 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert not Invocation.objects.exists()


@pytest.mark.parametrize(
    "task_id", ["1abc", "has space", "dot.ted", "x" * 129, "", "-dash-first"]
)
def test_invalid_task_id_is_400(api, make_function, task_id):
    make_function("resize")
    response = invoke(api, "resize", HTTP_X_FC_ASYNC_TASK_ID=task_id)
    assert response.status_code == 400
    assert "X-Fc-Async-Task-Id" in response.json()["detail"]
    assert not Invocation.objects.exists()


@pytest.mark.parametrize("task_id", ["a", "_x", "Order-42_retry", "t" * 128])
def test_valid_task_id_is_accepted(api, make_function, task_id):
    make_function("resize")
    response = invoke(api, "resize", HTTP_X_FC_ASYNC_TASK_ID=task_id)
    assert response.status_code == 202
    assert Invocation.objects.get().task_id == task_id


def test_repeated_task_id_is_409(api, make_function):
    make_function("resize")
    first = invoke(api, "resize", HTTP_X_FC_ASYNC_TASK_ID="order-1")
    second = invoke(api, "resize", HTTP_X_FC_ASYNC_TASK_ID="order-1")
    assert first.status_code == 202
    assert second.status_code == 409
    assert "order-1" in second.json()["detail"]
    assert Invocation.objects.count() == 1


def test_task_id_with_sync_is_400(api, make_function):
    make_function("resize")
    response = invoke(api, "resize", "Sync", HTTP_X_FC_ASYNC_TASK_ID="order-1")
    assert response.status_code == 400
    assert not Invocation.objects.exists()


def test_sync_invoke_returns_function_answer(api, make_function):
    make_function("resize", behaviour="ok")
    response = invoke(api, "resize", "Sync", payload=b"hello")
    assert response.status_code == 200
    assert b'"payload_bytes": 5' in response.content
    invocation = Invocation.objects.get(request_id=response["X-Fc-Request-Id"])
    assert invocation.status == "Succeeded"
    assert not response.has_header("X-Fc-Error-Type")


def test_sync_function_error_sets_error_type(api, make_function):
    make_function("resize", behaviour="error?type=handled")
    response = invoke(api, "resize", "Sync")
    assert response.status_code == 200
    assert response["X-Fc-Error-Type"] == "HandledInvocationError"


def test_default_invocation_type_is_sync(api, make_function):
    make_function("resize", behaviour="ok")
    response = api.generic("POST", "/api/functions/resize/invocations", b"{}")
    assert response.status_code == 200
    assert Invocation.objects.get().invocation_type == "Sync"


def test_invocation_detail_fields(api, make_function):
    make_function("resize", behaviour="error")
    request_id = invoke(api, "resize", "Sync")["X-Fc-Request-Id"]
    detail = api.get(f"/api/invocations/{request_id}/").json()
    for field in [
        "request_id",
        "task_id",
        "function",
        "region",
        "invocation_type",
        "status",
        "created_at",
        "next_attempt_at",
        "function_error_retries_used",
        "infrastructure_retries_used",
        "billed_attempts",
        "unbilled_attempts",
        "billed_gb_seconds",
        "remediation",
        "attempts",
    ]:
        assert field in detail
    attempt = detail["attempts"][0]
    for field in [
        "number",
        "trigger",
        "started_at",
        "ended_at",
        "duration_ms",
        "status_code",
        "error_type",
        "error_message",
        "billed",
    ]:
        assert field in attempt
    assert MILLISECOND_UTC.match(attempt["started_at"])
    assert detail["function"] == "resize"
    assert detail["billed_gb_seconds"] > 0


def test_unknown_invocation_is_404(api):
    response = api.get("/api/invocations/nope/")
    assert response.status_code == 404


def test_list_filters(api, make_function):
    make_function("good", behaviour="ok")
    make_function("bad", behaviour="sequence?codes=503", region="cn-shanghai")
    invoke(api, "good", "Sync")
    invoke(api, "bad", "Sync")
    invoke(api, "good")

    def names(query):
        response = api.get(f"/api/invocations/?{query}")
        assert response.status_code == 200, response.content
        return sorted(row["function"] for row in response.json()["results"])

    assert names("function=good") == ["good", "good"]
    assert names("status=Failed") == ["bad"]
    assert names("invocation_type=Async") == ["good"]
    assert names("error_type=InsufficientResources") == ["bad"]
    assert names("region=cn-shanghai") == ["bad"]
    assert names("billed=true") == ["good"]
    assert names("billed=false") == ["bad", "good"]
    assert names("since=2000-01-01T00:00:00Z") == ["bad", "good", "good"]
    assert names("until=2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    "query", ["status=Done", "invocation_type=Later", "since=yesterday", "billed=maybe"]
)
def test_list_bad_filter_is_400(api, query):
    response = api.get(f"/api/invocations/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_list_cursor_pagination(api, make_function):
    make_function("resize")
    for _ in range(5):
        invoke(api, "resize")
    first = api.get("/api/invocations/?limit=2").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    ids = [
        row["request_id"] for page in (first, second, third) for row in page["results"]
    ]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    assert third["next"] is None


def test_retry_needs_operator(viewer, make_function, api):
    make_function("resize", behaviour="error")
    request_id = invoke(api, "resize", "Sync")["X-Fc-Request-Id"]
    response = token_client(viewer).post(f"/api/invocations/{request_id}/retry")
    assert response.status_code == 403
    assert Invocation.objects.get().status == "Failed"


def test_stop_finished_is_409(operator, make_function, api):
    make_function("resize", behaviour="ok")
    request_id = invoke(api, "resize", "Sync")["X-Fc-Request-Id"]
    response = token_client(operator).post(f"/api/invocations/{request_id}/stop")
    assert response.status_code == 409
    assert "Succeeded" in response.json()["detail"]


def test_stop_enqueued(operator, make_function, api):
    make_function("resize")
    request_id = invoke(api, "resize")["X-Fc-Request-Id"]
    response = token_client(operator).post(f"/api/invocations/{request_id}/stop")
    assert response.status_code == 202
    assert response.json()["status"] == "Stopped"


def test_retry_get_not_allowed(api, make_function):
    make_function("resize", behaviour="ok")
    request_id = invoke(api, "resize", "Sync")["X-Fc-Request-Id"]
    assert api.get(f"/api/invocations/{request_id}/retry").status_code == 405


def test_policy_lists_table(api):
    body = api.get("/api/policy/").json()
    rows = {row["outcome"]: row for row in body["rows"]}
    assert rows["concurrency_limit_exceeded"]["retry"] == "infrastructure"
    assert rows["concurrency_limit_exceeded"]["billed"] is False
    assert rows["function_error"]["retry"] == "function"
    assert rows["function_error"]["billed"] is True
    assert body["base_delay_s"] == 0.5
    assert body["infrastructure_window_s"] == 18000
    assert body["default_region_quota"] == 100


def test_schema_is_served(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/functions/" in response.content


def test_createapitoken_prints_token(admin_user, capsys):
    call_command("createapitoken", admin_user.username)
    printed = capsys.readouterr().out.strip()
    assert printed == Token.objects.get(user=admin_user).key


def test_createapitoken_token_authenticates(db, capsys):
    call_command("createapitoken", "script", "--role", "operator")
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/invocations/").status_code == 200


@pytest.mark.parametrize("username", ["bad user!", "semi;colon", "x" * 151, ""])
def test_createapitoken_rejects_invalid_username(db, username):
    with pytest.raises(CommandError, match="Invalid username") as error:
        call_command("createapitoken", username)
    assert repr(username) in str(error.value)
    assert not User.objects.exists()


def test_createapitoken_existing_user_keeps_role(viewer, capsys):
    call_command("createapitoken", viewer.username, "--role", "admin")
    output = capsys.readouterr()
    assert output.out.strip() == Token.objects.get(user=viewer).key
    assert "--role admin applies only to users that this command creates" in (
        output.err
    )
    assert [group.name for group in viewer.groups.all()] == ["viewer"]


def test_createapitoken_existing_user_without_role(viewer, capsys):
    call_command("createapitoken", viewer.username)
    assert capsys.readouterr().err == ""


def test_createapitoken_new_user_defaults_to_admin(db, capsys):
    call_command("createapitoken", "script")
    assert "role admin" in capsys.readouterr().err
    user = User.objects.get(username="script")
    assert [group.name for group in user.groups.all()] == ["admin"]


def test_acknowledge_needs_operator(viewer):
    alert = QuotaAlert.objects.create(
        region="cn-hangzhou", kind=AlertKind.THROTTLING, quota=100
    )
    response = token_client(viewer).post(f"/api/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 403
    assert response.json()["detail"] == "Acknowledging alerts needs the operator role."
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_function_create_and_patch_are_audited(api, admin_user):
    from invocations.models import AuditEvent

    api.post("/api/functions/", function_body(), format="json")
    api.patch("/api/functions/resize/", {"memory_mb": 256}, format="json")
    api.patch("/api/functions/resize/", {"memory_mb": 256}, format="json")
    created = AuditEvent.objects.get(action="function_create")
    assert created.user == admin_user
    assert created.target == "resize"
    assert created.detail["memory_mb"] == 512
    changed = AuditEvent.objects.get(action="function_change")
    assert changed.detail == {"memory_mb": [512, 256]}
