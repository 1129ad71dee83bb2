"""Render a full-page PNG of every dashboard page in headless Chromium.

The command serves the pages from a WSGI server of its own on 127.0.0.1, logs
Chromium in with a session it creates for one user, and deletes that session
at the end. With --demo-data it first fills an empty database with a small
varied data set and deletes that set again at the end.
"""

import json
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from invocations import policy
from invocations.invokers.http import error_message
from invocations.models import (
    AlertKind,
    Attempt,
    AuditEvent,
    Function,
    Invocation,
    InvocationType,
    QuotaAlert,
    Region,
    Status,
    Trigger,
)
from invocations.roles import ADMIN, OPERATOR

CHROMIUM_PATH = Path("/usr/bin/chromium")
# --no-sandbox lets Chromium start as root, and --disable-background-networking
# stops it from contacting Google's services when it starts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
VIEWPORT = {"width": 1280, "height": 900}
# Time for the page's scripts (countdowns, htmx) to run after the load event.
SETTLE_MS = 300


def launch_chromium(playwright):
    """Launch Debian's Chromium headless through a started Playwright instance."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS
    )


@dataclass(frozen=True)
class Shot:
    """One page to capture: the PNG file's name without suffix, and the URL path."""

    name: str
    path: str
    logged_in: bool = True


class Command(BaseCommand):
    help = (
        "Write a full-page PNG screenshot (viewport 1280x900) of every dashboard "
        "page to OUTPUT_DIR, rendered by /usr/bin/chromium, and print each file "
        "path. Without --demo-data it shows the data already in the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "output_dir",
            type=Path,
            help="folder for the PNG files, created when missing",
        )
        parser.add_argument(
            "--demo-data",
            action="store_true",
            help=(
                "fill the database with demo functions, invocations, alerts and "
                "audit events first, and delete them at the end. The database "
                "must have no functions or invocations, for example a migrated "
                "SQLite file named by DATABASE_URL."
            ),
        )
        parser.add_argument(
            "--username",
            help=(
                "user to log in as (default: the first active superuser, else "
                "the first active user in the admin group)"
            ),
        )

    def handle(self, *args, output_dir, demo_data, username, **options):
        if demo_data and username:
            raise CommandError(
                "--username cannot be combined with --demo-data, which logs in "
                "as the demo admin user it creates."
            )
        # Check the database before anything else, so a rejected run writes
        # no rows and no files.
        user = None
        if demo_data:
            check_empty()
        else:
            user = find_user(username)
        if not CHROMIUM_PATH.exists():
            raise CommandError(
                f"Chromium is missing at {CHROMIUM_PATH}: install Debian's "
                "chromium package (scripts/install-chromium does it)."
            )
        output_dir.mkdir(parents=True, exist_ok=True)

        # All ORM work happens before and after Playwright runs, because
        # Django rejects ORM calls in a thread with a running event loop.
        demo = DemoData.create() if demo_data else None
        session_key = None
        try:
            if demo:
                user = demo.admin
            shots = plan_shots(self.stderr)
            session_key = create_session(user)
            problems = self.capture(shots, session_key, output_dir)
        finally:
            if session_key:
                delete_session(session_key)
            if demo:
                demo.delete()
        if problems:
            raise CommandError("\n".join(problems))

    def capture(self, shots: list[Shot], session_key: str, output_dir: Path):
        """Screenshot every page and describe each page that did not return 200."""
        from playwright.sync_api import sync_playwright

        problems = []
        # The server listens on 127.0.0.1 only, so that host is safe to allow
        # even where ALLOWED_HOSTS names only the production host.
        allowed_hosts = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
        with (
            override_settings(ALLOWED_HOSTS=allowed_hosts),
            serve_wsgi() as base_url,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            try:
                anonymous = browser.new_context(viewport=VIEWPORT)
                logged_in = browser.new_context(viewport=VIEWPORT)
                logged_in.add_cookies(
                    [
                        {
                            "name": settings.SESSION_COOKIE_NAME,
                            "value": session_key,
                            "url": base_url,
                        }
                    ]
                )
                for shot in shots:
                    context = logged_in if shot.logged_in else anonymous
                    problem = self.capture_page(context, base_url, shot, output_dir)
                    if problem:
                        problems.append(problem)
            finally:
                browser.close()
        return problems

    def capture_page(self, context, base_url: str, shot: Shot, output_dir: Path):
        """Write one page's PNG and return a problem description, or None."""
        page = context.new_page()
        console_errors = []

        def record_console(message):
            if message.type == "error":
                console_errors.append(message.text)

        page.on("console", record_console)
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        url = base_url + shot.path
        response = page.goto(url, wait_until="load")
        page.wait_for_timeout(SETTLE_MS)
        path = output_dir / f"{shot.name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.close()
        self.stdout.write(str(path))
        for text in console_errors:
            self.stderr.write(f"{shot.name}: console error on {shot.path}: {text}")
        if response is None or response.status != 200:
            status = response.status if response else "no response"
            return f"{shot.name}: {shot.path} returned {status}, expected 200."
        return None


@contextmanager
def serve_wsgi():
    """Serve fcdash on 127.0.0.1 at a free port and yield the base URL.

    WhiteNoise in the middleware serves the static files. Django's
    ThreadedWSGIServer closes each request thread's database connections
    when the request ends.
    """
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietRequestHandler)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietRequestHandler(WSGIRequestHandler):
    """Request handler without a log line per request."""

    def log_message(self, format, *args):
        pass


