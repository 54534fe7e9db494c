/**
 * Heat map of units x outputs (per-output importance) or units x latent dimensions: rows are
 * unit names (shortened in the middle, full on hover), columns the outputs or dimensions, one
 * theme colour whose strength is the value (lib/heat.ts). Click a row or cell to select the
 * unit; on the latent map click a dimension to list its top features beside the map.
 */

import { clear, html, svg } from "../lib/dom";
import { formatNumber } from "../lib/format";
import { CELL_HEIGHT, heatLayout, heatLevel, heatRange, heatValueAt, type HeatLayout } from "../lib/heat";
import type { Heatmap, LatentTop } from "../lib/methods";
import type { Send } from "../lib/model";
import type { ViewState } from "../lib/state";
import { canvasMeasure, shortenMiddle, type Measure } from "../lib/text";
import { Tooltip } from "../lib/tooltip";

const LABEL_MIN = 70;
const LABEL_MAX = 220;
const HEADER_TEXT_MAX = 110;
const LEGEND_WIDTH = 180;
/** The latent top list sits beside the map when the map keeps cells this wide there. */
const SIDE_CELL_MIN = 12;
const SIDE_PANEL_WIDTH = 260;
let gradients = 0;

/** Label column width for the row names: their width, capped at 25 % of the width and 220 px. */
export function heatLabelWidth(widest: number, available: number): number {
  const cap = Math.min(LABEL_MAX, Math.max(LABEL_MIN, Math.floor(0.25 * available)));
  return Math.min(cap, Math.max(LABEL_MIN / 2, Math.ceil(widest) + 12));
}

