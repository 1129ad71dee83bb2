"""Bulk retry and stop from the history page: forms, confirmation, progress."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invocations import bulk
from invocations.models import AuditEvent, BulkAction, Invocation, Status
from invocations.views.bulk import CONFIRM_RETRY_ABOVE
from tests.test_pages_factories import make_function, make_invocation, make_user

pytestmark = pytest.mark.django_db

HISTORY = reverse("invocation-list")
CREATE = reverse("bulk-create")
LOGIN = "login"
ROLES = ("anonymous", "viewer", "operator")


@pytest.fixture
def invocations():
    resize = make_function("resize")
    thumbnail = make_function("thumbnail")
    for index in range(3):
        make_invocation(resize, Status.RETRYING, request_id=f"retrying-{index}")
    make_invocation(thumbnail, Status.RETRYING, request_id="retrying-other")
    for index in range(2):
        make_invocation(resize, Status.SUCCEEDED, request_id=f"done-{index}")


@pytest.fixture
def operator_client(client):
    client.force_login(make_user("operator"))
    return client


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


def stop_matching(**extra) -> dict:
    return {
        "action": "stop",
        "scope": "matching",
        "function": "resize",
        "status": "Retrying",
        **extra,
    }


def make_bulk(operator, state=BulkAction.State.PENDING) -> BulkAction:
    action = bulk.create_bulk_action("stop", operator, filters={"status": "Retrying"})
    BulkAction.objects.filter(pk=action.pk).update(state=state)
    action.refresh_from_db()
    return action


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize(
    ("name", "method", "expected"),
    [
        ("create", "post", (LOGIN, 403, 200)),
        ("detail", "get", (LOGIN, 200, 200)),
        ("progress", "get", (LOGIN, 200, 200)),
        ("cancel", "post", (LOGIN, 403, 302)),
    ],
)
def test_bulk_permission_matrix(
    client, invocations, role_index, name, method, expected
):
    action = make_bulk(make_user("operator", "owner"))
    urls = {
        "create": CREATE,
        "detail": reverse("bulk-action", args=[action.pk]),
        "progress": reverse("bulk-action-progress", args=[action.pk]),
        "cancel": reverse("bulk-action-cancel", args=[action.pk]),
    }
    if ROLES[role_index] != "anonymous":
        client.force_login(make_user(ROLES[role_index]))

    response = getattr(client, method)(urls[name], stop_matching())

    if expected[role_index] == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected[role_index]


def test_viewer_post_creates_nothing(viewer_client, invocations):
    response = viewer_client.post(CREATE, stop_matching(confirmed="yes"))

    assert response.status_code == 403
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize("url_name", ["bulk-create", "bulk-action-cancel"])
def test_get_on_bulk_post_is_405(operator_client, invocations, url_name):
    args = (
        [make_bulk(make_user("operator", "owner")).pk] if "cancel" in url_name else []
    )

    response = operator_client.get(reverse(url_name, args=args))

    assert response.status_code == 405


def test_unknown_bulk_action_is_404(operator_client):
    response = operator_client.get(reverse("bulk-action", args=[999_999]))

    assert response.status_code == 404


def test_history_shows_bulk_forms_to_operator(operator_client, invocations):
    response = operator_client.get(
        HISTORY, {"status": "Retrying", "function": "resize"}
    )

    assert f'action="{CREATE}"' in response.text
    assert "Retry selected" in response.text
    assert "Stop selected" in response.text
    assert "Retry all matching" in response.text
    assert "Stop all matching" in response.text
    assert 'type="hidden" name="status" value="Retrying"' in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    assert response.text.count('form="bulk-selected" name="request_id"') == 3


def test_history_hides_bulk_forms_from_viewer(viewer_client, invocations):
    response = viewer_client.get(HISTORY, {"status": "Retrying"})

    assert f'action="{CREATE}"' not in response.text
    assert 'name="request_id"' not in response.text
    assert "Export CSV" in response.text


def test_all_matching_needs_a_filter(operator_client, invocations):
    page = operator_client.get(HISTORY)
    response = operator_client.post(CREATE, {"action": "retry", "scope": "matching"})

    assert "Retry all matching" not in page.text
    assert "Set a filter" in page.text
    assert response.status_code == 400
    assert "No filter set" in response.text
    assert not BulkAction.objects.exists()


def test_history_page_counts_nothing(operator_client, invocations):
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(HISTORY, {"status": "Retrying"})

    assert response.status_code == 200
    counts = [
        query["sql"]
        for query in queries
        if "COUNT(" in query["sql"].upper() and "invocations_invocation" in query["sql"]
    ]
    assert counts == []


def test_rows_poll_keeps_checkboxes(operator_client, invocations):
    ids = Invocation.objects.values_list("pk", flat=True)

    response = operator_client.get(
        reverse("invocation-rows"), {"id": list(ids)}, headers={"HX-Request": "true"}
    )

    assert response.text.count("hx-preserve") == 6
    assert f'id="select-{ids[0]}"' in response.text


def test_history_export_link_keeps_filter(viewer_client, invocations):
    response = viewer_client.get(
        HISTORY, {"status": "Retrying", "function": "resize", "older": ""}
    )

    link = response.context["export_url"]
    parts = urlsplit(link)
    export = viewer_client.get(link)
    body = b"".join(export.streaming_content).decode()
    assert parts.path == reverse("api:invocation-export")
    assert parse_qs(parts.query) == {"function": ["resize"], "status": ["Retrying"]}
    assert f'href="{link.replace("&", "&amp;")}"' in response.text
    assert export.status_code == 200
    assert len(body.splitlines()) == 4


def test_stop_matching_asks_with_count(operator_client, invocations):
    response = operator_client.post(CREATE, stop_matching())

    assert response.status_code == 200
    assert "Stop 3 invocations" in response.text
    assert 'name="confirmed" value="yes"' in response.text
    assert 'type="hidden" name="function" value="resize"' in response.text
    assert not BulkAction.objects.exists()


def test_stop_matching_creates_bulk(operator_client, invocations):
    response = operator_client.post(CREATE, stop_matching(confirmed="yes"))

    action = BulkAction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("bulk-action", args=[action.pk])
    assert action.action == "stop"
    assert action.filters == {"function": "resize", "status": "Retrying"}
    assert action.request_ids == []
    assert action.total == 3
    assert action.state == "pending"
    assert action.created_by.username == "operator-user"
    assert AuditEvent.objects.get(action="bulk_stop").count == 3


def test_bulk_stop_runs_to_done(operator_client, invocations):
    operator_client.post(CREATE, stop_matching(confirmed="yes"))
    action = BulkAction.objects.get()

    while bulk.run_batch(action.pk):
        pass
    page = operator_client.get(reverse("bulk-action", args=[action.pk]))

    stopped = Invocation.objects.filter(status=Status.STOPPED)
    assert set(stopped.values_list("request_id", flat=True)) == {
        "retrying-0",
        "retrying-1",
        "retrying-2",
    }
    assert page.context["bulk_action"].state == "done"
    assert "3 of 3" in page.text
    assert "hx-get" not in page.text
    assert "Cancel</button>" not in page.text


def test_retry_few_selected_without_confirmation(operator_client, invocations):
    response = operator_client.post(
        CREATE,
        {"action": "retry", "scope": "selected", "request_id": ["done-0", "done-1"]},
    )

    action = BulkAction.objects.get()
    assert response.status_code == 302
    assert action.action == "retry"
    assert sorted(action.request_ids) == ["done-0", "done-1"]
    assert action.filters == {}
    assert action.total == 2


def test_retry_many_selected_asks(operator_client):
    function = make_function("many")
    request_ids = [f"many-{index}" for index in range(CONFIRM_RETRY_ABOVE + 1)]
    for request_id in request_ids:
        make_invocation(function, Status.FAILED, request_id=request_id)
    data = {"action": "retry", "scope": "selected", "request_id": request_ids}

    response = operator_client.post(CREATE, data)

    assert response.status_code == 200
    assert f"Retry {len(request_ids)} invocations" in response.text
    assert response.text.count('type="hidden" name="request_id"') == len(request_ids)
    assert not BulkAction.objects.exists()


def test_stop_selected_asks_with_count(operator_client, invocations):
    data = {"action": "stop", "scope": "selected", "request_id": ["retrying-0"]}

    confirm = operator_client.post(CREATE, data)
    created = operator_client.post(CREATE, {**data, "confirmed": "yes"})

    assert "Stop 1 invocation<" in confirm.text
    assert created.status_code == 302
    assert BulkAction.objects.get().request_ids == ["retrying-0"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "stop", "scope": "selected"}, "No invocation selected"),
        (
            {"action": "delete", "scope": "selected"},
            "Invalid action &#x27;delete&#x27;",
        ),
        ({"action": "stop", "scope": "page"}, "Invalid scope &#x27;page&#x27;"),
        (
            {"action": "stop", "scope": "matching", "since": "soon"},
            "Invalid filters: since:",
        ),
    ],
)
def test_bad_bulk_form_is_400(operator_client, invocations, data, message):
    response = operator_client.post(CREATE, {**data, "confirmed": "yes"})

    assert response.status_code == 400
    assert message in response.text
    assert not BulkAction.objects.exists()


def test_nothing_matching_offers_no_confirm(operator_client, invocations):
    data = {"action": "retry", "scope": "matching", "function": "no-such-function"}

    response = operator_client.post(CREATE, data)

    assert response.status_code == 200
    assert "nothing to retry" in response.text
    assert 'name="confirmed"' not in response.text
    assert not BulkAction.objects.exists()


def test_progress_polls_while_pending(operator_client, invocations, operator):
    action = make_bulk(operator)

    page = operator_client.get(reverse("bulk-action", args=[action.pk]))
    partial = operator_client.get(reverse("bulk-action-progress", args=[action.pk]))

    progress_url = reverse("bulk-action-progress", args=[action.pk])
    assert f'hx-get="{progress_url}"' in page.text
    assert 'hx-trigger="every 1s"' in page.text
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<section id="bulk-progress"')
    assert "Cancel</button>" in partial.text


@pytest.mark.parametrize("state", ["done", "cancelled"])
def test_progress_stops_polling_when_ended(viewer_client, invocations, operator, state):
    action = make_bulk(operator, state=state)

    response = viewer_client.get(reverse("bulk-action-progress", args=[action.pk]))

    assert response.status_code == 286
    assert "hx-get" not in response.text
    assert state in response.text


def test_cancel_stops_bulk(operator_client, invocations, operator):
    action = make_bulk(operator)

    response = operator_client.post(reverse("bulk-action-cancel", args=[action.pk]))
    page = operator_client.get(response["Location"])

    action.refresh_from_db()
    assert response.status_code == 302
    assert action.state == "cancelled"
    assert action.finished_at is not None
    assert AuditEvent.objects.filter(action="bulk_cancel").count() == 1
    assert "Cancelled the bulk stop" in page.text
    assert bulk.run_batch(action.pk) is False
    assert Invocation.objects.filter(status=Status.STOPPED).count() == 0


def test_cancel_after_end_changes_nothing(operator_client, invocations, operator):
    action = make_bulk(operator, state="done")

    response = operator_client.post(reverse("bulk-action-cancel", args=[action.pk]))
    page = operator_client.get(response["Location"])

    action.refresh_from_db()
    assert action.state == "done"
    assert not AuditEvent.objects.filter(action="bulk_cancel").exists()
    assert "had already ended (done)" in page.text


def test_cancel_hidden_from_viewer(viewer_client, invocations, operator):
    action = make_bulk(operator)

    response = viewer_client.get(reverse("bulk-action", args=[action.pk]))

    assert response.status_code == 200
    assert "Cancel</button>" not in response.text


def test_create_without_csrf_is_403(invocations):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))

    response = client.post(CREATE, stop_matching(confirmed="yes"))

    assert response.status_code == 403
    assert not BulkAction.objects.exists()


def test_cancel_without_csrf_is_403(invocations, operator):
    action = make_bulk(operator)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))

    response = client.post(reverse("bulk-action-cancel", args=[action.pk]))

    action.refresh_from_db()
    assert response.status_code == 403
    assert action.state == "pending"


def test_create_with_csrf_token_works(invocations):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))
    page = client.get(HISTORY, {"status": "Retrying", "function": "resize"})
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]

    response = client.post(
        CREATE, stop_matching(confirmed="yes", csrfmiddlewaretoken=token)
    )

    assert response.status_code == 302
    assert BulkAction.objects.get().total == 3
