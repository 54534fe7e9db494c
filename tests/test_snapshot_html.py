"""Static HTML snapshots: numbers equal the result's summary, the SVG parses, names are escaped,
nothing is fetched from the network, partial results chart only what was evaluated."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from aefi_widget.result import ImportanceResult
from aefi_widget.snapshot_html import format_number, write_html

HOSTILE = (
    "<script>alert(1)</script>",
    '" onmouseover="alert(2)',
    "a & b ]]> </svg>",
    "' single",
    "tab\tand\nnewline",
    "&amp; literally",
    "x" * 300,
    "ctrl\x00\x1b char",
)


def _result(names, importances, **keywords) -> ImportanceResult:
    fields = {
        "feature_names": names,
        "output_names": tuple(f"o{i}" for i in range(3)),
        "importances": np.asarray(importances, dtype=np.float64),
        "baseline_error": 0.123456789,
        "settings": {"method": "permutation", "metric": "mse", "seed": 3, "samples_per_repeat": 50},
        "evaluations_done": 70,
        "evaluations_total": 100,
    }
    fields.update(keywords)
    return ImportanceResult(**fields)


def _random(F: int = 30, R: int = 5, seed: int = 0) -> ImportanceResult:
    rng = np.random.default_rng(seed)
    values = rng.normal(loc=rng.exponential(0.3, size=(F, 1)) - 0.05, scale=0.1, size=(F, R))
    return _result([f"f{i:03d}" for i in range(F)], values)


class _Page(HTMLParser):
    """Collects what the tests read: tags, table rows, header fields, text, URL-like attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[dict[str, object]] = []
        self.header: dict[str, str] = {}
        self.urls: list[str] = []
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self._cell: str | None = None
        self._in_name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        self.attributes.update(attributes)
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            if key in attributes:
                self.urls.append(str(attributes[key]))
        if tag == "tr":
            self.rows.append({})
        elif tag == "td" and attributes.get("class") == "name":
            self._in_name = True
            self.rows[-1]["feature"] = ""
        elif tag == "td":
            self.rows[-1][str(attributes["data-column"])] = float(str(attributes["data-value"]))
        elif tag == "div" and "data-field" in attributes:
            self.header[str(attributes["data-field"])] = str(attributes["data-value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_name = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_name:
            self.rows[-1]["feature"] = str(self.rows[-1]["feature"]) + data


def _parse(path: Path) -> tuple[_Page, ElementTree.Element]:
    document = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(document)
    page.close()
    svg_text = re.search(r"<svg\b.*?</svg>", document, flags=re.DOTALL)
    assert svg_text, "no inline SVG chart"
    return page, ElementTree.fromstring(svg_text.group(0))


def _svg_rows(svg: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "row"]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_table_holds_every_feature_with_the_summary_numbers(tmp_path: Path) -> None:
    result = _random()
    page, _svg = _parse(write_html(result, tmp_path / "snap.html", top=10))
    rows = [row for row in page.rows if row]  # the header rows have no cells
    expected = result.summary()
    assert [row["feature"] for row in rows] == list(expected.index)
    for row, (_name, want) in zip(rows, expected.iterrows(), strict=True):
        assert row["rank"] == want["rank"] and row["n_done"] == want["n_done"]
        for column in ("mean", "ci_low", "ci_high", "normalized"):
            assert row[column] == want[column], column  # repr of float64: exact


def test_chart_draws_the_top_n_in_rank_order_with_their_intervals(tmp_path: Path) -> None:
    result = _random()
    _page, svg = _parse(write_html(result, tmp_path / "snap.html", top=7))
    rows = _svg_rows(svg)
    expected = result.summary().head(7)
    assert [g.get("data-feature") for g in rows] == list(expected.index)
    bars = [g.find("{http://www.w3.org/2000/svg}rect") for g in rows]
    for g, bar, (_name, want) in zip(rows, bars, expected.iterrows(), strict=True):
        assert float(g.get("data-mean")) == want["mean"]
        assert float(g.get("data-ci-low")) == want["ci_low"]
        assert float(g.get("data-ci-high")) == want["ci_high"]
        assert float(bar.get("width")) >= 0
    # Bar lengths are proportional to |mean| (one linear scale for every row).
    widths = np.array([float(bar.get("width")) for bar in bars])
    means = expected["mean"].to_numpy()
    positive = means > 0
    ratios = widths[positive] / means[positive]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-3)
    # Each CI line spans ci_low..ci_high on the same scale.
    lines = [g.find("{http://www.w3.org/2000/svg}line") for g in rows]
    spans = np.array([float(line.get("x2")) - float(line.get("x1")) for line in lines])
    intervals = (expected["ci_high"] - expected["ci_low"]).to_numpy()
    np.testing.assert_allclose(spans / intervals, ratios[0], rtol=1e-3)


def test_header_shows_metric_baseline_samples_and_repeats(tmp_path: Path) -> None:
    result = _random(R=5)
    page, _svg = _parse(write_html(result, tmp_path / "snap.html"))
    assert page.header["metric"] == "'mse'"
    assert float(page.header["baseline error"]) == result.baseline_error
    assert page.header["samples"] == "50"
    assert page.header["repeats"] == "5"
    assert page.header["features"] == "'30'"
    text = " ".join(page.text)
    assert "Permutation importance" in text and "0.1235" in text  # 4 significant digits


def test_hostile_names_are_escaped_and_survive_as_text(tmp_path: Path) -> None:
    names = [*HOSTILE, "plain"]
    values = np.linspace(1.0, 0.1, len(names))[:, None] + np.zeros((1, 2))
    result = _result(names, values)
    path = write_html(result, tmp_path / "snap.html", top=len(names))
    page, svg = _parse(path)  # the SVG parses as XML whatever the names hold
    assert page.tags.count("script") == 0, "a name became markup"
    assert not any(tag in ("svg", "img") for tag in page.tags[page.tags.index("table") :])
    shown = [row["feature"] for row in page.rows if row]
    # Names come back as text, unchanged except characters XML forbids (shown as U+FFFD).
    expected = [re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", n) for n in result.top(len(names))]
    assert shown == expected
    features = [g.get("data-feature") for g in _svg_rows(svg)]
    # XML normalizes whitespace in attribute values (tab/newline -> space); nothing else differs.
    assert features == [re.sub(r"[\t\n]", " ", name) for name in expected]
    assert not {name for name in page.attributes if name.startswith("on")}, page.attributes


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page, _svg = _parse(write_html(_random(), tmp_path / "snap.html"))
    assert page.urls == []
    assert not {"script", "link", "img", "iframe", "object"} & set(page.tags)
    document = (tmp_path / "snap.html").read_text()
    # The only URL is the SVG namespace name, which is never fetched.
    assert re.findall(r"https?://[^\s\"']+", document) == ["http://www.w3.org/2000/svg"]
    assert "@import" not in document and "url(" not in document
    assert "prefers-color-scheme: dark" in document and "color-scheme: light dark" in document


def test_partial_result_charts_only_evaluated_features(tmp_path: Path) -> None:
    values = np.full((12, 3), np.nan)
    values[:5, 0] = [0.5, 0.1, 0.9, -0.2, 0.3]  # one estimate each: the CI is the mean itself
    values[2, 1] = 0.7
    result = _result([f"g{i}" for i in range(12)], values)
    page, svg = _parse(write_html(result, tmp_path / "snap.html", top=10))
    assert [g.get("data-feature") for g in _svg_rows(svg)] == ["g2", "g0", "g4", "g1", "g3"]
    assert page.header["evaluated"] == "'5 of 12 features'"
    rows = [row for row in page.rows if row]
    assert len(rows) == 12 and all(math.isnan(row["mean"]) for row in rows[5:])
    assert "partial result" in " ".join(page.text)


def test_empty_result_writes_a_page_without_chart(tmp_path: Path) -> None:
    result = _result(["a", "b"], np.full((2, 2), np.nan))
    document = write_html(result, tmp_path / "snap.html").read_text()
    assert "No feature has an estimate yet" in document and "<svg" not in document


def test_large_result_is_quick_and_keeps_the_rest_folded(tmp_path: Path) -> None:
    result = _random(F=20_000, R=3)
    document = write_html(result, tmp_path / "snap.html", top=20).read_text()
    assert document.count('<g class="row"') == 20
    assert "<details><summary>The other 19,980 features</summary>" in document
    assert document.count("<tr>") == 20_000 + 2  # two header rows


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0"), (0.123456, "0.1235"), (1234.5678, "1235"), (-2.5e-5, "−0.000025"),
     (1e-7, "1.000e−07"), (float("nan"), "–"), (12.0, "12")],
)  # fmt: skip
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_bad_arguments_fail_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="top"):
        write_html(_random(), tmp_path / "a.html", top=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_html(_random(), tmp_path / "missing" / "a.html")
    assert not list(tmp_path.iterdir())


def test_result_and_explorer_to_html_write_the_shown_picture(tmp_path: Path) -> None:
    """``aefi.write_html`` is the headless door; ``Explorer.to_html`` writes what the charts
    show (the shown result, the explorer's top N)."""
    import aefi_widget as aefi

    result = _random(F=25)
    path = aefi.write_html(result, tmp_path / "result.html", top=6)
    assert path == tmp_path / "result.html" and aefi.write_html is write_html

    from aefi_widget.widget import Explorer

    explorer = Explorer.from_result(result, top=9)
    try:
        _page, svg = _parse(explorer.to_html(tmp_path / "explorer.html"))
        assert [g.get("data-feature") for g in _svg_rows(svg)] == list(result.summary().index[:9])
    finally:
        explorer.close()


def test_headless_write_html_imports_no_jupyter_module(tmp_path: Path) -> None:
    # A script without the widget extra can still write the snapshot.
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from aefi_widget import ImportanceResult, write_html\n"
        "r = ImportanceResult(['a', 'b'], ['a', 'b'], np.ones((2, 3)), baseline_error=1.0,"
        " settings={'method': 'permutation', 'metric': 'mse'})\n"
        f"write_html(r, {str(tmp_path / 'x.html')!r})\n"
        "bad = [m for m in ('ipywidgets', 'anywidget', 'bqplot') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    assert (tmp_path / "x.html").stat().st_size > 0


@pytest.mark.parametrize("big", [1.7e308, np.finfo(np.float64).max])
def test_values_near_the_float64_limit_are_drawn_inside_the_chart(tmp_path: Path, big) -> None:
    """load accepts +-1.7e308; (high - low) overflowed to inf and write_html raised."""
    importances = np.array([[big, big], [-big, -big], [1.0, 2.0]])
    with np.errstate(all="ignore"):  # the summary's sums overflow; the page still draws
        _page, svg = _parse(write_html(_result(["a", "b", "c"], importances), tmp_path / "s.html"))
    rows = _svg_rows(svg)
    assert {g.get("data-feature") for g in rows} == {"a", "b", "c"}
    for g in rows:
        bar = g.find("{http://www.w3.org/2000/svg}rect")
        x, width = float(bar.get("x")), float(bar.get("width"))
        assert math.isfinite(x) and math.isfinite(width) and width >= 0
