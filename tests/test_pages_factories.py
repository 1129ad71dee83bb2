"""Builders of users, functions, invocations and attempts for the page tests."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import Group, User

from invocations import policy
from invocations.models import Attempt, Function, Invocation, Status

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_user(role: str | None, username: str | None = None) -> User:
    """Create a user in the role's group ("viewer", "operator", "admin")."""
    user = User.objects.create_user(username or f"{role or 'nobody'}-user", "x@x.test")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_function(name: str = "resize", region: str = "cn-hangzhou", **fields):
    fields.setdefault("endpoint_url", "http://127.0.0.1:9/fn")
    return Function.objects.create(name=name, region=region, **fields)


def make_invocation(
    function: Function,
    status: str = Status.SUCCEEDED,
    *,
    created_at: datetime = T0,
    invocation_type: str = "Async",
    **fields,
) -> Invocation:
    fields.setdefault("policy", policy.PolicyConfig().to_dict())
    fields.setdefault("memory_mb", function.memory_mb)
    return Invocation.objects.create(
        function=function,
        region=function.region,
        invocation_type=invocation_type,
        status=status,
        payload=fields.pop("payload", b'{"key": "value"}'),
        created_at=created_at,
        **fields,
    )


def make_attempt(
    invocation: Invocation,
    number: int,
    *,
    started_at: datetime,
    duration_ms: int | None = 20,
    outcome: str = policy.Outcome.SUCCESS,
    **fields,
) -> Attempt:
    """Create an ended attempt, or a running one when duration_ms is None."""
    ended_at = None
    if duration_ms is not None:
        ended_at = started_at + timedelta(milliseconds=duration_ms)
    else:
        outcome = ""
    billed = fields.pop("billed", policy.is_billed(outcome) if outcome else False)
    fields.setdefault("status_code", 200 if ended_at else None)
    return Attempt.objects.create(
        invocation=invocation,
        number=number,
        trigger=fields.pop("trigger", "automatic"),
        started_at=started_at,
        ended_at=ended_at,
        duration_ms=duration_ms,
        outcome=outcome,
        billed=billed,
        billed_duration_ms=duration_ms if billed else 0,
        **fields,
    )
