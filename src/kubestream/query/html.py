"""The ``timeline --html`` page: one self-contained file, readable offline.

Everything is inlined (style, a few lines of script for the table filter, the charts as SVG
drawn here), and a Content-Security-Policy of ``default-src 'none'`` forbids the page any
request at all, so it opens the same from a laptop on a plane as from the incident channel.

Two charts sit above the table: event records per minute stacked by reason, and log lines per
minute stacked by pod incarnation. Every bar segment carries its series, minute and count in
``data-`` attributes (and a tooltip), so the figures can be checked against the table.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from kubestream.query.output import cell_text
from kubestream.query.timeline import COLUMNS

_PALETTE: Final = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                   "#9c755f", "#bab0ac", "#1f77b4", "#d62728")
_MAX_SERIES: Final = 11
"""More series than colours are folded into "other"."""
_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 960, 220, 48, 28, 10


def _minute(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    when = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%MZ")


def per_minute(rows: Sequence[Sequence[Any]], source: str, series_column: str) -> dict[str, Counter[str]]:
    """Rows of ``source`` (event/log) per minute, counted by the value of ``series_column``."""
    at_source, at_series, at_time = COLUMNS.index("source"), COLUMNS.index(series_column), COLUMNS.index("time")
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        minute = _minute(row[at_time])
        if row[at_source] != source or minute is None:
            continue
        counts.setdefault(minute, Counter())[str(row[at_series] or "(none)")] += 1
    return dict(sorted(counts.items()))


def _fold(counts: dict[str, Counter[str]]) -> tuple[dict[str, Counter[str]], list[str]]:
    totals: Counter[str] = Counter()
    for c in counts.values():
        totals.update(c)
    keep = [name for name, _ in totals.most_common(_MAX_SERIES)]
    if len(totals) <= _MAX_SERIES:
        return counts, keep
    folded = {m: Counter({(k if k in keep else "other"): 0 for k in c}) for m, c in counts.items()}
    for m, c in counts.items():
        for k, n in c.items():
            folded[m][k if k in keep else "other"] += n
    return folded, [*keep, "other"]


def chart_svg(title: str, chart_id: str, counts: dict[str, Counter[str]]) -> str:
    """A stacked bar chart (one bar per minute) as inline SVG."""
    esc = html.escape
    if not counts:
        return f'<figure id="{chart_id}"><figcaption>{esc(title)}</figcaption><p class="empty">nothing in this window</p></figure>'
    counts, series = _fold(counts)
    colour = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(series)}
    minutes = list(counts)
    peak = max(sum(c.values()) for c in counts.values())
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - _TOP
    step = plot_w / len(minutes)
    bar_w = max(step * 0.8, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
             f'aria-label="{esc(title)}">',
             f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_WIDTH - 8}" y2="{_TOP + plot_h}" class="axis"/>',
             f'<text x="{_LEFT - 6}" y="{_TOP + 10}" class="tick" text-anchor="end">{peak}</text>',
             f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" class="tick" text-anchor="end">0</text>']
    label_every = max(1, len(minutes) // 8)
    for i, minute in enumerate(minutes):
        x = _LEFT + i * step + (step - bar_w) / 2
        y: float = _TOP + plot_h
        for name in series:
            n = counts[minute].get(name, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect class="point" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colour[name]}" data-series="{esc(name)}" data-minute="{minute}" data-count="{n}">'
                         f'<title>{esc(minute)} {esc(name)}: {n}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{_HEIGHT - 8}" class="tick" text-anchor="middle">'
                         f'{minute[11:16]}</text>')
    parts.append("</svg>")
    legend = "".join(f'<li><span class="swatch" style="background:{colour[n]}"></span>{esc(n)}</li>' for n in series)
    return (f'<figure id="{chart_id}"><figcaption>{esc(title)}</figcaption>{"".join(parts)}'
            f'<ul class="legend">{legend}</ul></figure>')


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em} .meta{color:#666;margin:0 0 1em}
figure{margin:0 0 1.5em} figcaption{font-weight:600;margin-bottom:.3em}
svg{width:100%;max-width:960px;height:auto;background:#fafafa;border:1px solid #eee}
.axis{stroke:#999} .tick{font-size:11px;fill:#666}
.legend{list-style:none;padding:0;margin:.3em 0;display:flex;flex-wrap:wrap;gap:.2em 1em}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{text-align:left;padding:2px 6px;vertical-align:top}
th{position:sticky;top:0;background:#fff;border-bottom:2px solid #ccc} tr:nth-child(even){background:#f6f6f6}
td.message{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace}
tr.Warning td,tr.stderr td{color:#a11} #filter{margin:.5em 0;padding:3px 6px;width:24em}
.empty{color:#888}
"""

_SCRIPT = """
(function () {
  var box = document.getElementById('filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#timeline tbody tr'));
  var shown = document.getElementById('shown');
  box.addEventListener('input', function () {
    var needle = box.value.toLowerCase(), n = 0;
    rows.forEach(function (row) {
      var hit = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.hidden = !hit;
      if (hit) { n += 1; }
    });
    shown.textContent = String(n);
  });
}());
"""


def render_page(title: str, subtitle: str, rows: Sequence[Sequence[Any]]) -> str:
    """The whole HTML document of a timeline."""
    esc = html.escape
    events = chart_svg("Event records per minute, by reason", "events-chart", per_minute(rows, "event", "reason"))
    logs = chart_svg("Log lines per minute, by pod", "logs-chart", per_minute(rows, "log", "object"))
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    at_severity = COLUMNS.index("severity")
    body = "".join(
        f'<tr class="{esc(str(row[at_severity] or ""))}">'
        + "".join(f'<td class="{c}">{esc(cell_text(v))}</td>' for c, v in zip(COLUMNS, row, strict=True))
        + "</tr>"
        for row in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{_STYLE}</style></head>
<body><h1>{esc(title)}</h1><p class="meta">{esc(subtitle)}</p>
{events}
{logs}
<input id="filter" type="search" placeholder="filter rows" aria-label="filter rows">
<span><span id="shown">{len(rows)}</span> of {len(rows)} rows</span>
<table id="timeline"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""
