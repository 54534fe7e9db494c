/**
 * Compare view: how much the methods agree. A method x method matrix (Spearman's rho of the
 * means, overlap of the top k; click a cell to plot that pair), a scatter of one run's means
 * against the other's per unit (hover for the name and both values, click to select), and for
 * the selected unit a short "why do they disagree?" drawn from the data (disagreement.py).
 */

import { clear, html, svg } from "../lib/dom";
import { formatNumber } from "../lib/format";
import { matrixCells } from "../lib/matrix";
import type { Compare } from "../lib/methods";
import type { Send } from "../lib/model";
import { axisScale, nearestPoint, type AxisScale } from "../lib/scatter";
import type { ViewState } from "../lib/state";
import { Tooltip } from "../lib/tooltip";
import { topN } from "../lib/topn";

/** Up to this many points each get a circle; beyond, the units in neither top-k list (all but
 * <= 2k) are one path (20,000 circles are slow to build). */
const CIRCLES_MAX = 4000;
const HIT_RADIUS = 8;
const MARGIN = { left: 74, right: 16, top: 12, bottom: 44 };

/** Which of the two top-k lists a unit is in: 2 both, 1 one of them, 0 neither. */
export function topMembership(x: ArrayLike<number>, y: ArrayLike<number>, k: number): Uint8Array {
  const out = new Uint8Array(x.length);
  if (k <= 0) return out;
  for (const values of [x, y]) {
    for (const i of topN(values, k)) if (Number.isFinite(values[i])) out[i]++;
  }
  return out;
}

/** Scatter size for a container width: the full width up to 760 px, 3:4, 260-480 px tall. */
export function scatterSize(available: number): { width: number; height: number } {
  const width = Math.max(280, Math.min(760, Math.floor(available)));
  return { width, height: Math.max(260, Math.min(480, Math.round(width * 0.68))) };
}

