"""Measure how late retries start, on a real worker with beat.

Usage:
    .venv/bin/python scripts/benchmark_retry_latency.py [--broker embedded|redis]
        [--invocations 20] [--spacing 0.05]

`embedded` runs on a fresh SQLite file and kombu's filesystem broker in a
temporary folder, as `make run` does. `redis` runs on PostgreSQL and Redis
at 127.0.0.1, as production does, on a scratch database. Each
invocation calls a demo function that answers 503, 503, 503 and then 200,
so it gets infrastructure retries 0.5 s, 1 s and 2 s after each failure.
The script prints, per retry, how much later than scheduled it started.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(broker: str, var_dir: Path) -> dict[str, str]:
    env = {"FCDASH_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "fcdash.settings"}
    if broker == "redis":
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/fcdash_benchmark"
        env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/14"
    else:
        env["DATABASE_URL"] = f"sqlite:///{var_dir / 'benchmark.sqlite3'}"
        env["CELERY_BROKER_URL"] = "filesystem://"
    env["FCDASH_QUEUE"] = f"benchmark-{os.getpid()}"
    os.environ.update(env)
    return env


def create_database_if_needed(broker: str) -> None:
    if broker != "redis":
        return
    import psycopg

    with psycopg.connect(
        "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
    ) as connection:
        connection.execute("DROP DATABASE IF EXISTS fcdash_benchmark")
        connection.execute("CREATE DATABASE fcdash_benchmark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["embedded", "redis"], default="embedded")
    parser.add_argument("--invocations", type=int, default=20)
    parser.add_argument(
        "--spacing",
        type=float,
        default=0.05,
        help="seconds between two accepted invocations; 0 sends a burst",
    )
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="fcdash-benchmark-"))
    env = configure(args.broker, var_dir)
    create_database_if_needed(args.broker)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from demo.server import start_server
    from invocations import engine
    from invocations.models import Function, Invocation

    server, _ = start_server(quota=1000)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "fcdash",
            "worker",
            "--beat",
            "--loglevel=WARNING",
            f"--schedule={var_dir / 'beat-schedule'}",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        time.sleep(4)  # let the worker connect before the first message
        function = Function.objects.create(
            name="benchmark",
            region="cn-hangzhou",
            endpoint_url=f"{server.url}/cn-hangzhou/sequence?codes=503,503,503,200",
        )
        request_ids = []
        for _ in range(args.invocations):
            request_ids.append(engine.accept_async(function, b"{}").request_id)
            time.sleep(args.spacing)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = Invocation.objects.filter(
                request_id__in=request_ids,
                status__in=["Enqueued", "Running", "Retrying"],
            ).count()
            if not waiting:
                break
            time.sleep(0.2)
        report(args, request_ids)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        server.shutdown()


def report(args, request_ids) -> None:
    from invocations.models import Attempt, Invocation

    lateness_ms = {0.5: [], 1.0: [], 2.0: []}
    first_start_ms = []
    for invocation in Invocation.objects.filter(request_id__in=request_ids):
        attempts = list(
            Attempt.objects.filter(invocation=invocation).order_by("number")
        )
        first_start_ms.append(
            (attempts[0].started_at - invocation.created_at).total_seconds() * 1000
        )
        for earlier, later, delay in zip(
            attempts, attempts[1:], (0.5, 1.0, 2.0), strict=False
        ):
            gap = (later.started_at - earlier.ended_at).total_seconds()
            lateness_ms[delay].append((gap - delay) * 1000)

    statuses = Invocation.objects.filter(request_id__in=request_ids).values_list(
        "status", flat=True
    )
    print(f"broker: {args.broker}; invocations: {len(request_ids)}")
    print(f"statuses: {sorted(set(statuses))}")
    describe("first attempt after accept", first_start_ms)
    for delay, values in lateness_ms.items():
        describe(f"retry scheduled {delay:g} s after failure, started late by", values)


def describe(label: str, values: list[float]) -> None:
    if not values:
        print(f"{label}: no samples")
        return
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{label}: median {statistics.median(values):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(values):.1f} ms (n={len(values)})"
    )


if __name__ == "__main__":
    main()
