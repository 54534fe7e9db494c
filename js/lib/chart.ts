/** Pieces shared by the bar and box charts: row geometry, the value axis, clickable rows. */

import { svg } from "./dom";
import { formatNumber } from "./format";
import { ticks, type LinearScale } from "./scales";

export const ROW_HEIGHT = 20;
export const AXIS_HEIGHT = 28;
export const MARGIN_RIGHT = 16;

/** Total height of a chart with `rows` rows. */
export function chartHeight(rows: number): number {
  return AXIS_HEIGHT + Math.max(1, rows) * ROW_HEIGHT + 8;
}

/** Vertical centre of row `r`. */
export function rowCentre(r: number): number {
  return AXIS_HEIGHT + r * ROW_HEIGHT + ROW_HEIGHT / 2;
}

/** Axis with gridlines across the rows and a label; the zero line is drawn stronger. */
export function drawAxis(parent: SVGElement, x: LinearScale, rows: number, label: string): void {
  const axis = svg("g", { class: "aefi-axis" }, parent);
  const bottom = AXIS_HEIGHT + Math.max(1, rows) * ROW_HEIGHT;
  const [lo, hi] = x.domain;
  for (const value of ticks(lo, hi, 4)) {
    const position = x(value);
    const grid = value === 0 ? "aefi-zero" : "aefi-grid";
    svg("line", { class: grid, x1: position, x2: position, y1: AXIS_HEIGHT - 4, y2: bottom }, axis);
    const tick = svg("text", { class: "aefi-tick", x: position, y: AXIS_HEIGHT - 8 }, axis);
    tick.textContent = formatNumber(value);
  }
  const title = svg("text", { class: "aefi-axis-label", x: x.range[1], y: 10 }, axis);
  title.textContent = label;
}

/**
 * A row group for one feature: carries the test id and feature name, a transparent hit area
 * over the whole row (so tiny bars are still easy to click) and a tooltip.
 */
export function featureRow(
  parent: SVGElement,
  options: { testid: string; name: string; row: number; width: number; selected: boolean },
  tooltip: string,
  onClick: () => void,
): SVGGElement {
  const { testid, name, row, width, selected } = options;
  const group = svg(
    "g",
    { class: selected ? "aefi-row aefi-selected-row" : "aefi-row", "data-testid": testid },
    parent,
  );
  group.dataset.feature = name;
  svg("rect", {
    class: "aefi-hit",
    x: 0,
    y: AXIS_HEIGHT + row * ROW_HEIGHT,
    width,
    height: ROW_HEIGHT,
  }, group);
  svg("title", {}, group).textContent = tooltip;
  group.addEventListener("click", onClick);
  return group;
}

/** Shorten long names for labels (the tooltip keeps the full name). */
export function truncate(name: string, max = 26): string {
  return name.length <= max ? name : `${name.slice(0, max - 1)}…`;
}
