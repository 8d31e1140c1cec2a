"""Markup of the run report: one self-contained HTML page, its style inline and no script.

Text is escaped unless it is `Html` (markup built here or an SVG from `report_charts.svg`).

Example:
    >>> table(["feature", "missing"], [["fare", 0], ["<b>", 1.5]])
    '<table><thead><tr><th>feature</th><th>missing</th></tr></thead><tbody><tr><td>fare</td><td class="num">0</td></tr><tr><td>&lt;b&gt;</td><td class="num">1.5</td></tr></tbody></table>'
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any


class Html(str):
    """Markup that is inserted as it is."""


def esc(value: Any) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


def number(value: Any) -> str:
    """4 significant digits for floats, integers as they are, '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          row_classes: Sequence[str] | None = None) -> Html:
    """A table; numbers are right-aligned, a row's class (e.g. ``bad``) highlights it."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and i < len(row_classes) and row_classes[i] else ""
        cells = "".join(
            f'<td class="num">{number(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
            else f"<td>{esc(c)}</td>" for c in row)
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def note(text: Any, kind: str = "info") -> Html:
    """A one-paragraph notice: ``info``, ``ok``, ``warn`` or ``bad``."""
    return Html(f'<p class="note {kind}">{esc(text)}</p>')


def chart(svg_text: str, caption: str = "") -> Html:
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Html(f'<figure class="chart">{svg_text}{caption_html}</figure>')


def heading(text: str, level: int = 3) -> Html:
    return Html(f"<h{level}>{esc(text)}</h{level}>")


def link(href: str, text: str) -> Html:
    return Html(f'<a href="{html.escape(href, quote=True)}">{esc(text)}</a>')


def code(text: Any) -> Html:
    return Html(f"<code>{esc(text)}</code>")


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(p) for p in parts))


@dataclasses.dataclass
class Section:
    """One section of the page: an anchor, a title, and its markup."""

    key: str
    title: str
    body: Html


def page(*, title: str, header: Html, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.key}" class="report-section"><h2>{esc(s.title)}</h2>{s.body}</section>'
                   for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{_STYLE}</style></head>'
            f'<body><header>{header}<nav>{nav}</nav></header><main>{body}</main></body></html>\n')


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#212121;
background:#fafafa;font-size:14px;line-height:1.45}
header{background:#263238;color:#eceff1;padding:14px 24px}
header h1{margin:0 0 4px;font-size:20px}header p{margin:2px 0}header code{color:#263238}
nav{margin-top:8px}nav a{color:#80cbc4;margin-right:14px;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px}
section.report-section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:16px 0;padding:6px 18px 14px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#ffebee}tr.bad td:first-child{border-left:4px solid #c62828}
tr.good td:first-child{border-left:4px solid #2e7d32}tr.muted td{color:#9e9e9e}
.note{padding:6px 10px;border-radius:4px;margin:8px 0}
.note.info{background:#eceff1}.note.ok{background:#e8f5e9;border-left:4px solid #2e7d32}
.note.warn{background:#fff8e1;border-left:4px solid #f9a825}.note.bad{background:#ffebee;border-left:4px solid #c62828}
.verdict{font-size:18px;font-weight:bold;padding:8px 12px;border-radius:4px;display:inline-block}
.verdict.ok{background:#e8f5e9;color:#1b5e20}.verdict.bad{background:#ffebee;color:#b71c1c}
figure.chart{margin:8px 0;overflow-x:auto}figure.chart svg{max-width:none}
code{background:#f5f5f5;padding:0 3px;border-radius:3px;font-size:12px}
.state{font-weight:bold}.state.COMPLETE{color:#2e7d32}.state.CACHED{color:#1565c0}.state.FAILED{color:#c62828}
"""
