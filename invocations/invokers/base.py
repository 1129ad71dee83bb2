from dataclasses import dataclass

from ..policy import Outcome


@dataclass(frozen=True)
class InvokeRequest:
    endpoint_url: str
    payload: bytes
    request_id: str
    invocation_type: str
    attempt_number: int
    timeout_s: float
    task_id: str | None = None
    content_type: str = ""


@dataclass(frozen=True)
class InvokeResult:
    """The result of one call to a function, before the failure table is applied.

    `failure` is set when no HTTP status was received: a timeout, a failed
    connection or a reply that was not HTTP.
    """

    status_code: int | None
    error_type_header: str | None
    body: bytes
    error_message: str
    duration_ms: int
    failure: Outcome | None = None
    content_type: str = ""
