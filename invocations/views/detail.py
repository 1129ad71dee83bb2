"""One invocation: the detail page, its live partial, and retry and stop."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import engine
from ..models import MOVING_STATUSES, Invocation, Status
from ..roles import OPERATE_PERMISSION
from .access import login_required
from .billing import invocation_cost_estimate
from .polling import render_polled
from .timeline import attempt_rows, budgets, build_timeline

TEMPLATE = "invocations/invocation_detail.html"

# Largest part of a payload or response shown on the page, in characters.
PREVIEW_CHARS = 4096

RETRY_STATUSES = {
    Status.SUCCEEDED,
    Status.FAILED,
    Status.STOPPED,
    Status.EXPIRED,
}
STOP_STATUSES = {Status.ENQUEUED, Status.RETRYING, Status.RUNNING}

ACTION_NOTICES = {
    "manual_retry": "Manual retry requested: a worker runs the new attempt shortly.",
    "retry_now": "Retry now requested: a worker runs the scheduled attempt at once.",
}


def get_invocation(request_id: str) -> Invocation:
    return get_object_or_404(
        Invocation.objects.select_related("function"), request_id=request_id
    )


def preview(data: bytes | str) -> dict:
    """Cut a payload or response to PREVIEW_CHARS for display."""
    if isinstance(data, bytes | memoryview):
        data = bytes(data)
        size = len(data)
        text = data[:PREVIEW_CHARS].decode("utf-8", errors="replace")
        unit = "bytes"
    else:
        size = len(data)
        text = data[:PREVIEW_CHARS]
        unit = "characters"
    return {
        "text": text,
        "size": size,
        "unit": unit,
        "truncated": size > PREVIEW_CHARS,
        "limit": PREVIEW_CHARS,
    }


def live_context(request, invocation: Invocation) -> dict:
    """Build the context of the live partial, shared by the page and the poll."""
    now = timezone.now()
    attempts = list(invocation.attempts.order_by("number"))
    latest_response = next(
        (attempt for attempt in reversed(attempts) if attempt.response_preview),
        None,
    )
    can_operate = request.user.has_perm(OPERATE_PERMISSION)
    return {
        "invocation": invocation,
        "moving": invocation.status in MOVING_STATUSES,
        "now": now,
        "attempt_rows": attempt_rows(attempts),
        "latest_attempt": attempts[-1] if attempts else None,
        "timeline": build_timeline(attempts, invocation.next_attempt_at, now),
        "budgets": budgets(invocation, now),
        # The model property runs a query on each access, so read it once.
        "remediation": invocation.remediation if invocation.outcome else None,
        "response_preview": (
            preview(latest_response.response_preview) if latest_response else None
        ),
        "latest_response": latest_response,
        "estimated_cost": invocation_cost_estimate(invocation),
        "can_retry": can_operate and invocation.status in RETRY_STATUSES,
        "can_retry_now": can_operate and invocation.status == Status.RETRYING,
        "can_stop": can_operate and invocation.status in STOP_STATUSES,
    }


def render_detail(request, invocation: Invocation, *, error=None, status=200):
    context = {
        "section": "invocations",
        "payload_preview": preview(invocation.payload),
        "error": error,
        **live_context(request, invocation),
    }
    return render(request, TEMPLATE, context, status=status)


@login_required
def invocation_detail(request, request_id):
    return render_detail(request, get_invocation(request_id))


@login_required
def invocation_live(request, request_id):
    """Render the live partial, with status 286 once the invocation is final."""
    invocation = get_invocation(request_id)
    context = live_context(request, invocation)
    return render_polled(request, f"{TEMPLATE}#live", context, moving=context["moving"])


def action_response(request, invocation: Invocation, *, notice=None, error=None):
    """Return the response to a retry or stop request.

    htmx requests get the live partial and other requests a redirect to the
    detail page. A conflict returns 409 with the engine's message either way.
    """
    invocation.refresh_from_db()
    status = 409 if error else 200
    if request.htmx:
        context = {
            "notice": notice,
            "error": error,
            **live_context(request, invocation),
        }
        return render(request, f"{TEMPLATE}#live", context, status=status)
    if error:
        return render_detail(request, invocation, error=error, status=status)
    messages.success(request, notice)
    return redirect("invocation-detail", request_id=invocation.request_id)


@login_required
@require_POST
@permission_required(OPERATE_PERMISSION, raise_exception=True)
def invocation_retry(request, request_id):
    invocation = get_invocation(request_id)
    try:
        action = engine.request_retry(invocation, request.user)
    except engine.AlreadyRequested as repeat:
        return action_response(request, invocation, notice=str(repeat))
    except engine.ActionConflict as conflict:
        return action_response(request, invocation, error=str(conflict))
    return action_response(request, invocation, notice=ACTION_NOTICES[action])


@login_required
@require_POST
@permission_required(OPERATE_PERMISSION, raise_exception=True)
def invocation_stop(request, request_id):
    invocation = get_invocation(request_id)
    try:
        new_status = engine.request_stop(invocation, request.user)
    except engine.AlreadyRequested as repeat:
        return action_response(request, invocation, notice=str(repeat))
    except engine.ActionConflict as conflict:
        return action_response(request, invocation, error=str(conflict))
    if new_status == Status.STOPPING:
        notice = "Stop requested: the running attempt finishes, then retries stop."
    else:
        notice = f"Retries stopped: the invocation is {new_status}."
    return action_response(request, invocation, notice=notice)
