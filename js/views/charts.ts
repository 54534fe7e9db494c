/**
 * The bar and box charts side by side on wide outputs, stacked (each with its labels) on
 * narrow ones; label column sized to the names, names shortened in the middle; a one-line
 * legend saying what bars, whiskers, boxes and dots are.
 */

import type { ChartLayout } from "../lib/chart";
import { html, setText } from "../lib/dom";
import type { Send } from "../lib/model";
import { repeatsOf } from "../lib/protocol";
import type { ViewState } from "../lib/state";
import { legendText, type Drawn } from "../lib/legend";
import { intervalOf } from "../lib/uncertainty";
import { canonicalFont, canvasMeasure, type Measure } from "../lib/text";
import { BarsView } from "./bars";
import { BoxesView, MAX_DOTS } from "./boxes";

/** Below this width the box chart moves under the bars and gets its own labels. */
export const SIDE_BY_SIDE_MIN = 720;
/** Widest the charts grow: wider bars carry no more information. */
const MAX_WIDTH = 1400;
const GAP = 16;
const LABEL_MIN = 90;
const LABEL_MAX = 260;

/** Widths of both charts for an available width and the label column the names need. */
export function chartLayouts(
  available: number,
  widestName: number,
  measure: Measure,
): { stacked: boolean; bars: ChartLayout; boxes: ChartLayout } {
  const width = Math.max(240, Math.min(MAX_WIDTH, Math.floor(available)));
  // The names' own width, but never more than ~30 % of the width (long names get shortened).
  const cap = Math.min(LABEL_MAX, Math.max(LABEL_MIN, Math.floor(0.3 * width)));
  const labelWidth = Math.min(cap, Math.max(LABEL_MIN / 2, Math.ceil(widestName) + 12));
  if (width < SIDE_BY_SIDE_MIN) {
    const layout = { width, labelWidth, measure };
    return { stacked: true, bars: layout, boxes: layout };
  }
  const plots = width - labelWidth - GAP;
  const barsWidth = labelWidth + Math.floor(0.55 * plots);
  return {
    stacked: false,
    bars: { width: barsWidth, labelWidth, measure },
    boxes: { width: width - GAP - barsWidth, labelWidth: 0, measure },
  };
}

/** The marks the charts draw for `state`, for the legend (it names no mark that is absent). */
export function drawnMarks(state: ViewState): Drawn {
  const rows = state.pinned >= 0 ? [...state.top, state.pinned] : state.top;
  const withInterval = rows.filter((i) => intervalOf(state.frame, i) !== null).length;
  return {
    axis: state.labels.axis,
    whiskers: withInterval > 0,
    interval: state.labels.interval,
    single: withInterval < rows.length,
    tied: state.separation.clear.some((clear) => !clear),
    topN: state.top.length,
    // Boxes need two estimates drawn (a race's done count is rows, not estimates).
    boxes: rows.some((i) => (repeatsOf(state.frame, i)?.length ?? 0) >= 2),
    maxDots: MAX_DOTS,
    raceK: state.settled ? (state.certified?.k ?? state.top.length) : null,
    groups: state.members.size > 0,
  };
}

export class ChartsView {
  private readonly root: HTMLElement;
  private readonly bars: BarsView;
  private readonly boxes: BoxesView;
  private readonly legend: HTMLElement;
  private readonly observer: ResizeObserver | null;
  private measure: Measure | null = null;
  private measureFont = "";
  private readonly warmTimer: ReturnType<typeof setTimeout>;
  private last: ViewState | null = null;
  /** The root's width as the ResizeObserver last saw it; -1 until known. */
  private width = -1;
  /** What the last drawn charts were drawn from, to skip a redraw that would change nothing. */
  private drawn: unknown[] = [];

