"""Render a full-page PNG of every dashboard page in headless Chromium.

The command serves the pages from a WSGI server of its own on 127.0.0.1, logs
Chromium in with a session it creates for one user, and deletes that session
at the end. With --demo-data it first fills an empty database with the small
varied data set of invocations.demo_data and deletes that set again at the end.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.db.models import Count
from django.test.utils import override_settings
from django.urls import reverse

from invocations import policy
from invocations.demo_data import DEMO_ADMIN, DEMO_OPERATOR, DemoData
from invocations.models import Function, Invocation, Status
from invocations.roles import ADMIN

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
