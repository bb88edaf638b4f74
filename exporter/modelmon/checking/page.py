"""The shell of a self-contained HTML report: document, inline stylesheet, footer.

No script, no font, no image file and no link to anything outside the page: the file
opens offline and leaves no trace on a network. The layout is one column on a phone and
a grid of cards on wider screens; printing keeps the colours and never cuts a card.
Chart colours follow :mod:`modelmon.checking.charts` (Okabe-Ito).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from modelmon.checking.render import number

STYLE = """
:root{--ink:#1a1a1a;--muted:#555;--line:#ccc;--ref:#0072B2;--cur:#E69F00;--drift:#D55E00;
--ok:#009E73;--floor:#CC79A7}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:#fafafa;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:80rem;margin:0 auto}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;margin:1.2rem 0 .5rem}
h3{font-size:1rem;margin:0 0 .4rem;overflow-wrap:anywhere}
h3 small{color:var(--muted);font-weight:400}
section.summary,section.performance,section.estimated{background:#fff;border:1px solid var(--line);
border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem}
section.summary.fail{border-left:8px solid var(--drift)}
section.summary.pass{border-left:8px solid var(--ok)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:.3rem 0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;background:var(--muted);
font-size:.85em;font-weight:600}
.fail .badge,.badge.drift{background:var(--drift)}.pass .badge,.badge.ok{background:var(--ok)}
td.fail{color:var(--drift);font-weight:600}td.pass{color:var(--ok);font-weight:600}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.3rem 0 .6rem}
th,td{text-align:left;padding:.15rem .6rem .15rem 0;border-bottom:1px solid #eee;vertical-align:top}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,21rem),1fr));gap:.8rem}
.grid.charts{grid-template-columns:repeat(auto-fill,minmax(min(100%,15rem),1fr))}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem;margin:0;
break-inside:avoid}
.card.drift{border-top:5px solid var(--drift)}.card.ok{border-top:5px solid var(--ok)}
.kv{font-size:.9em}figcaption,.legend{font-size:.85em;color:var(--muted);margin:.2rem 0}
svg.chart{display:block;width:100%;height:auto;max-width:26rem}
svg text{font-size:10px;fill:var(--ink)}svg .tick{fill:var(--muted)}
.axis{fill:none;stroke:#888}.bar.ref{fill:var(--ref);fill-opacity:.3;stroke:var(--ref)}
.bar.cur{fill:var(--cur)}.track{fill:#eee}.bar.drift{fill:var(--drift)}.bar.ok{fill:var(--ok)}
.mark{stroke-width:2}.mark.effect{stroke:#000;stroke-dasharray:4 2}.mark.floor{stroke:var(--floor);
stroke-dasharray:1 2}.mark.effective{stroke:#000}
text.floor{fill:#8a3d6b}
.key{display:inline-block;width:.8em;height:.8em;margin:0 .25em 0 .5em;vertical-align:-.05em}
.key.ref{background:rgba(0,114,178,.3);border:1px solid var(--ref)}.key.cur{background:var(--cur)}
.cell.l0{fill:#f0f6fb}.cell.l1{fill:#c6dbef}.cell.l2{fill:#6baed6}.cell.l3{fill:#2171b5}
.cell.l4{fill:#08306b}text.count{font-size:11px}text.l3,text.l4{fill:#fff}
.line{fill:none;stroke-width:2}.line.roc{stroke:var(--ref)}.line.calibration{stroke:var(--drift)}
.point{fill:var(--drift)}.diagonal{stroke:#999;stroke-dasharray:4 3}
footer{color:var(--muted);font-size:.8em;margin:1.5rem 0 .5rem}
@media (max-width:40rem){body{padding:.5rem;font-size:14px}}
@media print{body{background:#fff;padding:0;font-size:10pt}.card,section{break-inside:avoid}
.grid{grid-template-columns:repeat(2,1fr)}a{color:inherit;text-decoration:none}}
"""


def page(title: str, body: str, footer: str = "") -> str:
    """A complete HTML document around ``body`` (HTML), with the report stylesheet."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # Forbid every fetch: the report must open offline and call nothing.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<footer>{escape(footer)}</footer></main></body></html>\n"
    )


def cell(value: float | None, field: str) -> str:
    """A table cell showing ``value`` (four significant digits) marked ``data-field``."""
    return f'<td data-field="{escape(field)}">{number(value)}</td>'


def td(text: str) -> str:
    """A table cell of escaped text."""
    return f"<td>{escape(text)}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table (scrolling sideways on narrow screens) from ready ``<td>`` cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f'<div class="scroll"><table class="{cls}"><tr>{head}</tr>{body}</table></div>'