export class HeatmapView {
  readonly root: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly body: HTMLElement;
  private readonly mapBox: HTMLElement;
  readonly map: SVGSVGElement;
  private readonly legend: SVGSVGElement;
  private readonly side: HTMLElement;
  private readonly note: HTMLElement;
  private readonly tooltip: Tooltip;
  private readonly gradientId = `aefi-heat-${++gradients}`;
  private readonly observer: ResizeObserver | null;
  private measure: Measure | null = null;
  private last: ViewState | null = null;
  private drawnKey: unknown[] = [];

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = html("div", { class: "aefi-heatmap-view", "data-testid": "aefi-heatmap-view" }, parent);
    this.caption = html("div", { class: "aefi-muted aefi-note" }, this.root);
    this.body = html("div", { class: "aefi-heat-body" }, this.root);
    this.mapBox = html("div", { class: "aefi-plot-box aefi-heat-box" }, this.body);
    this.map = svg("svg", { class: "aefi-chart aefi-heatmap", "data-testid": "aefi-heatmap" }, this.mapBox);
    this.legend = svg("svg", { class: "aefi-chart", "data-testid": "aefi-heat-legend" }, this.mapBox);
    this.side = html("div", { class: "aefi-latent-top", "data-testid": "aefi-latent-top" }, this.body);
    this.note = html("div", { class: "aefi-muted aefi-note", "data-testid": "aefi-heatmap-note" }, this.root);
    this.tooltip = new Tooltip(this.mapBox);
    this.map.addEventListener("mousemove", (event) => this.hover(event));
    this.map.addEventListener("mouseleave", () => this.tooltip.hide());
    this.map.addEventListener("click", (event) => this.click(event));
    this.observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
      if (this.last) this.update(this.last);
    });
    this.observer?.observe(this.root);
  }

  /** The row and column under the pointer, from the data attributes of the elements hit
   * (a cell carries its column, its row group the row). */
  private cellOf(event: MouseEvent): { row: number; column: number } {
    const target = event.target as Element;
    const read = (name: "row" | "column") => {
      const element = target.closest?.(`[data-${name}]`) as SVGElement | null;
      return element?.dataset[name] === undefined ? -1 : Number(element.dataset[name]);
    };
    return { row: read("row"), column: read("column") };
  }

  private hover(event: MouseEvent): void {
    const heatmap = this.last?.heatmap;
    const { row, column } = this.cellOf(event);
    if (!this.last || !heatmap || row < 0) {
      this.tooltip.hide();
      return;
    }
    const name = this.last.index.names[heatmap.rows[row]];
    const members = this.last.members.get(name);
    const lines = [name];
    if (members) lines.push(`group of ${members.length}: ${members.slice(0, 8).join(", ")}${members.length > 8 ? ", …" : ""}`);
    if (column >= 0) {
      const value = heatmap.values[row * heatmap.columns.length + column];
      lines.push(`${heatmap.columnAxis} ${heatmap.columns[column]}`, `${heatmap.valueLabel || "value"} ${formatNumber(value)}`);
    }
    this.tooltip.show(lines, event.clientX, event.clientY, name);
  }

  private click(event: MouseEvent): void {
    const heatmap = this.last?.heatmap;
    if (!heatmap) return;
    const header = (event.target as Element).closest?.("[data-header]") as SVGElement | null;
    if (header) {
      const column = Number(header.dataset.header);
      if (heatmap.kind === "latent") this.send({ type: "latent_dim", index: heatmap.columnIndices[column] ?? column });
      return;
    }
    const { row } = this.cellOf(event);
    if (row >= 0) this.send({ type: "select", index: heatmap.rows[row] });
  }

  update(state: ViewState): void {
    this.last = state;
    const { heatmap } = state;
    const width = this.root.clientWidth;
    if (!heatmap) {
      clear(this.map);
      clear(this.legend);
      clear(this.side);
      this.caption.textContent = "";
      this.note.textContent = state.heatmapNote || "Waiting for the map…";
      this.drawnKey = [];
      return;
    }
    if (width === 0) return; // hidden: drawn when shown
    const key = [heatmap, state.latentTop, state.selected, state.members, state.index, width];
    if (key.every((value, i) => value === this.drawnKey[i])) return;
    this.drawnKey = key;
    if (!this.measure) this.measure = canvasMeasure(`11px ${getComputedStyle(this.root).fontFamily || "sans-serif"}`);
    const latent = heatmap.kind === "latent";
    // Beside the map when the map still gets readable cells there (a few latent dimensions
    // leave room even at 800 px), else under it.
    const beside = width - SIDE_PANEL_WIDTH - 16;
    const side = latent && heatmap.columns.length * SIDE_CELL_MIN + Math.min(LABEL_MAX, 0.25 * beside) + 12 <= beside;
    this.body.classList.toggle("aefi-heat-side", side);
    const available = side ? width - SIDE_PANEL_WIDTH - 16 : width;
    this.caption.textContent =
      `Rows: ${heatmap.rows.length} units; columns: ${heatmap.columns.length} ${heatmap.columnAxis}s; ` +
      `colour: ${heatmap.valueLabel || "value"}. Click a row to inspect the unit` +
      (latent ? `, a ${heatmap.columnAxis}'s name for its top features.` : ".");
    this.note.textContent = heatmap.note;
    const layout = this.drawMap(state, heatmap, available, this.measure);
    // The map's own width, so the latent list sits right next to it.
    this.mapBox.style.width = side ? `${layout.width}px` : "";
    this.drawLegend(heatmap, Math.min(layout.width, available));
    this.drawSide(state, heatmap, state.latentTop);
  }

  private drawMap(state: ViewState, heatmap: Heatmap, available: number, measure: Measure): HeatLayout {
    clear(this.map);
    const names = heatmap.rows.map((unit) => state.index.names[unit]);
    const labelWidth = heatLabelWidth(Math.max(0, ...names.map(measure)), available);
    const headerText = Math.min(HEADER_TEXT_MAX, Math.max(0, ...heatmap.columns.map(measure)));
    const layout = heatLayout(available, names.length, heatmap.columns.length, labelWidth, headerText);
    this.map.setAttribute("width", String(layout.width));
    this.map.setAttribute("height", String(layout.height));
    const { max } = heatRange(heatmap.values);
    const nColumns = heatmap.columns.length;
    const dimension = heatmap.kind === "latent" ? state.latentTop?.dimension ?? -1 : -1;
    const chosen = dimension >= 0 ? heatmap.columnIndices.indexOf(dimension) : -1;
    const x0 = layout.labelWidth;
    const y0 = layout.headerHeight;
    // Narrow cells: every k-th name only (rotated names need ~12 px each); every column keeps
    // a hit area with its full name on hover, so each latent dimension stays clickable.
    const every = Math.max(1, Math.ceil(12 / layout.cellWidth));
    const latent = heatmap.kind === "latent";
    heatmap.columns.forEach((column, c) => {
      const hit = svg("rect", {
        class: latent ? "aefi-col-hit aefi-clickable" : "aefi-col-hit",
        "data-testid": "aefi-heatmap-column",
        "data-header": c,
        x: x0 + c * layout.cellWidth,
        y: 0,
        width: layout.cellWidth,
        height: y0,
      }, this.map);
      svg("title", {}, hit).textContent = latent ? `${column}: click to list its top features` : column;
      if (c % every !== 0 && c !== chosen) return;
      const cx = x0 + (c + 0.5) * layout.cellWidth;
      const classes = ["aefi-col-label", latent ? "aefi-clickable" : "", c === chosen ? "aefi-col-chosen" : ""];
      const text = svg("text", {
        class: classes.join(" ").trim(),
        x: cx + 3,
        y: y0 - 6,
        transform: `rotate(-55 ${cx + 3} ${y0 - 6})`,
      }, this.map);
      text.textContent = shortenMiddle(column, HEADER_TEXT_MAX, measure);
    });
    names.forEach((name, r) => {
      const y = y0 + r * CELL_HEIGHT;
      const selected = name === state.selected;
      const group = svg("g", {
        class: selected ? "aefi-heat-row aefi-selected-row" : "aefi-heat-row",
        "data-testid": "aefi-heatmap-row",
        "data-row": r,
      }, this.map);
      group.dataset.feature = name;
      svg("rect", { class: "aefi-hit", x: 0, y, width: layout.labelWidth, height: CELL_HEIGHT }, group);
      const label = svg("text", { class: "aefi-label", x: layout.labelWidth - 6, y: y + CELL_HEIGHT / 2 + 4 }, group);
      label.textContent = shortenMiddle(name, layout.labelWidth - 10, measure);
      for (let c = 0; c < nColumns; c++) {
        const value = heatmap.values[r * nColumns + c];
        const cell = svg("rect", {
          class: value < 0 ? "aefi-heat-cell aefi-heat-negative" : "aefi-heat-cell",
          "data-testid": "aefi-heatmap-cell",
          "data-column": c,
          x: x0 + c * layout.cellWidth,
          y,
          width: layout.cellWidth,
          height: CELL_HEIGHT,
          "fill-opacity": heatLevel(value, max).toFixed(3),
        }, group);
        if (!Number.isFinite(value)) cell.classList.add("aefi-heat-missing");
      }
      if (selected) {
        svg("rect", { class: "aefi-heat-outline", x: x0, y: y + 0.5, width: nColumns * layout.cellWidth, height: CELL_HEIGHT - 1 }, this.map);
      }
    });
    if (chosen >= 0 && chosen < nColumns) {
      svg("rect", {
        class: "aefi-heat-outline aefi-col-outline",
        x: x0 + chosen * layout.cellWidth + 0.5,
        y: y0,
        width: layout.cellWidth - 1,
        height: names.length * CELL_HEIGHT,
      }, this.map);
    }
    return layout;
  }

  /** A colour bar 0 ... max (square-root scale, so its ticks are not evenly spaced). */
  private drawLegend(heatmap: Heatmap, width: number): void {
    clear(this.legend);
    const { max, negative } = heatRange(heatmap.values);
    const barWidth = Math.min(LEGEND_WIDTH, Math.max(100, width - 200));
    this.legend.setAttribute("width", String(Math.max(width, barWidth + 20)));
    this.legend.setAttribute("height", "46");
    const gradient = svg("linearGradient", { id: this.gradientId }, svg("defs", {}, this.legend));
    for (const level of [0, 0.25, 0.5, 0.75, 1]) {
      svg("stop", { class: "aefi-heat-stop", offset: level, "stop-opacity": level }, gradient);
    }
    const left = 8;
    svg("rect", { class: "aefi-heat-bar-back", x: left, y: 18, width: barWidth, height: 10 }, this.legend);
    svg("rect", { x: left, y: 18, width: barWidth, height: 10, fill: `url(#${this.gradientId})` }, this.legend);
    const title = svg("text", { class: "aefi-axis-label", x: left, y: 12 }, this.legend);
    title.textContent = `${heatmap.valueLabel || "value"}${negative ? ", |value|" : ""} · square-root colour scale`;
    for (const level of [0, 0.5, 1]) {
      const tick = svg("text", { class: "aefi-tick", x: left + level * barWidth, y: 42 }, this.legend);
      tick.textContent = formatNumber(heatValueAt(level, max));
    }
    if (negative) {
      const x = left + barWidth + 24;
      svg("rect", { class: "aefi-heat-cell aefi-heat-negative", x, y: 18, width: 10, height: 10, "fill-opacity": 0.8 }, this.legend);
      const text = svg("text", { class: "aefi-axis-label", x: x + 14, y: 27 }, this.legend);
      text.textContent = "negative values (same scale)";
    }
  }

  private drawSide(state: ViewState, heatmap: Heatmap, top: LatentTop | null): void {
    clear(this.side);
    this.side.hidden = heatmap.kind !== "latent";
    if (heatmap.kind !== "latent") return;
    if (!top) {
      html("div", { class: "aefi-muted" }, this.side, `Click a ${heatmap.columnAxis}'s name above the map to list the features it depends on most.`);
      return;
    }
    html("div", { class: "aefi-latent-title" }, this.side, `Top features of ${top.name}`);
    const list = html("ol", { class: "aefi-latent-list" }, this.side);
    for (const [unit, value] of top.features) {
      const name = state.index.names[unit];
      const item = html("li", {
        class: name === state.selected ? "aefi-latent-item aefi-search-selected" : "aefi-latent-item",
        "data-testid": "aefi-latent-item",
        title: name,
      }, list);
      item.dataset.feature = name;
      html("span", { class: "aefi-latent-name" }, item, name);
      html("span", { class: "aefi-muted aefi-number" }, item, formatNumber(value));
      item.addEventListener("click", () => this.send({ type: "select", index: unit }));
    }
  }

  dispose(): void {
    this.observer?.disconnect();
  }
}
