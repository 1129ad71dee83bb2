"""The invocation history: filters, keyset pages and the live rows partial."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invocations import policy
from invocations.models import Invocation, Status
from invocations.views.paging import encode_cursor
from tests.test_pages_factories import (
    T0,
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = pytest.mark.django_db

HISTORY = reverse("invocation-list")
ROWS = reverse("invocation-rows")


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


def shown_request_ids(response) -> list[str]:
    return [invocation.request_id for invocation in response.context["invocations"]]


def link_cursor(response, name: str) -> str | None:
    """Return the cursor of the page's "newer" or "older" link, if shown."""
    match = re.search(rf'href="\?[^"]*{name}=([0-9_]+)', response.text)
    return match[1] if match else None


@pytest.fixture
def mixed():
    resize = make_function("resize", "cn-hangzhou")
    thumbnail = make_function("thumbnail", "cn-shanghai")
    succeeded = make_invocation(
        resize, Status.SUCCEEDED, request_id="ok-1", billed_attempts=1
    )
    failed = make_invocation(
        resize,
        Status.FAILED,
        request_id="failed-1",
        created_at=T0 + timedelta(minutes=1),
        attempts_made=4,
        billed_attempts=0,
        unbilled_attempts=4,
    )
    make_attempt(
        failed,
        1,
        started_at=T0 + timedelta(minutes=1),
        outcome=policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
        status_code=429,
        error_type="ConcurrencyLimitExceeded",
    )
    retrying = make_invocation(
        thumbnail,
        Status.RETRYING,
        request_id="retrying-1",
        task_id="nightly_job",
        invocation_type="Sync",
        created_at=T0 + timedelta(hours=2),
        attempts_made=2,
    )
    return {"succeeded": succeeded, "failed": failed, "retrying": retrying}


def test_history_newest_first(viewer_client, mixed):
    response = viewer_client.get(HISTORY)

    assert shown_request_ids(response) == ["retrying-1", "failed-1", "ok-1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"function": "resize"}, ["failed-1", "ok-1"]),
        ({"region": "cn-shanghai"}, ["retrying-1"]),
        ({"status": "Failed"}, ["failed-1"]),
        ({"invocation_type": "Sync"}, ["retrying-1"]),
        ({"error_type": "ConcurrencyLimitExceeded"}, ["failed-1"]),
        ({"billed": "true"}, ["ok-1"]),
        ({"billed": "false"}, ["retrying-1", "failed-1"]),
        ({"since": "2025-03-01T12:00:30"}, ["retrying-1", "failed-1"]),
        ({"until": "2025-03-01T12:00:30"}, ["ok-1"]),
        ({"q": "ok-1"}, ["ok-1"]),
        ({"q": "nightly_job"}, ["retrying-1"]),
        ({"min_attempts": "3"}, ["failed-1"]),
        ({"function": "resize", "status": "Succeeded"}, ["ok-1"]),
    ],
)
def test_history_filter_narrows_rows(viewer_client, mixed, query, expected):
    response = viewer_client.get(HISTORY, query)

    assert response.status_code == 200
    assert shown_request_ids(response) == expected


def test_history_filter_values_stay_in_form(viewer_client, mixed):
    response = viewer_client.get(HISTORY, {"status": "Failed", "q": "failed-1"})

    assert '<option value="Failed" selected>' in response.text
    assert 'value="failed-1"' in response.text


def test_history_invalid_filter_shows_error(viewer_client, mixed):
    response = viewer_client.get(HISTORY, {"status": "Bogus"})

    assert response.status_code == 200
    assert shown_request_ids(response) == []
    assert "Fix the invalid filters" in response.text


def test_history_search_text_is_escaped(viewer_client, mixed):
    response = viewer_client.get(HISTORY, {"q": "<script>alert(1)</script>"})

    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)" in response.text


