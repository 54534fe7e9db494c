"""Geometry read from the page: are chart labels visible, inside the widget, not overlapping?"""

from __future__ import annotations

from typing import Any

# Boxes of the dashboard, its bar and box rows and their labels, header fields, in page px.
GEOMETRY_JS = """
() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const root = document.querySelector('[data-testid="aefi-dashboard"]');
  const rows = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)].map((g) => {
    const label = g.querySelector('[data-testid="aefi-label"]');
    const hit = g.querySelector('rect.aefi-hit');
    return {feature: g.dataset.feature, row: box(hit),
            label: label ? {...box(label), text: label.textContent,
                            visible: getComputedStyle(label).visibility !== 'hidden'} : null};
  });
  return {
    root: box(root),
    bars: rows('aefi-bar'),
    boxes: rows('aefi-box'),
    stacked: document.querySelector('[data-testid="aefi-charts"]')
      .classList.contains('aefi-stacked'),
    fields: [...root.querySelectorAll('.aefi-field')]
      .map((e) => ({...box(e), text: e.textContent})),
  };
}
"""


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["left"] >= outer["left"] - 0.5
        and inner["right"] <= outer["right"] + 0.5
        and inner["top"] >= outer["top"] - 0.5
        and inner["bottom"] <= outer["bottom"] + 0.5
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5
    )


def check_chart_labels(page: Any) -> dict[str, Any]:
    """Every bar and box row has a visible label inside the widget, on its row, none
    overlapping; side by side, a box row's label is the bar label on the same row. Header
    fields lie inside the widget too. Returns the geometry read."""
    geometry = page.evaluate(GEOMETRY_JS)
    root, bars, boxes = geometry["root"], geometry["bars"], geometry["boxes"]
    assert bars and len(bars) == len(boxes), (len(bars), len(boxes))
    labels = []
    for row in bars + (boxes if geometry["stacked"] else []):
        label = row["label"]
        assert label and label["visible"] and label["text"].strip(), row
        assert _inside(label, root), f"label outside the widget: {row}"
        centre = (label["top"] + label["bottom"]) / 2
        assert row["row"]["top"] <= centre <= row["row"]["bottom"], f"label off its row: {row}"
        name, text = row["feature"], label["text"]
        # The label is the name, or its start and end around "…" (full name on hover).
        if text != name:
            head, _, tail = text.partition("…")
            assert name.startswith(head) and name.endswith(tail) and len(text) < len(name), row
        labels.append(label)
    if not geometry["stacked"]:
        for bar, box in zip(bars, boxes, strict=True):
            assert abs(bar["row"]["top"] - box["row"]["top"]) < 0.5, "box rows misaligned"
            assert bar["feature"] == box["feature"], "a box row shows another feature"
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not _overlap(a, b), f"labels overlap: {a} {b}"
    for field in geometry["fields"]:
        assert _inside(field, root), f"header field outside the widget: {field}"
    return geometry
