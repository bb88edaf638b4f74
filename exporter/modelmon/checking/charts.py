"""Inline SVG charts for the HTML report: pure functions from numbers to SVG text.

Every chart is an ``<svg class="chart" data-chart=KIND role="img">`` whose ``<title>``
and ``<desc>`` (also ``aria-label``) say in words what it shows, with the numbers, so a
screen reader or a text browser loses nothing. Colours are from the Okabe-Ito palette,
which stays distinguishable with the common colour-vision deficiencies; no chart relies
on colour alone (reference bars are outlined, current bars filled; markers and dashes
tell lines apart). Nothing here knows about ``modelmon check``: ``modelmon evaluate``
and other reports can draw the same charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Okabe-Ito colours (Okabe and Ito, "Color Universal Design", 2008).
BLUE, ORANGE, VERMILLION, GREEN, GREY = "#0072B2", "#E69F00", "#D55E00", "#009E73", "#999999"
REFERENCE_COLOUR, CURRENT_COLOUR = BLUE, ORANGE


def _f(x: float) -> str:
    """A coordinate with at most one decimal.

    >>> _f(1.25), _f(3.0), _f(-0.04)
    ('1.2', '3', '0')
    """
    text = f"{x:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def svg(kind: str, width: int, height: int, title: str, desc: str, body: str, **data: str) -> str:
    """The chart's frame: viewBox, role, title, desc and ``data-*`` attributes."""
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(v)}"' for k, v in data.items())
    return (
        f'<svg class="chart" data-chart="{kind}"{attrs} viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>{body}</svg>"
    )


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "middle") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{c}>{escape(text)}</text>'


def percent(share: float) -> str:
    """>>> percent(0.1234)
    '12.3%'
    """
    return f"{100 * share:.1f}%"


# --- reference vs current over bins ------------------------------------------------------

#: Most bars pairs drawn per column; beyond it the smallest bins are summed into one.
MAX_BINS = 20


def top_bins(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float]
) -> tuple[list[str], list[float], list[float]]:
    """At most :data:`MAX_BINS` bins: the largest (by the larger of both shares), in
    their order, and the rest summed into one last bin.

    >>> top_bins(["a", "b"], [0.5, 0.5], [0.2, 0.8])
    (['a', 'b'], [0.5, 0.5], [0.2, 0.8])
    """
    if len(labels) <= MAX_BINS:
        return list(labels), list(reference), list(current)
    size = [max(r, c) for r, c in zip(reference, current, strict=True)]
    keep = sorted(sorted(range(len(labels)), key=lambda i: -size[i])[: MAX_BINS - 1])
    kept = set(keep)
    rest = [i for i in range(len(labels)) if i not in kept]
    return (
        [labels[i] for i in keep] + [f"{len(rest)} more"],
        [reference[i] for i in keep] + [sum(reference[i] for i in rest)],
        [current[i] for i in keep] + [sum(current[i] for i in rest)],
    )


def distribution_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    title: str,
    **data: str,
) -> str:
    """Reference (outlined blue) and current (filled orange) share of every bin, side by
    side; one ``rect.bar`` per bin and side."""
    labels, reference, current = top_bins(labels, reference, current)
    width, height, left, top, bottom = 320, 150, 34, 8, 118
    span = (width - left - 4) / max(len(labels), 1)
    high = max([*reference, *current, 1e-9])
    parts = [_axis_y(left, top, bottom, width - 4, high)]
    for i, (label, r, c) in enumerate(zip(labels, reference, current, strict=True)):
        x = left + i * span
        for k, (share, cls) in enumerate(((r, "ref"), (c, "cur"))):
            h = (bottom - top) * share / high
            parts.append(
                f'<rect class="bar {cls}" x="{_f(x + span * (0.1 + 0.4 * k))}" '
                f'y="{_f(bottom - h)}" width="{_f(span * 0.4)}" height="{_f(h)}">'
                f"<title>{escape(label)}: {'reference' if k == 0 else 'current'} "
                f"{percent(share)}</title></rect>"
            )
    parts.append(_bin_labels(labels, left, span, bottom))
    desc = "Share per bin, reference then current: " + "; ".join(
        f"{label} {percent(r)} vs {percent(c)}"
        for label, r, c in zip(labels, reference, current, strict=True)
    )
    return svg(
        "distribution", width, height, title, desc, "".join(parts), bins=str(len(labels)), **data
    )


def _axis_y(left: float, top: float, bottom: float, right: float, high: float) -> str:
    return (
        f'<path class="axis" d="M{_f(left)} {_f(top)}V{_f(bottom)}H{_f(right)}"/>'
        + _text(left - 3, top + 6, percent(high), "tick", "end")
        + _text(left - 3, bottom, "0", "tick", "end")
    )


