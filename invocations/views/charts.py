"""SVG charts laid out on the server, and the parts that all charts share.

Billed and unbilled attempts per day (billing), and running attempts and 429
responses per minute against a region's quota (alerts). The overview's charts
with one bar per hour are in hourly_charts.py.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# Plot area in SVG user units. The SVG scales to the page width.
PLOT_LEFT = 40
PLOT_TOP = 10
PLOT_WIDTH = 720
PLOT_HEIGHT = 160
BAR_GAP = 4


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    css_class: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


def stacked_segments(
    x: float,
    bottom: float,
    width: float,
    y_max: int,
    parts: list[tuple[str, int]],
    titles: list[str],
) -> list[Segment]:
    """Stack one bar's (css class, count) parts upward from `bottom`.

    Parts with a count of 0 draw nothing, and `titles` contains one tooltip per part.
    """
    segments = []
    y = bottom
    for (css_class, count), title in zip(parts, titles, strict=True):
        if not count:
            continue
        height = count / y_max * PLOT_HEIGHT
        y -= height
        segments.append(
            Segment(
                x=x,
                y=round(y, 2),
                width=width,
                height=round(height, 2),
                css_class=css_class,
                title=title,
            )
        )
    return segments


def nice_maximum(value: int) -> int:
    """Round a count up to 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


# Steps for an axis maximum with headroom. They are finer than 1, 2 and 5,
# so that from 3 up the headroom stays under half the value.
HEADROOM_STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8)


def headroom_maximum(value: int) -> int:
    """Round a count up to a whole-number step at least 10% and 1 above it."""
    target = max(value * 1.1, value + 1)
    magnitude = 10 ** math.floor(math.log10(target))
    for factor in HEADROOM_STEPS:
        step = factor * magnitude
        if step >= target and step == int(step):
            return int(step)
    return 10 * magnitude


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    title: str


@dataclass(frozen=True)
class DailyBillingChart:
    segments: list[Segment]
    day_labels: list[Label]
    count_labels: list[Label]
    days: int
    width: int = PLOT_LEFT + PLOT_WIDTH + 10
    height: int = PLOT_TOP + PLOT_HEIGHT + 30
    plot_left: int = PLOT_LEFT
    plot_bottom: int = PLOT_TOP + PLOT_HEIGHT
    plot_right: int = PLOT_LEFT + PLOT_WIDTH


# Series of the billing chart: CSS class suffix and legend label.
BILLING_SERIES = {"billed": "Billed attempts", "unbilled": "Unbilled attempts"}


def daily_billing_chart(
    first_day: date, days: int, counts: dict[date, dict[str, int]]
) -> DailyBillingChart:
    """Lay out billed and unbilled attempts per day as stacked bars.

    `counts` maps a day to {"billed": n, "unbilled": n}; missing days are 0.
    """
    columns = []
    for index in range(days):
        day = first_day + timedelta(days=index)
        day_counts = counts.get(day, {})
        columns.append((day, [(key, day_counts.get(key, 0)) for key in BILLING_SERIES]))

    tallest = max((sum(n for _, n in series) for _, series in columns), default=0)
    y_max = nice_maximum(tallest)
    slot = PLOT_WIDTH / days
    gap = min(BAR_GAP, slot / 4)
    bottom = PLOT_TOP + PLOT_HEIGHT
    # About ten labels on the time axis, whatever the number of days.
    label_every = max(1, math.ceil(days / 10))

    segments = []
    day_labels = []
    for index, (day, series) in enumerate(columns):
        x = round(PLOT_LEFT + index * slot + gap / 2, 2)
        segments.extend(
            stacked_segments(
                x,
                bottom,
                round(slot - gap, 2),
                y_max,
                [(f"billing-{key}", count) for key, count in series],
                [
                    f"{day:%Y-%m-%d}: {count} {BILLING_SERIES[key].lower()}"
                    for key, count in series
                ],
            )
        )
        if index % label_every == 0:
            day_labels.append(
                Label(
                    x=round(x + (slot - gap) / 2, 2), y=bottom + 16, text=f"{day:%m-%d}"
                )
            )

    count_labels = [
        Label(x=PLOT_LEFT - 6, y=bottom + 4, text="0"),
        Label(x=PLOT_LEFT - 6, y=PLOT_TOP + 4, text=str(y_max)),
    ]
    return DailyBillingChart(
        segments=segments,
        day_labels=day_labels,
        count_labels=count_labels,
        days=days,
    )


# The quota chart: running attempts above, 429 responses in a strip below.
# The 44 units between the two plots hold the upper plot's "0", the lower
# plot's caption and its maximum label, one above the other.
RUNNING_HEIGHT = 120
THROTTLED_TOP = PLOT_TOP + RUNNING_HEIGHT + 44
THROTTLED_CAPTION_Y = THROTTLED_TOP - 18
THROTTLED_HEIGHT = 48
MINUTE_BAR_GAP = 2
# Minutes between two labels on the time axis.
LABEL_EVERY_MINUTES = 10


