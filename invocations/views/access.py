"""Login for pages and for the htmx partials inside them."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


def login_required(view):
    """Send anonymous users to the login page, also from htmx requests.

    A plain redirect would make htmx swap the login form into the polled
    element, so htmx requests get an HX-Redirect for the whole page instead,
    with `next` set to the page the browser shows.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.htmx:
            next_url = request.htmx.current_url_abs_path or resolve_url("overview")
            return HttpResponseClientRedirect(redirect_to_login(next_url).url)
        return redirect_to_login(request.get_full_path())

    return wrapper
