"""CSV exports, streamed row by row so a million rows never sit in memory."""

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from .models import gb_seconds

INVOCATION_COLUMNS = [
    "request_id",
    "task_id",
    "function",
    "region",
    "invocation_type",
    "status",
    "created_at",
    "next_attempt_at",
    "attempts",
    "function_error_retries_used",
    "infrastructure_retries_used",
    "billed_attempts",
    "unbilled_attempts",
    "billed_gb_seconds",
    "last_error_type",
    "last_status_code",
]


class Echo:
    """A file-like object whose write() returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def csv_response(filename: str, lines: Iterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def iso(value) -> str:
    return value.isoformat() if value else ""


def invocation_rows(invocations: QuerySet) -> Iterator[list]:
    fields = (
        "request_id",
        "task_id",
        "function__name",
        "region",
        "invocation_type",
        "status",
        "created_at",
        "next_attempt_at",
        "attempts_made",
        "function_error_retries_used",
        "infrastructure_retries_used",
        "billed_attempts",
        "unbilled_attempts",
        "memory_mb",
        "billed_duration_ms",
        "last_error_type",
        "last_status_code",
    )
    # iterator() streams from a server-side cursor on PostgreSQL.
    for row in invocations.values_list(*fields).iterator(chunk_size=2000):
        values = dict(zip(fields, row, strict=True))
        yield [
            values["request_id"],
            values["task_id"] or "",
            values["function__name"],
            values["region"],
            values["invocation_type"],
            values["status"],
            iso(values["created_at"]),
            iso(values["next_attempt_at"]),
            values["attempts_made"],
            values["function_error_retries_used"],
            values["infrastructure_retries_used"],
            values["billed_attempts"],
            values["unbilled_attempts"],
            gb_seconds(values["memory_mb"], values["billed_duration_ms"]),
            values["last_error_type"],
            values["last_status_code"] or "",
        ]


def export_invocations(invocations: QuerySet) -> StreamingHttpResponse:
    invocations = invocations.order_by("-created_at", "-id")
    lines = csv_lines(INVOCATION_COLUMNS, invocation_rows(invocations))
    return csv_response("invocations.csv", lines)


def export_billing(summary: dict, group_by: str) -> StreamingHttpResponse:
    groups = summary["groups"]
    columns = [group_by, *(key for key in summary["totals"] if key != group_by)]
    rows = ([group.get(column, "") for column in columns] for group in groups)
    return csv_response(f"billing-by-{group_by}.csv", csv_lines(columns, rows))
