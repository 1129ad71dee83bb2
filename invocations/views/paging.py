"""Keyset (cursor) pagination on (created_at, id), newest first.

A page never counts the table. It fetches one row more than it shows to learn
whether older rows follow, and runs one EXISTS query for newer rows. A cursor
is "<created_at in microseconds since the epoch>_<id>" of the row it starts
after, so a page stays stable while new rows arrive at the top.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Model, Q, QuerySet

PAGE_SIZE = 50

_CURSOR_RE = re.compile(r"^(\d{1,18})_(\d{1,18})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    rows: list
    # Newer rows exist. newer_cursor is None when the "Newer" link leads to the
    # newest page rather than to the rows just before this one.
    has_newer: bool
    newer_cursor: str | None
    # The cursor for the "Older" link, or None when no older rows exist.
    older_cursor: str | None
    # True when the page starts at the newest row (no "newer" cursor was used).
    is_first: bool


def encode_cursor(row: Model) -> str:
    return f"{(row.created_at - _EPOCH) // _MICROSECOND}_{row.pk}"


def decode_cursor(value: str) -> tuple[datetime, int]:
    """Parse a cursor into (created_at, id), or raise InvalidCursor."""
    match = _CURSOR_RE.match(value)
    if match is None:
        raise InvalidCursor(f"Invalid page cursor {value!r}.")
    try:
        created_at = _EPOCH + int(match[1]) * _MICROSECOND
    except OverflowError as error:
        raise InvalidCursor(f"Invalid page cursor {value!r}.") from error
    return created_at, int(match[2])


def _older_than(key: tuple[datetime, int]) -> Q:
    created_at, pk = key
    # The leading created_at__lte lets PostgreSQL use it as an index bound.
    return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(pk__lt=pk))


def _newer_than(key: tuple[datetime, int]) -> Q:
    created_at, pk = key
    return Q(created_at__gte=created_at) & (Q(created_at__gt=created_at) | Q(pk__gt=pk))


def _key(row: Model) -> tuple[datetime, int]:
    return row.created_at, row.pk


def paginate(
    queryset: QuerySet,
    *,
    older: str | None = None,
    newer: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Return one page of `queryset`, newest first.

    `older` shows the rows after that cursor, `newer` the rows before it.
    With fewer than a page of newer rows left, the newest page is returned, so
    going back to the top always fills the page. Raises InvalidCursor.
    """
    if newer:
        newer_rows = list(
            queryset.filter(_newer_than(decode_cursor(newer))).order_by(
                "created_at", "pk"
            )[: size + 1]
        )
        if len(newer_rows) <= size:
            return paginate(queryset, size=size)
        rows = newer_rows[:size][::-1]
        return Page(
            rows=rows,
            has_newer=True,
            newer_cursor=encode_cursor(rows[0]),
            older_cursor=encode_cursor(rows[-1]),
            is_first=False,
        )

    page_queryset = queryset
    if older:
        page_queryset = queryset.filter(_older_than(decode_cursor(older)))
    rows = list(page_queryset.order_by("-created_at", "-pk")[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]

    has_newer = False
    newer_cursor = None
    if older and rows:
        has_newer = queryset.filter(_newer_than(_key(rows[0]))).exists()
        newer_cursor = encode_cursor(rows[0])
    elif older:
        # An empty page past the end: "Newer" leads back to the newest rows.
        has_newer = True
    return Page(
        rows=rows,
        has_newer=has_newer,
        newer_cursor=newer_cursor if has_newer else None,
        older_cursor=encode_cursor(rows[-1]) if has_older else None,
        is_first=not older,
    )
