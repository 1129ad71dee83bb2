"""Bulk retry and stop: batches, skips, cancel, snapshot, permissions."""

import pytest
from django.utils import timezone

from invocations import bulk
from invocations.models import AuditEvent, BulkAction, Function, Invocation

from .conftest import token_client

pytestmark = pytest.mark.django_db


def add_invocations(count, status, name="bulk-fn"):
    function, _ = Function.objects.get_or_create(
        name=name,
        defaults={"region": "cn-hangzhou", "endpoint_url": "http://127.0.0.1:9/x"},
    )
    Invocation.objects.bulk_create(
        Invocation(
            function=function,
            region="cn-hangzhou",
            invocation_type="Async",
            status=status,
            payload=b"{}",
            memory_mb=512,
            next_attempt_at=timezone.now() if status == "Retrying" else None,
            attempts_made=1,
        )
        for _ in range(count)
    )


def run_to_end(bulk_id):
    runs = 0
    while bulk.run_batch(bulk_id):
        runs += 1
    return runs + 1


def test_bulk_stop_by_filter(operator):
    add_invocations(450, "Retrying")
    add_invocations(30, "Succeeded")
    action = bulk.create_bulk_action("stop", operator, filters={"status": "Retrying"})
    assert action.total == 450
    assert run_to_end(action.pk) == 3
    action.refresh_from_db()
    assert action.state == "done"
    assert action.processed == 450
    assert action.succeeded == 450
    assert action.skipped == 0
    assert Invocation.objects.filter(status="Stopped").count() == 450
    assert Invocation.objects.filter(status="Succeeded").count() == 30
    event = AuditEvent.objects.get(action="bulk_stop")
    assert event.count == 450
    assert event.user == operator


def test_bulk_counts_skipped_rows(operator):
    add_invocations(5, "Retrying")
    add_invocations(3, "Succeeded")
    action = bulk.create_bulk_action("stop", operator, filters={"function": "bulk-fn"})
    run_to_end(action.pk)
    action.refresh_from_db()
    assert action.total == 8
    assert action.succeeded == 5
    assert action.skipped == 3


def test_bulk_retry_by_request_ids(operator):
    add_invocations(4, "Failed")
    chosen = list(Invocation.objects.values_list("request_id", flat=True)[:2])
    action = bulk.create_bulk_action("retry", operator, request_ids=chosen)
    run_to_end(action.pk)
    retried = Invocation.objects.filter(status="Enqueued")
    assert sorted(retried.values_list("request_id", flat=True)) == sorted(chosen)
    assert set(retried.values_list("next_attempt_trigger", flat=True)) == {"manual"}


def test_bulk_cancel_between_batches(operator):
    add_invocations(450, "Retrying")
    action = bulk.create_bulk_action("stop", operator, filters={"status": "Retrying"})
    assert bulk.run_batch(action.pk) is True
    assert bulk.cancel(action, operator) is True
    assert bulk.run_batch(action.pk) is False
    action.refresh_from_db()
    assert action.state == "cancelled"
    assert action.processed == bulk.BATCH_SIZE
    assert Invocation.objects.filter(status="Stopped").count() == bulk.BATCH_SIZE


def test_bulk_rerun_repeats_no_row(operator):
    add_invocations(250, "Retrying")
    action = bulk.create_bulk_action("stop", operator, filters={"status": "Retrying"})
    bulk.run_batch(action.pk)
    # A second task for the same action, as after a redelivered message.
    run_to_end(action.pk)
    run_to_end(action.pk)
    action.refresh_from_db()
    assert action.processed == 250
    assert action.succeeded == 250


def test_bulk_ignores_newer_invocations(operator):
    add_invocations(3, "Retrying")
    action = bulk.create_bulk_action("stop", operator, filters={"status": "Retrying"})
    add_invocations(2, "Retrying")
    run_to_end(action.pk)
    assert Invocation.objects.filter(status="Retrying").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete", "filters": {"status": "Failed"}}, "action"),
        ({"action": "stop"}, "request_ids"),
        (
            {"action": "stop", "filters": {"status": "Failed"}, "request_ids": ["x"]},
            "request_ids",
        ),
        ({"action": "stop", "filters": {"status": "Done"}}, "filters"),
        ({"action": "stop", "request_ids": "abc"}, "request_ids"),
        (
            {"action": "stop", "filters": {"fucntion": "x", "status": "Retrying"}},
            "filters",
        ),
        ({"action": "retry", "filters": {"bogus": "x"}}, "filters"),
    ],
)
def test_bulk_api_rejects_bad_input(operator, body, field):
    response = token_client(operator).post("/api/invocations/bulk", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not BulkAction.objects.exists()


def test_bulk_api_needs_operator(viewer):
    body = {"action": "stop", "filters": {"status": "Retrying"}}
    response = token_client(viewer).post("/api/invocations/bulk", body, format="json")
    assert response.status_code == 403
    assert not BulkAction.objects.exists()


def test_bulk_api_create_and_cancel(operator):
    add_invocations(3, "Retrying")
    client = token_client(operator)
    body = {"action": "stop", "filters": {"status": "Retrying"}}
    created = client.post("/api/invocations/bulk", body, format="json")
    assert created.status_code == 202
    assert created.json()["total"] == 3
    bulk_id = created.json()["id"]
    assert client.get(f"/api/bulk-actions/{bulk_id}/").json()["state"] == "pending"
    cancelled = client.post(f"/api/bulk-actions/{bulk_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = client.post(f"/api/bulk-actions/{bulk_id}/cancel")
    assert again.status_code == 409
