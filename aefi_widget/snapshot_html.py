"""A static, self-contained HTML snapshot of a result: header, bar chart with CIs, summary table.

The page needs no kernel, no script and no network (no CDN, no fonts, no images): one file that
opens in any browser, attaches to an e-mail, and survives a notebook without widget state. The
chart is inline SVG built here; colours follow the reader's light or dark preference through
``prefers-color-scheme``. Every name is escaped (names come from user data and may hold
markup), and characters that XML forbids are shown as U+FFFD, so the SVG also parses as XML.

Exact numbers travel in ``data-*`` attributes (``repr`` of the float64), the text shows four
significant digits, as the dashboard does.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from aefi_widget.display_labels import header_fields, page_labels
from aefi_widget.engine.inputs import check_int
from aefi_widget.result import ImportanceResult
from aefi_widget.result_summary import ranking_order, summary_columns

__all__ = ["format_number", "snapshot_parts", "write_html"]

# Chart geometry in CSS px: name column, value area, one row per feature.
_LABEL_W, _PLOT_W, _ROW_H, _TOP, _BOTTOM, _RIGHT = 250, 440, 22, 28, 44, 24
_LABEL_CHARS = 30  # longer names are shortened in the middle; the full name is the row's <title>
# Characters XML 1.0 forbids even as references (C0 controls but tab/newline/CR, surrogates...).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_CSS = """
:root { color-scheme: light dark; --fg: #1a1a1a; --muted: #5f6368; --bg: #ffffff;
  --grid: #dadce0; --bar: #1f77b4; --ci: #1a1a1a; --row: #f5f5f5; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e8eaed; --muted: #9aa0a6; --bg: #121212; --grid: #3c4043; --bar: #5aa0d8;
    --ci: #e8eaed; --row: #1e1e1e; }
}
body { margin: 0; padding: 24px; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 980px; }
h1 { font-size: 20px; margin: 0 0 4px; }
.sub, .note, th { color: var(--muted); }
dl.header { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 12px 0 16px; }
dl.header div { display: flex; gap: 6px; }
dl.header dt { color: var(--muted); } dl.header dd { margin: 0; font-weight: 600; }
svg { max-width: 100%; height: auto; }
svg text { fill: var(--fg); font-size: 12px; font-family: inherit; }
svg .tick text, svg .axis-label { fill: var(--muted); }
svg .grid { stroke: var(--grid); } svg .zero { stroke: var(--muted); }
svg .bar { fill: var(--bar); } svg .ci { stroke: var(--ci); stroke-width: 1.5; }
table { border-collapse: collapse; margin-top: 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; text-align: right; }
th { font-weight: 600; border-bottom: 1px solid var(--grid); }
td.name, th.name { text-align: left; max-width: 420px; overflow-wrap: anywhere; }
tbody tr:nth-child(even) { background: var(--row); }
details { margin-top: 12px; } summary { cursor: pointer; color: var(--muted); }
"""

_COLUMNS = (  # (summary column, header text); the share is shown in percent
    ("rank", "rank"),
    ("mean", "mean"),
    ("ci_low", "95 % CI low"),
    ("ci_high", "95 % CI high"),
    ("normalized", "share %"),
    ("n_done", "n"),
)


def format_number(value: float) -> str:
    """Four significant digits, plain decimals from 1e-5 to 1e9, else scientific; "–" for NaN."""
    if not math.isfinite(value):
        return "–" if math.isnan(value) else ("∞" if value > 0 else "−∞")
    if value == 0:
        return "0"
    if 1e-5 <= abs(value) < 1e9:
        text = np.format_float_positional(
            value, precision=4, unique=False, fractional=False, trim="-"
        )
        return text.replace("-", "−")
    return f"{value:.3e}".replace("-", "−")


def _text(value: object) -> str:
    """``value`` as text safe in HTML and XML content and quoted attributes."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def _short(name: str, keep: int = _LABEL_CHARS) -> str:
    """``name`` shortened in the middle to ``keep`` characters."""
    if len(name) <= keep:
        return name
    head = (keep - 1) // 2
    return f"{name[:head]}…{name[len(name) - (keep - 1 - head) :]}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` ticks on 1-2-5 steps inside [low, high] (finite; up to +-1.8e308)."""
    raw = high / count - low / count  # never overflows, unlike (high - low) near 1.8e308
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    return [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]


