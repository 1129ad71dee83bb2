import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import policy as failure_table
from .validators import validate_endpoint_url, validate_function_name, validate_region


class Status(models.TextChoices):
    """FC's async task status names."""

    ENQUEUED = "Enqueued"
    RUNNING = "Running"
    RETRYING = "Retrying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXPIRED = "Expired"
    INVALID = "Invalid"


# Statuses in which an invocation waits for the dispatcher.
WAITING_STATUSES = (Status.ENQUEUED, Status.RETRYING)
# Statuses that can still change without an operator.
MOVING_STATUSES = (Status.ENQUEUED, Status.RUNNING, Status.RETRYING, Status.STOPPING)
FINAL_STATUSES = (
    Status.SUCCEEDED,
    Status.FAILED,
    Status.STOPPED,
    Status.EXPIRED,
    Status.INVALID,
)


class InvocationType(models.TextChoices):
    SYNC = failure_table.SYNC
    ASYNC = failure_table.ASYNC


class Trigger(models.TextChoices):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Function(models.Model):
    name = models.CharField(
        max_length=64, unique=True, validators=[validate_function_name]
    )
    region = models.CharField(max_length=64, validators=[validate_region])
    endpoint_url = models.URLField(max_length=2048, validators=[validate_endpoint_url])
    memory_mb = models.PositiveIntegerField(
        default=512, validators=[MinValueValidator(64), MaxValueValidator(32768)]
    )
    timeout_s = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(86400)]
    )
    max_async_retry_attempts = models.PositiveSmallIntegerField(
        default=failure_table.DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS,
        validators=[
            MinValueValidator(failure_table.MAX_ASYNC_RETRY_ATTEMPTS_RANGE[0]),
            MaxValueValidator(failure_table.MAX_ASYNC_RETRY_ATTEMPTS_RANGE[1]),
        ],
    )
    max_async_event_age_s = models.PositiveIntegerField(
        default=failure_table.DEFAULT_MAX_ASYNC_EVENT_AGE_S,
        validators=[
            MinValueValidator(failure_table.MAX_ASYNC_EVENT_AGE_S_RANGE[0]),
            MaxValueValidator(failure_table.MAX_ASYNC_EVENT_AGE_S_RANGE[1]),
        ],
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class FailurePolicy(models.Model):
    """The operator-configurable values of the failure table: a single row."""

    base_delay_s = models.FloatField(
        default=failure_table.DEFAULT_BASE_DELAY_S,
        validators=[MinValueValidator(0.001), MaxValueValidator(3600)],
    )
    infrastructure_window_s = models.FloatField(
        default=failure_table.DEFAULT_INFRASTRUCTURE_WINDOW_S,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 86400)],
    )
    default_region_quota = models.PositiveIntegerField(
        default=failure_table.DEFAULT_REGION_QUOTA, validators=[MinValueValidator(1)]
    )
    # Outcome names (invocations.policy.Outcome values) whose automatic retry is off.
    retry_disabled = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "failure policy"

    def __str__(self):
        return "Failure policy"

    @classmethod
    def current(cls) -> "FailurePolicy":
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class Region(models.Model):
    """A region's concurrency quota, where it differs from the default."""

    name = models.CharField(max_length=64, unique=True, validators=[validate_region])
    quota = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def new_request_id() -> str:
    return str(uuid.uuid4())


class Invocation(models.Model):
    request_id = models.CharField(max_length=64, unique=True, default=new_request_id)
    # NULL, not "", means no task id, so the partial unique constraint below
    # ignores invocations without one.
    task_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    function = models.ForeignKey(
        Function, on_delete=models.PROTECT, related_name="invocations"
    )
    region = models.CharField(max_length=64)
    invocation_type = models.CharField(max_length=5, choices=InvocationType.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    payload = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    # Scheduling. `attempts_made` is the claim counter: a worker may start
    # attempt n only while it is n - 1.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_trigger = models.CharField(
        max_length=9, choices=Trigger.choices, default=Trigger.AUTOMATIC
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts_made = models.PositiveIntegerField(default=0)
    function_error_retries_used = models.PositiveIntegerField(default=0)
    infrastructure_retries_used = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When an operator last asked for a retry, to merge re-sent requests.
    retry_requested_at = models.DateTimeField(null=True, blank=True)

    # The failure table values in force when the invocation was accepted.
    policy = models.JSONField(default=dict)
    memory_mb = models.PositiveIntegerField()
    # The function's endpoint and timeout when the invocation was accepted:
    # editing the function later changes new invocations only.
    endpoint_url = models.URLField(max_length=2048, default="")
    timeout_s = models.PositiveIntegerField(default=60)
    # The caller's Content-Type, forwarded to the function on every attempt.
    content_type = models.CharField(max_length=255, blank=True)

    # Outcome of the latest attempt and the running billing totals.
    outcome = models.CharField(max_length=32, blank=True)
    give_up_reason = models.CharField(max_length=32, blank=True)
    last_error_type = models.CharField(max_length=64, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    billed_attempts = models.PositiveIntegerField(default=0)
    unbilled_attempts = models.PositiveIntegerField(default=0)
    billed_duration_ms = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("operate_invocation", "Can retry and stop invocations")]
        constraints = [
            models.UniqueConstraint(
                fields=["function", "task_id"],
                condition=Q(task_id__isnull=False),
                name="unique_task_id_per_function",
            ),
        ]
        indexes = [
            # The dispatcher: waiting invocations by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["Enqueued", "Retrying"]),
                name="invocation_due",
            ),
            # History, newest first, unfiltered and by function or status.
            models.Index(fields=["-created_at", "-id"], name="invocation_history"),
            models.Index(
                fields=["function", "-created_at", "-id"], name="invocation_by_function"
            ),
            models.Index(
                fields=["status", "-created_at", "-id"], name="invocation_by_status"
            ),
            # Expiry of old async invocations that still wait.
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["Enqueued", "Retrying"]),
                name="invocation_expiry",
            ),
        ]

    def __str__(self):
        return self.request_id

    @property
    def policy_config(self) -> failure_table.PolicyConfig:
        return failure_table.PolicyConfig.from_dict(self.policy)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def billed_gb_seconds(self) -> float:
        return gb_seconds(self.memory_mb, self.billed_duration_ms)

    @property
    def remediation(self) -> str | None:
        if not self.outcome:
            return None
        return failure_table.remediation(
            failure_table.Outcome(self.outcome),
            region=self.region,
            quota=self.policy.get("region_quota", failure_table.DEFAULT_REGION_QUOTA),
            error_message=self.last_error_message,
        )

    @property
    def last_error_message(self) -> str:
        # all() reuses prefetched attempts, so a list of invocations makes
        # no query per row.
        attempts = list(self.attempts.all())
        if not attempts:
            return ""
        return max(attempts, key=lambda attempt: attempt.number).error_message


