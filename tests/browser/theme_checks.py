"""Read computed colours in the page: which text is drawn in which colour on which background.

Used by the light and dark theme tests: every text element of the dashboard and the drilldown
must contrast with what is behind it (WCAG ratio >= 4.5), and bqplot's titles and axis labels
must not keep bqplot's own dark default (orange).
"""

from __future__ import annotations

from typing import Any

# Returns one entry per visible text element inside the dashboard and the drilldown figures:
# its text, kind, foreground colour (SVG fill or CSS color, alpha-blended onto its background)
# and the background colour behind it (the nearest opaque ancestor background, or the row
# highlight rectangle a chart label sits on), as [r, g, b] in 0-255.
TEXT_COLOURS_JS = """
(roots) => {
  const parse = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) =>
    top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3]));
  const background = (element) => {
    const stack = [];
    for (let e = element; e; e = e.parentElement) {
      if (e.tagName === 'g') {
        const hit = e.querySelector(':scope > rect.aefi-hit');
        if (hit) {
          const fill = parse(getComputedStyle(hit).fill || '');
          if (fill && fill[3] > 0) stack.push(fill);
        }
      }
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg[3] > 0) {
        stack.push(bg);
        if (bg[3] >= 1) break;
      }
    }
    let colour = [255, 255, 255];
    for (let i = stack.length - 1; i >= 0; i--) colour = over(stack[i], colour);
    return colour;
  };
  const out = [];
  for (const root of document.querySelectorAll(roots)) {
    for (const e of root.querySelectorAll('*')) {
      if (e.closest('button:disabled, title, [hidden]')) continue;
      const svgText = e instanceof SVGTextElement;
      const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!svgText && !(ownText && e instanceof HTMLElement)) continue;
      if (svgText && e.parentElement && e.parentElement.closest('text')) continue;
      const box = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      if (box.width === 0 || box.height === 0 || style.visibility === 'hidden') continue;
      if (Number(style.opacity) === 0) continue;
      const fg = parse(svgText ? style.fill : style.color);
      if (!fg) continue;
      const bg = background(e);
      out.push({
        text: (e.textContent || '').trim().slice(0, 50),
        kind: e.classList.contains('aefi-swatch') ? 'swatch'
          : svgText ? 'svg:' + (e.getAttribute('class') || 'text') : e.tagName.toLowerCase(),
        in_figure: !!e.closest('.bqplot'),
        fg: over(fg, bg),
        bg,
      });
    }
  }
  return out;
}
"""


def luminance(rgb: list[float]) -> float:
    """WCAG relative luminance of an sRGB colour given as 0-255 components."""

    def channel(c: float) -> float:
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def is_grey(rgb: list[float], tolerance: float = 24.0) -> bool:
    """True for a neutral colour (no channel far from the others): not bqplot's orange."""
    return max(rgb[:3]) - min(rgb[:3]) <= tolerance


def text_colours(page: Any, roots: str = ".aefi-root, .aefi-drilldown") -> list[dict[str, Any]]:
    """Every visible text element inside ``roots`` (a CSS selector; by default the dashboard
    and the drilldown) with its colours."""
    return page.evaluate(TEXT_COLOURS_JS, roots)


# Backgrounds of the dashboard, each bqplot figure and each figure's plot area, as [r, g, b, a].
BACKGROUNDS_JS = """
() => {
  const parse = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const out = [];
  for (const e of document.querySelectorAll('.aefi-root, .aefi-drilldown .bqplot')) {
    out.push([e.className, parse(getComputedStyle(e).backgroundColor)]);
  }
  for (const e of document.querySelectorAll('.aefi-drilldown .bqplot rect.plotarea_background')) {
    out.push(['plotarea', parse(getComputedStyle(e).fill)]);
  }
  return out;
}
"""


def check_theme(page: Any, dark: bool) -> list[dict[str, Any]]:
    """Assert the dashboard and the drilldown figures follow the theme; return the texts seen.

    Dark: backgrounds dark (luminance < 0.1) and text light; light: the reverse. Always: WCAG
    contrast >= 4.5 for every text, and neutral (grey) titles, axis labels and legend text in
    the bqplot figures.
    """
    backgrounds = page.evaluate(BACKGROUNDS_JS)
    assert sum(name == "plotarea" for name, _ in backgrounds) >= 4, backgrounds
    for name, rgba in backgrounds:
        assert len(rgba) >= 3 and (len(rgba) == 3 or rgba[3] == 1), (name, rgba)
        assert (luminance(rgba) < 0.1) == dark, f"{name} background {rgba} is not {dark=}"
    texts = text_colours(page)
    assert any(t["in_figure"] for t in texts), "no drilldown figure text found"
    assert any(not t["in_figure"] for t in texts), "no dashboard text found"
    problems = []
    for t in texts:
        ratio = contrast(t["fg"], t["bg"])
        if t["kind"] == "swatch":  # a legend's coloured dot: a graphic, WCAG asks 3:1
            if ratio < 3.0:
                problems.append({**t, "contrast": round(ratio, 2)})
            continue
        bg_dark = luminance(t["bg"]) < 0.1
        fg_lighter = luminance(t["fg"]) > luminance(t["bg"])
        if ratio < 4.5 or bg_dark != dark or fg_lighter != dark:
            problems.append({**t, "contrast": round(ratio, 2)})
        elif t["kind"] in ("svg:mainheading", "svg:axislabel", "svg:legendtext") and not is_grey(
            t["fg"]
        ):
            problems.append({**t, "why": "coloured figure text (bqplot default?)"})
    assert not problems, f"{len(problems)} of {len(texts)} texts off-theme: {problems[:8]}"
    return texts
