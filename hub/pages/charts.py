"""Bar charts as inline SVG, drawn on the server: the pages that show figures (the manager's
page, the IG page) need no script and no charting library, so they stay within a strict
Content-Security-Policy and read the same with scripts off. Colours are classes the page's
stylesheet fills (`bar`, `bar-<tone>`), never inline styles (the CSP allows none). Every
chart sits beside a table of the same figures, for screen readers and for copying.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from markupsafe import Markup, escape

ROW = 26  # height of one horizontal bar's row
LABEL = 170  # width of the labels' column
PLOT = 380  # width of the longest bar
VALUE = 90  # width of the values' column
COLUMN_AREA = 160  # height of a column chart's plot
MAX_COLUMN = 28
MAX_DAYS = 62  # a longer span is counted by week


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its length (`value`), the text shown at its end (default: the
    value) and its tone (a stylesheet class, e.g. "red")."""

    label: str
    value: float
    text: str | None = None
    tone: str = "plain"


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _frame(chart_id: str, title: str, width: int, height: int, body: list[str]) -> Markup:
    head = (
        f'<svg id="{escape(chart_id)}" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def bars(chart_id: str, title: str, items: Sequence[Bar], scale: float | None = None) -> Markup:
    """Horizontal bars, one row each, longest = `scale` (default: the largest value)."""
    top = scale or max((b.value for b in items), default=0) or 1
    body = []
    for n, bar in enumerate(items):
        y = n * ROW
        length = max(0.0, min(bar.value, top)) / top * PLOT
        body.append(
            f'<g class="bar-row"><text class="label" x="{LABEL - 6}" y="{y + 17}" '
            f'text-anchor="end">{escape(bar.label)}</text>'
            f'<rect class="bar bar-{escape(bar.tone)}" x="{LABEL}" y="{y + 4}" '
            f'width="{length:.1f}" height="{ROW - 8}"></rect>'
            f'<text class="value" x="{LABEL + length + 6:.1f}" y="{y + 17}">'
            f"{escape(bar.text if bar.text is not None else _number(bar.value))}</text></g>"
        )
    if not items:
        body.append(f'<text class="label" x="{LABEL}" y="17">Nothing to show.</text>')
    height = max(len(items), 1) * ROW
    return _frame(chart_id, title, LABEL + PLOT + VALUE, height, body)


def columns(chart_id: str, title: str, items: Sequence[Bar]) -> Markup:
    """Vertical columns left to right (a series over time), labels under the first, the
    last and every few between, so that they do not overlap."""
    top = max((b.value for b in items), default=0) or 1
    width = max(min(MAX_COLUMN, 640 // max(len(items), 1)), 4)
    every = max(1, -(-len(items) // 8))
    body = [
        f'<text class="value" x="0" y="12">{escape(_number(top))}</text>',
        f'<line class="axis" x1="0" y1="{COLUMN_AREA + 20}" x2="{len(items) * width + 40}" '
        f'y2="{COLUMN_AREA + 20}"></line>',
    ]
    for n, bar in enumerate(items):
        x, height = 40 + n * width, bar.value / top * COLUMN_AREA
        body.append(
            f'<rect class="bar bar-{escape(bar.tone)}" x="{x + 1}" '
            f'y="{COLUMN_AREA + 20 - height:.1f}" width="{width - 2}" height="{height:.1f}">'
            f"<title>{escape(bar.label)}: {escape(bar.text or _number(bar.value))}</title></rect>"
        )
        if n % every == 0 or n == len(items) - 1:
            body.append(
                f'<text class="label" x="{x}" y="{COLUMN_AREA + 36}">{escape(bar.label)}</text>'
            )
    return _frame(chart_id, title, 40 + max(len(items), 1) * width + 60, COLUMN_AREA + 44, body)


def over_time(moments: Sequence[datetime], zone: tzinfo) -> tuple[str, list[tuple[date, int]]]:
    """How many `moments` fell on each day (in `zone`), from the first to the last, days
    with none included; by week (starting Monday) when that spans more than MAX_DAYS.
    Returns ("day" or "week", [(first day of the period, count)])."""
    days = sorted(m.astimezone(zone).date() for m in moments)
    if not days:
        return "day", []
    unit, step = ("day", 1) if (days[-1] - days[0]).days < MAX_DAYS else ("week", 7)
    if unit == "week":
        days = [d - timedelta(days=d.weekday()) for d in days]
    counts = Counter(days)
    periods = range(0, (days[-1] - days[0]).days + 1, step)
    return unit, [
        (days[0] + timedelta(days=n), counts[days[0] + timedelta(days=n)]) for n in periods
    ]
