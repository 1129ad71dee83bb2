import random
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from invocations import policy
from invocations.models import Attempt, Function, Invocation, Status

BATCH_SIZE = 5000
REGIONS = ["cn-hangzhou", "cn-shanghai", "cn-beijing", "ap-southeast-1"]
# (status, attempt outcomes) with their share of the seeded invocations.
SHAPES = [
    (0.70, Status.SUCCEEDED, [200]),
    (0.10, Status.SUCCEEDED, [503, 200]),
    (0.05, Status.SUCCEEDED, [429, 429, 200]),
    (0.08, Status.FAILED, ["handled", "handled", "handled", "handled"]),
    (0.04, Status.FAILED, [500]),
    (0.02, Status.RETRYING, [503, 503]),
    (0.01, Status.STOPPED, [429]),
]


def answer(code: int | str) -> tuple[int, str | None]:
    """Return the HTTP status and X-Fc-Error-Type of a seeded response."""
    if code == "handled":
        return 200, "HandledInvocationError"
    return code, None


class Command(BaseCommand):
    help = (
        "Insert COUNT made-up invocations with their attempts, spread over the "
        "last DAYS days, for benchmarks and screenshots. Never run it on a "
        "production database."
    )

    def add_arguments(self, parser):
        parser.add_argument("count", type=int, help="number of invocations to add")
        parser.add_argument("--days", type=int, default=30, help="time span in days")
        parser.add_argument("--functions", type=int, default=20)
        parser.add_argument("--seed", type=int, default=1, help="random seed")

    def handle(self, *args, count, days, functions, seed, **options):
        if count < 1 or days < 1 or functions < 1:
            raise CommandError("count, --days and --functions must be 1 or more.")
        generator = random.Random(seed)
        targets = [self.function(index) for index in range(functions)]
        now = timezone.now()
        span_s = days * 86400
        inserted = 0
        while inserted < count:
            size = min(BATCH_SIZE, count - inserted)
            self.insert_batch(generator, targets, now, span_s, size)
            inserted += size
            self.stdout.write(f"{inserted} of {count} invocations", ending="\r")
        self.stdout.write(f"\nAdded {count} invocations.")

    def function(self, index: int) -> Function:
        region = REGIONS[index % len(REGIONS)]
        function, _ = Function.objects.get_or_create(
            name=f"seed-{index:02d}",
            defaults={
                "region": region,
                "endpoint_url": f"http://127.0.0.1:9100/{region}/ok",
                "memory_mb": [128, 512, 1024, 2048][index % 4],
            },
        )
        return function

    @transaction.atomic
    def insert_batch(self, generator, targets, now, span_s, size) -> None:
        invocations = []
        shapes = []
        weights = [shape[0] for shape in SHAPES]
        for _ in range(size):
            function = generator.choice(targets)
            _, status, codes = generator.choices(SHAPES, weights)[0]
            created_at = now - timedelta(seconds=generator.uniform(0, span_s))
            invocations.append(
                self.invocation(generator, function, status, codes, created_at)
            )
            shapes.append(codes)
        Invocation.objects.bulk_create(invocations)

        attempts = []
        for invocation, codes in zip(invocations, shapes, strict=True):
            attempts.extend(self.attempts(generator, invocation, codes))
        Attempt.objects.bulk_create(attempts)

    def invocation(self, generator, function, status, codes, created_at):
        billed = sum(1 for code in codes if code in (200, "handled"))
        infrastructure = sum(1 for code in codes if code in (429, 500, 503))
        last_status_code, last_header = answer(codes[-1])
        return Invocation(
            request_id=str(uuid.UUID(int=generator.getrandbits(128))),
            function=function,
            region=function.region,
            invocation_type="Async" if generator.random() < 0.8 else "Sync",
            status=status,
            payload=b"{}",
            created_at=created_at,
            next_attempt_at=(
                created_at + timedelta(seconds=2) if status == Status.RETRYING else None
            ),
            attempts_made=len(codes),
            function_error_retries_used=max(0, codes.count("handled") - 1),
            infrastructure_retries_used=infrastructure,
            first_failure_at=created_at if codes[0] != 200 else None,
            policy=policy.PolicyConfig().to_dict(),
            memory_mb=function.memory_mb,
            endpoint_url=function.endpoint_url,
            timeout_s=function.timeout_s,
            outcome=policy.classify(last_status_code, last_header),
            last_status_code=last_status_code,
            billed_attempts=billed,
            unbilled_attempts=len(codes) - billed,
            billed_duration_ms=billed * 120,
        )

    def attempts(self, generator, invocation, codes):
        started = invocation.created_at
        for number, code in enumerate(codes, start=1):
            status_code, header = answer(code)
            outcome = policy.classify(status_code, header)
            billed = policy.is_billed(outcome)
            ended = started + timedelta(milliseconds=120)
            yield Attempt(
                invocation=invocation,
                number=number,
                trigger="automatic",
                started_at=started,
                ended_at=ended,
                duration_ms=120,
                status_code=status_code,
                error_type=policy.error_type_for(outcome, header) or "",
                outcome=outcome,
                billed=billed,
                billed_duration_ms=120 if billed else 0,
            )
            started = ended + timedelta(seconds=0.5 * 2 ** (number - 1))