  /**
   * @param timed Runs a redraw the view starts itself (on resize) under the page's render-time
   *   measure, as the dashboard's own redraws are.
   */
  constructor(parent: HTMLElement, send: Send, timed: (redraw: () => void) => void = (redraw) => redraw()) {
    this.root = html("div", { class: "aefi-charts", "data-testid": "aefi-charts" }, parent);
    this.bars = new BarsView(this.root, send);
    this.boxes = new BoxesView(this.root, send);
    this.legend = html("div", { class: "aefi-legend aefi-muted", "data-testid": "aefi-legend" }, parent);
    // The width comes from here, where layout is fresh (the observer runs after layout, before
    // paint, in the same frame), never from update(): reading clientWidth there, after the
    // header's writes, forced a synchronous layout of the whole JupyterLab page inside the draw
    // (3-13 ms for the first update of a just-attached output, profiled at 2,000 features).
    // Also redraws when the output area changes width (sidebar opened, window resized, the
    // view shown again).
    this.observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
      const width = this.root.clientWidth;
      if (Math.abs(width - this.width) < 1) return;
      this.width = width;
      const last = this.last;
      if (width > 0 && last) {
        timed(() => {
          // Style is fresh here: no forced style recalculation.
          this.fontMeasure(getComputedStyle(this.root).fontFamily || "sans-serif");
          this.update(last);
        });
      }
    });
    this.observer?.observe(this.root);
    // Make and warm the text measure before the first results arrive, in the font JupyterLab's
    // theme sets on the page (the root's own font, once attached, replaces it if it differs):
    // the first measurements in a font cost ~5 ms, which landed in the first update with data.
    this.warmTimer = setTimeout(() => {
      if (this.measure) return;
      const theme = getComputedStyle(document.documentElement).getPropertyValue("--jp-ui-font-family").trim();
      this.fontMeasure(theme || "system-ui, sans-serif");
    }, 0);
  }

  /** The SVG elements, for export. */
  charts(): SVGSVGElement[] {
    return [this.bars.root, this.boxes.root];
  }

  /** Text widths in the charts' font (11 px of `family`; the root's, read once, when not
   * given), measured with a canvas: made and warmed once per font. */
  private fontMeasure(family?: string): Measure {
    if (this.measure && family === undefined) return this.measure;
    const font = canonicalFont(`11px ${family ?? (getComputedStyle(this.root).fontFamily || "sans-serif")}`);
    if (!this.measure || font !== this.measureFont) {
      const measure = canvasMeasure(font);
      // The first measurements in a font load it and its fallbacks into the canvas (a few ms).
      measure("0123456789.,-−+% …×✓ abcdefghijklmnopqrstuvwxyz_|()[]ABCDEFGHIJKLMNOPQRSTUVWXYZ");
      this.measure = measure;
      this.measureFont = font;
    }
    return this.measure;
  }

  update(state: ViewState): void {
    this.last = state;
    if (!this.observer) this.width = this.root.clientWidth;
    // Not laid out yet (just attached), or hidden: the observer draws it once it has a width,
    // in the same frame.
    if (this.width <= 0) return;
    const width = this.width;
    const measure = this.fontMeasure();
    // Everything the charts and legend are drawn from (the reader keeps each the same object
    // while its traits are unchanged): the publisher's clock refreshes redraw nothing here.
    const inputs = [state.frame, state.index, state.top, state.pinned, state.selected, state.labels,
      state.settled, state.certified, state.members, width, measure];
    if (inputs.length === this.drawn.length && inputs.every((value, i) => value === this.drawn[i])) return;
    this.drawn = inputs;
    const widest = Math.max(0, ...state.top.map((i) => measure(state.index.names[i])));
    const layout = chartLayouts(width, widest, measure);
    this.root.classList.toggle("aefi-stacked", layout.stacked);
    this.bars.update(state, layout.bars);
    this.boxes.update(state, layout.boxes);
    setText(this.legend, legendText(drawnMarks(state)));
  }

  dispose(): void {
    clearTimeout(this.warmTimer);
    this.observer?.disconnect();
  }
}
