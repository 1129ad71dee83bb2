"""Demo invocations for screenshots: scripted replies, recorded like the engine.

Each Story lists the replies its attempts get. InvocationBuilder turns a story
into an Invocation and its Attempts without running anything, and
policy.decide() picks every retry time and final status.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from . import policy
from .invokers.http import error_message
from .models import Attempt, Function, Invocation, InvocationType, Status, Trigger

DEMO_FUNCTIONS = [
    # name, region, memory in MB, timeout in s
    ("resize-image", "cn-hangzhou", 1024, 60),
    ("render-report", "cn-hangzhou", 3072, 120),
    ("send-receipt", "cn-shanghai", 512, 30),
    ("sync-inventory", "ap-southeast-1", 2048, 30),
]
DEMO_PAYLOADS = {
    "resize-image": {"bucket": "photos", "key": "2025/03/IMG_0412.jpg", "width": 640},
    "render-report": {"report": "monthly-sales", "month": "2025-02"},
    "send-receipt": {"order": "A-10482", "email": "buyer@example.com"},
    "sync-inventory": {"warehouse": "SG-2", "since": "2025-03-01T00:00:00Z"},
}
THROTTLED_REGION = "cn-shanghai"
THROTTLED_REGION_QUOTA = 10


@dataclass(frozen=True)
class Reply:
    """One demo attempt's result: an HTTP response, or a failure without one."""

    status_code: int | None = 200
    error_type_header: str | None = None
    body: str = '{"ok": true}'
    duration_ms: int = 40
    failure: policy.Outcome | None = None
    failure_message: str = ""

    @property
    def outcome(self) -> policy.Outcome:
        return policy.classify(
            self.status_code, self.error_type_header, failure=self.failure
        )

    @property
    def message(self) -> str:
        if self.status_code is None:
            return self.failure_message
        return error_message(
            self.status_code, self.error_type_header, self.body.encode()
        )


def http_error(status_code: int, message: str, duration_ms: int = 6) -> Reply:
    body = json.dumps({"code": status_code, "message": message})
    return Reply(status_code=status_code, body=body, duration_ms=duration_ms)


OK = Reply()
THROTTLED = http_error(429, "Reached the concurrency limit of the region")
BUSY = http_error(503, "Insufficient resources in the region, try again later")
INTERNAL = http_error(500, "Internal system error")
HANDLED = Reply(
    error_type_header=str(policy.ErrorType.HANDLED),
    body=json.dumps(
        {"errorType": "KeyError", "errorMessage": "KeyError: 'bucket' is missing"}
    ),
    duration_ms=180,
)
UNHANDLED = Reply(
    error_type_header=str(policy.ErrorType.UNHANDLED),
    body=json.dumps(
        {
            "errorType": "Runtime.ExitError",
            "errorMessage": "Process exited unexpectedly before completing request",
        }
    ),
    duration_ms=950,
)
NOT_FOUND = http_error(404, "Function render-report-v2 not found in the service")


@dataclass
class Story:
    """One demo invocation: its automatic replies and what happened next.

    `then` is "" (nothing), "running" or "stopping" (an attempt in flight),
    "stop" (an operator stopped the retries), "manual_retry" (an operator
    retried after the last reply, and the function returned `manual_reply`) or
    "invalid".
    """

    function: str
    replies: list[Reply]
    age: timedelta
    invocation_type: str = InvocationType.ASYNC
    then: str = ""
    manual_reply: Reply = OK
    # Failure table values that differ from the defaults on this invocation.
    config_changes: dict = field(default_factory=dict)
    # Place the next attempt this far ahead of now instead of using `age`.
    next_attempt_in: timedelta | None = None


