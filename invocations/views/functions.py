"""Functions: the list with per-function statistics, and one function's page."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render

from ..models import FINAL_STATUSES, AuditEvent, Function, Status
from .access import login_required
from .billing import add_cost_estimates

CHANGE_PERMISSION = "invocations.change_function"
RECENT_INVOCATIONS = 10


def function_formfield(field, **kwargs):
    # An endpoint typed without a scheme means https, as Django 6 will assume.
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class FunctionForm(forms.ModelForm):
    """The editable settings of a function; the model's validators apply."""

    class Meta:
        model = Function
        formfield_callback = function_formfield
        fields = [
            "region",
            "endpoint_url",
            "memory_mb",
            "timeout_s",
            "max_async_retry_attempts",
            "max_async_event_age_s",
        ]
        labels = {
            "endpoint_url": "Endpoint URL",
            "memory_mb": "Memory (MB)",
            "timeout_s": "Timeout (s)",
            "max_async_retry_attempts": "Max async retry attempts",
            "max_async_event_age_s": "Max async event age (s)",
        }
        help_texts = {
            "memory_mb": "64 to 32768 MB; billed GB-seconds use this size.",
            "timeout_s": "1 to 86400 s; an attempt without a reply by then "
            "fails with FunctionTimeout.",
            "max_async_retry_attempts": "Function-error retries after the first "
            "attempt of an async invocation, 0 to 8.",
            "max_async_event_age_s": "An async invocation still waiting after "
            "this many seconds becomes Expired, 1 to 604800.",
        }


def with_statistics(queryset):
    """Annotate functions with invocation counts and billed GB-seconds.

    Billed GB-seconds are memory_mb x billed_duration_ms summed in the
    database, so the page runs one query however many invocations exist.
    """
    billed_mb_ms = Sum(
        F("invocations__memory_mb") * F("invocations__billed_duration_ms"),
        output_field=BigIntegerField(),
    )
    return queryset.annotate(
        invocation_count=Count("invocations"),
        finished_count=Count(
            "invocations", filter=Q(invocations__status__in=FINAL_STATUSES)
        ),
        succeeded_count=Count(
            "invocations", filter=Q(invocations__status=Status.SUCCEEDED)
        ),
        retrying_count=Count(
            "invocations", filter=Q(invocations__status=Status.RETRYING)
        ),
        failed_count=Count("invocations", filter=Q(invocations__status=Status.FAILED)),
        billed_attempts=Coalesce(Sum("invocations__billed_attempts"), 0),
        unbilled_attempts=Coalesce(Sum("invocations__unbilled_attempts"), 0),
        billed_mb_ms=Coalesce(billed_mb_ms, 0, output_field=BigIntegerField()),
    )


def add_rates(function: Function) -> Function:
    finished = function.finished_count
    function.success_rate = function.succeeded_count / finished if finished else None
    function.billed_gb_seconds = function.billed_mb_ms / 1024 / 1000
    return function


@login_required
def function_list(request):
    functions = [add_rates(function) for function in with_statistics(Function.objects)]
    context = {
        "section": "functions",
        "functions": functions,
        "prices_configured": add_cost_estimates(functions),
    }
    return render(request, "invocations/function_list.html", context)


@login_required
def function_detail(request, name):
    function = get_object_or_404(with_statistics(Function.objects), name=name)
    add_rates(function)
    can_change = request.user.has_perm(CHANGE_PERMISSION)

    status = 200
    form = None
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied(
                "Changing a function requires the change_function permission "
                "(admin role)."
            )
        # A separate instance, because an invalid form still writes its
        # values onto the instance and the page shows the stored settings.
        form = FunctionForm(request.POST, instance=Function.objects.get(pk=function.pk))
        if form.is_valid():
            save_function(form, request.user)
            messages.success(request, f"Saved the settings of {function.name}.")
            return redirect("function-detail", name=function.name)
        status = 422
    elif can_change:
        form = FunctionForm(instance=Function.objects.get(pk=function.pk))

    recent = function.invocations.order_by("-created_at", "-pk")[:RECENT_INVOCATIONS]
    context = {
        "section": "functions",
        "function": function,
        "form": form,
        "recent_invocations": recent,
    }
    return render(request, "invocations/function_detail.html", context, status=status)


def save_function(form: FunctionForm, user) -> None:
    """Save a changed function and audit each changed field's old and new value."""
    with transaction.atomic():
        stored = Function.objects.select_for_update().get(pk=form.instance.pk)
        changes = {
            field: [getattr(stored, field), form.cleaned_data[field]]
            for field in form.changed_data
        }
        form.save()
        if changes:
            AuditEvent.objects.create(
                user=user,
                action="function_change",
                target=stored.name,
                detail=changes,
            )