def gb_seconds(memory_mb: int, duration_ms: int) -> float:
    return round(memory_mb / 1024 * duration_ms / 1000, 6)


class Attempt(models.Model):
    invocation = models.ForeignKey(
        Invocation, on_delete=models.CASCADE, related_name="attempts"
    )
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=9, choices=Trigger.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    billed = models.BooleanField(default=False)
    billed_duration_ms = models.PositiveIntegerField(default=0)
    response_preview = models.TextField(blank=True)
    # A running attempt whose lease has expired belongs to a dead worker.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invocation", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["invocation", "number"], name="unique_attempt_number"
            ),
        ]
        indexes = [
            # Lease recovery: running attempts by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(ended_at__isnull=True),
                name="attempt_running_lease",
            ),
            # The history's error type filter.
            models.Index(
                fields=["error_type", "invocation"], name="attempt_error_type"
            ),
            # The alerts page's chart: attempts that ended in the last hour.
            models.Index(fields=["ended_at"], name="attempt_ended"),
            # Quota alerts: recent 429 responses.
            models.Index(
                fields=["ended_at"],
                condition=Q(status_code=429),
                name="attempt_throttled",
            ),
        ]

    def __str__(self):
        return f"{self.invocation_id} #{self.number}"

    @property
    def billed_gb_seconds(self) -> float:
        return gb_seconds(self.invocation.memory_mb, self.billed_duration_ms)


class AuditEvent(models.Model):
    """An operator action: manual retry, retry now, stop, settings change."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=32)
    target = models.CharField(max_length=200, blank=True)
    count = models.PositiveIntegerField(default=1)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.target}"


class AlertKind(models.TextChoices):
    THROTTLING = "throttling"
    NEAR_QUOTA = "near_quota"


class QuotaAlert(models.Model):
    """A region that throttled (429) or ran near its concurrency quota."""

    region = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    quota = models.PositiveIntegerField()
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    peak_concurrency = models.PositiveIntegerField(default=0)
    throttled_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert_per_region_and_kind",
            ),
        ]

    def __str__(self):
        return f"{self.kind} in {self.region}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def remediation(self) -> str:
        return failure_table.remediation(
            failure_table.Outcome.CONCURRENCY_LIMIT_EXCEEDED,
            region=self.region,
            quota=self.quota,
        )


class BulkAction(models.Model):
    """A retry or stop over many invocations, run by a worker in batches.

    The worker walks the selected invocations by ascending id and stores the
    last id it handled, so a restarted task neither skips nor repeats a row.
    """

    class Action(models.TextChoices):
        RETRY = "retry"
        STOP = "stop"

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        CANCELLED = "cancelled"
        DONE = "done"

    action = models.CharField(max_length=8, choices=Action.choices)
    # Either explicit request ids or the history filter's query parameters.
    request_ids = models.JSONField(default=list, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default="pending")
    # Invocations created after this are never included.
    snapshot_at = models.DateTimeField(default=timezone.now)
    last_invocation_id = models.BigIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Changes with every handled row; the dispatcher resumes a stalled action.
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} of {self.total} invocations"


class RegionLoad(models.Model):
    """A region's peak number of running attempts in one minute.

    The beat job records it on every tick, so the alerts page can chart
    concurrency against the quota, which the attempts table cannot give.
    """

    region = models.CharField(max_length=64)
    minute = models.DateTimeField()
    peak_running = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["region", "minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "minute"], name="one_load_row_per_region_minute"
            ),
        ]
        # The alerts page reads the last hour; pruning deletes old minutes.
        indexes = [models.Index(fields=["minute"], name="region_load_minute")]

    def __str__(self):
        return f"{self.region} {self.minute:%H:%M} {self.peak_running}"
