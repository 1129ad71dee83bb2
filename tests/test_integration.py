"""End to end: the API, a real Celery worker with beat, Redis and the demo server.

These tests wait on real time, so the retry gaps they measure are the ones a
user would see.
"""

import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.utils import timezone

from invocations.models import Invocation

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# How far a measured retry gap may be from the schedule, in seconds.
GAP_TOLERANCE_S = 0.2


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create_function(api, demo_server, name, behaviour, region="cn-hangzhou", **fields):
    response = api.post(
        "/api/functions/",
        {
            "name": name,
            "region": region,
            "endpoint_url": f"{demo_server}/{region}/{behaviour}",
            "memory_mb": 1024,
            **fields,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def invoke(api, name, invocation_type, payload=b'{"hello": "world"}', **headers):
    return api.generic(
        "POST",
        f"/api/functions/{name}/invocations",
        payload,
        content_type="application/json",
        HTTP_X_FC_INVOCATION_TYPE=invocation_type,
        **headers,
    )


def wait_for(api, request_id, done, timeout=20.0):
    """Poll the invocation's detail until `done(detail)` is true."""
    deadline = time.monotonic() + timeout
    while True:
        detail = api.get(f"/api/invocations/{request_id}/").json()
        if done(detail):
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting; last detail: {detail}")
        time.sleep(0.1)


def is_final(detail):
    return detail["status"] in ("Succeeded", "Failed", "Stopped", "Expired", "Invalid")


def gaps(attempts):
    return [
        (
            parse_time(later["started_at"]) - parse_time(earlier["ended_at"])
        ).total_seconds()
        for earlier, later in zip(attempts, attempts[1:], strict=False)
    ]


def test_async_503_503_200_succeeds_on_third(api, demo_server, start_worker):
    start_worker()
    create_function(api, demo_server, "recover", "sequence?codes=503,503,200")
    response = invoke(api, "recover", "Async")
    assert response.status_code == 202
    request_id = response["X-Fc-Request-Id"]

    detail = wait_for(api, request_id, is_final)
    attempts = detail["attempts"]
    assert detail["status"] == "Succeeded"
    assert len(attempts) == 3
    measured = gaps(attempts)
    print(f"measured gaps for 503, 503, 200: {measured}")
    assert abs(measured[0] - 0.5) <= GAP_TOLERANCE_S
    assert abs(measured[1] - 1.0) <= GAP_TOLERANCE_S
    assert [a["billed"] for a in attempts] == [False, False, True]
    assert [a["status_code"] for a in attempts] == [503, 503, 200]
    assert detail["infrastructure_retries_used"] == 2
    assert detail["billed_attempts"] == 1
    assert detail["unbilled_attempts"] == 2
    assert detail["remediation"] is None


def test_async_function_errors_fail_after_four(api, demo_server, start_worker):
    start_worker()
    create_function(api, demo_server, "broken", "error?type=unhandled")
    request_id = invoke(api, "broken", "Async")["X-Fc-Request-Id"]

    detail = wait_for(api, request_id, is_final)
    attempts = detail["attempts"]
    assert detail["status"] == "Failed"
    assert len(attempts) == 4
    assert all(a["billed"] for a in attempts)
    assert {a["error_type"] for a in attempts} == {"UnhandledInvocationError"}
    measured = gaps(attempts)
    print(f"measured gaps for function errors: {measured}")
    for gap, expected in zip(measured, [0.5, 1.0, 2.0], strict=True):
        assert abs(gap - expected) <= GAP_TOLERANCE_S
    assert detail["function_error_retries_used"] == 3
    assert "function code" in detail["remediation"]


def test_sync_500_then_manual_retry(api, demo_server, start_worker):
    start_worker()
    create_function(api, demo_server, "flaky-sync", "sequence?codes=500")
    response = invoke(api, "flaky-sync", "Sync")
    assert response.status_code == 500
    assert response["X-Fc-Error-Type"] == "InternalSystemError"
    request_id = response["X-Fc-Request-Id"]

    detail = api.get(f"/api/invocations/{request_id}/").json()
    assert detail["status"] == "Failed"
    assert len(detail["attempts"]) == 1
    assert detail["attempts"][0]["billed"] is False
    assert "technical support" in detail["remediation"]

    retry = api.post(f"/api/invocations/{request_id}/retry")
    assert retry.status_code == 202
    assert retry.json()["action"] == "manual_retry"
    detail = wait_for(
        api, request_id, lambda d: len(d["attempts"]) == 2 and is_final(d)
    )
    assert detail["status"] == "Failed"
    assert detail["attempts"][1]["trigger"] == "manual"
    assert detail["attempts"][1]["number"] == 2
    time.sleep(1.5)
    assert len(api.get(f"/api/invocations/{request_id}/").json()["attempts"]) == 2


def test_double_retry_makes_one_attempt(api, demo_server, start_worker):
    start_worker()
    create_function(api, demo_server, "twice", "sequence?codes=500,200")
    request_id = invoke(api, "twice", "Sync")["X-Fc-Request-Id"]
    first = api.post(f"/api/invocations/{request_id}/retry")
    second = api.post(f"/api/invocations/{request_id}/retry")
    assert first.status_code == 202
    assert second.status_code in (202, 409)
    wait_for(api, request_id, lambda d: len(d["attempts"]) == 2 and is_final(d))
    time.sleep(1.5)
    detail = api.get(f"/api/invocations/{request_id}/").json()
    assert len(detail["attempts"]) == 2
    assert detail["status"] == "Succeeded"


def test_lost_message_is_handed_over_again(api, demo_server, start_worker, settings):
    create_function(api, demo_server, "lost", "ok")
    request_id = invoke(api, "lost", "Async")["X-Fc-Request-Id"]
    # The broker lost the first message: purge it before a worker runs.
    from fcdash.celery import app

    app.control.purge()
    Invocation.objects.filter(request_id=request_id).update(
        dispatched_at=timezone.now() - timedelta(seconds=60)
    )
    start_worker()
    detail = wait_for(api, request_id, is_final)
    assert detail["status"] == "Succeeded"
    assert len(detail["attempts"]) == 1


def test_two_workers_with_beat_never_double(api, demo_server, start_worker):
    start_worker()
    start_worker()
    create_function(api, demo_server, "busy", "sequence?codes=503,500,handled,200")
    request_ids = [invoke(api, "busy", "Async")["X-Fc-Request-Id"] for _ in range(12)]
    # Lose half of the first messages' hand-over so both beats compete for them.
    Invocation.objects.filter(request_id__in=request_ids[::2]).update(
        dispatched_at=timezone.now() - timedelta(seconds=60)
    )
    for request_id in request_ids:
        detail = wait_for(api, request_id, is_final, timeout=40)
        assert detail["status"] == "Succeeded"
        assert [a["number"] for a in detail["attempts"]] == [1, 2, 3, 4]
        seen = httpx.get(
            f"{demo_server}/requests", params={"request_id": request_id}
        ).json()
        assert [entry["attempt"] for entry in seen] == [1, 2, 3, 4]


def test_killed_worker_attempt_is_recovered(api, demo_server, start_worker):
    worker = start_worker(FCDASH_LEASE_GRACE_S="1")
    create_function(
        api, demo_server, "slowpoke", "sequence?codes=200&ms=4000", timeout_s=2
    )
    request_id = invoke(api, "slowpoke", "Async")["X-Fc-Request-Id"]
    wait_for(api, request_id, lambda d: d["status"] == "Running", timeout=10)
    worker.kill()

    start_worker(FCDASH_LEASE_GRACE_S="1")
    detail = wait_for(api, request_id, lambda d: len(d["attempts"]) >= 2, timeout=20)
    first = detail["attempts"][0]
    assert first["error_type"] == "WorkerLost"
    assert first["billed"] is False
    assert detail["attempts"][1]["number"] == 2
    assert detail["infrastructure_retries_used"] >= 1


@pytest.fixture
def webhook_receiver():
    """An HTTP server on 127.0.0.1 that stores the JSON bodies POSTed to it."""
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_throttling_alert_opens_once_and_resolves(
    api, demo_server, start_worker, webhook_receiver
):
    url, received = webhook_receiver
    start_worker(FCDASH_ALERT_WEBHOOK_URL=url, FCDASH_ALERT_CLEAR_AFTER_S="3")
    # The demo server's cn-tiny region runs 2 instances at most.
    create_function(api, demo_server, "crowded", "slow?ms=1500", region="cn-tiny")
    request_ids = [invoke(api, "crowded", "Async")["X-Fc-Request-Id"] for _ in range(6)]
    for request_id in request_ids:
        detail = wait_for(api, request_id, is_final, timeout=60)
        assert detail["status"] == "Succeeded"
    throttled = sum(
        1
        for request_id in request_ids
        for attempt in api.get(f"/api/invocations/{request_id}/").json()["attempts"]
        if attempt["status_code"] == 429
    )
    assert throttled >= 1

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = api.get("/api/alerts/?region=cn-tiny").json()["results"]
        if listed and listed[0]["resolved_at"] and len(received) >= 2:
            break
        time.sleep(0.2)
    time.sleep(1)  # let a wrongly repeated notification arrive
    assert len(listed) == 1
    alert = listed[0]
    assert alert["kind"] == "throttling"
    assert alert["resolved_at"] is not None
    assert alert["throttled_attempts"] == throttled
    events = [(message["event"], message["kind"]) for message in received]
    assert events == [("opened", "throttling"), ("resolved", "throttling")]
