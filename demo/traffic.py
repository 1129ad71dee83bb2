"""Demo traffic generator that invokes demo functions through the fcdash REST API.

It first creates the demo functions in fcdash if they do not exist, each pointing at
an endpoint of the demo function server (``python -m demo.server``). Then it invokes
a random demo function at the requested rate, about one in five synchronously.
SIGINT or SIGTERM stops it after the invocation in flight.

``search-busy`` sleeps 3 s per invocation so that cn-beijing reaches its concurrency
quota. At the default rate, one invocation in five goes to it, about 0.3 running on
average, so start the server with a small quota for that region, e.g.
``--region-quota cn-beijing=1``.

Run ``python -m demo.traffic --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger("demo.traffic")

SYNC_PROBABILITY = 0.2
CONNECTION_RETRY_DELAY_S = 2.0
# While fcdash stays unreachable, only the first failure and every 15th are logged.
FAILURE_LOG_EVERY = 15
# Sync invocations wait for the function, so reads may take up to the longest
# function timeout below.
HTTP_TIMEOUT = httpx.Timeout(10.0, read=60.0)


@dataclass(frozen=True)
class DemoFunction:
    name: str
    region: str
    path: str  # behaviour and query string on the demo function server
    memory_mb: int
    timeout_s: int
    max_async_retry_attempts: int
    max_async_event_age_s: int

    def definition(self, function_server: str) -> dict[str, Any]:
        """Return the request body that creates this function in fcdash."""
        return {
            "name": self.name,
            "region": self.region,
            "endpoint_url": f"{function_server.rstrip('/')}/{self.region}/{self.path}",
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "max_async_retry_attempts": self.max_async_retry_attempts,
            "max_async_event_age_s": self.max_async_event_age_s,
        }


DEMO_FUNCTIONS = (
    DemoFunction(
        name="checkout-flaky",
        region="cn-hangzhou",
        path="flaky?p429=0.1&p500=0.05&p503=0.05&perror=0.05",
        memory_mb=256,
        timeout_s=10,
        max_async_retry_attempts=3,
        max_async_event_age_s=3600,
    ),
    DemoFunction(
        name="thumbnail-ok",
        region="cn-hangzhou",
        path="ok?ms=200",
        memory_mb=512,
        timeout_s=10,
        max_async_retry_attempts=3,
        max_async_event_age_s=3600,
    ),
    DemoFunction(
        name="report-errors",
        region="cn-shanghai",
        path="error?type=unhandled",
        memory_mb=128,
        timeout_s=10,
        max_async_retry_attempts=2,
        max_async_event_age_s=1800,
    ),
    DemoFunction(
        name="billing-recover",
        region="cn-shanghai",
        path="sequence?codes=503,503,200",
        memory_mb=256,
        timeout_s=10,
        max_async_retry_attempts=3,
        max_async_event_age_s=3600,
    ),
    DemoFunction(
        name="search-busy",
        region="cn-beijing",
        path="ok?ms=3000",
        memory_mb=1024,
        timeout_s=30,
        max_async_retry_attempts=3,
        max_async_event_age_s=3600,
    ),
)

ITEMS = ("book", "lamp", "mug", "chair", "poster")


class TrafficError(Exception):
    """Error that stops the generator, such as a rejected API token."""


def check_auth(response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise TrafficError(
            f"fcdash rejected the API token with HTTP {response.status_code} on "
            f"{response.request.method} {response.request.url.path}. "
            "Check --token or FCDASH_TOKEN."
        )


def ensure_function(
    client: httpx.Client, function: DemoFunction, function_server: str
) -> None:
    """Create ``function`` in fcdash unless a function of that name exists."""
    response = client.get(f"/api/functions/{function.name}/")
    check_auth(response)
    if response.status_code == 200:
        logger.info("function %s exists", function.name)
        return
    if response.status_code != 404:
        raise TrafficError(
            f"GET /api/functions/{function.name}/ failed with HTTP "
            f"{response.status_code}: {response.text[:200]}"
        )

    response = client.post("/api/functions/", json=function.definition(function_server))
    check_auth(response)
    if response.status_code != 201:
        raise TrafficError(
            f"creating function {function.name} failed with HTTP "
            f"{response.status_code}: {response.text[:200]}"
        )
    logger.info("created function %s in %s", function.name, function.region)


def ensure_functions(
    client: httpx.Client, function_server: str, stop: threading.Event
) -> bool:
    """Create the missing demo functions, retrying while fcdash is unreachable.

    Returns False if ``stop`` was set before all functions existed.
    """
    pending = list(DEMO_FUNCTIONS)
    failures = 0
    while pending and not stop.is_set():
        try:
            ensure_function(client, pending[0], function_server)
        except httpx.TransportError as error:
            failures += 1
            log_transport_failure(
                f"cannot reach fcdash at {client.base_url}", failures, error
            )
            stop.wait(CONNECTION_RETRY_DELAY_S)
            continue
        failures = 0
        pending.pop(0)
    return not pending


def log_transport_failure(
    message: str, failures: int, error: httpx.TransportError
) -> None:
    if failures == 1 or failures % FAILURE_LOG_EVERY == 0:
        logger.warning(
            "%s (%d consecutive failures), retrying every %.0f s: %r",
            message,
            failures,
            CONNECTION_RETRY_DELAY_S,
            error,
        )


def build_payload(function: DemoFunction, sequence_number: int) -> bytes:
    payload = {
        "demo": True,
        "function": function.name,
        "sequence_number": sequence_number,
        "item": random.choice(ITEMS),
        "quantity": random.randint(1, 5),
        "sent_at": time.time(),
    }
    return json.dumps(payload).encode()


def invoke(
    client: httpx.Client, function: DemoFunction, sequence_number: int
) -> httpx.Response:
    invocation_type = "Sync" if random.random() < SYNC_PROBABILITY else "Async"
    response = client.post(
        f"/api/functions/{function.name}/invocations",
        headers={
            "X-Fc-Invocation-Type": invocation_type,
            "Content-Type": "application/json",
        },
        content=build_payload(function, sequence_number),
    )
    check_auth(response)
    logger.info(
        "invoked %s type=%s status=%d request_id=%s",
        function.name,
        invocation_type,
        response.status_code,
        response.headers.get("X-Fc-Request-Id", "-"),
    )
    return response


def run_traffic(
    client: httpx.Client,
    function_server: str,
    rate: float,
    stop: threading.Event,
) -> int:
    """Create the demo functions, then invoke random ones until ``stop`` is set.

    Returns the number of invocations sent. An invocation in flight when ``stop`` is
    set still completes, which for a Sync one can take up to its function timeout.
    """
    if not ensure_functions(client, function_server, stop):
        return 0

    interval_s = 1.0 / rate
    next_send = time.monotonic()
    sent = 0
    failures = 0
    while not stop.is_set():
        function = random.choice(DEMO_FUNCTIONS)
        try:
            invoke(client, function, sent + 1)
            sent += 1
        except httpx.TransportError as error:
            failures += 1
            log_transport_failure(
                f"invocation of {function.name} failed", failures, error
            )
            stop.wait(CONNECTION_RETRY_DELAY_S)
            next_send = time.monotonic()
            continue
        if failures:
            logger.info("fcdash is reachable again after %d failures", failures)
            failures = 0

        # A slow Sync invocation can put the schedule behind. Skip the missed slots
        # instead of sending a burst to catch up.
        next_send = max(next_send + interval_s, time.monotonic())
        stop.wait(next_send - time.monotonic())
    return sent


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid value {value}: expected > 0")
    return value


def http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"invalid URL {text!r}: expected http:// or https://"
        )
    return text


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {value}: expected >= 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.traffic",
        description="Create the demo functions in fcdash and invoke them at a rate.",
    )
    parser.add_argument(
        "--api",
        type=http_url,
        default="http://127.0.0.1:8000",
        help="base URL of the fcdash API",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("FCDASH_TOKEN"),
        help="fcdash API token (default: the FCDASH_TOKEN environment variable)",
    )
    parser.add_argument(
        "--function-server",
        type=http_url,
        default="http://127.0.0.1:9100",
        help="base URL of the demo function server, as fcdash should call it",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=0.5,
        help="invocations per second (default: 0.5)",
    )
    parser.add_argument(
        "--duration",
        type=non_negative_float,
        default=0.0,
        help="seconds to run, setup included. 0 runs until SIGINT or SIGTERM "
        "(default: 0)",
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("missing API token: pass --token or set FCDASH_TOKEN")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # httpx logs every request at INFO, which repeats the line logged per invocation.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda number, frame: stop.set())
    if args.duration > 0:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()

    logger.info("sending demo traffic to %s at %.2f invocations/s", args.api, args.rate)
    headers = {"Authorization": f"Token {args.token}"}
    with httpx.Client(
        base_url=args.api, headers=headers, timeout=HTTP_TIMEOUT
    ) as client:
        try:
            sent = run_traffic(client, args.function_server, args.rate, stop)
        except TrafficError as error:
            logger.error("stopping: %s", error)
            return 1
    logger.info("stopped after %d invocations", sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
