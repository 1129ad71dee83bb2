"""Demo HTTP server that imitates the functions of a Function Compute region set.

Each ``POST /{region}/{behaviour}`` is one invocation of a demo function. The
behaviour and its query parameters choose the response. Every region has a
concurrency quota, and a request that arrives while all of its region's slots are
taken gets 429 at once, as FC responds when a region reaches its concurrency limit.

Run ``python -m demo.server --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from demo.behaviours import (
    InvalidRequest,
    build_response,
    error_body,
    error_code,
    parse_int,
    plan_invocation,
)

logger = logging.getLogger("demo.server")

# Maximum request body. Larger bodies get 413, so that one request cannot fill the
# server's memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
REQUEST_LOG_SIZE = 10_000
# serve_forever checks for shutdown() once per interval, so this bounds how long
# shutdown() blocks. The default of 0.5 s would slow down tests that start servers.
SHUTDOWN_POLL_INTERVAL_S = 0.05


@dataclass
class RegionStats:
    running: int = 0
    peak: int = 0
    throttled: int = 0
    requests: int = 0


class DemoState:
    """Per-region concurrency counters and a bounded log of invocation requests.

    A log entry's ``status`` is None until the response is sent.

    ``throttled`` counts only requests rejected by the quota, not 429 responses
    chosen by the ``sequence`` or ``flaky`` behaviours.
    """

    def __init__(self, regions: list[str]) -> None:
        self._lock = threading.Lock()
        self._configured_regions = list(regions)
        self._regions = {region: RegionStats() for region in regions}
        self._request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    def try_start(self, region: str, quota: int) -> bool:
        """Take a concurrency slot of ``region`` and return False if none is free."""
        with self._lock:
            stats = self._regions.setdefault(region, RegionStats())
            stats.requests += 1
            if stats.running >= quota:
                stats.throttled += 1
                return False
            stats.running += 1
            stats.peak = max(stats.peak, stats.running)
            return True

    def finish(self, region: str) -> None:
        with self._lock:
            self._regions[region].running -= 1

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._request_log.append(entry)

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            regions = {name: asdict(stats) for name, stats in self._regions.items()}
        return {"regions": regions}

    def requests_for(self, request_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(entry)
                for entry in self._request_log
                if entry["request_id"] == request_id
            ]

    def reset(self) -> None:
        """Zero the counters and clear the request log.

        ``running`` is a gauge of requests still in flight, so it keeps its value and
        ``peak`` restarts from it. Zeroing it would let those requests drive it below
        zero when they finish.
        """
        with self._lock:
            regions = {region: RegionStats() for region in self._configured_regions}
            for name, old in self._regions.items():
                if old.running:
                    regions[name] = RegionStats(running=old.running, peak=old.running)
            self._regions = regions
            self._request_log.clear()


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        quota: int = 10,
        region_quotas: dict[str, int] | None = None,
    ) -> None:
        region_quotas = dict(region_quotas or {})
        for region, value in {"default": quota, **region_quotas}.items():
            if value < 1:
                raise ValueError(f"invalid quota {value} for {region}: expected >= 1")
        self.quota = quota
        self.region_quotas = region_quotas
        self.state = DemoState(list(region_quotas))
        self.rng = random.Random()
        super().__init__(address, DemoRequestHandler)

    def quota_for(self, region: str) -> int:
        return self.region_quotas.get(region, self.quota)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class DemoRequestHandler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes. With Nagle's algorithm on, the body
    # waits for the client's delayed ACK, which takes at least 40 ms on Linux.
    disable_nagle_algorithm = True
    server_version = "fcdash-demo"

    def do_GET(self) -> None:
        path, params = self._split_target()
        if path == "/healthz":
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/stats":
            self._send_json(200, self.server.state.stats())
        elif path == "/requests":
            request_id = params.get("request_id")
            if not request_id:
                self._send_error(400, "missing query parameter 'request_id'")
                return
            self._send_json(200, self.server.state.requests_for(request_id))
        elif path == "/reset" or len(self._segments(path)) == 2:
            self._send_error(405, f"method GET not allowed on {path}", allow="POST")
        else:
            self._send_error(404, f"no route for GET {path}")

    def do_POST(self) -> None:
        path, params = self._split_target()
        try:
            body = self._read_body()
        except InvalidRequest as error:
            self.close_connection = True
            self._send_error(error.status, error.message)
            return

        segments = self._segments(path)
        if path == "/reset":
            self.server.state.reset()
            self._send_json(200, {"reset": True})
        elif len(segments) == 2:
            self._invoke(segments[0], segments[1], params, body)
        elif path in ("/stats", "/requests", "/healthz"):
            self._send_error(405, f"method POST not allowed on {path}", allow="GET")
        else:
            self._send_error(404, f"no route for POST {path}")

    def _invoke(
        self, region: str, behaviour: str, params: dict[str, str], body: bytes
    ) -> None:
        state = self.server.state
        entry = {
            "request_id": self.headers.get("X-Fc-Request-Id"),
            "region": region,
            "behaviour": behaviour,
            "attempt": None,
            "invocation_type": self.headers.get("X-Fc-Invocation-Type"),
            "received_at": time.time(),
            "status": None,
        }
        # Recorded on arrival so that the log keeps arrival order, and so that a
        # client that reads /requests after its response always finds the entry.
        state.record(entry)
        try:
            attempt = parse_int(
                "X-Fcdash-Attempt", self.headers.get("X-Fcdash-Attempt", "1"), 1, 10**6
            )
            state.update(entry, attempt=attempt)
            plan = plan_invocation(behaviour, params, attempt, self.server.rng)
        except InvalidRequest as error:
            state.update(entry, status=error.status)
            self._send_error(error.status, error.message, details=error.details)
            return

        quota = self.server.quota_for(region)
        if not state.try_start(region, quota):
            state.update(entry, status=429)
            message = f"Reached concurrency limit of {quota} in region {region}"
            self._send_json(429, error_body(message, "ResourceExhausted"))
            return

        status, response_body, headers = build_response(
            plan.outcome, entry["request_id"], attempt, len(body)
        )
        try:
            time.sleep(plan.sleep_ms / 1000)
            state.update(entry, status=status)
            self._send_json(status, response_body, headers)
        except (BrokenPipeError, ConnectionResetError) as error:
            self.close_connection = True
            logger.warning(
                "client closed the connection before the response to request id %s "
                "(region %s, attempt %s): %r",
                entry["request_id"],
                region,
                attempt,
                error,
            )
        finally:
            state.finish(region)

    def _split_target(self) -> tuple[str, dict[str, str]]:
        target = urlsplit(self.path)
        query = parse_qs(target.query, keep_blank_values=True)
        return target.path, {name: values[-1] for name, values in query.items()}

    @staticmethod
    def _segments(path: str) -> list[str]:
        return [unquote(segment) for segment in path.split("/") if segment]

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_text = self.headers.get("Content-Length", "0")
        length = parse_int("Content-Length", length_text, 0, 2**63)
        if length > MAX_BODY_BYTES:
            raise InvalidRequest(
                413,
                f"request body of {length} bytes exceeds the maximum of "
                f"{MAX_BODY_BYTES} bytes",
            )
        body = self.rfile.read(length)
        if len(body) < length:
            raise InvalidRequest(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise InvalidRequest(400, f"invalid chunk size {size_line!r}") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # skip the trailer fields
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise InvalidRequest(
                    413,
                    f"chunked request body exceeds the maximum of {MAX_BODY_BYTES} "
                    "bytes",
                )
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise InvalidRequest(
                    400, f"chunk ended after {len(chunk)} of {size} bytes"
                )
            chunks.append(chunk)
            self.rfile.readline(1024)

    def _send_error(
        self,
        status: int,
        message: str,
        allow: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        logger.info(
            "rejected %s %s with %d: %s", self.command, self.path, status, message
        )
        body = {**error_body(message, error_code(status)), **(details or {})}
        headers = {"Allow": allow} if allow else {}
        self._send_json(status, body, headers)

    def _send_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self._send(status, payload, "application/json", headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status in (204, 304):
            payload = b""  # these statuses must not carry a body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        request_id = self.headers.get("X-Fc-Request-Id")
        if request_id:
            self.send_header("X-Fc-Request-Id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line contains the path and query only, never the payload.
        logger.info("%s %s", self.address_string(), format % args)


def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    quota: int = 10,
    region_quotas: dict[str, int] | None = None,
) -> tuple[DemoServer, threading.Thread]:
    """Start a DemoServer on a daemon thread and return it with the thread.

    Port 0 picks a free port, which ``server.server_address`` then contains. Stop it
    with ``server.shutdown()`` followed by ``server.server_close()``.
    """
    server = DemoServer((host, port), quota=quota, region_quotas=region_quotas)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_INTERVAL_S},
        name="demo-server",
        daemon=True,
    )
    thread.start()
    return server, thread


def parse_region_quota(text: str) -> tuple[str, int]:
    region, separator, value = text.partition("=")
    if not separator or not region or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid region quota {text!r}: expected REGION=N with N >= 1, "
            "e.g. cn-shanghai=3"
        )
    return region, int(value)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected >= 1")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m demo.server",
        description="Serve demo functions that imitate Function Compute regions.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=9100, help="port to listen on, 0 for any free port"
    )
    parser.add_argument(
        "--quota",
        type=positive_int,
        default=10,
        help="maximum concurrent requests per region (default: 10)",
    )
    parser.add_argument(
        "--region-quota",
        type=parse_region_quota,
        action="append",
        default=[],
        metavar="REGION=N",
        help="maximum concurrent requests for one region, overriding --quota. "
        "Repeat the option for more regions.",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda number, frame: stop.set())

    server, thread = start_server(
        args.host, args.port, args.quota, dict(args.region_quota)
    )
    logger.info(
        "demo function server listening on %s (quota %d, region quotas %s)",
        server.url,
        args.quota,
        dict(args.region_quota) or "none",
    )
    while not stop.wait(1.0):
        pass
    logger.info("stopping the demo function server")
    server.shutdown()
    server.server_close()
    thread.join()


if __name__ == "__main__":
    main()