def demo_stories() -> list[Story]:
    """List the demo invocations: every status, then traffic of the last day."""
    stories = [
        Story(
            "send-receipt",
            [BUSY, *[THROTTLED] * 7],
            timedelta(0),
            next_attempt_in=timedelta(seconds=55),
        ),
        Story("resize-image", [HANDLED] * 4, timedelta(minutes=12)),
        Story(
            "sync-inventory",
            [INTERNAL],
            timedelta(minutes=30),
            invocation_type=InvocationType.SYNC,
        ),
        Story("render-report", [NOT_FOUND], timedelta(hours=2)),
        Story("send-receipt", [BUSY, BUSY, OK], timedelta(minutes=7)),
        Story("resize-image", [UNHANDLED, OK], timedelta(minutes=40)),
        Story(
            "sync-inventory",
            [INTERNAL],
            timedelta(minutes=25),
            invocation_type=InvocationType.SYNC,
            then="manual_retry",
        ),
        Story(
            "send-receipt", [THROTTLED, THROTTLED], timedelta(minutes=9), then="stop"
        ),
        Story("render-report", [BUSY], timedelta(seconds=20), then="stopping"),
        Story("resize-image", [], timedelta(seconds=2), then="running"),
        Story("sync-inventory", [], timedelta(seconds=1)),
        Story(
            "render-report",
            [BUSY] * 5,
            timedelta(hours=3),
            config_changes={"max_async_event_age_s": 10},
        ),
        Story("resize-image", [], timedelta(hours=4), then="invalid"),
    ]
    # Finished traffic spread over the last 23 hours for the overview chart.
    generator = random.Random(7)
    shapes = [
        (0.72, [OK]),
        (0.10, [BUSY, OK]),
        (0.08, [THROTTLED, THROTTLED, OK]),
        (0.06, [HANDLED, OK]),
        (0.04, [UNHANDLED] * 4),
    ]
    weights = [weight for weight, _ in shapes]
    for _ in range(60):
        replies = generator.choices([shape for _, shape in shapes], weights)[0]
        stories.append(
            Story(
                generator.choice([name for name, *_ in DEMO_FUNCTIONS]),
                replies,
                timedelta(hours=1) + timedelta(seconds=generator.uniform(0, 22 * 3600)),
                invocation_type=(
                    InvocationType.ASYNC
                    if generator.random() < 0.8
                    else InvocationType.SYNC
                ),
            )
        )
    return stories


