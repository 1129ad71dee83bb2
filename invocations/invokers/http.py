"""Call a function over HTTP the way FC's gateway does."""

import json
import logging
import os
import threading
import time

import httpx

from ..policy import FUNCTION_ERROR_TYPES, Outcome
from .base import InvokeRequest, InvokeResult

logger = logging.getLogger(__name__)

# Maximum length of an error message stored on an attempt, in characters.
MAX_ERROR_MESSAGE_CHARS = 1000
# Largest response body read from a function; FC's sync limit is 32 MB.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def build_headers(request: InvokeRequest) -> dict[str, str]:
    headers = {
        "Content-Type": request.content_type or "application/octet-stream",
        "X-Fc-Request-Id": request.request_id,
        "X-Fc-Invocation-Type": request.invocation_type,
        "X-Fcdash-Attempt": str(request.attempt_number),
    }
    if request.task_id:
        headers["X-Fc-Async-Task-Id"] = request.task_id
    return headers


_client: httpx.Client | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """Return this process's HTTP client, creating it on first use.

    Building a client costs about 20 ms of CPU (its TLS context), which
    capped a worker at a few dozen attempts a second when every attempt
    built one. One client serves all threads, and a forked child builds
    its own.
    """
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = httpx.Client(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
            _client_pid = os.getpid()
        return _client


def invoke_http(request: InvokeRequest) -> InvokeResult:
    """POST the payload to the function and return what happened.

    The function's timeout bounds the whole call, not each network read.
    """
    started = time.monotonic()
    deadline = started + request.timeout_s

    def elapsed_ms() -> int:
        return max(0, round((time.monotonic() - started) * 1000))

    def failed(
        outcome: Outcome, message: str, status_code: int | None = None
    ) -> InvokeResult:
        return InvokeResult(
            status_code=status_code,
            error_type_header=None,
            body=b"",
            error_message=message[:MAX_ERROR_MESSAGE_CHARS],
            duration_ms=elapsed_ms(),
            failure=outcome,
        )

    try:
        with shared_client().stream(
            "POST",
            request.endpoint_url,
            content=request.payload,
            headers=build_headers(request),
            timeout=request.timeout_s,
        ) as response:
            body = read_body(response, deadline)
    except httpx.ConnectTimeout as error:
        return failed(Outcome.CONNECTION_FAILED, f"Connection timed out: {error}")
    except (httpx.TimeoutException, DeadlineExceeded):
        return failed(
            Outcome.FUNCTION_TIMEOUT,
            f"Function timed out after {request.timeout_s:g} s",
        )
    except (httpx.ConnectError, httpx.ReadError, httpx.WriteError) as error:
        return failed(Outcome.CONNECTION_FAILED, f"{type(error).__name__}: {error}")
    except httpx.RemoteProtocolError as error:
        return failed(Outcome.INVALID_RESPONSE, f"Invalid HTTP reply: {error}")
    except ResponseTooLarge as error:
        # The status is real even though the body was cut off.
        return failed(
            Outcome.INVALID_RESPONSE,
            f"HTTP {error.status_code} with a response body over "
            f"{MAX_RESPONSE_BYTES} bytes",
            status_code=error.status_code,
        )
    except httpx.HTTPError as error:
        logger.warning(
            "Unexpected HTTP error invoking request_id=%s attempt=%s: %s",
            request.request_id,
            request.attempt_number,
            error,
        )
        return failed(Outcome.CONNECTION_FAILED, f"{type(error).__name__}: {error}")

    error_type = response.headers.get("X-Fc-Error-Type") or None
    message = error_message(response.status_code, error_type, body)
    if error_type and error_type not in FUNCTION_ERROR_TYPES:
        message = f"Unknown X-Fc-Error-Type {error_type[:100]!r}: {message}"
    return InvokeResult(
        status_code=response.status_code,
        error_type_header=error_type,
        body=body,
        error_message=message[:MAX_ERROR_MESSAGE_CHARS],
        duration_ms=elapsed_ms(),
        content_type=response.headers.get("Content-Type", ""),
    )


class DeadlineExceeded(Exception):
    pass


class ResponseTooLarge(Exception):
    def __init__(self, status_code: int):
        super().__init__(status_code)
        self.status_code = status_code


def read_body(response: httpx.Response, deadline: float) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(response.status_code)
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise DeadlineExceeded
    return b"".join(chunks)


def error_message(status_code: int, error_type: str | None, body: bytes) -> str:
    """Return a bounded error message for a failed reply, or '' for a success."""
    if 200 <= status_code < 300 and not error_type:
        return ""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("errorMessage", "message", "error"):
            if isinstance(data.get(key), str):
                text = data[key]
                break
    text = text.strip() or f"HTTP {status_code}"
    return text[:MAX_ERROR_MESSAGE_CHARS]
