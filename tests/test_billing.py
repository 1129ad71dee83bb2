"""Billing figures and CSV exports against sums computed from the attempts."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from invocations import engine
from invocations.models import Attempt

pytestmark = pytest.mark.django_db


def run_all(invocation):
    import time_machine

    from invocations import tasks

    invocation.refresh_from_db()
    while not invocation.is_final:
        with time_machine.travel(
            invocation.next_attempt_at or timezone.now(), tick=True
        ):
            tasks.run_attempt(invocation.pk, invocation.attempts_made + 1)
        invocation.refresh_from_db()
    return invocation


@pytest.fixture
def traffic(make_function):
    """A mix of billed and unbilled attempts in two functions and regions."""
    small = make_function(
        "small", behaviour="sequence?codes=503,429,200", memory_mb=128
    )
    big = make_function(
        "big", behaviour="error?type=handled", region="cn-shanghai", memory_mb=2048
    )
    for _ in range(2):
        run_all(engine.accept_async(small, b"{}"))
    run_all(engine.accept_async(big, b"{}"))
    engine.run_sync(big, b"{}")


def expected_from_attempts(attempts):
    billed = [a for a in attempts if a.billed]
    return {
        "attempts": len(attempts),
        "billed_attempts": len(billed),
        "unbilled_attempts": len(attempts) - len(billed),
        "billed_duration_ms": sum(a.billed_duration_ms for a in billed),
        "billed_gb_seconds": round(
            sum(a.billed_duration_ms * a.invocation.memory_mb for a in billed)
            / 1024
            / 1000,
            6,
        ),
    }


def test_billing_totals_match_attempts(api, traffic):
    body = api.get("/api/billing/").json()
    expected = expected_from_attempts(
        list(Attempt.objects.select_related("invocation"))
    )
    for key, value in expected.items():
        assert body["totals"][key] == value, key
    assert body["totals"]["attempts"] == 2 * 3 + 4 + 1
    assert body["totals"]["unbilled_infrastructure_errors"] == 4
    assert body["prices_configured"] is False
    assert "estimated_cost" not in body["totals"]


def test_billing_by_function_matches_attempts(api, traffic):
    body = api.get("/api/billing/?group_by=function").json()
    groups = {row["function"]: row for row in body["groups"]}
    for name in ("small", "big"):
        attempts = list(
            Attempt.objects.filter(invocation__function__name=name).select_related(
                "invocation"
            )
        )
        for key, value in expected_from_attempts(attempts).items():
            assert groups[name][key] == value, (name, key)


def test_billing_by_region_and_day(api, traffic):
    regions = api.get("/api/billing/?group_by=region").json()["groups"]
    assert sorted(row["region"] for row in regions) == ["cn-hangzhou", "cn-shanghai"]
    days = api.get("/api/billing/?group_by=day").json()["groups"]
    assert sum(row["attempts"] for row in days) == Attempt.objects.count()


def test_billing_period_excludes_outside(api, traffic):
    future = (timezone.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    body = api.get(f"/api/billing/?since={future}").json()
    assert body["totals"]["attempts"] == 0
    assert body["totals"]["billed_gb_seconds"] == 0


def test_billing_estimate_only_with_prices(api, traffic, settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = "0.000016384"
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = "0.2"
    body = api.get("/api/billing/").json()
    assert body["prices_configured"] is True
    assert float(body["totals"]["estimated_cost"]) > 0


@pytest.mark.parametrize(
    "query", ["group_by=week", "since=yesterday", "until=2026-01-01T00:00:00"]
)
def test_billing_bad_query_is_400(api, query):
    response = api.get(f"/api/billing/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def read_csv(response):
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_invocation_csv_export_follows_filter(api, traffic):
    response = api.get("/api/invocations/export.csv?function=big")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = read_csv(response)
    assert len(rows) == 2
    assert {row["function"] for row in rows} == {"big"}
    assert {row["status"] for row in rows} == {"Failed"}


def test_invocation_csv_bad_filter_is_400(api):
    assert api.get("/api/invocations/export.csv?status=Done").status_code == 400


def test_billing_csv_export(api, traffic):
    rows = read_csv(api.get("/api/billing/export.csv?group_by=function"))
    assert sorted(row["function"] for row in rows) == ["big", "small"]
    total = sum(int(row["attempts"]) for row in rows)
    assert total == Attempt.objects.count()