class InvocationBuilder:
    """Build one Story's invocation and attempts the way the engine records them.

    policy.decide() chooses every retry time and final status, so the gaps,
    budgets and give-up reasons on the pages match the failure table.
    """

    def __init__(self, function: Function, story: Story, created_at: datetime):
        self.story = story
        self.config = policy.PolicyConfig(
            region_quota=(
                THROTTLED_REGION_QUOTA
                if function.region == THROTTLED_REGION
                else policy.DEFAULT_REGION_QUOTA
            )
        ).with_values(**story.config_changes)
        expires_at = None
        if story.invocation_type == InvocationType.ASYNC:
            expires_at = created_at + timedelta(
                seconds=self.config.max_async_event_age_s
            )
        self.invocation = Invocation(
            function=function,
            region=function.region,
            invocation_type=story.invocation_type,
            status=Status.ENQUEUED,
            payload=json.dumps(DEMO_PAYLOADS[function.name]).encode(),
            created_at=created_at,
            next_attempt_at=created_at,
            dispatched_at=created_at,
            expires_at=expires_at,
            policy=self.config.to_dict(),
            memory_mb=function.memory_mb,
        )
        self.attempts: list[Attempt] = []
        # Start of the next attempt. Demo attempts start 30 ms after their
        # scheduled time, a made-up dispatch latency.
        self.clock = created_at + timedelta(milliseconds=30)

    def build(self) -> tuple[Invocation, list[Attempt]]:
        for reply in self.story.replies:
            if self.invocation.finished_at:
                # A Sync invocation or a spent budget ends the story early.
                break
            self.run_automatic(reply)
        then = self.story.then
        if then in ("running", "stopping"):
            self.start_running(Status.RUNNING if then == "running" else Status.STOPPING)
        elif then == "stop":
            self.stop_between_attempts()
        elif then == "manual_retry":
            self.run_manual()
        elif then == "invalid":
            self.finish(Status.INVALID, "forbidden_endpoint", self.clock)
        return self.invocation, self.attempts

    def record(self, reply: Reply, trigger: str) -> Attempt:
        invocation = self.invocation
        started_at = self.clock
        ended_at = started_at + timedelta(milliseconds=reply.duration_ms)
        outcome = reply.outcome
        billed = policy.is_billed(outcome)

        attempt = Attempt(
            invocation=invocation,
            number=len(self.attempts) + 1,
            trigger=trigger,
            started_at=started_at,
            ended_at=ended_at,
            duration_ms=reply.duration_ms,
            status_code=reply.status_code,
            error_type=policy.error_type_for(outcome, reply.error_type_header) or "",
            error_message=reply.message,
            outcome=outcome,
            billed=billed,
            billed_duration_ms=max(1, reply.duration_ms) if billed else 0,
            response_preview=reply.body,
        )
        self.attempts.append(attempt)

        invocation.attempts_made = attempt.number
        invocation.outcome = outcome
        invocation.last_error_type = attempt.error_type
        invocation.last_status_code = attempt.status_code
        if billed:
            invocation.billed_attempts += 1
            invocation.billed_duration_ms += attempt.billed_duration_ms
        else:
            invocation.unbilled_attempts += 1
        if outcome is not policy.Outcome.SUCCESS and not invocation.first_failure_at:
            invocation.first_failure_at = ended_at
        return attempt

    def run_automatic(self, reply: Reply) -> None:
        invocation = self.invocation
        # decide() reads the state from before this attempt's failure.
        first_failure_at = invocation.first_failure_at
        attempt = self.record(reply, Trigger.AUTOMATIC)
        decision = policy.decide(
            self.config,
            attempt.outcome,
            policy.RetryState(
                invocation_type=invocation.invocation_type,
                function_error_retries_used=invocation.function_error_retries_used,
                infrastructure_retries_used=invocation.infrastructure_retries_used,
                first_failure_at=first_failure_at,
                expires_at=invocation.expires_at,
            ),
            attempt.ended_at,
        )
        if decision.retries:
            if decision.retry_kind is policy.RetryKind.FUNCTION:
                invocation.function_error_retries_used += 1
            else:
                invocation.infrastructure_retries_used += 1
            invocation.status = Status.RETRYING
            invocation.next_attempt_at = decision.retry_at
            invocation.dispatched_at = None
            self.clock = decision.retry_at + timedelta(milliseconds=30)
            return
        if decision.give_up is policy.GiveUp.SUCCEEDED:
            status = Status.SUCCEEDED
        elif decision.give_up is policy.GiveUp.EVENT_AGE_EXCEEDED:
            status = Status.EXPIRED
        else:
            status = Status.FAILED
        self.finish(status, decision.give_up, attempt.ended_at)

    def run_manual(self) -> None:
        # The operator retries a few minutes after the invocation failed.
        self.clock = self.invocation.finished_at + timedelta(minutes=3)
        attempt = self.record(self.story.manual_reply, Trigger.MANUAL)
        succeeded = attempt.outcome is policy.Outcome.SUCCESS
        status = Status.SUCCEEDED if succeeded else Status.FAILED
        self.finish(status, "manual_retry", attempt.ended_at)

    def stop_between_attempts(self) -> None:
        # The operator stops the retries halfway through the wait.
        ended_at = self.attempts[-1].ended_at
        stopped_at = ended_at + (self.invocation.next_attempt_at - ended_at) / 2
        self.finish(Status.STOPPED, "stopped", stopped_at)

    def start_running(self, status: str) -> None:
        function = self.invocation.function
        lease = function.timeout_s + settings.FCDASH_LEASE_GRACE_S
        attempt = Attempt(
            invocation=self.invocation,
            number=len(self.attempts) + 1,
            trigger=Trigger.AUTOMATIC,
            started_at=self.clock,
            lease_expires_at=self.clock + timedelta(seconds=lease),
        )
        self.attempts.append(attempt)
        self.invocation.attempts_made = attempt.number
        self.invocation.status = status
        self.invocation.next_attempt_at = None
        self.invocation.dispatched_at = None

    def finish(self, status: str, reason: str, at: datetime) -> None:
        self.invocation.status = status
        self.invocation.give_up_reason = reason
        self.invocation.next_attempt_at = None
        self.invocation.dispatched_at = None
        self.invocation.finished_at = at


def build_story(function: Function, story: Story, now: datetime):
    """Build a story's rows, ending `story.age` ago or before its next attempt."""
    if story.next_attempt_in is None:
        return InvocationBuilder(function, story, now - story.age).build()
    # Build once to measure the time from creation to the next attempt, then
    # again so that the next attempt lands `next_attempt_in` from now.
    trial, _ = InvocationBuilder(function, story, now).build()
    lead = trial.next_attempt_at - trial.created_at
    created_at = now + story.next_attempt_in - lead
    return InvocationBuilder(function, story, created_at).build()
