"""Bulk retry and stop, over chosen request ids or everything a filter matches.

A worker handles one batch per task run and enqueues the next, so other
work interleaves and a cancel takes effect between batches. Each row is
handled in one transaction with the action's cursor, so no row is skipped
or handled twice, even if the task dies midway.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import engine
from .filters import InvocationFilter
from .models import AuditEvent, BulkAction, Invocation

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_REQUEST_IDS = 10_000


class BulkRejected(Exception):
    """Invalid bulk action input; nothing was written."""

    def __init__(self, errors: dict):
        super().__init__(str(errors))
        self.errors = errors


def selection(bulk: BulkAction) -> QuerySet:
    """Return the invocations a bulk action covers, fixed at its snapshot time."""
    invocations = Invocation.objects.filter(created_at__lte=bulk.snapshot_at)
    if bulk.request_ids:
        return invocations.filter(request_id__in=bulk.request_ids)
    filterset = InvocationFilter(bulk.filters, queryset=invocations)
    if not filterset.is_valid():
        # django-filter drops invalid fields, which would widen the selection.
        logger.warning(
            "Bulk action id=%s has invalid filters; it selects nothing", bulk.pk
        )
        return invocations.none()
    return filterset.qs


def create_bulk_action(
    action: str,
    user,
    *,
    request_ids: list[str] | None = None,
    filters: dict | None = None,
) -> BulkAction:
    """Validate, count and store a bulk action, then hand it to a worker."""
    if action not in BulkAction.Action.values:
        raise BulkRejected({"action": f"Invalid action {action!r}: use retry or stop."})
    if bool(request_ids) == bool(filters):
        raise BulkRejected(
            {"request_ids": "Send either request_ids or filters, not both or neither."}
        )
    if request_ids is not None:
        if not isinstance(request_ids, list) or not all(
            isinstance(value, str) for value in request_ids
        ):
            raise BulkRejected({"request_ids": "Send a list of request id strings."})
        if len(request_ids) > MAX_REQUEST_IDS:
            raise BulkRejected(
                {
                    "request_ids": f"{len(request_ids)} request ids exceed the "
                    f"limit of {MAX_REQUEST_IDS}. Use filters instead."
                }
            )
    if filters:
        if not isinstance(filters, dict):
            raise BulkRejected({"filters": "Send the filters as an object."})
        unknown = sorted(set(filters) - set(InvocationFilter.base_filters))
        if unknown:
            known = ", ".join(InvocationFilter.base_filters)
            raise BulkRejected(
                {"filters": f"Unknown filter {', '.join(unknown)}: use {known}."}
            )
        check = InvocationFilter(filters, queryset=Invocation.objects.none())
        if not check.is_valid():
            raise BulkRejected({"filters": check.errors})

    bulk = BulkAction(
        action=action,
        request_ids=request_ids or [],
        filters=filters or {},
        created_by=user if user and user.is_authenticated else None,
    )
    bulk.total = selection(bulk).count()
    with transaction.atomic():
        bulk.save()
        AuditEvent.objects.create(
            user=bulk.created_by,
            action=f"bulk_{action}",
            target=f"bulk action {bulk.pk}",
            count=bulk.total,
            detail={"filters": bulk.filters, "request_ids": len(bulk.request_ids)},
        )
        hand_over(bulk.pk)
    logger.info(
        "Created bulk %s id=%s over %s invocations", action, bulk.pk, bulk.total
    )
    return bulk


def hand_over(bulk_id: int) -> None:
    from .tasks import run_bulk_action

    transaction.on_commit(lambda: run_bulk_action.delay(bulk_id), robust=True)


def run_batch(bulk_id: int) -> bool:
    """Handle up to BATCH_SIZE rows; return True while rows remain."""
    bulk = BulkAction.objects.filter(pk=bulk_id).first()
    if bulk is None or bulk.state in (
        BulkAction.State.CANCELLED,
        BulkAction.State.DONE,
    ):
        return False
    ids = list(
        selection(bulk)
        .filter(pk__gt=bulk.last_invocation_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH_SIZE]
    )
    for invocation_id in ids:
        if not handle_row(bulk_id, invocation_id):
            return False
    if len(ids) < BATCH_SIZE:
        finished = BulkAction.objects.filter(
            pk=bulk_id, state__in=[BulkAction.State.PENDING, BulkAction.State.RUNNING]
        ).update(state=BulkAction.State.DONE, finished_at=timezone.now())
        if finished:
            logger.info("Finished bulk action id=%s", bulk_id)
        return False
    return True


def handle_row(bulk_id: int, invocation_id: int) -> bool:
    """Apply the action to one invocation; return False if the action was cancelled."""
    with transaction.atomic():
        bulk = BulkAction.objects.select_for_update().get(pk=bulk_id)
        if bulk.state == BulkAction.State.CANCELLED:
            return False
        if invocation_id <= bulk.last_invocation_id:
            return True  # handled by an earlier run of this task
        invocation = Invocation.objects.select_related("function").get(pk=invocation_id)
        act = engine.request_retry if bulk.action == "retry" else engine.request_stop
        try:
            act(invocation, bulk.created_by, audited=False)
            bulk.succeeded += 1
        except engine.ActionConflict:
            bulk.skipped += 1
        bulk.processed += 1
        bulk.last_invocation_id = invocation_id
        bulk.state = BulkAction.State.RUNNING
        bulk.save()
    return True


def cancel(bulk: BulkAction, user) -> bool:
    """Cancel a pending or running bulk action; return False if it had ended."""
    changed = BulkAction.objects.filter(
        pk=bulk.pk, state__in=[BulkAction.State.PENDING, BulkAction.State.RUNNING]
    ).update(state=BulkAction.State.CANCELLED, finished_at=timezone.now())
    if changed:
        bulk.refresh_from_db()
        AuditEvent.objects.create(
            user=user if user and user.is_authenticated else None,
            action="bulk_cancel",
            target=f"bulk action {bulk.pk}",
            # The invocations handled before the cancel took effect.
            count=bulk.processed,
            detail={"total": bulk.total, "succeeded": bulk.succeeded},
        )
    return bool(changed)


def resume_stalled() -> int:
    """Hand over again the bulk actions whose worker message was lost."""
    stale = timezone.now() - timedelta(seconds=settings.FCDASH_REDISPATCH_AFTER_S * 2)
    ids = list(
        BulkAction.objects.filter(
            state__in=[BulkAction.State.PENDING, BulkAction.State.RUNNING],
            updated_at__lt=stale,
        ).values_list("pk", flat=True)
    )
    for bulk_id in ids:
        # Touch updated_at so the next tick does not send it again at once.
        BulkAction.objects.filter(pk=bulk_id).update(updated_at=timezone.now())
        with transaction.atomic():
            hand_over(bulk_id)
    return len(ids)
