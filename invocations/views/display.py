"""Display helpers shared by the pages: outcome groups and time formatting."""

from datetime import datetime, timedelta

from .. import policy

# Attempt outcomes grouped for colours and chart series. The keys are CSS
# class suffixes (outcome-<key>), so templates and fcdash.css share them.
OUTCOME_GROUPS = {
    "success": "Succeeded",
    "function": "Function error",
    "throttled": "Throttled (429)",
    "infrastructure": "Infrastructure error",
    "other": "Other failure",
    "running": "Running",
}
_GROUP_BY_OUTCOME = {
    policy.Outcome.SUCCESS: "success",
    policy.Outcome.FUNCTION_ERROR: "function",
    policy.Outcome.FUNCTION_TIMEOUT: "function",
    policy.Outcome.CONCURRENCY_LIMIT_EXCEEDED: "throttled",
    policy.Outcome.INTERNAL_SYSTEM_ERROR: "infrastructure",
    policy.Outcome.INSUFFICIENT_RESOURCES: "infrastructure",
    policy.Outcome.OTHER_SERVER_ERROR: "infrastructure",
    policy.Outcome.CONNECTION_FAILED: "infrastructure",
    policy.Outcome.WORKER_LOST: "infrastructure",
    policy.Outcome.CLIENT_ERROR: "other",
    policy.Outcome.UNEXPECTED_STATUS: "other",
    policy.Outcome.INVALID_RESPONSE: "other",
}


def outcome_group(outcome: str) -> str:
    """Return the OUTCOME_GROUPS key of an attempt outcome ("" while running)."""
    if not outcome:
        return "running"
    try:
        return _GROUP_BY_OUTCOME[policy.Outcome(outcome)]
    except ValueError:
        return "other"


def outcome_label(outcome: str) -> str:
    """Return an outcome name as words, such as "concurrency limit exceeded"."""
    return outcome.replace("_", " ")


def hours_minutes(seconds: float) -> str:
    """Format a duration in seconds as h:mm, rounded down to the minute."""
    minutes = max(0, int(seconds // 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


def seconds_with_ms(milliseconds: float) -> str:
    """Format a duration in milliseconds as seconds with three decimals."""
    return f"{milliseconds / 1000:.3f} s"


def short_duration(seconds: float) -> str:
    """Format a duration for axis labels and delays: 500 ms, 2 s, 4 min, 1.5 h."""
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def milliseconds_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(milliseconds=1)
