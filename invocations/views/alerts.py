"""Quota alerts: the list and the acknowledge action."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ..models import AuditEvent, QuotaAlert
from .access import login_required

TEMPLATE = "invocations/alert_list.html"
ACKNOWLEDGE_PERMISSION = "invocations.change_quotaalert"
# Resolved alerts shown below the open ones, newest first.
RESOLVED_SHOWN = 100


@login_required
def alert_list(request):
    open_alerts = QuotaAlert.objects.filter(resolved_at__isnull=True).select_related(
        "acknowledged_by"
    )
    resolved_alerts = QuotaAlert.objects.filter(
        resolved_at__isnull=False
    ).select_related("acknowledged_by")[:RESOLVED_SHOWN]
    context = {
        "section": "alerts",
        "open_alerts": open_alerts,
        "resolved_alerts": resolved_alerts,
        "resolved_shown": RESOLVED_SHOWN,
        "can_acknowledge": request.user.has_perm(ACKNOWLEDGE_PERMISSION),
    }
    return render(request, TEMPLATE, context)


@login_required
@require_POST
@permission_required(ACKNOWLEDGE_PERMISSION, raise_exception=True)
def alert_acknowledge(request, alert_id):
    alert = get_object_or_404(QuotaAlert, pk=alert_id)
    # A conditional update, so a second click or a second operator changes
    # nothing and writes no second audit event.
    acknowledged = QuotaAlert.objects.filter(
        pk=alert.pk, acknowledged_at__isnull=True
    ).update(acknowledged_at=timezone.now(), acknowledged_by=request.user)
    if acknowledged:
        AuditEvent.objects.create(
            user=request.user,
            action="alert_acknowledge",
            target=str(alert),
            detail={"alert_id": alert.pk, "region": alert.region, "kind": alert.kind},
        )

    if request.htmx:
        alert.refresh_from_db()
        context = {"alert": alert, "can_acknowledge": True}
        return render(request, f"{TEMPLATE}#alert-row", context)
    if acknowledged:
        messages.success(request, f"Acknowledged the {alert} alert.")
    else:
        messages.info(request, f"The {alert} alert was already acknowledged.")
    return redirect("alert-list")
