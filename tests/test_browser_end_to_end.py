"""A user's path through the pages, with a real worker and the demo functions.

The user logs in through the login form, filters the history, opens a failed
Sync invocation and retries it. A real `celery worker --beat` runs the
manual attempt against the demo function server, and the detail page shows
it without a reload.
"""

import re

import pytest
from playwright.sync_api import expect

from invocations import engine
from invocations.models import AuditEvent, Invocation, Status, Trigger

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

# Time for the worker to run the manual attempt, with ample slack for a busy
# test machine.
ATTEMPT_TIMEOUT_MS = 20_000


def is_live_poll(url: str) -> bool:
    return url.split("?")[0].endswith("/live")


def test_retry_failed_invocation_from_browser(
    live_server, chromium, start_worker, make_function, operator
):
    start_worker()
    flaky = make_function("charge-card", "sequence?codes=500,200")
    failed, _ = engine.run_sync(flaky, b"{}")
    steady = make_function("resize-image", "ok", region="cn-shanghai")
    broken = make_function("send-receipt", "error?type=unhandled")
    engine.run_sync(steady, b'{"width": 640}')
    engine.run_sync(steady, b'{"width": 320}')
    engine.run_sync(broken, b"{}")
    assert failed.status == Status.FAILED
    assert failed.attempts_made == 1
    assert Invocation.objects.filter(status=Status.FAILED).count() == 2

    page = chromium.new_context().new_page()
    live_polls = []

    def record_live_poll(request):
        if is_live_poll(request.url):
            live_polls.append(request.url)

    page.on("request", record_live_poll)

    # Log in through the form, and Django redirects to the overview.
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(operator.username)
    page.get_by_label("Password").fill("pw-" + operator.username)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/")

    # The history shows all four invocations.
    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name="Invocations").click()
    rows = page.locator("#invocation-rows tr")
    expect(rows).to_have_count(4)

    # Filtering by status keeps the two Failed ones.
    page.get_by_label("Status", exact=True).select_option(Status.FAILED)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]status=Failed(&|$)"))
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="charge-card")).to_have_count(1)
    expect(rows.filter(has_text="send-receipt")).to_have_count(1)
    expect(rows.filter(has_text="Succeeded")).to_have_count(0)

    # Adding the function keeps only the invocation to retry.
    page.get_by_label("Function", exact=True).select_option("charge-card")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]function=charge-card(&|$)"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(failed.request_id)
    expect(rows.first).to_contain_text("Failed")

    # The detail page shows the one failed attempt.
    page.get_by_role("link", name=failed.request_id).click()
    expect(page).to_have_url(f"{live_server.url}/invocations/{failed.request_id}/")
    live = page.locator("#invocation-live")
    expect(live.locator(".status-failed")).to_be_visible()
    expect(page.locator("#attempt-1")).to_contain_text("500")
    expect(page.locator("#attempt-2")).to_have_count(0)

    # Retry: the worker runs attempt 2, and htmx polling shows it in place.
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Retry", exact=True).click()
    attempt_2 = page.locator("#attempt-2")
    expect(attempt_2).to_be_visible(timeout=ATTEMPT_TIMEOUT_MS)
    expect(live.locator(".status-succeeded")).to_be_visible(timeout=ATTEMPT_TIMEOUT_MS)
    expect(attempt_2).to_contain_text("manual")
    expect(attempt_2).to_contain_text("200")
    assert page.evaluate("window.notReloaded") is True

    # The final status came with 286, so htmx stopped polling.
    polls = len(live_polls)
    assert polls >= 1
    page.wait_for_timeout(2500)
    assert len(live_polls) == polls

    failed.refresh_from_db()
    assert failed.status == Status.SUCCEEDED
    assert failed.attempts_made == 2
    assert failed.attempts.get(number=2).trigger == Trigger.MANUAL
    event = AuditEvent.objects.get()
    assert event.action == "manual_retry"
    assert event.target == failed.request_id
    assert event.user == operator
    page.goto("about:blank")
