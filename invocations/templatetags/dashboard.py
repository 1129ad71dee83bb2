"""Template tags and filters of the fcdash pages."""

from datetime import datetime

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from ..views import display

register = template.Library()

PLACEHOLDERS = ("region", "quota", "error_message")


@register.simple_tag
def status_badge(status: str) -> str:
    """Render an invocation status as a coloured badge."""
    return format_html(
        '<span class="badge status-{}">{}</span>', status.lower(), status
    )


@register.simple_tag
def timestamp(value: datetime | None, precise: bool = False) -> str:
    """Render a UTC time in a <time> element, with milliseconds if `precise`."""
    if value is None:
        return mark_safe('<span class="muted">-</span>')
    text = f"{value:%Y-%m-%d %H:%M:%S}"
    if precise:
        text += f".{value.microsecond // 1000:03d}"
    return format_html('<time datetime="{}">{}</time>', iso_ms(value), text)


@register.filter
def iso_ms(value: datetime | None) -> str:
    """Format a time as ISO 8601 with milliseconds, for <time> and JavaScript."""
    if value is None:
        return ""
    return value.isoformat(timespec="milliseconds")


@register.filter
def hours_minutes(seconds: float | None) -> str:
    return display.hours_minutes(seconds or 0)


@register.filter
def seconds_ms(milliseconds: float | None) -> str:
    if milliseconds is None:
        return ""
    return display.seconds_with_ms(milliseconds)


@register.filter
def percent(ratio: float | None) -> str:
    """Format a ratio from 0 to 1 as a percentage with one decimal, or "-"."""
    if ratio is None:
        return "-"
    return f"{ratio * 100:.1f}%"


@register.filter
def outcome_group(outcome: str) -> str:
    return display.outcome_group(outcome)


@register.filter
def outcome_label(outcome: str) -> str:
    return display.outcome_label(outcome)


@register.filter
def remediation_template(text: str) -> str:
    """Escape a failure table remediation text and mark its placeholders."""
    html = escape(text)
    for name in PLACEHOLDERS:
        html = html.replace(f"{{{name}}}", f"<var>{name}</var>")
    return mark_safe(html)
