"""The invocation history: filters in the URL, keyset pages, live rows."""

from django import forms
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from .. import policy
from ..filters import InvocationFilter
from ..models import MOVING_STATUSES, Function, Invocation, InvocationType, Status
from ..roles import OPERATE_PERMISSION
from .access import login_required
from .bulk import filter_values
from .paging import PAGE_SIZE, InvalidCursor, Page, paginate
from .polling import render_polled

TEMPLATE = "invocations/invocation_list.html"

BILLED_CHOICES = [("", "Any"), ("true", "Yes"), ("false", "No")]


def history_filter(data) -> InvocationFilter:
    """Build the history's InvocationFilter with select boxes for known values."""
    filterset = InvocationFilter(data, queryset=Invocation.objects.all())
    fields = filterset.form.fields

    labels = {
        "function": "Function",
        "invocation_type": "Type",
        "since": "Created since",
        "until": "Created before",
    }
    for name, label in labels.items():
        fields[name].label = label
    # django-filter's ChoiceField puts its empty_label in front of the choices.
    # Setting the choices again hands the new label to the select widget too.
    select_choices = {
        "status": Status.choices,
        "invocation_type": InvocationType.choices,
    }
    for name, choices in select_choices.items():
        fields[name].empty_label = "Any"
        fields[name].choices = choices

    function_names = Function.objects.values_list("name", flat=True)
    fields["function"].widget = forms.Select(
        choices=[("", "Any"), *((name, name) for name in function_names)]
    )
    regions = Function.objects.order_by("region").values_list("region", flat=True)
    fields["region"].widget = forms.Select(
        choices=[("", "Any"), *((region, region) for region in regions.distinct())]
    )
    fields["error_type"].widget = forms.Select(
        choices=[("", "Any"), *((str(kind), str(kind)) for kind in policy.ErrorType)]
    )
    fields["billed"].widget = forms.Select(choices=BILLED_CHOICES)
    for name in ("since", "until"):
        fields[name].widget = forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": "1"}
        )
        fields[name].help_text = "UTC"
    fields["min_attempts"].widget = forms.NumberInput(attrs={"min": "0"})
    fields["q"].widget = forms.TextInput(attrs={"type": "search"})
    return filterset


def rows_context(request, invocations: list[Invocation]) -> dict:
    """Build the context of the rows partial, shared by the page and the poll."""
    polling = any(invocation.status in MOVING_STATUSES for invocation in invocations)
    ids = urlencode([("id", invocation.pk) for invocation in invocations])
    return {
        "invocations": invocations,
        "polling": polling,
        "rows_url": f"{reverse('invocation-rows')}?{ids}",
        # Operators get a checkbox per row for bulk retry and stop.
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
    }


def bulk_context(filterset: InvocationFilter) -> dict:
    """Build the context of the bulk action forms and the CSV export link.

    The forms carry the current filter as hidden fields. The page never
    counts the matching invocations: the confirmation step does.
    """
    filters = filter_values(filterset.data) if filterset.is_valid() else {}
    export_url = reverse("api:invocation-export")
    if filters:
        export_url += f"?{urlencode(filters)}"
    return {
        "filter_values": filters,
        "export_url": export_url,
        "filters_valid": filterset.is_valid(),
    }


@login_required
def invocation_list(request):
    filterset = history_filter(request.GET)
    cursor_error = None
    page = Page(
        rows=[], has_newer=False, newer_cursor=None, older_cursor=None, is_first=True
    )
    if filterset.is_valid():
        queryset = filterset.qs.select_related("function")
        try:
            page = paginate(
                queryset,
                older=request.GET.get("older"),
                newer=request.GET.get("newer"),
            )
        except InvalidCursor as error:
            cursor_error = f"{error} Showing the newest invocations instead."
            page = paginate(queryset)

    context = {
        "section": "invocations",
        "filter": filterset,
        "page": page,
        "cursor_error": cursor_error,
        **rows_context(request, page.rows),
        **bulk_context(filterset),
    }
    return render(request, TEMPLATE, context)


@login_required
def invocation_rows(request):
    """Render the history rows with the given ids, with status 286 once all are final.

    The page polls this with the ids it shows, so the same rows stay on the
    page while their status changes.
    """
    ids = request.GET.getlist("id")
    # 18 digits stay below the largest 64-bit primary key.
    valid = all(
        value.isascii() and value.isdigit() and len(value) <= 18 for value in ids
    )
    if len(ids) > PAGE_SIZE or not valid:
        return HttpResponseBadRequest(
            f"Invalid id list: send up to {PAGE_SIZE} numeric id parameters."
        )
    invocations = list(
        Invocation.objects.filter(pk__in=ids)
        .select_related("function")
        .order_by("-created_at", "-pk")
    )
    context = rows_context(request, invocations)
    return render_polled(
        request, f"{TEMPLATE}#rows", context, moving=context["polling"]
    )
