"""The htmx parts of the pages in a real browser: polling, 286, actions, countdown.

The tests change invocations through the ORM while the page is open, the way
a worker would, and check that the page follows without a reload.
"""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from invocations import policy
from invocations.models import AuditEvent, Invocation, Status
from tests.test_pages_factories import (
    make_attempt,
    make_function,
    make_invocation,
    make_user,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser_page(live_server, client, chromium):
    """Open a Chromium page logged in as an operator."""
    client.force_login(make_user("operator"))
    session_id = client.cookies["sessionid"].value
    context = chromium.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": session_id, "url": live_server.url}]
    )
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    # Stop the page's polling before the live server and database go away.
    page.goto("about:blank")
    context.close()


def count_requests(page, suffix: str) -> int:
    return sum(1 for url in page.requests if url.split("?")[0].endswith(suffix))


def wait_and_count_requests(page, suffix: str, milliseconds: int) -> int:
    """Wait in the browser, then count the requests so far.

    Playwright's sync API delivers request events only while one of its calls
    runs, so a time.sleep() here would hide every request made meanwhile.
    """
    page.wait_for_timeout(milliseconds)
    return count_requests(page, suffix)


def test_detail_follows_new_attempt(live_server, browser_page):
    page = browser_page
    function = make_function("resize")
    invocation = make_invocation(function, Status.RUNNING, created_at=timezone.now())
    first = make_attempt(invocation, 1, started_at=timezone.now(), duration_ms=None)
    page.goto(f"{live_server.url}/invocations/{invocation.request_id}/")
    page.evaluate("window.notReloaded = true")

    now = timezone.now()
    first.ended_at = now
    first.duration_ms = 5
    first.outcome = policy.Outcome.INTERNAL_SYSTEM_ERROR
    first.status_code = 500
    first.save()
    make_attempt(invocation, 2, started_at=now + timedelta(milliseconds=500))
    Invocation.objects.filter(pk=invocation.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now()
    )

    expect(page.locator("#attempt-2")).to_be_visible(timeout=5000)
    expect(page.locator("#invocation-live .status-succeeded")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    polls = count_requests(page, "/live")
    assert polls >= 1
    assert wait_and_count_requests(page, "/live", 2500) == polls


def test_history_rows_follow_status(live_server, browser_page):
    page = browser_page
    function = make_function("resize")
    moving = make_invocation(function, Status.RETRYING, created_at=timezone.now())
    make_invocation(function, Status.SUCCEEDED, created_at=timezone.now())
    page.goto(f"{live_server.url}/invocations/")

    Invocation.objects.filter(pk=moving.pk).update(status=Status.FAILED)

    expect(page.locator("#invocation-rows .status-failed")).to_be_visible(timeout=6000)
    polls = count_requests(page, "/invocations/rows")
    assert polls >= 1
    assert wait_and_count_requests(page, "/invocations/rows", 4500) == polls


def test_stop_button_updates_in_place(live_server, browser_page):
    page = browser_page
    function = make_function("resize")
    invocation = make_invocation(
        function,
        Status.RETRYING,
        created_at=timezone.now(),
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    page.goto(f"{live_server.url}/invocations/{invocation.request_id}/")
    page.evaluate("window.notReloaded = true")

    page.get_by_role("button", name="Stop").click()

    expect(page.locator("#invocation-live .status-stopped")).to_be_visible()
    expect(page.get_by_text("Retries stopped")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    assert AuditEvent.objects.get().action == "stop"


def test_countdown_ticks(live_server, browser_page):
    page = browser_page
    function = make_function("resize")
    invocation = make_invocation(
        function,
        Status.RETRYING,
        created_at=timezone.now(),
        next_attempt_at=timezone.now() + timedelta(seconds=30),
    )
    page.goto(f"{live_server.url}/invocations/{invocation.request_id}/")
    countdown = page.locator(".countdown")

    expect(countdown).to_have_text(re.compile(r"^\(in \d+\.\d s\)$"), timeout=2000)
    first = countdown.inner_text()
    time.sleep(0.6)

    assert countdown.inner_text() != first


def test_pages_load_without_console_errors(live_server, browser_page):
    page = browser_page
    errors = []

    def record_error(message):
        if message.type == "error":
            errors.append(message.text)

    page.on("console", record_error)
    function = make_function("resize")
    invocation = make_invocation(function, Status.FAILED, created_at=timezone.now())

    for path in (
        "/",
        "/invocations/",
        f"/invocations/{invocation.request_id}/",
        "/functions/",
        "/functions/resize/",
        "/policy/",
        "/alerts/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path

    assert errors == []
