"""The attempt timeline of one invocation: gaps, budgets and the SVG axis."""

import math
from dataclasses import dataclass
from datetime import datetime

from .. import policy
from ..models import Attempt, Invocation, InvocationType
from .display import (
    milliseconds_between,
    outcome_group,
    outcome_label,
    seconds_with_ms,
    short_duration,
)

# Size of the SVG in user units. The SVG scales to the page width. A scheduled
# next attempt ends the time axis, so the margin right of the axis keeps its
# dashed line, and a tick label at the axis end, clear of the frame.
AXIS_WIDTH = 800
RIGHT_MARGIN = 20
SVG_WIDTH = AXIS_WIDTH + RIGHT_MARGIN
SVG_HEIGHT = 64
BAR_Y = 8
BAR_HEIGHT = 24
AXIS_Y = 40
# Attempts of a few milliseconds on an axis of hours would be invisible.
MIN_BAR_WIDTH = 2.0
# Axis tick steps in seconds, from 1 ms to 1 day.
TICK_STEPS = [base * scale for scale in (0.001, 0.01, 0.1, 1) for base in (1, 2, 5)] + [
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    21600,
    43200,
    86400,
]
MAX_TICKS = 6


@dataclass(frozen=True)
class AttemptRow:
    attempt: Attempt
    # Milliseconds from the end of the previous attempt to this start, or None.
    gap_ms: float | None
    group: str


@dataclass(frozen=True)
class Budgets:
    automatic_retries: bool
    function_error_retries_used: int
    max_function_error_retries: int
    infrastructure_retries_used: int
    window_used_s: float
    window_s: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    css_class: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    gaps: list[Bar]
    ticks: list[Tick]
    next_attempt_x: float | None
    span_label: str
    width: int = SVG_WIDTH
    axis_width: int = AXIS_WIDTH
    height: int = SVG_HEIGHT
    bar_y: int = BAR_Y
    bar_height: int = BAR_HEIGHT
    axis_y: int = AXIS_Y


def attempt_rows(attempts: list[Attempt]) -> list[AttemptRow]:
    rows = []
    previous_end = None
    for attempt in attempts:
        gap_ms = None
        if previous_end is not None:
            gap_ms = milliseconds_between(previous_end, attempt.started_at)
        rows.append(AttemptRow(attempt, gap_ms, outcome_group(attempt.outcome)))
        previous_end = attempt.ended_at
    return rows


def budgets(invocation: Invocation, now: datetime) -> Budgets:
    """Measure the retry budgets used against the invocation's policy snapshot.

    The infrastructure window runs from the end of the first failed attempt
    to now, or to the end of the invocation once it finished, and is capped
    at the window itself.
    """
    config = invocation.policy_config
    window_used_s = 0.0
    if invocation.first_failure_at is not None:
        end = invocation.finished_at or now
        elapsed = (end - invocation.first_failure_at).total_seconds()
        window_used_s = min(max(elapsed, 0.0), config.infrastructure_window_s)
    return Budgets(
        automatic_retries=invocation.invocation_type == InvocationType.ASYNC,
        function_error_retries_used=invocation.function_error_retries_used,
        max_function_error_retries=config.max_async_retry_attempts,
        infrastructure_retries_used=invocation.infrastructure_retries_used,
        window_used_s=window_used_s,
        window_s=config.infrastructure_window_s,
    )


def tick_step(span_s: float) -> float:
    for step in TICK_STEPS:
        if span_s / step <= MAX_TICKS:
            return step
    return TICK_STEPS[-1] * math.ceil(span_s / TICK_STEPS[-1] / MAX_TICKS)


def build_timeline(
    attempts: list[Attempt], next_attempt_at: datetime | None, now: datetime
) -> Timeline | None:
    """Lay attempts and the gaps between them on a linear time axis.

    The axis starts at the first attempt and ends at the latest of: the last
    attempt's end (now while it runs) and the next scheduled attempt.
    """
    if not attempts:
        return None
    origin = attempts[0].started_at
    end = max(attempt.ended_at or now for attempt in attempts)
    if next_attempt_at is not None:
        end = max(end, next_attempt_at)
    span_s = max((end - origin).total_seconds(), 0.001)
    scale = AXIS_WIDTH / span_s

    def x_of(moment: datetime) -> float:
        return round((moment - origin).total_seconds() * scale, 2)

    bars = []
    gaps = []
    previous_end = None
    for attempt in attempts:
        start_x = x_of(attempt.started_at)
        if previous_end is not None and attempt.started_at > previous_end:
            gap_ms = milliseconds_between(previous_end, attempt.started_at)
            gaps.append(
                Bar(
                    x=x_of(previous_end),
                    width=round(start_x - x_of(previous_end), 2),
                    css_class="gap",
                    title=f"Gap before attempt {attempt.number}: "
                    f"{seconds_with_ms(gap_ms)}",
                )
            )
        attempt_end = attempt.ended_at or now
        width = max(x_of(attempt_end) - start_x, MIN_BAR_WIDTH)
        result = outcome_label(attempt.outcome) if attempt.outcome else "running"
        duration = seconds_with_ms(
            milliseconds_between(attempt.started_at, attempt_end)
        )
        bars.append(
            Bar(
                x=min(start_x, AXIS_WIDTH - width),
                width=round(width, 2),
                css_class=f"outcome-{outcome_group(attempt.outcome)}",
                title=f"Attempt {attempt.number} ({attempt.trigger}): {result}, "
                f"{duration}",
            )
        )
        previous_end = attempt.ended_at

    step = tick_step(span_s)
    ticks = [Tick(x=0.0, label="0")]
    for index in range(1, int(span_s / step) + 1):
        offset_s = index * step
        ticks.append(
            Tick(x=round(offset_s * scale, 2), label=f"+{short_duration(offset_s)}")
        )
    next_attempt_x = x_of(next_attempt_at) if next_attempt_at is not None else None
    return Timeline(
        bars=bars,
        gaps=gaps,
        ticks=ticks,
        next_attempt_x=next_attempt_x,
        span_label=short_duration(span_s),
    )


def retry_delays(config: policy.PolicyConfig, count: int = 5) -> list[str]:
    """Return the first backoff delays of the policy, formatted."""
    return [
        short_duration(policy.backoff_delay(number, config.base_delay_s))
        for number in range(1, count + 1)
    ]
