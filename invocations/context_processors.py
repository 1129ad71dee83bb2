from .models import QuotaAlert


def open_alerts(request):
    """Add the count of open quota alerts to every page for signed-in users."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "open_alert_count": QuotaAlert.objects.filter(resolved_at__isnull=True).count()
    }
