/** Pieces shared by the bar and box charts: row geometry, the value axis, labelled rows. */

import type { Redraw } from "./dom";
import { tickFormatter } from "./format";
import { tickStep, ticks, type LinearScale } from "./scales";
import { shortenMiddle, type Measure } from "./text";

export const ROW_HEIGHT = 20;
export const AXIS_HEIGHT = 40;
export const MARGIN_RIGHT = 16;
/** Space between a label's right end and the plot. */
export const LABEL_GAP = 8;

/** How one chart is laid out: its width, and its label column (0 when a neighbour's labels serve). */
export interface ChartLayout {
  width: number;
  labelWidth: number;
  measure: Measure;
}

/** Space (in rows) between the top features and a pinned selected feature. */
export const PIN_GAP = 0.8;

/** The rows a chart draws: the top features, then the pinned selection after a gap. */
export function chartRows(top: number[], pinned: number): { feature: number; row: number; pinned: boolean }[] {
  const rows = top.map((feature, row) => ({ feature, row, pinned: false }));
  if (pinned >= 0) rows.push({ feature: pinned, row: top.length + PIN_GAP, pinned: true });
  return rows;
}

/** Height of those rows, in rows. */
export function rowsSpan(top: number[], pinned: number): number {
  return top.length + (pinned >= 0 ? 1 + PIN_GAP : 0);
}

/** Total height of a chart with `rows` rows. */
export function chartHeight(rows: number): number {
  return AXIS_HEIGHT + Math.max(1, rows) * ROW_HEIGHT + 8;
}

/** Vertical centre of row `r`. */
export function rowCentre(r: number): number {
  return AXIS_HEIGHT + r * ROW_HEIGHT + ROW_HEIGHT / 2;
}

/**
 * The axis title in at most two lines of `width` px: whole if it fits, else broken before its
 * unit ("Δ error per repeat" / "(MSE, squared input units)"), each line shortened in the middle
 * if it still does not fit.
 */
export function titleLines(label: string, width: number, measure: Measure): string[] {
  if (measure(label) <= width) return [label];
  const cut = label.lastIndexOf(" (") >= 0 ? label.lastIndexOf(" (") : label.indexOf(" ", label.length / 2);
  const lines = cut > 0 ? [label.slice(0, cut), label.slice(cut + 1)] : [label];
  return lines.map((line) => shortenMiddle(line, width, measure));
}

/** Room kept between two tick labels, in px. */
const TICK_GAP = 10;

/**
 * Ticks for a value axis `room` px wide: the most of 4, 3 or 2 nice ticks whose labels fit side
 * by side. When even 2 do not fit, every tick keeps its gridline but only the outermost tick
 * (the largest magnitude) is labelled, so the axis never reads just "0".
 *
 * @returns `values` (data units) and `labels` (the text of each, `null` for an unlabelled one).
 */
export function axisTicks(
  lo: number,
  hi: number,
  room: number,
  measure: Measure,
): { values: number[]; labels: (string | null)[] } {
  let values: number[] = [];
  let texts: string[] = [];
  for (const count of [4, 3, 2]) {
    const format = tickFormatter(tickStep(lo, hi, count));
    values = ticks(lo, hi, count);
    texts = values.map(format);
    const needed = texts.reduce((sum, text) => sum + measure(text) + TICK_GAP, 0);
    if (needed <= room) return { values, labels: texts };
  }
  if (values.length <= 1) return { values, labels: texts };
  let outer = 0;
  values.forEach((value, k) => {
    if (Math.abs(value) > Math.abs(values[outer])) outer = k;
  });
  return { values, labels: texts.map((text, k) => (k === outer ? text : null)) };
}

/**
 * Axis with gridlines across the rows, ticks in one number format, and a title above the plot
 * (left-aligned, on two lines when the plot is narrow; full text on hover).
 */
export function drawAxis(
  draw: Redraw,
  parent: SVGElement,
  x: LinearScale,
  rows: number,
  label: string,
  measure: Measure,
): void {
  const axis = draw.svg("g", { class: "aefi-axis" }, parent);
  const bottom = AXIS_HEIGHT + Math.max(1, rows) * ROW_HEIGHT;
  const [lo, hi] = x.domain;
  const room = Math.abs(x.range[1] - x.range[0]);
  const { values, labels } = axisTicks(lo, hi, room, measure);
  values.forEach((value, k) => {
    const position = x(value);
    const grid = value === 0 ? "aefi-zero" : "aefi-grid";
    draw.svg("line", { class: grid, x1: position, x2: position, y1: AXIS_HEIGHT - 4, y2: bottom }, axis);
    const text = labels[k];
    if (text === null) return;
    // Kept inside the chart: a label centred on a tick at the very edge was cut ("0.000").
    const half = measure(text) / 2;
    const edge = Math.max(x.range[0], x.range[1]) + MARGIN_RIGHT;
    const at = Math.min(Math.max(position, half + 1), edge - half - 1);
    draw.text(draw.svg("text", { class: "aefi-tick", x: at, y: AXIS_HEIGHT - 8 }, axis), text);
  });
  const left = Math.min(x.range[0], x.range[1]);
  const lines = titleLines(label, Math.max(40, room + MARGIN_RIGHT), measure);
  const title = draw.svg("text", { class: "aefi-axis-label", x: left, y: lines.length > 1 ? 9 : 18 }, axis);
  lines.forEach((line, k) => draw.text(draw.svg("tspan", { x: left, dy: k === 0 ? 0 : 12 }, title), line));
  if (lines.join(" ") !== label) draw.text(draw.svg("title", {}, title), label);
}

/**
 * A row group for one feature: carries the test id and feature name, a transparent hit area
 * over the whole row (so tiny bars are still easy to click), a tooltip, and the name in the
 * label column when the layout has one (shortened in the middle to fit).
 */
export function featureRow(
  draw: Redraw,
  parent: SVGElement,
  options: { testid: string; name: string; row: number; layout: ChartLayout; selected: boolean; settled?: string; pinned?: boolean },
  tooltip: string,
  onClick: () => void,
): SVGGElement {
  const { testid, name, row, layout, selected, settled, pinned } = options;
  const group = draw.svg(
    "g",
    { class: selected ? "aefi-row aefi-selected-row" : "aefi-row", "data-testid": testid, "data-feature": name, "data-settled": settled, "data-pinned": pinned ? "yes" : undefined },
    parent,
  );
  draw.svg("rect", {
    class: "aefi-hit",
    x: 0,
    y: AXIS_HEIGHT + row * ROW_HEIGHT,
    width: layout.width,
    height: ROW_HEIGHT,
  }, group);
  draw.text(draw.svg("title", {}, group), tooltip);
  if (layout.labelWidth > 0) {
    const text = draw.svg("text", {
      class: "aefi-label",
      "data-testid": "aefi-label",
      x: layout.labelWidth - LABEL_GAP,
      y: rowCentre(row) + 4,
    }, group);
    draw.text(text, shortenMiddle(name, layout.labelWidth - LABEL_GAP - 2, layout.measure));
  }
  // A property, not addEventListener: the group is reused by the next draw, with its feature.
  group.onclick = onClick;
  return group;
}
