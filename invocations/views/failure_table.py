"""The failure table page: the rows of the table and the values in force."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render

from .. import policy
from ..models import AuditEvent, FailurePolicy, Region
from .access import login_required
from .display import short_duration

CHANGE_PERMISSION = "invocations.change_failurepolicy"
DELAYS_SHOWN = 6

RETRYABLE_OUTCOMES = [
    (str(row.outcome), row.outcome.replace("_", " "))
    for row in policy.ROWS
    if row.retry is not policy.RetryKind.NONE
]


class FailurePolicyForm(forms.ModelForm):
    retry_disabled = forms.MultipleChoiceField(
        choices=RETRYABLE_OUTCOMES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Automatic retry switched off for",
    )

    class Meta:
        model = FailurePolicy
        fields = [
            "base_delay_s",
            "infrastructure_window_s",
            "default_region_quota",
            "retry_disabled",
        ]
        widgets = {"default_region_quota": forms.NumberInput(attrs={"min": 1})}
        labels = {
            "base_delay_s": "Base delay (s)",
            "infrastructure_window_s": "Infrastructure retry window (s)",
            "default_region_quota": "Default region quota (instances)",
        }
        help_texts = {
            "base_delay_s": "Wait before the first retry; each later retry of "
            "the same kind waits twice as long. 0.001 to 3600 s.",
            "infrastructure_window_s": "Infrastructure retries start within this "
            "many seconds of the end of the first failed attempt. 1 to 604800 s.",
            "default_region_quota": "Concurrent instances per region, for "
            "regions without a quota of their own.",
        }

    def clean_retry_disabled(self):
        return sorted(self.cleaned_data["retry_disabled"])


def table_rows(config: policy.PolicyConfig) -> list[dict]:
    """Describe each row of the failure table with the values in force."""
    rows = []
    for row in policy.ROWS:
        switched_off = row.outcome in config.retry_disabled
        rows.append(
            {
                "row": row,
                "label": row.outcome.replace("_", " "),
                "error_type": str(row.error_type) if row.error_type else "",
                "switched_off": switched_off,
                "retry": row.retry if not switched_off else policy.RetryKind.NONE,
            }
        )
    return rows


def config_in_force(failure_policy: FailurePolicy) -> policy.PolicyConfig:
    return policy.PolicyConfig(
        base_delay_s=failure_policy.base_delay_s,
        infrastructure_window_s=failure_policy.infrastructure_window_s,
        region_quota=failure_policy.default_region_quota,
        retry_disabled=frozenset(
            policy.Outcome(name) for name in failure_policy.retry_disabled
        ),
    )


@login_required
def failure_table(request):
    failure_policy = FailurePolicy.current()
    can_change = request.user.has_perm(CHANGE_PERMISSION)
    status = 200
    form = None
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied(
                "Changing the failure table requires the change_failurepolicy "
                "permission (admin role)."
            )
        form = FailurePolicyForm(request.POST, instance=FailurePolicy.current())
        if form.is_valid():
            save_policy(form, request.user)
            messages.success(
                request,
                "Saved the failure table. Invocations accepted from now on use it.",
            )
            return redirect("policy")
        status = 422
    elif can_change:
        form = FailurePolicyForm(instance=failure_policy)

    config = config_in_force(failure_policy)
    delays = [
        short_duration(policy.backoff_delay(number, config.base_delay_s))
        for number in range(1, DELAYS_SHOWN + 1)
    ]
    context = {
        "section": "policy",
        "failure_policy": failure_policy,
        "rows": table_rows(config),
        "delays": delays,
        "max_infrastructure_retries": policy.max_infrastructure_retries(config),
        "default_max_async_retry_attempts": policy.DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS,
        "regions": Region.objects.all(),
        "form": form,
    }
    return render(request, "invocations/failure_table.html", context, status=status)


def save_policy(form: FailurePolicyForm, user) -> None:
    """Save the failure table values and audit each change with old and new."""
    with transaction.atomic():
        stored = FailurePolicy.objects.select_for_update().get(pk=form.instance.pk)
        changes = {}
        for field in form.fields:
            old = getattr(stored, field)
            if field == "retry_disabled":
                old = sorted(old)
            new = form.cleaned_data[field]
            if old != new:
                changes[field] = [old, new]
        form.save()
        if changes:
            AuditEvent.objects.create(
                user=user,
                action="policy_change",
                target="failure table",
                detail=changes,
            )