@pytest.fixture
def many():
    """Create 120 invocations in groups of three that share a created_at."""
    function = make_function("resize")
    for index in range(120):
        make_invocation(
            function,
            Status.SUCCEEDED,
            request_id=f"req-{index:03d}",
            created_at=T0 + timedelta(seconds=index // 3),
        )
    return list(
        Invocation.objects.order_by("-created_at", "-id").values_list(
            "request_id", flat=True
        )
    )


def test_pages_have_no_duplicates_or_gaps(viewer_client, many):
    seen = []
    pages = 0
    query = {}
    while True:
        response = viewer_client.get(HISTORY, query)
        seen.extend(shown_request_ids(response))
        pages += 1
        cursor = link_cursor(response, "older")
        if cursor is None:
            break
        query = {"older": cursor}

    assert pages == 3
    assert seen == many


def test_newer_link_returns_previous_page(viewer_client, many):
    first = viewer_client.get(HISTORY)
    second = viewer_client.get(HISTORY, {"older": link_cursor(first, "older")})
    third = viewer_client.get(HISTORY, {"older": link_cursor(second, "older")})

    back_to_second = viewer_client.get(HISTORY, {"newer": link_cursor(third, "newer")})
    back_to_first = viewer_client.get(
        HISTORY, {"newer": link_cursor(back_to_second, "newer")}
    )

    assert shown_request_ids(back_to_second) == shown_request_ids(second)
    assert shown_request_ids(back_to_first) == shown_request_ids(first)
    assert link_cursor(first, "newer") is None
    assert link_cursor(third, "older") is None


def test_history_pages_keep_filters(viewer_client, many):
    make_invocation(
        make_function("other"), Status.FAILED, request_id="other-1", created_at=T0
    )

    first = viewer_client.get(HISTORY, {"function": "resize"})

    older_link = re.search(r'href="([^"]*)" rel="next"', first.text)[1]
    assert "function=resize" in older_link
    assert "other-1" not in shown_request_ids(first)


@pytest.mark.parametrize("page", ["first", "second"])
def test_history_page_runs_no_count_query(viewer_client, many, page):
    query = {}
    if page == "second":
        query = {"older": encode_cursor(Invocation.objects.get(request_id=many[49]))}

    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(HISTORY, query)

    assert response.status_code == 200
    assert shown_request_ids(response)[0] == many[0 if page == "first" else 50]
    invocation_counts = [
        query["sql"]
        for query in queries.captured_queries
        if "COUNT(" in query["sql"].upper() and "invocations_invocation" in query["sql"]
    ]
    assert invocation_counts == []


def test_history_invalid_cursor_shows_newest(viewer_client, many):
    response = viewer_client.get(HISTORY, {"older": "not-a-cursor"})

    assert response.status_code == 200
    assert "Invalid page cursor" in response.text
    assert shown_request_ids(response) == many[:50]


def test_history_polls_while_a_row_moves(viewer_client, mixed):
    response = viewer_client.get(HISTORY)

    assert 'hx-trigger="every 2s"' in response.text
    assert 'hx-sync="this:drop"' in response.text


def test_history_does_not_poll_final_rows(viewer_client, mixed):
    response = viewer_client.get(HISTORY, {"status": "Succeeded"})

    assert "hx-trigger" not in response.text


def test_rows_partial_is_200_while_moving(viewer_client, mixed):
    ids = [mixed["retrying"].pk, mixed["failed"].pk]

    response = viewer_client.get(ROWS, {"id": ids}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'id="invocation-rows"' in response.text
    assert 'hx-trigger="every 2s"' in response.text


def test_rows_partial_is_286_when_final(viewer_client, mixed):
    ids = [mixed["succeeded"].pk, mixed["failed"].pk]

    response = viewer_client.get(ROWS, {"id": ids}, headers={"HX-Request": "true"})

    assert response.status_code == 286
    assert "failed-1" in response.text
    assert "hx-trigger" not in response.text


def test_rows_partial_shows_new_status(viewer_client, mixed):
    Invocation.objects.filter(pk=mixed["retrying"].pk).update(status=Status.SUCCEEDED)

    response = viewer_client.get(ROWS, {"id": [mixed["retrying"].pk]})

    assert response.status_code == 286
    assert "status-succeeded" in response.text


def test_rows_partial_rejects_bad_ids(viewer_client, mixed):
    response = viewer_client.get(ROWS, {"id": ["1", "x"]})

    assert response.status_code == 400


def test_rows_url_lists_page_ids(viewer_client, mixed):
    response = viewer_client.get(HISTORY)

    rows_url = response.context["rows_url"]
    for invocation in mixed.values():
        assert f"id={invocation.pk}" in rows_url


def test_rows_rejects_oversized_id(client):
    from tests.test_pages_factories import make_user

    client.force_login(make_user("viewer"))
    response = client.get("/invocations/rows?id=99999999999999999999999")
    assert response.status_code == 400
