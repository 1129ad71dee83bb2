"""Responses for partials that htmx polls."""

from django.shortcuts import render
from django_htmx.http import HTMX_STOP_POLLING


def render_polled(request, template_name: str, context: dict, *, moving: bool):
    """Render a polled partial: 200 while it can change, else 286.

    htmx swaps a 286 response like a 200 one and then cancels the element's
    "every" trigger, so the last state stays on the page.
    """
    if moving:
        return render(request, template_name, context)
    response = render(request, template_name, context, status=HTMX_STOP_POLLING)
    response.reason_phrase = "Stop Polling"
    return response
