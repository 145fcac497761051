"""Bar charts as geometry for inline SVG, drawn by the templates (``chart.html``).

No JavaScript and no library: the server computes where each bar goes, the template writes
``<rect>`` elements, and every value stays data (Jinja2 escapes the labels). Each chart on
a page has a data table under it with the same numbers, for screen readers and copying.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

#: Room for the axis labels around the plot, in SVG units.
LEFT, BOTTOM, TOP, RIGHT = 44, 22, 8, 8
#: Most labels under the x axis: more would overlap.
MOST_X_LABELS = 12


@dataclasses.dataclass(frozen=True)
class Bar:
    """One bar: its box, its series (a CSS class) and its tooltip."""

    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclasses.dataclass(frozen=True)
class Label:
    """A text at a point: an axis tick or a bar's name."""

    x: float
    y: float
    text: str


@dataclasses.dataclass(frozen=True)
class Chart:
    """What the template draws: a viewBox of ``width`` by ``height``."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    #: Horizontal grid lines, by y.
    grid: tuple[float, ...]


def nice_ceiling(value: float) -> float:
    """Round ``value`` up to 1, 2 or 5 times a power of ten (an axis' top)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def grouped_bars(
    groups: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
    width: int = 720,
    height: int = 240,
) -> Chart:
    """Draw one group of bars per (label, values), one bar per series in each group."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    top = nice_ceiling(max((v for _, values in groups for v in values), default=0))
    slot = plot_w / max(len(groups), 1)
    bar_w = slot * 0.8 / max(len(series), 1)
    bars: list[Bar] = []
    labels: list[Label] = []
    every = max(1, math.ceil(len(groups) / MOST_X_LABELS))
    for index, (label, values) in enumerate(groups):
        left = LEFT + index * slot + slot * 0.1
        for n, (name, value) in enumerate(zip(series, values, strict=True)):
            h = plot_h * value / top
            bars.append(
                Bar(left + n * bar_w, TOP + plot_h - h, bar_w, h, name, f"{label}: {value} {name}")
            )
        if index % every == 0:
            labels.append(Label(left, height - 6, label))
    grid = []
    # Counts are whole: the middle line only where it falls on a whole number.
    for fraction in (0, 0.5, 1) if top % 2 == 0 else (0, 1):
        y = TOP + plot_h * (1 - fraction)
        grid.append(y)
        labels.append(Label(4, y + 4, f"{top * fraction:g}"))
    return Chart(width, height, tuple(bars), tuple(labels), tuple(grid))


def percent_bars(rows: Sequence[tuple[str, float | None]], width: int = 720) -> Chart:
    """Draw one horizontal bar per (label, fraction 0..1) on a 0-100 % scale; None draws
    no bar (nothing to rate)."""
    row_h, name_w = 24, 160
    height = TOP + row_h * max(len(rows), 1) + BOTTOM
    plot_w = width - name_w - RIGHT - 48
    bars: list[Bar] = []
    labels: list[Label] = []
    for index, (label, fraction) in enumerate(rows):
        y = TOP + index * row_h
        labels.append(Label(4, y + row_h * 0.65, label))
        shown = "no SMS sent" if fraction is None else f"{fraction * 100:.0f} %"
        if fraction is not None:
            bars.append(
                Bar(name_w, y + 4, plot_w * fraction, row_h - 8, "delivered", f"{label}: {shown}")
            )
        labels.append(Label(name_w + plot_w + 6, y + row_h * 0.65, shown))
    return Chart(width, height, tuple(bars), tuple(labels), ())
