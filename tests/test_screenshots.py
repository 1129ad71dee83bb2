"""The screenshots command: one PNG per page, and a database left as found."""

from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command

from invocations.management.commands.screenshots import CHROMIUM_PATH
from invocations.models import AuditEvent, Function, Invocation, QuotaAlert

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGES = [
    "01-overview",
    "02-history",
    "03-history-failed",
    "04-invocation-retrying",
    "05-invocation-function-error",
    "06-functions",
    "07-function-detail",
    "08-billing",
    "09-failure-table",
    "10-alerts",
    "11-audit-log",
    "12-login",
]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM_PATH.exists(),
    reason="Chromium is missing: scripts/install-chromium installs it",
)
def test_demo_data_writes_every_page(tmp_path):
    output = StringIO()
    errors = StringIO()

    call_command(
        "screenshots", str(tmp_path), "--demo-data", stdout=output, stderr=errors
    )

    expected = [tmp_path / f"{name}.png" for name in PAGES]
    assert sorted(tmp_path.iterdir()) == expected
    for path in expected:
        assert path.read_bytes().startswith(PNG_SIGNATURE), path.name
        assert path.stat().st_size > 1000, path.name
    assert output.getvalue().split() == [str(path) for path in expected]
    assert errors.getvalue() == ""
    assert not Function.objects.exists()
    assert not Invocation.objects.exists()
    assert not QuotaAlert.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not Session.objects.exists()


def test_demo_data_rejects_used_database(tmp_path, make_function):
    make_function("resize-image")
    output_dir = tmp_path / "shots"

    with pytest.raises(CommandError, match="1 functions and 0 invocations"):
        call_command("screenshots", str(output_dir), "--demo-data")

    assert Function.objects.count() == 1
    assert not output_dir.exists()


def test_missing_admin_user_is_reported(tmp_path, operator):
    output_dir = tmp_path / "shots"

    with pytest.raises(CommandError, match="No active superuser or admin-group user"):
        call_command("screenshots", str(output_dir))

    assert not output_dir.exists()


def test_unknown_username_is_reported(tmp_path):
    with pytest.raises(CommandError, match="Active user 'nobody' not found"):
        call_command("screenshots", str(tmp_path / "shots"), "--username", "nobody")
