import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from demo.server import DemoServer, start_server


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    server, thread = start_server(quota=2)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def client(server: DemoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        client.post("/reset").raise_for_status()
        yield client


def invoke(
    client: httpx.Client,
    path: str,
    attempt: int | None = None,
    request_id: str | None = None,
    content: bytes = b"",
) -> httpx.Response:
    headers = {"X-Fc-Invocation-Type": "Async"}
    if attempt is not None:
        headers["X-Fcdash-Attempt"] = str(attempt)
    if request_id is not None:
        headers["X-Fc-Request-Id"] = request_id
    return client.post(path, headers=headers, content=content)


def wait_for_running(client: httpx.Client, region: str, running: int) -> None:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        regions = client.get("/stats").json()["regions"]
        if regions.get(region, {}).get("running") == running:
            return
        time.sleep(0.01)
    raise AssertionError(f"region {region} never reached {running} running requests")


def test_healthz_returns_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.text == "ok"


def test_ok_returns_200_with_details(client):
    response = invoke(client, "/cn-hangzhou/ok", request_id="req-1", content=b"x" * 10)

    assert response.status_code == 200
    assert response.headers["X-Fc-Request-Id"] == "req-1"
    assert "X-Fc-Error-Type" not in response.headers
    assert response.json() == {
        "ok": True,
        "request_id": "req-1",
        "attempt": 1,
        "payload_bytes": 10,
    }


def test_ok_reads_large_body(client):
    response = invoke(client, "/cn-hangzhou/ok", content=b"x" * 3_000_000)

    assert response.status_code == 200
    assert response.json()["payload_bytes"] == 3_000_000


@pytest.mark.parametrize(
    ("attempt", "expected_status"),
    [(None, 503), (1, 503), (2, 503), (3, 200), (4, 200)],
)
def test_sequence_follows_attempt(client, attempt, expected_status):
    response = invoke(client, "/cn-shanghai/sequence?codes=503,503,200", attempt)

    assert response.status_code == expected_status


def test_sequence_503_body_names_error(client):
    response = invoke(client, "/cn-shanghai/sequence?codes=503", attempt=1)

    assert response.status_code == 503
    assert response.json()["code"] == "ResourceNotEnough"
    assert response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("path", "expected_error_type"),
    [
        ("/cn-shanghai/error?type=handled", "HandledInvocationError"),
        ("/cn-shanghai/error?type=unhandled", "UnhandledInvocationError"),
        ("/cn-shanghai/sequence?codes=handled", "HandledInvocationError"),
        ("/cn-shanghai/sequence?codes=unhandled", "UnhandledInvocationError"),
    ],
)
def test_function_error_sets_error_type(client, path, expected_error_type):
    response = invoke(client, path)

    assert response.status_code == 200
    assert response.headers["X-Fc-Error-Type"] == expected_error_type
    assert response.json()["errorType"] == expected_error_type
    assert response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("query", "expected_status", "expected_code"),
    [
        ("p429=1", 429, "ResourceExhausted"),
        ("p500=1", 500, "InternalServerError"),
        ("p503=1", 503, "ResourceNotEnough"),
    ],
)
def test_flaky_certain_status(client, query, expected_status, expected_code):
    response = invoke(client, f"/cn-hangzhou/flaky?{query}")

    assert response.status_code == expected_status
    assert response.json()["code"] == expected_code


def test_flaky_certain_function_error(client):
    response = invoke(client, "/cn-hangzhou/flaky?perror=1")

    assert response.status_code == 200
    assert "X-Fc-Error-Type" in response.headers


def test_flaky_without_probabilities_succeeds(client):
    response = invoke(client, "/cn-hangzhou/flaky")

    assert response.status_code == 200


def test_flaky_probability_sum_above_one_rejected(client):
    response = invoke(client, "/cn-hangzhou/flaky?p429=0.6&p500=0.6")

    assert response.status_code == 400


