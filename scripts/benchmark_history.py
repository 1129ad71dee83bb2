"""Time the invocation history on a large database, in server time.

Usage:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fcdash_bench \\
        .venv/bin/python scripts/benchmark_history.py [--repeat 5]

Fill the database first with `manage.py seedinvocations 1000000`. The script
requests the history page and the API list in-process with Django's test
client, as a signed-in admin, and prints the median and max time of each
request: first page, a page 100,000 rows deep (page 2,001 at 50 rows a
page) and filtered views. Times include the queries, the rendering and the
serialization, but no network.
"""

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fcdash.settings")

DEEP_ROW = 100_000


def api_cursor(created_at) -> str:
    """Build a DRF cursor that starts after the row created at `created_at`."""
    position = urlencode({"p": created_at.isoformat()})
    return base64.b64encode(position.encode()).decode()


def time_request(client, url: str, repeat: int) -> tuple[float, float, int]:
    durations = []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        durations.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(durations), max(durations), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.urls import reverse

    from invocations.models import Invocation

    settings.ALLOWED_HOSTS = ["testserver"]
    user, _ = User.objects.get_or_create(username="benchmark")
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)

    total = Invocation.objects.order_by().count()
    deep = (
        Invocation.objects.order_by("-created_at", "-id")
        .values("created_at", "id")[DEEP_ROW : DEEP_ROW + 1]
        .get()
    )
    function = Invocation.objects.values_list("function__name", flat=True)[:1].get()
    history = reverse("invocation-list")
    cases = [
        ("page: history, first page", history),
        ("page: history, filtered by status=Failed", f"{history}?status=Failed"),
        ("page: history, filtered by function", f"{history}?function={function}"),
        (
            "page: history, status=Retrying and error type",
            f"{history}?status=Retrying&error_type=InsufficientResources",
        ),
        ("api: list, first page", "/api/invocations/"),
        (
            f"api: list, {DEEP_ROW:,} rows deep",
            f"/api/invocations/?cursor={api_cursor(deep['created_at'])}",
        ),
        ("api: list, filtered by status=Failed", "/api/invocations/?status=Failed"),
    ]
    deep_page = page_cursor_url(history, deep)
    cases.insert(1, (f"page: history, {DEEP_ROW:,} rows deep", deep_page))

    print(f"invocations in the database: {total:,}; repeats per request: {args.repeat}")
    for label, url in cases:
        median, worst, status = time_request(client, url, args.repeat)
        print(f"{label}: median {median:.1f} ms, max {worst:.1f} ms (HTTP {status})")


def page_cursor_url(history: str, row: dict) -> str:
    """Return the history page's URL that starts after `row`."""
    from invocations.views.paging import encode_cursor

    cursor = encode_cursor(SimpleNamespace(created_at=row["created_at"], pk=row["id"]))
    return f"{history}?{urlencode({'older': cursor})}"


if __name__ == "__main__":
    main()