def _chart(table: pd.DataFrame, value_label: str, title: str) -> str:
    """Inline SVG: one bar per row of ``table`` (mean) with its 95 % CI as a line."""
    mean, low, high = (table[c].to_numpy(dtype=np.float64) for c in ("mean", "ci_low", "ci_high"))
    # NaN CIs (a single estimate) fall back to the mean, so the domain covers every bar.
    ends = np.concatenate(
        [mean, np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high)]
    )
    ends = ends[np.isfinite(ends)]  # an interval near 1.8e308 can overflow to inf
    lo, hi = min(0.0, float(np.min(ends, initial=0.0))), max(0.0, float(np.max(ends, initial=0.0)))
    if hi - lo <= 0:
        hi = lo + 1.0
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def x(value: float) -> float:
        # Halved first: value - lo overflows for values near +-1.8e308, which a file may hold.
        value = min(max(value, lo), hi)
        return round(_LABEL_W + (value / 2 - lo / 2) / (hi / 2 - lo / 2) * _PLOT_W, 2)

    rows = len(table)
    height = _TOP + rows * _ROW_H + _BOTTOM
    width = _LABEL_W + _PLOT_W + _RIGHT
    axis_y = _TOP + rows * _ROW_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-testid="aefi-snapshot-chart">',
        f"<title>{_text(title)}</title>",
    ]
    for tick in ticks:
        parts.append(
            f'<g class="tick"><line class="grid" x1="{x(tick)}" x2="{x(tick)}" y1="{_TOP}" '
            f'y2="{axis_y}"/><text x="{x(tick)}" y="{axis_y + 16}" text-anchor="middle">'
            f"{_text(format_number(tick))}</text></g>"
        )
    parts.append(f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="{_TOP - 4}" y2="{axis_y}"/>')
    for i, (name, m, lo_ci, hi_ci) in enumerate(
        # Python floats: their repr is the exact value, without numpy's "np.float64(...)".
        zip(table.index, mean.tolist(), low.tolist(), high.tolist(), strict=True)
    ):
        top = _TOP + i * _ROW_H
        mid = top + _ROW_H / 2
        left, right = sorted((x(0), x(m)))
        tip = (
            f"{name}: {format_number(m)} (95 % CI {format_number(lo_ci)} to {format_number(hi_ci)})"
        )
        ci = ""
        if math.isfinite(lo_ci) and math.isfinite(hi_ci):
            ci = f'<line class="ci" x1="{x(lo_ci)}" x2="{x(hi_ci)}" y1="{mid}" y2="{mid}"/>'
        parts.append(
            f'<g class="row" data-feature="{_text(name)}" data-mean="{m!r}" '
            f'data-ci-low="{lo_ci!r}" data-ci-high="{hi_ci!r}"><title>{_text(tip)}</title>'
            f'<text x="{_LABEL_W - 8}" y="{mid + 4}" text-anchor="end">{_text(_short(name))}</text>'
            f'<rect class="bar" x="{left}" y="{top + 4}" width="{round(right - left, 2)}" '
            f'height="{_ROW_H - 8}"/>{ci}</g>'
        )
    parts.append(
        f'<text class="axis-label" x="{_LABEL_W + _PLOT_W / 2}" y="{height - 6}" '
        f'text-anchor="middle">{_text(value_label)} — bars: mean, lines: 95 % CI</text></svg>'
    )
    return "".join(parts)


def _table(table: pd.DataFrame, value_label: str) -> str:
    """The summary rows as an HTML table; exact values in ``data-value``."""
    head = "".join(f'<th data-column="{c}">{_text(t)}</th>' for c, t in _COLUMNS)
    lines = [
        f'<table data-testid="aefi-snapshot-table"><caption class="note">{_text(value_label)}'
        f'</caption><thead><tr><th class="name">feature</th>{head}</tr></thead><tbody>'
    ]
    # Column arrays, not iterrows: 20,000 rows must take well under a second.
    columns = [(c, table[c].to_numpy()) for c, _title in _COLUMNS]
    for i, name in enumerate(table.index):
        cells = []
        for column, values in columns:
            value = values[i]
            if column in ("rank", "n_done"):
                shown = f"{int(value):,}"
            elif column == "normalized":
                shown = format_number(100 * value)
            else:
                shown = format_number(value)
            cells.append(
                f'<td data-column="{column}" data-value="{float(value)!r}">{_text(shown)}</td>'
            )
        lines.append(f'<tr><td class="name">{_text(name)}</td>{"".join(cells)}</tr>')
    lines.append("</tbody></table>")
    return "".join(lines)


def _header(result: ImportanceResult, evaluated: int) -> str:
    """The header numbers as a definition list (what the dashboard's header line shows)."""
    fields: dict[str, object] = dict(header_fields(result))
    fields["features"] = f"{result.n_features:,}"
    fields["evaluations"] = f"{result.evaluations_done:,} of {result.evaluations_total:,}"
    if evaluated < result.n_features:
        fields["evaluated"] = f"{evaluated:,} of {result.n_features:,} features"
    items = []
    for key, value in fields.items():
        shown = format_number(value) if isinstance(value, float) else str(value)
        items.append(
            f'<div data-field="{_text(key)}" data-value="{_text(repr(value))}">'
            f"<dt>{_text(key)}</dt><dd>{_text(shown)}</dd></div>"
        )
    return f'<dl class="header" data-testid="aefi-snapshot-header">{"".join(items)}</dl>'


def _ranked_rows(result: ImportanceResult, count: int | None) -> tuple[pd.DataFrame, int]:
    """The first ``count`` rows of ``result.summary()`` (all when None) and how many features
    have an estimate. Built from the summary's numpy columns for those rows only: at 20,000
    features, the full table's pandas index of names costs more than all the drawing."""
    columns = summary_columns(result.importances, result.race_values())
    order = ranking_order(columns["mean"])  # features without an estimate last
    picked = order if count is None else order[:count]
    table = pd.DataFrame(
        {name: values[picked] for name, values in columns.items()},
        index=pd.Index([result.feature_names[i] for i in picked], dtype=object),
    )
    table.insert(5, "rank", np.arange(1, len(picked) + 1, dtype=np.int64))
    return table, int(np.count_nonzero(columns["n_done"]))


def snapshot_parts(result: ImportanceResult, *, top: int, table_rows: int | None) -> dict[str, str]:
    """The pieces of a snapshot as HTML, shared by :func:`write_html` and the notebook's rich
    display, which wrap them in their own headings: ``title``, ``subtitle`` (value label,
    state, method), ``header`` (the settings as a definition list), ``caption`` (what the chart
    shows, "" without one), ``chart`` (inline SVG, or a note) and ``tables``.

    Parameters
    ----------
    result : ImportanceResult
        The result to show, complete or partial (only evaluated features are charted).
    top : int
        Features drawn in the bar chart, by rank (1 or more).
    table_rows : int or None
        Rows of the summary table: None lists every feature (the charted ones first, the
        others in a collapsed section); a number lists that many by rank and says how many
        more there are (what keeps a notebook's display cheap at 20,000 features).
    """
    labels = page_labels(result)
    wanted = None if table_rows is None else max(top, table_rows)
    table, n_evaluated = _ranked_rows(result, wanted)  # by rank: evaluated features first
    shown = table.iloc[: min(top, n_evaluated)]
    title, value_label = labels["title"], labels["value_label"]
    state = "complete" if result.complete else "partial result"
    caption, chart = "", '<p class="note">No feature has an estimate yet.</p>'
    if len(shown):
        what = "evaluated features" if n_evaluated < result.n_features else "features"
        caption = f"Top {len(shown)} of {n_evaluated:,} {what}"
        chart = _chart(shown, value_label, title)
    if table_rows is None:
        rest = table.iloc[len(shown) :]
        tables = _table(table.iloc[: len(shown)], value_label)
        if len(rest):
            tables += (
                f"<details><summary>The other {len(rest):,} features</summary>"
                f"{_table(rest, value_label)}</details>"
            )
    else:
        tables = _table(table.iloc[:table_rows], value_label)
        if result.n_features > table_rows:
            tables += (
                f'<p class="note">First {table_rows} of {result.n_features:,} features by rank; '
                "<code>.summary()</code> has them all.</p>"
            )
    return {
        "title": _text(title),
        "subtitle": f"{_text(value_label)} · {_text(state)} · method {_text(labels['method'])}",
        "header": _header(result, n_evaluated),
        "caption": caption,
        "chart": chart,
        "tables": tables,
    }


def write_html(result: ImportanceResult, path: str | os.PathLike[str], *, top: int = 20) -> Path:
    """Write a static HTML snapshot of ``result`` to ``path`` and return its path.

    Parameters
    ----------
    result : ImportanceResult
        The result to show, complete or partial (only evaluated features are charted).
    path : str or path-like
        The file to write (UTF-8); its folder must exist.
    top : int, default 20
        Features drawn in the bar chart, by rank (1 or more). The table lists every feature:
        the charted ones first, the others in a collapsed section.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    top = check_int(top, "top", 1)
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {target.parent} does not exist")
    parts = snapshot_parts(result, top=top, table_rows=None)
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{parts['title']}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{parts["title"]}</h1><p class="sub">{parts["subtitle"]}</p>{parts["header"]}'
        + (f'<h2 class="sub">{parts["caption"]}</h2>' if parts["caption"] else "")
        + f"{parts['chart']}{parts['tables']}</main></body></html>\n"
    )
    target.write_text(document, encoding="utf-8")
    return target
