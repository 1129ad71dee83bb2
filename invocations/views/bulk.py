"""Bulk retry and stop from the history page: confirmation, progress, cancel.

The pages only store the bulk action, and a worker applies it in batches.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from .. import bulk
from ..filters import InvocationFilter
from ..models import BulkAction, Invocation
from ..roles import OPERATE_PERMISSION
from .access import login_required
from .polling import render_polled

TEMPLATE = "invocations/bulk_action.html"

SELECTED = "selected"
MATCHING = "matching"
# A retry of up to this many selected invocations needs no confirmation step.
# A stop, and any action on all matching invocations, always needs one.
CONFIRM_RETRY_ABOVE = 10
# Query parameters of the history filter, in the order the form shows them.
FILTER_NAMES = list(InvocationFilter.base_filters)
MOVING_STATES = (BulkAction.State.PENDING, BulkAction.State.RUNNING)


def filter_values(data) -> dict[str, str]:
    """Return the non-empty history filter values of a query string or form."""
    values = {}
    for name in FILTER_NAMES:
        value = data.get(name, "").strip()
        if value:
            values[name] = value
    return values


def history_url(filters: dict[str, str]) -> str:
    url = reverse("invocation-list")
    return f"{url}?{urlencode(filters)}" if filters else url


def error_text(errors) -> str:
    """Join form or BulkRejected errors into one line, each with its field."""
    if isinstance(errors, dict):
        return "; ".join(
            f"{field}: {error_text(value)}" for field, value in errors.items()
        )
    if isinstance(errors, list | tuple):
        return " ".join(error_text(value) for value in errors)
    return str(errors)


def render_form_error(request, message: str, filters: dict, *, status=400):
    context = {
        "section": "invocations",
        "form_error": message,
        "history_url": history_url(filters),
    }
    return render(request, TEMPLATE, context, status=status)


@login_required
@require_POST
@permission_required(OPERATE_PERMISSION, raise_exception=True)
def bulk_create(request):
    """Create a bulk retry or stop, after a confirmation step where needed.

    The form sends `action` (retry or stop) and `scope`: "selected" with the
    checked `request_id` values, or "matching" with the history filter's
    fields. Confirmation pages post the same fields again with `confirmed`.
    """
    action = request.POST.get("action", "")
    scope = request.POST.get("scope", "")
    filters = filter_values(request.POST)
    if action not in BulkAction.Action.values:
        return render_form_error(
            request, f"Invalid action {action!r}: use retry or stop.", filters
        )

    request_ids = []
    if scope == SELECTED:
        request_ids = [value for value in request.POST.getlist("request_id") if value]
        if not request_ids:
            return render_form_error(
                request,
                f"No invocation selected: tick the rows to {action}, "
                f"or use {action.title()} all matching.",
                filters,
            )
        if len(request_ids) > bulk.MAX_REQUEST_IDS:
            return render_form_error(
                request,
                f"{len(request_ids)} selected invocations exceed the limit of "
                f"{bulk.MAX_REQUEST_IDS}. Use {action.title()} all matching instead.",
                filters,
            )
        # Bounded by the list of ids, so this count never scans the table.
        count = Invocation.objects.filter(request_id__in=request_ids).count()
    elif scope == MATCHING:
        if not filters:
            return render_form_error(
                request,
                f"No filter set: set at least one filter before you {action} "
                "all matching invocations.",
                filters,
            )
        filterset = InvocationFilter(filters, queryset=Invocation.objects.all())
        if not filterset.is_valid():
            return render_form_error(
                request, f"Invalid filters: {error_text(filterset.errors)}", filters
            )
        count = filterset.qs.count()
    else:
        return render_form_error(
            request, f"Invalid scope {scope!r}: use selected or matching.", filters
        )

    confirm = action == BulkAction.Action.STOP or scope == MATCHING
    confirm = confirm or count > CONFIRM_RETRY_ABOVE
    if count == 0 or (confirm and request.POST.get("confirmed") != "yes"):
        context = {
            "section": "invocations",
            "confirmation": True,
            "action": action,
            "scope": scope,
            "count": count,
            "request_ids": request_ids,
            "filters": filters,
            "history_url": history_url(filters),
        }
        return render(request, TEMPLATE, context)

    try:
        bulk_action = bulk.create_bulk_action(
            action,
            request.user,
            request_ids=request_ids if scope == SELECTED else None,
            filters=filters if scope == MATCHING else None,
        )
    except bulk.BulkRejected as rejected:
        return render_form_error(
            request, f"Invalid bulk {action}: {error_text(rejected.errors)}", filters
        )
    messages.success(
        request,
        f"Created a bulk {action} of {bulk_action.total} invocations. "
        "A worker applies it in batches.",
    )
    return redirect("bulk-action", bulk_id=bulk_action.pk)


def progress_context(request, bulk_action: BulkAction) -> dict:
    moving = bulk_action.state in MOVING_STATES
    return {
        "bulk_action": bulk_action,
        "moving": moving,
        "can_cancel": moving and request.user.has_perm(OPERATE_PERMISSION),
        "history_url": history_url(bulk_action.filters),
    }


def get_bulk_action(bulk_id: int) -> BulkAction:
    return get_object_or_404(
        BulkAction.objects.select_related("created_by"), pk=bulk_id
    )


@login_required
def bulk_action_detail(request, bulk_id):
    bulk_action = get_bulk_action(bulk_id)
    context = {"section": "invocations", **progress_context(request, bulk_action)}
    return render(request, TEMPLATE, context)


@login_required
def bulk_action_progress(request, bulk_id):
    """Render the progress partial, with status 286 once the action has ended."""
    bulk_action = get_bulk_action(bulk_id)
    context = progress_context(request, bulk_action)
    return render_polled(
        request, f"{TEMPLATE}#progress", context, moving=context["moving"]
    )


@login_required
@require_POST
@permission_required(OPERATE_PERMISSION, raise_exception=True)
def bulk_action_cancel(request, bulk_id):
    bulk_action = get_bulk_action(bulk_id)
    if bulk.cancel(bulk_action, request.user):
        messages.success(
            request,
            f"Cancelled the bulk {bulk_action.action}: the worker handles no "
            "further invocation, and those already handled keep their new state.",
        )
    else:
        messages.info(
            request, f"The bulk action had already ended ({bulk_action.state})."
        )
    return redirect("bulk-action", bulk_id=bulk_action.pk)
