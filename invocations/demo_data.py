"""A small varied data set that fills an empty database for screenshots.

DemoData.create() adds two users, four functions with their invocations and
attempts, quota alerts and audit events. DemoData.delete() removes exactly
those rows again.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from . import policy
from .demo_invocations import (
    DEMO_FUNCTIONS,
    THROTTLED_REGION,
    THROTTLED_REGION_QUOTA,
    Story,
    build_story,
    demo_stories,
)
from .models import (
    AlertKind,
    Attempt,
    AuditEvent,
    Function,
    Invocation,
    QuotaAlert,
    Region,
    Status,
    Trigger,
)
from .roles import ADMIN, OPERATOR

DEMO_ADMIN = "ada"
DEMO_OPERATOR = "olga"
# The demo endpoints point at `python -m demo.server` on its usual port.
# Nothing in this module invokes them.
DEMO_ENDPOINT = "http://127.0.0.1:9100/{region}/ok"


@dataclass
class DemoData:
    """The demo rows that create() adds, kept to delete them again."""

    admin: AbstractBaseUser
    users: list = field(default_factory=list)
    functions: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    audit_events: list = field(default_factory=list)

    @classmethod
    def create(cls) -> "DemoData":
        """Create the demo rows in one transaction.

        Callers check first that the database has no functions, invocations or
        users named DEMO_ADMIN or DEMO_OPERATOR, as the screenshots command's
        check_empty() does.
        """
        with transaction.atomic():
            return cls.build(timezone.now())

    @classmethod
    def build(cls, now: datetime) -> "DemoData":
        User = get_user_model()
        admin = User.objects.create_user(DEMO_ADMIN)
        admin.groups.add(Group.objects.get(name=ADMIN))
        operator = User.objects.create_user(DEMO_OPERATOR)
        operator.groups.add(Group.objects.get(name=OPERATOR))
        demo = cls(admin=admin, users=[admin, operator])

        demo.regions.append(
            Region.objects.create(name=THROTTLED_REGION, quota=THROTTLED_REGION_QUOTA)
        )
        functions = {}
        for name, region, memory_mb, timeout_s in DEMO_FUNCTIONS:
            functions[name] = Function.objects.create(
                name=name,
                region=region,
                endpoint_url=DEMO_ENDPOINT.format(region=region),
                memory_mb=memory_mb,
                timeout_s=timeout_s,
            )
        demo.functions = list(functions.values())

        for story in demo_stories():
            invocation, attempts = build_story(functions[story.function], story, now)
            invocation.save()
            Attempt.objects.bulk_create(attempts)
            demo.add_story_events(story, invocation, operator)

        demo.add_alerts(now, operator)
        demo.add_audit_event(
            admin,
            "function_change",
            "render-report",
            {"memory_mb": [2048, 3072]},
            now - timedelta(hours=6),
        )
        return demo

    def add_story_events(self, story: Story, invocation: Invocation, user) -> None:
        """Audit the operator actions that a story includes."""
        detail = {"function": invocation.function.name}
        if story.then in ("stop", "stopping"):
            status = Status.STOPPED if story.then == "stop" else Status.STOPPING
            at = invocation.finished_at or timezone.now() - timedelta(seconds=5)
            self.add_audit_event(
                user, "stop", invocation.request_id, {**detail, "status": status}, at
            )
        elif story.then == "manual_retry":
            manual = invocation.attempts.get(trigger=Trigger.MANUAL)
            self.add_audit_event(
                user,
                "manual_retry",
                invocation.request_id,
                {**detail, "status": Status.ENQUEUED},
                manual.started_at - timedelta(milliseconds=40),
            )

    def add_alerts(self, now: datetime, operator) -> None:
        self.alerts.append(
            QuotaAlert.objects.create(
                region=THROTTLED_REGION,
                kind=AlertKind.THROTTLING,
                quota=THROTTLED_REGION_QUOTA,
                opened_at=now - timedelta(minutes=9),
                last_seen_at=now - timedelta(seconds=20),
                peak_concurrency=THROTTLED_REGION_QUOTA,
                throttled_attempts=23,
            )
        )
        resolved = QuotaAlert.objects.create(
            region="cn-hangzhou",
            kind=AlertKind.NEAR_QUOTA,
            quota=policy.DEFAULT_REGION_QUOTA,
            opened_at=now - timedelta(hours=5),
            last_seen_at=now - timedelta(hours=4, minutes=40),
            resolved_at=now - timedelta(hours=4, minutes=39),
            acknowledged_at=now - timedelta(hours=4, minutes=50),
            acknowledged_by=operator,
            peak_concurrency=84,
        )
        self.alerts.append(resolved)
        self.add_audit_event(
            operator,
            "alert_acknowledge",
            str(resolved),
            {"alert_id": resolved.pk, "region": resolved.region, "kind": resolved.kind},
            resolved.acknowledged_at,
        )

    def add_audit_event(self, user, action, target, detail, created_at) -> None:
        self.audit_events.append(
            AuditEvent.objects.create(
                user=user,
                action=action,
                target=target,
                detail=detail,
                created_at=created_at,
            )
        )

    @transaction.atomic
    def delete(self) -> None:
        """Delete every demo row. Attempts are deleted with their invocations."""
        AuditEvent.objects.filter(pk__in=pks(self.audit_events)).delete()
        QuotaAlert.objects.filter(pk__in=pks(self.alerts)).delete()
        Invocation.objects.filter(function__in=pks(self.functions)).delete()
        Function.objects.filter(pk__in=pks(self.functions)).delete()
        Region.objects.filter(pk__in=pks(self.regions)).delete()
        get_user_model().objects.filter(pk__in=pks(self.users)).delete()


def pks(rows) -> list[int]:
    return [row.pk for row in rows]