export class CompareView {
  readonly root: HTMLElement;
  private readonly xSelect: HTMLSelectElement;
  private readonly ySelect: HTMLSelectElement;
  private readonly table: HTMLTableElement;
  private readonly plotBox: HTMLElement;
  readonly scatter: SVGSVGElement;
  private readonly legend: HTMLElement;
  private readonly note: HTMLElement;
  private readonly why: HTMLElement;
  private readonly tooltip: Tooltip;
  private drawnKey: unknown[] = [];
  private last: ViewState | null = null;
  // Pixel positions of the drawn points (NaN = not drawn), for hover and click.
  private px = new Float32Array(0);
  private py = new Float32Array(0);
  private readonly observer: ResizeObserver | null;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = html("div", { class: "aefi-compare", "data-testid": "aefi-compare" }, parent);
    const controls = html("div", { class: "aefi-header-row" }, this.root);
    const pick = (label: string, testid: string) =>
      html("select", { class: "aefi-select", "data-testid": testid }, html("label", { class: "aefi-control" }, controls, label));
    this.xSelect = pick("x ", "aefi-compare-x");
    this.ySelect = pick("y ", "aefi-compare-y");
    for (const select of [this.xSelect, this.ySelect]) {
      select.addEventListener("change", () => this.send({ type: "compare_pair", x: this.xSelect.value, y: this.ySelect.value }));
    }
    const body = html("div", { class: "aefi-compare-body" }, this.root);
    this.table = html("table", { class: "aefi-table", "data-testid": "aefi-compare-table" }, body);
    this.plotBox = html("div", { class: "aefi-plot-box" }, body);
    this.scatter = svg("svg", { class: "aefi-chart aefi-scatter", "data-testid": "aefi-scatter" }, this.plotBox);
    this.legend = html("div", { class: "aefi-legend aefi-muted", "data-testid": "aefi-compare-legend" }, this.plotBox);
    this.note = html("div", { class: "aefi-muted aefi-note", "data-testid": "aefi-compare-note" }, this.root);
    this.why = html("div", { class: "aefi-why", "data-testid": "aefi-why" }, this.root);
    this.tooltip = new Tooltip(this.plotBox);
    this.scatter.addEventListener("mousemove", (event) => this.hover(event));
    this.scatter.addEventListener("mouseleave", () => this.tooltip.hide());
    this.scatter.addEventListener("click", (event) => {
      const point = this.pointAt(event);
      if (point >= 0) this.send({ type: "select", index: point });
    });
    this.observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
      if (this.last) this.update(this.last);
    });
    this.observer?.observe(this.plotBox);
  }

  private pointAt(event: MouseEvent): number {
    const box = this.scatter.getBoundingClientRect();
    return nearestPoint(this.px, this.py, event.clientX - box.left, event.clientY - box.top, HIT_RADIUS);
  }

  private hover(event: MouseEvent): void {
    const state = this.last;
    const point = this.pointAt(event);
    if (!state || point < 0 || !state.compare || !state.comparePoints) {
      this.tooltip.hide();
      this.scatter.style.cursor = "";
      return;
    }
    this.scatter.style.cursor = "pointer";
    const { compare, comparePoints } = state;
    const name = state.index.names[point];
    const title = (key: string) => compare.titles[compare.keys.indexOf(key)] ?? key;
    const members = state.members.get(name);
    this.tooltip.show([
      name,
      `${title(compare.x)}: ${formatNumber(comparePoints.x[point])}`,
      `${title(compare.y)}: ${formatNumber(comparePoints.y[point])}`,
      ...(members ? [`group of ${members.length}`] : []),
    ], event.clientX, event.clientY, name);
  }

  update(state: ViewState): void {
    this.last = state;
    const { compare } = state;
    if (!compare) {
      clear(this.table);
      clear(this.scatter);
      clear(this.legend);
      this.note.textContent =
        state.compareNote || "Waiting for the comparison: it needs at least two runs with results over the same units.";
      clear(this.why);
      this.drawnKey = [];
      return;
    }
    this.note.textContent = compare.note;
    this.drawWhy(state);
    this.fillSelect(this.xSelect, compare, compare.x);
    this.fillSelect(this.ySelect, compare, compare.y);
    this.drawTable(compare);
    const width = this.plotBox.clientWidth;
    if (width === 0) return; // hidden: drawn when shown (the observer calls back)
    const key = [compare, state.comparePoints, state.selected, state.index, width, state.why];
    if (key.every((value, i) => value === this.drawnKey[i])) return;
    this.drawnKey = key;
    this.drawScatter(state, compare, width);
  }

  private fillSelect(select: HTMLSelectElement, compare: Compare, value: string): void {
    if (select.options.length !== compare.keys.length || compare.keys.some((key, i) => select.options[i].value !== key)) {
      clear(select);
      compare.keys.forEach((key, i) => html("option", { value: key }, select, compare.titles[i]));
    }
    if (document.activeElement !== select) select.value = value;
  }

  private drawTable(compare: Compare): void {
    clear(this.table);
    this.table.classList.add("aefi-matrix");
    const head = html("tr", {}, html("thead", {}, this.table));
    html("th", { class: "aefi-matrix-corner" }, head, `ρ, top-${compare.k} overlap`);
    for (const title of compare.titles) html("th", { class: "aefi-matrix-head", title }, head, title);
    const body = html("tbody", {}, this.table);
    matrixCells(compare).forEach((cells, i) => {
      const row = html("tr", {}, body);
      html("th", { class: "aefi-matrix-head", scope: "row" }, row, compare.titles[i]);
      for (const cell of cells) {
        const current = (cell.x === compare.x && cell.y === compare.y) || (cell.x === compare.y && cell.y === compare.x);
        const td = html("td", {
          class: `aefi-matrix-cell aefi-agree-${cell.agreement}${current && cell.agreement !== "self" ? " aefi-current" : ""}`,
          title: cell.title,
          ...(cell.agreement === "self" ? {} : { "data-testid": "aefi-compare-pair", "data-x": cell.x, "data-y": cell.y }),
        }, row);
        html("div", { class: "aefi-number" }, td, cell.lines[0]);
        if (cell.lines[1]) html("div", { class: "aefi-number aefi-muted" }, td, cell.lines[1]);
        if (cell.agreement !== "self") td.addEventListener("click", () => this.send({ type: "compare_pair", x: cell.x, y: cell.y }));
      }
    });
  }

  /** "Why do they disagree?" for the selected unit, or how to get one. */
  private drawWhy(state: ViewState): void {
    clear(this.why);
    const title = html("div", { class: "aefi-why-title" }, this.why, "Why do they disagree?");
    const why = state.why;
    if (!why || why.feature !== state.selected) {
      html("div", { class: "aefi-muted" }, this.why,
        state.selected ? "Needs the selected unit's values in two methods." : "Select a feature (click a point or a bar) to see why the methods rank it differently.");
      return;
    }
    title.textContent = `Why do they disagree about ${why.feature}?`;
    const list = html("ul", { class: "aefi-why-list" }, this.why);
    for (const sentence of why.sentences) html("li", {}, list, sentence);
    if (why.doc) {
      const more = html("div", { class: "aefi-muted" }, this.why, "More: ");
      html("a", { href: why.doc, target: "_blank", rel: "noopener" }, more, "which question each method answers (docs/methods.md)");
    }
  }

  private drawScatter(state: ViewState, compare: Compare, available: number): void {
    clear(this.scatter);
    const points = state.comparePoints;
    const { width, height } = scatterSize(available);
    this.scatter.setAttribute("width", String(width));
    this.scatter.setAttribute("height", String(height));
    const n = points ? points.x.length : 0;
    this.px = new Float32Array(n).fill(NaN);
    this.py = new Float32Array(n).fill(NaN);
    if (!points) {
      clear(this.legend);
      return;
    }
    const title = (key: string) => compare.titles[compare.keys.indexOf(key)] ?? key;
    const x = axisScale(points.x, [MARGIN.left, width - MARGIN.right]);
    const y = axisScale(points.y, [height - MARGIN.bottom, MARGIN.top]);
    this.drawAxes(x, y, width, height, `${title(compare.x)}, mean`, `${title(compare.y)}, mean`);
    const inTop = topMembership(points.x, points.y, compare.k);
    let path = "";
    const few = n <= CIRCLES_MAX;
    const layer = svg("g", { class: "aefi-points" }, this.scatter);
    let drawn = 0;
    // Drawn in order neither -> one -> both, so the units that matter sit on top.
    for (const level of [0, 1, 2]) {
      for (let i = 0; i < n; i++) {
        if (inTop[i] !== level) continue;
        const cx = x(points.x[i]);
        const cy = y(points.y[i]);
        if (!Number.isFinite(cx) || !Number.isFinite(cy)) continue;
        this.px[i] = cx;
        this.py[i] = cy;
        drawn++;
        if (few || level > 0) {
          const dot = svg("circle", { class: `aefi-dot aefi-dot-${level}`, "data-testid": "aefi-scatter-point", cx, cy, r: 3.2 }, layer);
          dot.dataset.feature = state.index.names[i];
        } else {
          path += `M${cx.toFixed(1)} ${cy.toFixed(1)}h0`;
        }
      }
      if (level === 0 && path) svg("path", { class: "aefi-dot-path aefi-dot-0", d: path }, layer);
    }
    const selected = state.index.indexOf(state.selected);
    if (selected >= 0 && Number.isFinite(this.px[selected]) && Number.isFinite(this.py[selected])) {
      svg("circle", { class: "aefi-dot-selected", cx: this.px[selected], cy: this.py[selected], r: 6 }, this.scatter);
      const label = svg("text", { class: "aefi-dot-label", x: this.px[selected] + 8, y: this.py[selected] - 8 }, this.scatter);
      label.textContent = state.selected;
      if (this.px[selected] > width * 0.7) {
        label.setAttribute("x", String(this.px[selected] - 8));
        label.setAttribute("text-anchor", "end");
      }
    }
    this.drawLegend(compare.k, n - drawn, x.kind === "log" || y.kind === "log");
  }

  /** Swatches for the top-k colours (words like "dark" would mean opposite things per theme). */
  private drawLegend(k: number, missing: number, log: boolean): void {
    clear(this.legend);
    const swatch = (level: number, text: string) => {
      html("span", { class: `aefi-swatch aefi-dot-${level}` }, this.legend);
      this.legend.append(text);
    };
    swatch(2, `in both top-${k} lists`);
    swatch(1, "in one");
    swatch(0, "in neither. ");
    this.legend.append(
      (log ? "Log axes where the values span 100x or more. " : "") +
      (missing > 0 ? `${missing.toLocaleString("en-US")} units without both values (or ≤ 0 on a log axis) are not drawn. ` : "") +
      "Hover a point for its name; click to inspect it.",
    );
  }

  private drawAxes(x: AxisScale, y: AxisScale, width: number, height: number, xTitle: string, yTitle: string): void {
    const axes = svg("g", { class: "aefi-axis" }, this.scatter);
    const bottom = height - MARGIN.bottom;
    svg("rect", { class: "aefi-frame", x: MARGIN.left, y: MARGIN.top, width: width - MARGIN.left - MARGIN.right, height: bottom - MARGIN.top }, axes);
    for (const tick of x.ticks) {
      const at = x(tick.value);
      svg("line", { class: "aefi-grid", x1: at, x2: at, y1: MARGIN.top, y2: bottom }, axes);
      const text = svg("text", { class: "aefi-tick", x: at, y: bottom + 14 }, axes);
      text.textContent = tick.label;
    }
    for (const tick of y.ticks) {
      const at = y(tick.value);
      svg("line", { class: "aefi-grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: at, y2: at }, axes);
      const text = svg("text", { class: "aefi-tick aefi-tick-y", x: MARGIN.left - 6, y: at + 4 }, axes);
      text.textContent = tick.label;
    }
    const xLabel = svg("text", { class: "aefi-axis-title", x: (MARGIN.left + width - MARGIN.right) / 2, y: height - 8 }, axes);
    xLabel.textContent = `${xTitle}${x.kind === "log" ? " (log)" : ""}`;
    const middle = (MARGIN.top + bottom) / 2;
    const yLabel = svg("text", { class: "aefi-axis-title", x: 11, y: middle, transform: `rotate(-90 11 ${middle})` }, axes);
    yLabel.textContent = `${yTitle}${y.kind === "log" ? " (log)" : ""}`;
  }

  dispose(): void {
    this.observer?.disconnect();
  }
}
