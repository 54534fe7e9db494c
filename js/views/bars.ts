/** Bar chart: each top feature's share of the total importance, in percent, with 95 % CI whiskers;
 * bars whose interval cannot separate them from the features below are greyed (uncertainty.ts). */

import { AXIS_HEIGHT, MARGIN_RIGHT, ROW_HEIGHT, chartHeight, chartRows, drawAxis, featureRow, rowCentre, rowsSpan, type ChartLayout } from "../lib/chart";
import { Redraw, setSize, svg } from "../lib/dom";
import { formatNumber, formatPercent } from "../lib/format";
import { countOf } from "../lib/labels";
import type { Send } from "../lib/model";
import { linearScale, valueDomain } from "../lib/scales";
import type { ViewState } from "../lib/state";
import { rankOrder, ranks } from "../lib/topn";
import { intervalOf, rankRangeText } from "../lib/uncertainty";

/** "selected · rank #523" in the gap above a pinned row (the pick outside the top N). */
export function pinNote(draw: Redraw, root: SVGSVGElement, state: ViewState, row: number): void {
  const rank = ranks(rankOrder(state.frame.mean))[state.pinned];
  const note = draw.svg("text", {
    class: "aefi-muted-text aefi-pin-note",
    "data-testid": "aefi-pin-note",
    x: 4,
    y: rowCentre(row) - ROW_HEIGHT / 2 - 3,
  }, root);
  draw.text(note, `selected, outside the top ${state.top.length} · rank #${rank}`);
}

/** The tooltip's line about a group's members: "group of 5: a, b, c, d, e" (at most 12 named). */
export function membersLine(members: readonly string[] | undefined): string {
  if (!members || members.length === 0) return "";
  const shown = members.slice(0, 12).join(", ");
  return `\ngroup of ${members.length}: ${shown}${members.length > 12 ? `, … (${members.length - 12} more)` : ""}`;
}

/** The tooltip's line about a top-k race: settled inside (+1) or outside (-1) the top k. */
export function settledLine(settled: number, k: number | null): string {
  const top = k ? `top ${k}` : "top k";
  if (settled > 0) return `\nsettled: certainly in the ${top}`;
  if (settled < 0) return `\nsettled: certainly outside the ${top}`;
  return "";
}

export class BarsView {
  readonly root: SVGSVGElement;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = svg("svg", { class: "aefi-chart", "data-testid": "aefi-bars" }, parent);
  }

  update(state: ViewState, layout: ChartLayout): void {
    const { frame, top, index, labels } = state;
    const draw = new Redraw(this.root);
    setSize(this.root, layout.width, chartHeight(rowsSpan(top, state.pinned)));
    const rows = chartRows(top, state.pinned);
    const span = rowsSpan(top, state.pinned);
    // Share = mean / (sum of positive means over the features evaluated so far), in percent;
    // the CI scales the same way. With no positive mean yet the share is undefined, so the raw
    // value is drawn instead.
    // A plain loop: forEach with a callback over 2,000+ values cost ~4 ms while the code was
    // still cold (the first update with data), profiled.
    let total = 0;
    for (let i = 0; i < frame.mean.length; i++) {
      const m = frame.mean[i];
      if (m > 0 && Number.isFinite(m)) total += m;
    }
    const percent = total > 0;
    const factor = percent ? 100 / total : 1;
    const all = state.evaluated >= index.names.length;
    const over = all ? "of total importance" : `among the ${state.evaluated.toLocaleString("en-US")} evaluated`;
    const label = percent ? `share ${over}, %` : `mean ${labels.valueLabel}`;
    const values = rows.flatMap(({ feature: i }) => {
      const interval = intervalOf(frame, i);
      return interval ? [interval.low * factor, interval.high * factor, frame.mean[i] * factor] : [frame.mean[i] * factor];
    });
    const x = linearScale(valueDomain(values), [layout.labelWidth, layout.width - MARGIN_RIGHT]);
    drawAxis(draw, this.root, x, span, label, layout.measure);
    const settled = state.settled ?? new Int8Array(0);
    const { clear, rankRange } = state.separation;
    rows.forEach(({ feature, row, pinned }, k) => {
      const name = index.names[feature];
      const mean = frame.mean[feature];
      const n = frame.nDone[feature];
      const interval = intervalOf(frame, feature);
      // Rows of the top N whose place in it the intervals do not establish (the pinned row is
      // outside the top N anyway).
      const tied = !pinned && !clear[k];
      const place = pinned || !interval ? "" :
        `\nranks its interval allows: ${rankRangeText(rankRange[k])}` +
        (tied ? ` (within noise of features outside the top ${top.length})` : ` (clearly in the top ${top.length})`);
      const tooltip =
        `${name}\nshare ${formatPercent(mean / total)}${all ? "" : " (of the evaluated)"}` +
        `\nmean ${labels.value} ${formatNumber(mean)}` +
        (interval ? `, ${labels.interval ? "simultaneous bounds" : "95 % CI"} [${formatNumber(interval.low)}, ${formatNumber(interval.high)}]` : "") +
        ` · ${countOf(n, labels.count)}${interval ? "" : ` (no interval until a second ${labels.axis})`}` +
        place +
        settledLine(settled[feature] ?? 0, state.certified?.k ?? null) +
        membersLine(state.members.get(name));
      const group = featureRow(
        draw,
        this.root,
        {
          testid: "aefi-bar",
          name,
          row,
          layout,
          selected: name === state.selected,
          pinned,
          settled: settled[feature] ? (settled[feature] > 0 ? "inside" : "outside") : undefined,
        },
        tooltip,
        () => this.send({ type: "select", index: feature }),
      );
      if (pinned) pinNote(draw, this.root, state, row);
      if (settled[feature] > 0) {
        // A check in the right margin: settled in the top k, the race will not move it out.
        const mark = draw.svg("text", { class: "aefi-settled-mark", x: layout.width - MARGIN_RIGHT + 3, y: rowCentre(row) + 4 }, group);
        draw.text(mark, "✓");
      }
      if (!Number.isFinite(mean)) return;
      const y = rowCentre(row);
      const value = mean * factor;
      const x0 = x(Math.min(0, value));
      draw.svg("rect", {
        // One estimate: a lighter bar and no whisker, not a zero-width interval.
        // Settled outside the top k: faded, the race has stopped spending time on it.
        // Within noise of the features below: grey (uncertainty.ts says why not a band).
        class: `aefi-bar-rect${interval ? "" : " aefi-single"}${tied ? " aefi-tied" : ""}${settled[feature] < 0 ? " aefi-settled-out" : ""}`,
        "data-interval": interval ? "yes" : "no",
        "data-tied": tied ? "yes" : "no",
        x: x0,
        y: y - ROW_HEIGHT * 0.35,
        width: Math.max(1, Math.abs(x(value) - x(0))),
        height: ROW_HEIGHT * 0.7,
      }, group);
      if (interval) {
        const lo = interval.low * factor;
        const hi = interval.high * factor;
        draw.svg("line", { class: "aefi-whisker", "data-testid": "aefi-whisker", x1: x(lo), x2: x(hi), y1: y, y2: y }, group);
        for (const end of [lo, hi]) {
          draw.svg("line", { class: "aefi-whisker", x1: x(end), x2: x(end), y1: y - 4, y2: y + 4 }, group);
        }
      }
    });
    if (top.length === 0) {
      const empty = draw.svg("text", { class: "aefi-muted-text", x: layout.labelWidth, y: AXIS_HEIGHT + 14 }, this.root);
      draw.text(empty, "waiting for the first results…");
    }
    draw.finish();
  }
}
