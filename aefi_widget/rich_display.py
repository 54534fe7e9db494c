"""Rich notebook display: the HTML a result or a job shows as the last expression of a cell.

A result draws what its static snapshot (:mod:`aefi_widget.snapshot_html`) draws: title,
settings line, the top bars with their 95 % intervals and the head of the summary table, every
name escaped. It is cheap at any size: the chart shows ``top`` features and the table ``rows``
(the full table stays one ``.summary()`` away), so the cost is the summary's sort, not the page.

The markup is a fragment inside the notebook's own page, so its CSS is scoped to the
``aefi-repr`` class and uses no heading elements (they would land in JupyterLab's table of
contents). Colours come from JupyterLab's theme variables (``--jp-*``), with light and dark
fallbacks through ``prefers-color-scheme`` for front ends without them (nbviewer, VS Code,
an exported page).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from aefi_widget.snapshot_html import snapshot_parts

if TYPE_CHECKING:
    from aefi_widget.result import ImportanceResult

__all__ = ["job_html", "result_html"]

# Bars drawn and table rows listed by default: what fits a notebook cell without scrolling far.
CHART_TOP, TABLE_ROWS = 20, 10

_CSS = """
.aefi-repr { --aefi-fg: var(--jp-content-font-color1, #1a1a1a);
  --aefi-muted: var(--jp-content-font-color2, #5f6368);
  --aefi-grid: var(--jp-border-color2, #dadce0); --aefi-bar: #1f77b4;
  --aefi-row: var(--jp-layout-color2, #f5f5f5); --aefi-track: var(--jp-layout-color3, #dadce0);
  color: var(--aefi-fg); font-variant-numeric: tabular-nums; max-width: 980px; }
@media (prefers-color-scheme: dark) {
  .aefi-repr { --aefi-fg: var(--jp-content-font-color1, #e8eaed);
    --aefi-muted: var(--jp-content-font-color2, #9aa0a6);
    --aefi-grid: var(--jp-border-color2, #3c4043); --aefi-bar: #5aa0d8;
    --aefi-row: var(--jp-layout-color2, #1e1e1e); --aefi-track: var(--jp-layout-color3, #3c4043); }
}
body[data-jp-theme-light="false"] .aefi-repr, body.vscode-dark .aefi-repr { --aefi-bar: #5aa0d8; }
body[data-jp-theme-light="true"] .aefi-repr, body.vscode-light .aefi-repr { --aefi-bar: #1f77b4; }
.aefi-repr .aefi-title { font-size: 1.15em; font-weight: 600; }
.aefi-repr .sub, .aefi-repr .note, .aefi-repr th, .aefi-repr dt { color: var(--aefi-muted); }
.aefi-repr dl.header { display: flex; flex-wrap: wrap; gap: 2px 20px; margin: 6px 0 8px; }
.aefi-repr dl.header div { display: flex; gap: 6px; }
/* JupyterLab's rendered-HTML rules float and indent dt/dd: reset them inside the header. */
.aefi-repr dl.header dt, .aefi-repr dl.header dd { float: none; width: auto; margin: 0;
  padding: 0; text-align: left; }
.aefi-repr dl.header dd { font-weight: 600; }
.aefi-repr svg { max-width: 100%; height: auto; }
.aefi-repr svg text { fill: var(--aefi-fg); font-size: 12px; font-family: inherit; }
.aefi-repr svg .tick text, .aefi-repr svg .axis-label { fill: var(--aefi-muted); }
.aefi-repr svg .grid { stroke: var(--aefi-grid); }
.aefi-repr svg .zero { stroke: var(--aefi-muted); }
.aefi-repr svg .bar { fill: var(--aefi-bar); }
.aefi-repr svg .ci { stroke: var(--aefi-fg); stroke-width: 1.5; }
.aefi-repr table { border-collapse: collapse; margin-top: 6px; }
.aefi-repr th, .aefi-repr td { padding: 2px 10px; text-align: right; }
.aefi-repr td.name, .aefi-repr th.name { text-align: left; max-width: 420px;
  overflow-wrap: anywhere; }
.aefi-repr tbody tr:nth-child(even) { background: var(--aefi-row); }
.aefi-repr .aefi-track { display: inline-block; width: 240px; height: 8px; border-radius: 4px;
  background: var(--aefi-track); vertical-align: middle; overflow: hidden; }
.aefi-repr .aefi-fill { display: block; height: 100%; background: var(--aefi-bar); }
"""


def result_html(result: ImportanceResult, *, top: int = CHART_TOP, rows: int = TABLE_ROWS) -> str:
    """The HTML fragment of ``result`` for a notebook (see :meth:`ImportanceResult._repr_html_`).

    Parameters
    ----------
    result : ImportanceResult
        Complete or partial.
    top, rows : int
        Features drawn in the bar chart and rows of the summary table, by rank.

    Returns
    -------
    str
        One ``<div class="aefi-repr">`` with its own scoped ``<style>``.
    """
    parts = snapshot_parts(result, top=top, table_rows=rows)
    caption = f'<div class="sub">{parts["caption"]}</div>' if parts["caption"] else ""
    return (
        f'<div class="aefi-repr" data-testid="aefi-repr-result"><style>{_CSS}</style>'
        f'<div class="aefi-title">{parts["title"]}</div><div class="sub">{parts["subtitle"]}</div>'
        f"{parts['header']}{caption}{parts['chart']}{parts['tables']}</div>"
    )


def _duration(seconds: float) -> str:
    """``seconds`` as "45 s", "12 min 5 s" or "2 h 3 min"."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def job_html(status: str, progress: Any, method: str, error: BaseException | None) -> str:
    """The HTML fragment of a job: method, state, a progress bar, evaluations, time and ETA.

    Parameters
    ----------
    status : str
        ``Job.status``.
    progress : aefi_widget.job.JobProgress
        ``Job.progress`` (not imported here: job.py imports this module).
    method : str
        The method computed (``job.snapshot().method``).
    error : BaseException or None
        ``Job.error``, shown (escaped, first 500 characters) when set.
    """
    facts = [
        f"{progress.done:,} of {progress.total:,} evaluations ({progress.fraction:.0%})",
        f"rounds {progress.rounds_done} of {progress.n_repeats}",
        f"elapsed {_duration(progress.elapsed_s)}",
    ]
    if progress.eta_s is not None and status in ("running", "paused"):
        facts.append(f"about {_duration(progress.eta_s)} left")
    failure = ""
    if error is not None:
        failure = f'<div class="note">error: {html.escape(repr(error)[:500])}</div>'
    percent = round(100 * progress.fraction, 1)
    return (
        f'<div class="aefi-repr" data-testid="aefi-repr-job" data-status="{status}" '
        f'data-fraction="{progress.fraction!r}"><style>{_CSS}</style>'
        f'<div><span class="aefi-title">aefi job · {html.escape(method)}</span> '
        f'<span class="sub">{status}</span></div>'
        f'<div><span class="aefi-track" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{percent}"><span class="aefi-fill" style="width: {percent}%"></span>'
        f'</span> <span class="sub">{" · ".join(facts)}</span></div>{failure}'
        '<div class="note">As of this display; <code>job.result()</code> waits for the end.</div>'
        "</div>"
    )
