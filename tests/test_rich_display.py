"""Rich notebook display: a result draws its top bars and summary head (names escaped, CSS
scoped to the fragment), a job its state and progress; both keep their text/plain."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from bench_scripts import load_benchmark
from IPython.core.formatters import DisplayFormatter
from widget_fakes import FakeEngine

from aefi_widget import Job
from aefi_widget.result import ImportanceResult

HOSTILE = "<img src=x onerror=alert(1)>"


class _Fragment(HTMLParser):
    """Tags, text, chart rows (data-feature) and table cells (data-column, data-value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.chart: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.styles: list[str] = []
        self._in_style = False
        self._in_name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self._in_style = tag == "style"
        if tag == "g" and "data-feature" in found:
            self.chart.append(found["data-feature"] or "")
        if tag == "tr" and self.tags.count("tbody"):
            self.rows.append({})
        if tag == "td" and found.get("class") == "name":
            self._in_name = True
        if tag == "td" and "data-column" in found and self.rows:
            self.rows[-1][found["data-column"] or ""] = found["data-value"] or ""

    def handle_endtag(self, tag: str) -> None:
        self._in_style = self._in_style and tag != "style"
        self._in_name = self._in_name and tag != "td"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
            return
        self.text.append(data)
        if self._in_name and self.rows:
            self.rows[-1]["name"] = data


def _parse(markup: str) -> _Fragment:
    page = _Fragment()
    page.feed(markup)
    page.close()
    return page


def _result(n_features: int = 40, n_repeats: int = 5, evaluated: int | None = None):
    rng = np.random.default_rng(1)
    names = [f"gene_{i}" for i in range(n_features)]
    names[7] = HOSTILE
    values = rng.exponential(1.0, size=(n_features, 1)) + rng.normal(
        0.0, 0.1, size=(n_features, n_repeats)
    )
    values[7] += 100.0  # the hostile name ranks first, so it is drawn and listed
    if evaluated is not None:
        values[evaluated:] = np.nan
    return ImportanceResult(
        names,
        ["out_0", "out_1"],
        values,
        baseline_error=0.5,
        settings={"method": "permutation", "metric": "mse", "seed": 0},
        evaluations_done=10,
        evaluations_total=100,
    )


def test_a_hostile_feature_name_is_text_not_markup() -> None:
    page = _parse(_result()._repr_html_())
    assert "img" not in page.tags and "script" not in page.tags
    assert HOSTILE in "".join(page.text)  # shown, as text
    assert page.chart[0] == HOSTILE and page.rows[0]["name"] == HOSTILE


def test_the_display_draws_the_top_bars_and_the_summary_head() -> None:
    result = _result()
    page = _parse(result._repr_html_())
    assert page.chart == result.top(20)
    expected = result.summary().head(10)
    assert [row["name"] for row in page.rows] == list(expected.index)
    for row, (_name, numbers) in zip(page.rows, expected.iterrows(), strict=True):
        assert float(row["mean"]) == numbers["mean"]  # exact (repr of the float64)
        assert float(row["ci_low"]) == numbers["ci_low"]
        assert float(row["ci_high"]) == numbers["ci_high"]
        assert int(float(row["rank"])) == numbers["rank"]
    text = " ".join(page.text)
    assert "Permutation importance" in text and "First 10 of 40 features by rank" in text
    assert "Top 20 of 40 features" in text


def test_a_partial_result_charts_only_evaluated_features() -> None:
    result = _result(n_features=40, evaluated=12)
    page = _parse(result._repr_html_())
    assert len(page.chart) == 12 and set(page.chart) <= set(result.feature_names[:12])
    text = " ".join(page.text)
    assert "Top 12 of 12 evaluated features" in text and "partial result" in text


def test_the_fragment_has_no_headings_and_its_css_stays_inside_it() -> None:
    page = _parse(_result()._repr_html_())
    assert not {"h1", "h2", "h3", "html", "body", "script"} & set(page.tags)
    css = re.sub(r"@media[^{]*\{", "", "".join(page.styles))
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors and all(".aefi-repr" in s for s in selectors), selectors
    assert "prefers-color-scheme: dark" in "".join(page.styles)  # light and dark
    assert "var(--jp-content-font-color1" in "".join(page.styles)  # JupyterLab's theme


def test_ipython_formats_both_html_and_the_text_repr() -> None:
    result = _result()
    data, _metadata = DisplayFormatter().format(result)
    assert data["text/plain"] == repr(result)
    assert data["text/html"].startswith('<div class="aefi-repr"')


def test_a_job_shows_its_state_and_progress() -> None:
    job = Job(FakeEngine(n_features=10, n_repeats=2, chunk=5))
    idle = _parse(job._repr_html_())
    assert "idle" in idle.text and "0 of 160 evaluations (0%)" in " ".join(idle.text)
    job.start().result(timeout=10)
    markup = job._repr_html_()
    done = " ".join(_parse(markup).text)
    assert 'data-status="done"' in markup and "160 of 160 evaluations (100%)" in done
    assert "aefi job · permutation" in done
    data, _metadata = DisplayFormatter().format(job)
    assert data["text/plain"] == repr(job) and "status='done'" in data["text/plain"]


def test_a_failed_job_shows_its_error_escaped() -> None:
    class Hostile(FakeEngine):
        def increments(self, resume=None):
            raise ValueError(HOSTILE)
            yield  # a generator

    job = Job(Hostile())
    with pytest.raises(ValueError):
        job.start().result(timeout=10)
    page = _parse(job._repr_html_())
    assert "img" not in page.tags and HOSTILE in " ".join(page.text)


def test_the_display_benchmark_runs_in_miniature(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_benchmark("bench_repr").main(["--features", "50", "--repeats", "1"])
    assert rows[0]["features"] == 50 and rows[0]["repr_ms"] > 0
    assert "_repr_html_" in capsys.readouterr().out