def _bin_labels(labels: Sequence[str], left: float, span: float, bottom: float) -> str:
    """First, middle and last bin names (all when few) under the axis."""
    last = len(labels) - 1
    shown = range(len(labels)) if len(labels) <= 3 else (0, len(labels) // 2, last)
    out = []
    for i in shown:
        # The end labels hang inwards from their bar so that they stay inside the chart.
        anchor = "start" if i == 0 and last > 0 else "end" if i == last and last > 0 else "middle"
        x = left + (i + {"start": 0.0, "end": 1.0, "middle": 0.5}[anchor]) * span
        out.append(_text(x, bottom + 13, labels[i][:18], "tick", anchor))
    return "".join(out)


# --- a statistic against its thresholds -----------------------------------------------


@dataclass(frozen=True)
class Mark:
    """A vertical line on a gauge: a threshold with its name."""

    name: str
    value: float
    cls: str


def gauge(value: float, marks: Sequence[Mark], *, drifted: bool, title: str, desc: str) -> str:
    """A horizontal bar for ``value`` (vermillion when drifted, green when not) with the
    thresholds as labelled vertical lines, on a scale from 0 to a bit past the largest."""
    width, height, left, right = 320, 54, 4, 316
    high = max([value, *(m.value for m in marks), 1e-12]) * 1.15
    scale = (right - left) / high
    colour = "drift" if drifted else "ok"
    parts = [
        f'<rect class="track" x="{left}" y="8" width="{right - left}" height="14"/>',
        f'<rect class="bar value {colour}" x="{left}" y="8" '
        f'width="{_f(value * scale)}" height="14"/>',
    ]
    for i, m in enumerate(marks):
        x = left + m.value * scale
        parts.append(f'<path class="mark {m.cls}" d="M{_f(x)} 3V27"/>')
        anchor = "end" if x > width / 2 else "start"
        y = 39 + 12 * (i % 2)  # alternate rows: close thresholds keep readable names
        parts.append(_text(x + (-2 if anchor == "end" else 2), y, m.name, m.cls, anchor))
    return svg("gauge", width, height, title, desc, "".join(parts))


# --- confusion matrix -------------------------------------------------------------------


def heatmap(classes: Sequence[str], counts: Sequence[Sequence[int]], *, title: str) -> str:
    """Confusion counts (rows actual, columns predicted), each cell shaded by its share
    of its row (the recall of the diagonal), one ``rect.cell`` per cell."""
    k = len(classes)
    cell, left, top = min(48, 240 // max(k, 1)), 70, 30
    width, height = left + k * cell + 4, top + k * cell + 4
    parts = [_text(left + k * cell / 2, 10, "predicted", "tick")]
    parts.append(
        f'<text class="tick" transform="translate(12 {_f(top + k * cell / 2)}) rotate(-90)" '
        'text-anchor="middle">actual</text>'
    )
    descs = []
    for i, row in enumerate(counts):
        total = sum(row)
        parts.append(_text(left - 4, top + (i + 0.6) * cell, classes[i][:10], "tick", "end"))
        for j, n in enumerate(row):
            share = n / total if total else 0.0
            level = min(int(share * 5), 4)
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<rect class="cell l{level}" x="{x}" y="{y}" width="{cell}" height="{cell}">'
                f"<title>actual {escape(classes[i])}, predicted {escape(classes[j])}: {n} "
                f"({percent(share)} of the row)</title></rect>"
            )
            parts.append(_text(x + cell / 2, y + cell * 0.6, str(n), f"count l{level}"))
            descs.append(f"actual {classes[i]} predicted {classes[j]}: {n}")
    for j, name in enumerate(classes):
        parts.append(_text(left + (j + 0.5) * cell, top - 4, name[:8], "tick"))
    desc = "Confusion counts: " + "; ".join(descs)
    return svg("confusion", width, height, title, desc, "".join(parts), cells=str(k * k))


# --- curves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line of a curve chart; ``points`` draws a marker per point."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    cls: str
    points: bool = False


def curves(
    series: Sequence[Series], *, xlabel: str, ylabel: str, title: str, desc: str, kind: str
) -> str:
    """Lines on the unit square with the diagonal dashed (chance for ROC, perfect
    calibration for a reliability curve)."""
    size, left, bottom = 220, 30, 190
    span = bottom - 10

    def xy(x: float, y: float) -> str:
        return f"{_f(left + x * span)},{_f(bottom - y * span)}"

    parts = [
        f'<path class="axis" d="M{left} 10V{bottom}H{left + span}"/>',
        f'<path class="diagonal" d="M{xy(0, 0)}L{xy(1, 1)}"/>',
        _text(left + span / 2, bottom + 22, xlabel, "tick"),
        _text(left - 4, bottom, "0", "tick", "end"),
        _text(left - 4, 16, "1", "tick", "end"),
        _text(left + span, bottom + 11, "1", "tick"),
        f'<text class="tick" transform="translate(10 {bottom / 2 + 10}) rotate(-90)" '
        f'text-anchor="middle">{escape(ylabel)}</text>',
    ]
    for s in series:
        coords = " ".join(xy(x, y) for x, y in zip(s.x, s.y, strict=True))
        parts.append(f'<polyline class="line {s.cls}" points="{coords}"/>')
        if s.points:
            parts += [
                f'<circle class="point {s.cls}" cx="{_f(left + x * span)}" '
                f'cy="{_f(bottom - y * span)}" r="3"/>'
                for x, y in zip(s.x, s.y, strict=True)
            ]
    return svg(kind, size + 10, size + 10, title, desc, "".join(parts), lines=str(len(series)))