@dataclass(frozen=True)
class QuotaChart:
    region: str
    quota: int
    peak_running: int
    throttled_total: int
    running_bars: list[Segment]
    throttled_bars: list[Segment]
    quota_line: Line
    quota_label: Label
    throttled_title: Label
    count_labels: list[Label]
    minute_labels: list[Label]
    width: int = PLOT_LEFT + PLOT_WIDTH + 10
    height: int = THROTTLED_TOP + THROTTLED_HEIGHT + 30
    plot_left: int = PLOT_LEFT
    plot_right: int = PLOT_LEFT + PLOT_WIDTH
    running_bottom: int = PLOT_TOP + RUNNING_HEIGHT
    throttled_bottom: int = THROTTLED_TOP + THROTTLED_HEIGHT


def minute_bars(
    first_minute: datetime,
    counts: list[int],
    *,
    top: float,
    height: float,
    y_max: int,
    css_class: str,
    noun: str,
) -> list[Segment]:
    slot = PLOT_WIDTH / len(counts)
    bottom = top + height
    bars = []
    for index, count in enumerate(counts):
        if not count:
            continue
        minute = first_minute + timedelta(minutes=index)
        bar_height = count / y_max * height
        bars.append(
            Segment(
                x=round(PLOT_LEFT + index * slot + MINUTE_BAR_GAP / 2, 2),
                y=round(bottom - bar_height, 2),
                width=round(slot - MINUTE_BAR_GAP, 2),
                height=round(bar_height, 2),
                css_class=css_class,
                title=f"{minute:%H:%M} UTC: {count} {noun}",
            )
        )
    return bars


def quota_chart(
    region: str,
    quota: int,
    first_minute: datetime,
    running: list[int],
    throttled: list[int],
) -> QuotaChart:
    """Lay out one region's running attempts and 429 responses per minute.

    `running` and `throttled` have one count per minute from `first_minute`.
    The running scale reaches the higher of the peak and the quota plus
    headroom, so the quota line is never drawn on the frame of the plot and
    small counts against a large quota still show.
    """
    running_max = headroom_maximum(max(max(running, default=0), quota))
    throttled_max = nice_maximum(max(throttled, default=0))
    running_bottom = PLOT_TOP + RUNNING_HEIGHT
    throttled_bottom = THROTTLED_TOP + THROTTLED_HEIGHT
    quota_y = round(running_bottom - quota / running_max * RUNNING_HEIGHT, 2)

    slot = PLOT_WIDTH / len(running)
    minute_labels = [
        Label(
            x=round(PLOT_LEFT + (index + 0.5) * slot, 2),
            y=throttled_bottom + 16,
            text=f"{first_minute + timedelta(minutes=index):%H:%M}",
        )
        for index in range(0, len(running), LABEL_EVERY_MINUTES)
    ]
    count_labels = [
        Label(x=PLOT_LEFT - 6, y=running_bottom + 4, text="0"),
        Label(x=PLOT_LEFT - 6, y=PLOT_TOP + 4, text=str(running_max)),
        Label(x=PLOT_LEFT - 6, y=throttled_bottom + 4, text="0"),
        Label(x=PLOT_LEFT - 6, y=THROTTLED_TOP + 4, text=str(throttled_max)),
    ]
    return QuotaChart(
        region=region,
        quota=quota,
        peak_running=max(running, default=0),
        throttled_total=sum(throttled),
        running_bars=minute_bars(
            first_minute,
            running,
            top=PLOT_TOP,
            height=RUNNING_HEIGHT,
            y_max=running_max,
            css_class="outcome-running",
            noun="running attempts",
        ),
        throttled_bars=minute_bars(
            first_minute,
            throttled,
            top=THROTTLED_TOP,
            height=THROTTLED_HEIGHT,
            y_max=throttled_max,
            css_class="outcome-throttled",
            noun="429 responses",
        ),
        quota_line=Line(
            x1=PLOT_LEFT,
            y1=quota_y,
            x2=PLOT_LEFT + PLOT_WIDTH,
            y2=quota_y,
            title=f"Quota: {quota} concurrent instances",
        ),
        # At the left end, because the latest minutes, at the right, are the
        # ones most likely to have bars that reach the quota.
        quota_label=Label(x=PLOT_LEFT + 4, y=quota_y - 4, text=f"quota {quota}"),
        throttled_title=Label(
            x=PLOT_LEFT + 4, y=THROTTLED_CAPTION_Y, text="429 responses per minute"
        ),
        count_labels=count_labels,
        minute_labels=minute_labels,
    )
