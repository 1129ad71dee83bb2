"""The overview's SVG charts, with one stacked bar per hour.

Attempts per hour by outcome, and billed and unbilled attempts per hour.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from .charts import (
    BAR_GAP,
    BILLING_SERIES,
    PLOT_HEIGHT,
    PLOT_LEFT,
    PLOT_TOP,
    PLOT_WIDTH,
    Label,
    Segment,
    nice_maximum,
    stacked_segments,
)
from .display import OUTCOME_GROUPS, outcome_group

# Hours between two labels on the time axis.
LABEL_EVERY_HOURS = 3


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


def hour_index(first_hour: datetime, hour: datetime) -> int:
    """Return the bar index of `hour`, counted in whole hours from `first_hour`."""
    return int((hour - first_hour) / timedelta(hours=1))


def stacked_hourly_chart(
    first_hour: datetime,
    by_hour: list[dict[str, int]],
    series: dict[str, str],
    css_prefix: str,
) -> Chart:
    """Lay out one bar per hour from `first_hour`, stacked by series.

    `by_hour` has one {series key: count} dict per hour. `series` maps each
    key to its legend label, and its order stacks the bars from the bottom.
    Segments get the CSS class <css_prefix>-<key>.
    """
    hours = len(by_hour)
    tallest = max((sum(counts.values()) for counts in by_hour), default=0)
    y_max = nice_maximum(tallest)
    slot = PLOT_WIDTH / hours
    bottom = PLOT_TOP + PLOT_HEIGHT

    segments = []
    hour_labels = []
    for index, counts in enumerate(by_hour):
        hour = first_hour + timedelta(hours=index)
        x = round(PLOT_LEFT + index * slot + BAR_GAP / 2, 2)
        segments.extend(
            stacked_segments(
                x,
                bottom,
                round(slot - BAR_GAP, 2),
                y_max,
                [(f"{css_prefix}-{key}", count) for key, count in counts.items()],
                [
                    f"{hour:%H:00} UTC: {count} {series[key].lower()}"
                    for key, count in counts.items()
                ],
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
    totals = dict.fromkeys(series, 0)
    for counts in by_hour:
        for key, count in counts.items():
            totals[key] += count
    legend = [(key, series[key], totals[key]) for key in series]
    return Chart(
        segments=segments,
        hour_labels=hour_labels,
        count_labels=count_labels,
        legend=legend,
        total=sum(totals.values()),
    )


def hourly_outcome_chart(first_hour: datetime, hours: int, counts: list[dict]) -> Chart:
    """Lay out `counts` rows of {"hour", "outcome", "count"} as stacked bars."""
    by_hour = [dict.fromkeys(OUTCOME_GROUPS, 0) for _ in range(hours)]
    for row in counts:
        index = hour_index(first_hour, row["hour"])
        if 0 <= index < hours:
            by_hour[index][outcome_group(row["outcome"])] += row["count"]
    return stacked_hourly_chart(first_hour, by_hour, OUTCOME_GROUPS, "outcome")


def hourly_billing_chart(first_hour: datetime, hours: int, counts: list[dict]) -> Chart:
    """Lay out billed and unbilled attempts per hour as stacked bars.

    `counts` rows are {"hour", "billed_count", "unbilled_count"}. Other keys
    are ignored, and several rows may share an hour.
    """
    by_hour = [dict.fromkeys(BILLING_SERIES, 0) for _ in range(hours)]
    for row in counts:
        index = hour_index(first_hour, row["hour"])
        if 0 <= index < hours:
            by_hour[index]["billed"] += row["billed_count"]
            by_hour[index]["unbilled"] += row["unbilled_count"]
    return stacked_hourly_chart(first_hour, by_hour, BILLING_SERIES, "billing")