def find_user(username: str | None):
    """Return the user to log in as, from --username or the first admin."""
    User = get_user_model()
    active = User.objects.filter(is_active=True).order_by("pk")
    if username:
        user = active.filter(username=username).first()
        if user is None:
            raise CommandError(f"Active user {username!r} not found.")
        return user
    user = (
        active.filter(is_superuser=True).first()
        or active.filter(groups__name=ADMIN).first()
    )
    if user is None:
        raise CommandError(
            "No active superuser or admin-group user found. Pass --username, "
            "create one with `manage.py createsuperuser`, or use --demo-data "
            "on an empty database."
        )
    return user


def create_session(user) -> str:
    """Store a session with the keys that django.contrib.auth.login sets for `user`."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


def delete_session(session_key: str) -> None:
    import_module(settings.SESSION_ENGINE).SessionStore(session_key).delete()


def plan_shots(stderr) -> list[Shot]:
    """List the pages to capture, picking example rows from the database.

    A page that needs a row the database lacks is left out with a note on
    stderr.
    """
    retrying = (
        Invocation.objects.filter(status=Status.RETRYING, attempts_made__gt=0)
        .order_by("-attempts_made", "-created_at")
        .first()
    )
    function_error = (
        Invocation.objects.filter(
            status=Status.FAILED, outcome=policy.Outcome.FUNCTION_ERROR
        )
        .order_by("-created_at")
        .first()
    )
    busiest_function = (
        Function.objects.annotate(invocation_count=Count("invocations"))
        .order_by("-invocation_count", "name")
        .first()
    )
    history = reverse("invocation-list")
    shots = [
        Shot("01-overview", reverse("overview")),
        Shot("02-history", history),
        Shot("03-history-failed", f"{history}?status={Status.FAILED}"),
    ]

    def add_example(name: str, row, url_name: str, key: str, description: str):
        if row is None:
            stderr.write(f"Skipped {name}: the database has no {description}.")
        else:
            shots.append(Shot(name, reverse(url_name, args=[getattr(row, key)])))

    add_example(
        "04-invocation-retrying",
        retrying,
        "invocation-detail",
        "request_id",
        "Retrying invocation with attempts",
    )
    add_example(
        "05-invocation-function-error",
        function_error,
        "invocation-detail",
        "request_id",
        "Failed invocation with a function error",
    )
    shots.append(Shot("06-functions", reverse("function-list")))
    add_example(
        "07-function-detail", busiest_function, "function-detail", "name", "function"
    )
    shots += [
        Shot("08-billing", reverse("billing")),
        Shot("09-failure-table", reverse("policy")),
        Shot("10-alerts", reverse("alert-list")),
        Shot("11-audit-log", reverse("audit-log")),
        Shot("12-login", reverse("login"), logged_in=False),
    ]
    return shots


# Demo data --------------------------------------------------------------------

DEMO_ADMIN = "ada"
DEMO_OPERATOR = "olga"
# The demo endpoints point at `python -m demo.server` on its usual port. The
# command never invokes them.
DEMO_ENDPOINT = "http://127.0.0.1:9100/{region}/ok"
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


@dataclass
class DemoData:
    """The demo rows that --demo-data creates, kept to delete them again."""

    admin: AbstractBaseUser
    users: list = field(default_factory=list)
    functions: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    audit_events: list = field(default_factory=list)

    @classmethod
    def create(cls) -> "DemoData":
        """Create the demo rows. Callers run check_empty() first."""
        with transaction.atomic():
            return cls.build(timezone.now())

    @classmethod
    def build(cls, now: datetime) -> "DemoData":
        User = get_user_model()
        admin = User.objects.create_user(DEMO_ADMIN)
        admin.groups.add(Group.objects.get(name=ADMIN))
        operator = User.objects.create_user(DEMO_OPERATOR)
        operator.groups.add(Group.objects.get(name=OPERATOR))
        demo = cls(admin=admin, users=[admin, operator])

        demo.regions.append(
            Region.objects.create(name=THROTTLED_REGION, quota=THROTTLED_REGION_QUOTA)
        )
        functions = {}
        for name, region, memory_mb, timeout_s in DEMO_FUNCTIONS:
            functions[name] = Function.objects.create(
                name=name,
                region=region,
                endpoint_url=DEMO_ENDPOINT.format(region=region),
                memory_mb=memory_mb,
                timeout_s=timeout_s,
            )
        demo.functions = list(functions.values())

        for story in demo_stories():
            invocation, attempts = build_story(functions[story.function], story, now)
            invocation.save()
            Attempt.objects.bulk_create(attempts)
            demo.add_story_events(story, invocation, operator)

        demo.add_alerts(now, operator)
        demo.add_audit_event(
            admin,
            "function_change",
            "render-report",
            {"memory_mb": [2048, 3072]},
            now - timedelta(hours=6),
        )
        return demo

    def add_story_events(self, story: Story, invocation: Invocation, user) -> None:
        """Audit the operator actions that a story includes."""
        detail = {"function": invocation.function.name}
        if story.then in ("stop", "stopping"):
            status = Status.STOPPED if story.then == "stop" else Status.STOPPING
            at = invocation.finished_at or timezone.now() - timedelta(seconds=5)
            self.add_audit_event(
                user, "stop", invocation.request_id, {**detail, "status": status}, at
            )
        elif story.then == "manual_retry":
            manual = invocation.attempts.get(trigger=Trigger.MANUAL)
            self.add_audit_event(
                user,
                "manual_retry",
                invocation.request_id,
                {**detail, "status": Status.ENQUEUED},
                manual.started_at - timedelta(milliseconds=40),
            )

    def add_alerts(self, now: datetime, operator) -> None:
        self.alerts.append(
            QuotaAlert.objects.create(
                region=THROTTLED_REGION,
                kind=AlertKind.THROTTLING,
                quota=THROTTLED_REGION_QUOTA,
                opened_at=now - timedelta(minutes=9),
                last_seen_at=now - timedelta(seconds=20),
                peak_concurrency=THROTTLED_REGION_QUOTA,
                throttled_attempts=23,
            )
        )
        resolved = QuotaAlert.objects.create(
            region="cn-hangzhou",
            kind=AlertKind.NEAR_QUOTA,
            quota=policy.DEFAULT_REGION_QUOTA,
            opened_at=now - timedelta(hours=5),
            last_seen_at=now - timedelta(hours=4, minutes=40),
            resolved_at=now - timedelta(hours=4, minutes=39),
            acknowledged_at=now - timedelta(hours=4, minutes=50),
            acknowledged_by=operator,
            peak_concurrency=84,
        )
        self.alerts.append(resolved)
        self.add_audit_event(
            operator,
            "alert_acknowledge",
            str(resolved),
            {"alert_id": resolved.pk, "region": resolved.region, "kind": resolved.kind},
            resolved.acknowledged_at,
        )

    def add_audit_event(self, user, action, target, detail, created_at) -> None:
        self.audit_events.append(
            AuditEvent.objects.create(
                user=user,
                action=action,
                target=target,
                detail=detail,
                created_at=created_at,
            )
        )

    @transaction.atomic
    def delete(self) -> None:
        """Delete every demo row. Attempts are deleted with their invocations."""
        AuditEvent.objects.filter(pk__in=pks(self.audit_events)).delete()
        QuotaAlert.objects.filter(pk__in=pks(self.alerts)).delete()
        Invocation.objects.filter(function__in=pks(self.functions)).delete()
        Function.objects.filter(pk__in=pks(self.functions)).delete()
        Region.objects.filter(pk__in=pks(self.regions)).delete()
        get_user_model().objects.filter(pk__in=pks(self.users)).delete()


def pks(rows) -> list[int]:
    return [row.pk for row in rows]


def check_empty() -> None:
    """Reject --demo-data on a database with functions, invocations or demo users."""
    functions = Function.objects.count()
    invocations = Invocation.objects.count()
    if functions or invocations:
        raise CommandError(
            f"--demo-data needs a database without functions or invocations, but "
            f"this one has {functions} functions and {invocations} invocations. "
            "Point DATABASE_URL at an empty database (for example "
            "sqlite:////tmp/fcdash-screenshots.sqlite3), run migrate, and try again."
        )
    existing_users = get_user_model().objects.filter(
        username__in=[DEMO_ADMIN, DEMO_OPERATOR]
    )
    if existing_users.exists():
        names = ", ".join(existing_users.values_list("username", flat=True))
        raise CommandError(
            f"--demo-data creates the users {DEMO_ADMIN} and {DEMO_OPERATOR}, but "
            f"the database already has {names}. Use an empty database."
        )
