import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from demo.server import start_server
from invocations.models import Function

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_server():
    """A demo function server on 127.0.0.1; yields its base URL."""
    server, thread = start_server(quota=10, region_quotas={"cn-tiny": 2})
    yield server.url
    server.shutdown()
    server.server_close()
    thread.join()


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username, password="pw-" + username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def operator(db):
    return make_user("olga", "operator")


@pytest.fixture
def viewer(db):
    return make_user("victor", "viewer")


@pytest.fixture
def admin_user(db):
    return make_user("ada", "admin")


def token_client(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(admin_user):
    """An API client with an admin's token."""
    return token_client(admin_user)


@pytest.fixture
def make_function(db, demo_server):
    """Create a function whose endpoint is a demo server behaviour."""

    def make(name="fn", behaviour="ok", region="cn-hangzhou", **fields):
        return Function.objects.create(
            name=name,
            region=region,
            endpoint_url=f"{demo_server}/{region}/{behaviour}",
            **fields,
        )

    return make


class WorkerProcess:
    """A real `celery -A fcdash worker --beat` process on the test database."""

    def __init__(self, database_name: str, tmp_path: Path, extra_env=None):
        self.log_path = tmp_path / f"worker-{uuid.uuid4().hex[:8]}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database_name}",
            "FCDASH_VAR_DIR": str(tmp_path),
            "FCDASH_DISPATCH_INTERVAL_S": "0.5",
            **(extra_env or {}),
        }
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "fcdash",
                "worker",
                "--beat",
                "--loglevel=INFO",
                f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
                f"--schedule={tmp_path / ('beat-' + uuid.uuid4().hex[:8])}",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # Its own process group: `--beat` runs beat in a child process,
            # which a kill of the worker alone would leave running.
            start_new_session=True,
        )
        self.wait_ready()

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Celery worker did not start:\n{self.output()}")

    def kill(self) -> None:
        """Kill the worker and its beat child at once, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # Whatever is left of the group, such as a beat child, goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start workers with beat on the test database; stops them after the test."""
    from django.db import connection

    from fcdash.celery import app

    app.control.purge()
    workers = []

    def start(**extra_env):
        worker = WorkerProcess(connection.settings_dict["NAME"], tmp_path, extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def chromium(monkeypatch):
    """Launch Debian's Chromium headless through Playwright and yield the Browser.

    Skips the test when Chromium is missing. Closes the database connections
    that the test opened while Playwright ran.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from invocations.management.commands.screenshots import (
        CHROMIUM_PATH,
        launch_chromium,
    )

    if not CHROMIUM_PATH.exists():
        pytest.skip("Chromium is missing: scripts/install-chromium installs it")
    # Playwright's sync API runs an event loop in this thread, and Django raises
    # SynchronousOnlyOperation for ORM calls in such a thread unless this is set.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
        # While Playwright's loop runs, connections["default"] is a separate
        # wrapper that pytest-django never closes. An open connection would
        # keep the test database from being dropped.
        connections.close_all()
