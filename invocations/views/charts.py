"""A stacked bar chart of attempts per hour and outcome, drawn as SVG."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from .display import OUTCOME_GROUPS, outcome_group

# Plot area in SVG user units. The SVG scales to the page width.
PLOT_LEFT = 40
PLOT_TOP = 10
PLOT_WIDTH = 720
PLOT_HEIGHT = 160
BAR_GAP = 4
# Hours between two labels on the time axis.
LABEL_EVERY_HOURS = 3


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


@dataclass(frozen=True)
class Chart:
    segments: list[Segment]
    hour_labels: list[Label]
    count_labels: list[Label]
    legend: list[tuple[str, str, int]]
    total: int
    width: int = PLOT_LEFT + PLOT_WIDTH + 10
    height: int = PLOT_TOP + PLOT_HEIGHT + 30
    plot_left: int = PLOT_LEFT
    plot_bottom: int = PLOT_TOP + PLOT_HEIGHT
    plot_right: int = PLOT_LEFT + PLOT_WIDTH


def nice_maximum(value: int) -> int:
    """Round a count up to 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def hourly_outcome_chart(first_hour: datetime, hours: int, counts: list[dict]) -> Chart:
    """Lay out `counts` rows of {"hour", "outcome", "count"} as stacked bars."""
    by_hour = [dict.fromkeys(OUTCOME_GROUPS, 0) for _ in range(hours)]
    for row in counts:
        index = int((row["hour"] - first_hour) / timedelta(hours=1))
        if 0 <= index < hours:
            by_hour[index][outcome_group(row["outcome"])] += row["count"]

    tallest = max((sum(groups.values()) for groups in by_hour), default=0)
    y_max = nice_maximum(tallest)
    slot = PLOT_WIDTH / hours
    bottom = PLOT_TOP + PLOT_HEIGHT

    segments = []
    hour_labels = []
    for index, groups in enumerate(by_hour):
        hour = first_hour + timedelta(hours=index)
        x = round(PLOT_LEFT + index * slot + BAR_GAP / 2, 2)
        y = bottom
        for group, count in groups.items():
            if not count:
                continue
            height = count / y_max * PLOT_HEIGHT
            y -= height
            segments.append(
                Segment(
                    x=x,
                    y=round(y, 2),
                    width=round(slot - BAR_GAP, 2),
                    height=round(height, 2),
                    css_class=f"outcome-{group}",
                    title=f"{hour:%H:00} UTC: {count} {OUTCOME_GROUPS[group].lower()}",
                )
            )
        if index % LABEL_EVERY_HOURS == 0:
            hour_labels.append(
                Label(
                    x=round(x + (slot - BAR_GAP) / 2, 2),
                    y=bottom + 16,
                    text=f"{hour:%H:00}",
                )
            )

    count_labels = [
        Label(x=PLOT_LEFT - 6, y=bottom + 4, text="0"),
        Label(x=PLOT_LEFT - 6, y=PLOT_TOP + 4, text=str(y_max)),
    ]
    totals = dict.fromkeys(OUTCOME_GROUPS, 0)
    for groups in by_hour:
        for group, count in groups.items():
            totals[group] += count
    legend = [(group, OUTCOME_GROUPS[group], totals[group]) for group in OUTCOME_GROUPS]
    return Chart(
        segments=segments,
        hour_labels=hour_labels,
        count_labels=count_labels,
        legend=legend,
        total=sum(totals.values()),
    )