def test_ms_delays_response(client):
    started = time.monotonic()
    response = invoke(client, "/cn-hangzhou/slow?ms=200")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.2


def test_quota_throttles_third_concurrent_request(client):
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = [pool.submit(invoke, client, "/cn-beijing/ok?ms=500") for _ in range(2)]
        wait_for_running(client, "cn-beijing", 2)

        throttled = invoke(client, "/cn-beijing/ok?ms=500")
        other_region = invoke(client, "/cn-hangzhou/ok")
        slow_statuses = [future.result().status_code for future in slow]

    assert throttled.status_code == 429
    assert throttled.json()["code"] == "ResourceExhausted"
    assert throttled.json()["errorCode"] == "ResourceExhausted"
    assert other_region.status_code == 200
    assert slow_statuses == [200, 200]

    # A slot is released after the response is sent, so wait for the release.
    wait_for_running(client, "cn-beijing", 0)
    regions = client.get("/stats").json()["regions"]
    assert regions["cn-beijing"] == {
        "running": 0,
        "peak": 2,
        "throttled": 1,
        "requests": 3,
    }
    assert regions["cn-hangzhou"]["throttled"] == 0
    assert regions["cn-hangzhou"]["peak"] == 1


def test_region_quota_overrides_default():
    server, thread = start_server(quota=1, region_quotas={"cn-shanghai": 2})
    try:
        with (
            httpx.Client(base_url=server.url, timeout=5) as client,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            slow = pool.submit(invoke, client, "/cn-shanghai/ok?ms=300")
            wait_for_running(client, "cn-shanghai", 1)
            second = invoke(client, "/cn-shanghai/ok")
            slow_status = slow.result().status_code
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert second.status_code == 200
    assert slow_status == 200


def test_unknown_behaviour_returns_404(client):
    response = invoke(client, "/cn-hangzhou/explode")

    assert response.status_code == 404
    assert "explode" in response.json()["errorMessage"]
    assert response.json()["valid_behaviours"] == [
        "error",
        "flaky",
        "ok",
        "sequence",
        "slow",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/cn-hangzhou/sequence",
        "/cn-hangzhou/sequence?codes=503,abc",
        "/cn-hangzhou/sequence?codes=99",
        "/cn-hangzhou/error?type=fatal",
        "/cn-hangzhou/ok?ms=-1",
    ],
)
def test_invalid_parameters_return_400(client, path):
    response = invoke(client, path)

    assert response.status_code == 400
    assert response.json()["errorMessage"]


def test_invalid_attempt_header_returns_400(client):
    response = client.post("/cn-hangzhou/ok", headers={"X-Fcdash-Attempt": "zero"})

    assert response.status_code == 400


def test_requests_lists_attempts_in_order(client):
    for attempt in (1, 2, 3):
        invoke(client, "/cn-shanghai/sequence?codes=503,503,200", attempt, "req-9")
    invoke(client, "/cn-shanghai/ok", 1, "req-other")

    response = client.get("/requests", params={"request_id": "req-9"})

    assert response.status_code == 200
    entries = response.json()
    assert [entry["attempt"] for entry in entries] == [1, 2, 3]
    assert [entry["status"] for entry in entries] == [503, 503, 200]
    assert {entry["invocation_type"] for entry in entries} == {"Async"}
    received = [entry["received_at"] for entry in entries]
    assert received == sorted(received)
    assert abs(received[0] - time.time()) < 60


def test_requests_without_request_id_returns_400(client):
    response = client.get("/requests")

    assert response.status_code == 400


def test_reset_clears_counters_and_log(client):
    invoke(client, "/cn-hangzhou/ok", request_id="req-5")

    response = client.post("/reset")

    assert response.status_code == 200
    assert client.get("/stats").json() == {"regions": {}}
    assert client.get("/requests", params={"request_id": "req-5"}).json() == []


def test_wrong_method_returns_405(client):
    response = client.get("/cn-hangzhou/ok")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
