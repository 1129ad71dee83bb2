"""The audit log of operator actions, newest first."""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from ..models import AuditEvent
from .access import login_required
from .paging import InvalidCursor, paginate

VIEW_PERMISSION = "invocations.view_auditevent"
# Actions whose target is an invocation's request id or a function's name.
INVOCATION_ACTIONS = {"manual_retry", "retry_now", "stop"}
FUNCTION_ACTIONS = {"function_change"}


def format_value(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def detail_lines(event: AuditEvent) -> list[str]:
    """Format an event's detail as "key: value" lines.

    Settings changes store each field as [old, new], shown as "old → new".
    """
    lines = []
    for key, value in event.detail.items():
        is_change = isinstance(value, list) and len(value) == 2
        if event.action.endswith("_change") and is_change:
            old, new = value
            lines.append(f"{key}: {format_value(old)} → {format_value(new)}")
        else:
            lines.append(f"{key}: {format_value(value)}")
    return lines


@login_required
@permission_required(VIEW_PERMISSION, raise_exception=True)
def audit_log(request):
    events = AuditEvent.objects.select_related("user")
    cursor_error = None
    try:
        page = paginate(
            events, older=request.GET.get("older"), newer=request.GET.get("newer")
        )
    except InvalidCursor as error:
        cursor_error = f"{error} Showing the newest events instead."
        page = paginate(events)
    for event in page.rows:
        event.detail_lines = detail_lines(event)
    context = {
        "section": "audit",
        "page": page,
        "cursor_error": cursor_error,
        "invocation_actions": INVOCATION_ACTIONS,
        "function_actions": FUNCTION_ACTIONS,
    }
    return render(request, "invocations/audit_log.html", context)
