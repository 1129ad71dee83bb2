"""Responses of the demo functions, chosen from the behaviour and query parameters.

``plan_invocation`` validates one invocation request and chooses its outcome, and
``build_response`` turns the outcome into a status, JSON body and headers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

BEHAVIOURS = ("error", "flaky", "ok", "sequence", "slow")
FUNCTION_ERROR_TYPES = {
    "handled": "HandledInvocationError",
    "unhandled": "UnhandledInvocationError",
}
FUNCTION_ERROR_MESSAGES = {
    "handled": "demo function returned an error",
    "unhandled": "demo function raised an unhandled exception",
}
FLAKY_PARAMETERS = ("p429", "p500", "p503", "perror")
MAX_SLEEP_MS = 600_000
SLOW_DEFAULT_MS = 1_000


class InvalidRequest(Exception):
    """Request that the server rejects with ``status`` and ``message``."""

    def __init__(
        self, status: int, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}  # extra fields for the JSON error body


@dataclass
class InvocationPlan:
    outcome: int | str  # an HTTP status, or a key of FUNCTION_ERROR_TYPES
    sleep_ms: int


def parse_int(name: str, text: str, minimum: int, maximum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(
            400, f"invalid {name} {text!r}: expected an integer"
        ) from None
    if not minimum <= value <= maximum:
        raise InvalidRequest(
            400, f"invalid {name} {value}: expected {minimum} to {maximum}"
        )
    return value


def parse_outcome(text: str) -> int | str:
    if text in FUNCTION_ERROR_TYPES:
        return text
    try:
        return parse_int("code", text, 200, 599)
    except InvalidRequest:
        raise InvalidRequest(
            400,
            f"invalid code {text!r}: expected an HTTP status from 200 to 599, "
            "'handled' or 'unhandled'",
        ) from None


def parse_probability(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(
            400, f"invalid {name} {text!r}: expected a number"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(400, f"invalid {name} {value}: expected 0 to 1")
    return value


def choose_sequence_outcome(params: dict[str, str], attempt: int) -> int | str:
    codes_text = params.get("codes", "")
    if not codes_text:
        raise InvalidRequest(400, "missing query parameter 'codes', e.g. 503,503,200")
    codes = [parse_outcome(code.strip()) for code in codes_text.split(",")]
    return codes[min(attempt, len(codes)) - 1]


def choose_flaky_outcome(params: dict[str, str], rng: random.Random) -> int | str:
    probabilities = {
        name: parse_probability(name, params.get(name, "0"))
        for name in FLAKY_PARAMETERS
    }
    if sum(probabilities.values()) > 1.0:
        raise InvalidRequest(400, "invalid probabilities: their sum is above 1")
    draw = rng.random()
    for name, outcome in (("p429", 429), ("p500", 500), ("p503", 503)):
        if draw < probabilities[name]:
            return outcome
        draw -= probabilities[name]
    if draw < probabilities["perror"]:
        return rng.choice(list(FUNCTION_ERROR_TYPES))
    return 200


def plan_invocation(
    behaviour: str, params: dict[str, str], attempt: int, rng: random.Random
) -> InvocationPlan:
    """Validate an invocation request and choose its outcome and delay.

    Raises InvalidRequest with 404 for an unknown behaviour and 400 for an invalid
    query parameter.
    """
    if behaviour not in BEHAVIOURS:
        raise InvalidRequest(
            404,
            f"unknown behaviour {behaviour!r}. "
            f"Valid behaviours: {', '.join(BEHAVIOURS)}",
            details={"valid_behaviours": list(BEHAVIOURS)},
        )
    default_ms = SLOW_DEFAULT_MS if behaviour == "slow" else 0
    sleep_ms = parse_int("ms", params.get("ms", str(default_ms)), 0, MAX_SLEEP_MS)

    if behaviour == "sequence":
        outcome = choose_sequence_outcome(params, attempt)
    elif behaviour == "error":
        error_type = params.get("type", "unhandled")
        if error_type not in FUNCTION_ERROR_TYPES:
            raise InvalidRequest(
                400, f"invalid type {error_type!r}: expected 'handled' or 'unhandled'"
            )
        outcome = error_type
    elif behaviour == "flaky":
        outcome = choose_flaky_outcome(params, rng)
    else:
        outcome = 200
    return InvocationPlan(outcome=outcome, sleep_ms=sleep_ms)


def build_response(
    outcome: int | str, request_id: str | None, attempt: int, payload_bytes: int
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Return the status, JSON body and extra headers for a planned outcome."""
    if isinstance(outcome, str):
        error_type = FUNCTION_ERROR_TYPES[outcome]
        body = {
            "errorMessage": FUNCTION_ERROR_MESSAGES[outcome],
            "errorType": error_type,
        }
        return 200, body, {"X-Fc-Error-Type": error_type}
    if outcome < 300:
        body = {
            "ok": True,
            "request_id": request_id,
            "attempt": attempt,
            "payload_bytes": payload_bytes,
        }
        return outcome, body, {}
    if outcome == 429:
        message = "Reached concurrency limit of the demo function"
        return 429, error_body(message, "ResourceExhausted"), {}
    if outcome == 500:
        message = "Internal error in the demo function server"
        return 500, error_body(message, "InternalServerError"), {}
    if outcome == 503:
        message = "Not enough resources to start an instance, retry later"
        return 503, error_body(message, "ResourceNotEnough"), {}
    return outcome, error_body(status_phrase(outcome), error_code(outcome)), {}


def error_body(message: str, code: str) -> dict[str, str]:
    """Return the JSON body of an error response.

    FC's API documents error bodies as ``{"errorCode": ..., "errorMessage": ...}``
    (alibabacloud.com/help/en/functioncompute/error-codes). ``code`` repeats the error
    code under a shorter key.
    """
    return {"errorMessage": message, "errorCode": code, "code": code}


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP status {status}"


def error_code(status: int) -> str:
    """Return an FC-style CamelCase error code such as ``BadRequest``."""
    try:
        name = HTTPStatus(status).name
    except ValueError:
        return f"Status{status}"
    return "".join(word.title() for word in name.split("_"))
