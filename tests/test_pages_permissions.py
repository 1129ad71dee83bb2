"""Every page and action against every role: who may read, act and configure."""

import pytest
from django.urls import reverse

from invocations.models import QuotaAlert, Status
from tests.test_pages_factories import make_function, make_invocation, make_user

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "viewer", "operator", "admin")
LOGIN = "login"

FUNCTION_EDIT = {
    "region": "cn-shanghai",
    "endpoint_url": "http://127.0.0.1:9/fn",
    "memory_mb": "1024",
    "timeout_s": "30",
    "max_async_retry_attempts": "2",
    "max_async_event_age_s": "3600",
}
POLICY_EDIT = {
    "base_delay_s": "1",
    "infrastructure_window_s": "7200",
    "default_region_quota": "50",
}


@pytest.fixture
def objects():
    function = make_function("resize")
    failed = make_invocation(function, Status.FAILED, request_id="req-failed")
    retrying = make_invocation(function, Status.RETRYING, request_id="req-retrying")
    alert = QuotaAlert.objects.create(region="cn-hangzhou", kind="throttling", quota=2)
    return {
        "function": function,
        "failed": failed,
        "retrying": retrying,
        "alert": alert,
    }


def client_for(client, role):
    if role != "anonymous":
        client.force_login(make_user(role))
    return client


# (name, url name, url args, method, data, expected status per role)
CASES = [
    ("overview", "overview", [], "get", None, (LOGIN, 200, 200, 200)),
    ("history", "invocation-list", [], "get", None, (LOGIN, 200, 200, 200)),
    ("rows", "invocation-rows", [], "get", None, (LOGIN, 286, 286, 286)),
    (
        "detail",
        "invocation-detail",
        ["req-failed"],
        "get",
        None,
        (LOGIN, 200, 200, 200),
    ),
    ("live", "invocation-live", ["req-retrying"], "get", None, (LOGIN, 200, 200, 200)),
    ("retry", "invocation-retry", ["req-failed"], "post", {}, (LOGIN, 403, 302, 302)),
    ("stop", "invocation-stop", ["req-retrying"], "post", {}, (LOGIN, 403, 302, 302)),
    ("functions", "function-list", [], "get", None, (LOGIN, 200, 200, 200)),
    ("function", "function-detail", ["resize"], "get", None, (LOGIN, 200, 200, 200)),
    (
        "function edit",
        "function-detail",
        ["resize"],
        "post",
        FUNCTION_EDIT,
        (LOGIN, 403, 403, 302),
    ),
    ("policy", "policy", [], "get", None, (LOGIN, 200, 200, 200)),
    ("policy edit", "policy", [], "post", POLICY_EDIT, (LOGIN, 403, 403, 302)),
    ("alerts", "alert-list", [], "get", None, (LOGIN, 200, 200, 200)),
    ("acknowledge", "alert-acknowledge", ["alert"], "post", {}, (LOGIN, 403, 302, 302)),
    ("audit", "audit-log", [], "get", None, (LOGIN, 403, 403, 200)),
]


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize(
    ("url_name", "args", "method", "data", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_permission_matrix(
    client, objects, role_index, url_name, args, method, data, expected
):
    args = [objects["alert"].pk if arg == "alert" else arg for arg in args]
    url = reverse(url_name, args=args)
    client = client_for(client, ROLES[role_index])

    response = getattr(client, method)(url, data)

    if expected[role_index] == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected[role_index]


@pytest.mark.parametrize(
    ("url_name", "args"),
    [
        ("invocation-detail", ["no-such-request"]),
        ("invocation-live", ["no-such-request"]),
        ("function-detail", ["no-such-function"]),
    ],
)
def test_unknown_object_is_404(client, objects, url_name, args):
    client_for(client, "viewer")

    response = client.get(reverse(url_name, args=args))

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("url_name", "args"),
    [
        ("invocation-retry", ["no-such-request"]),
        ("invocation-stop", ["no-such-request"]),
        ("alert-acknowledge", [999_999]),
    ],
)
def test_unknown_object_action_is_404(client, objects, url_name, args):
    client_for(client, "operator")

    response = client.post(reverse(url_name, args=args))

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("url_name", "arg"),
    [
        ("invocation-retry", "req-failed"),
        ("invocation-stop", "req-retrying"),
        ("alert-acknowledge", "alert"),
    ],
)
def test_get_on_post_only_endpoint_is_405(client, objects, url_name, arg):
    client_for(client, "operator")
    arg = objects["alert"].pk if arg == "alert" else arg

    response = client.get(reverse(url_name, args=[arg]))

    assert response.status_code == 405


def test_viewer_retry_changes_nothing(client, objects):
    client_for(client, "viewer")

    client.post(reverse("invocation-retry", args=["req-failed"]))

    objects["failed"].refresh_from_db()
    assert objects["failed"].status == Status.FAILED


def test_buttons_hidden_from_viewer(client, objects):
    client_for(client, "viewer")

    response = client.get(reverse("invocation-detail", args=["req-failed"]))

    assert reverse("invocation-retry", args=["req-failed"]) not in response.text


def test_buttons_shown_to_operator(client, objects):
    client_for(client, "operator")

    response = client.get(reverse("invocation-detail", args=["req-failed"]))

    assert reverse("invocation-retry", args=["req-failed"]) in response.text


def test_edit_forms_hidden_from_operator(client, objects):
    client_for(client, "operator")

    function_page = client.get(reverse("function-detail", args=["resize"]))
    policy_page = client.get(reverse("policy"))

    assert 'name="memory_mb"' not in function_page.text
    assert 'name="base_delay_s"' not in policy_page.text


def test_audit_link_only_for_admin(client, objects):
    audit_url = reverse("audit-log")

    operator_page = client_for(client, "operator").get(reverse("overview"))
    client.logout()
    admin_page = client_for(client, "admin").get(reverse("overview"))

    assert f'href="{audit_url}"' not in operator_page.text
    assert f'href="{audit_url}"' in admin_page.text


def test_nav_shows_open_alert_count(client, objects):
    QuotaAlert.objects.create(region="cn-beijing", kind="near_quota", quota=10)
    client_for(client, "viewer")

    response = client.get(reverse("function-list"))

    assert response.context["open_alert_count"] == 2
    assert 'title="Open quota alerts">2</span>' in response.text


def test_logout_is_post_form(client, objects):
    client_for(client, "viewer")

    response = client.get(reverse("overview"))

    assert f'method="post" action="{reverse("logout")}"' in response.text


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert 'name="password"' in response.text


def test_anonymous_htmx_poll_redirects_page(client, objects):
    page_url = reverse("invocation-detail", args=["req-retrying"])

    response = client.get(
        reverse("invocation-live", args=["req-retrying"]),
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver{page_url}",
        },
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={page_url}"
    assert response.content == b""


def test_forbidden_edit_explains_permission(client, objects):
    client_for(client, "viewer")

    response = client.post(reverse("function-detail", args=["resize"]), FUNCTION_EDIT)

    assert response.status_code == 403
    assert "requires the change_function permission" in response.text
