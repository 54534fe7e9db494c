/** Bar chart: normalized importance of the top-N features with 95 % CI whiskers. */

import { clear, svg } from "../lib/dom";
import { AXIS_HEIGHT, MARGIN_RIGHT, ROW_HEIGHT, chartHeight, drawAxis, featureRow, rowCentre, truncate } from "../lib/chart";
import { formatNumber } from "../lib/format";
import { countOf } from "../lib/labels";
import type { Send } from "../lib/model";
import { linearScale, valueDomain } from "../lib/scales";
import type { ViewState } from "../lib/state";

const WIDTH = 500;
const LABEL_WIDTH = 170;

export class BarsView {
  private readonly root: SVGSVGElement;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = svg("svg", { class: "aefi-chart", "data-testid": "aefi-bars", width: WIDTH }, parent);
  }

  update(state: ViewState): void {
    const { frame, top, index } = state;
    clear(this.root);
    this.root.setAttribute("height", String(chartHeight(top.length)));
    // Normalized importance = mean / (sum of positive means); the CI scales the same way. When
    // no mean is positive yet the share is undefined, so the raw Δerror is drawn instead.
    let total = 0;
    frame.mean.forEach((m) => (total += Number.isFinite(m) && m > 0 ? m : 0));
    const factor = total > 0 ? 1 / total : 1;
    const { labels } = state;
    const label = total > 0 ? "share of total importance (95 % CI)" : `mean ${labels.valueLabel} (95 % CI)`;
    const values = top.flatMap((i) => [frame.ciLow[i] * factor, frame.ciHigh[i] * factor, frame.mean[i] * factor]);
    const x = linearScale(valueDomain(values), [LABEL_WIDTH, WIDTH - MARGIN_RIGHT]);
    drawAxis(this.root, x, top.length, label);
    top.forEach((feature, row) => {
      const name = index.names[feature];
      const mean = frame.mean[feature];
      const tooltip =
        `${name}\nmean ${labels.value} ${formatNumber(mean)} [${formatNumber(frame.ciLow[feature])}, ` +
        `${formatNumber(frame.ciHigh[feature])}]\nshare ${formatNumber(frame.normalized[feature])}` +
        ` · ${countOf(frame.nDone[feature], labels.axis)}`;
      const group = featureRow(
        this.root,
        { testid: "aefi-bar", name, row, width: WIDTH, selected: name === state.selected },
        tooltip,
        () => this.send({ type: "select", index: feature }),
      );
      const y = rowCentre(row);
      const text = svg("text", { class: "aefi-label", x: LABEL_WIDTH - 6, y: y + 4 }, group);
      text.textContent = truncate(name);
      if (!Number.isFinite(mean)) return;
      const value = mean * factor;
      const x0 = x(Math.min(0, value));
      svg("rect", {
        class: "aefi-bar-rect",
        x: x0,
        y: y - ROW_HEIGHT * 0.35,
        width: Math.max(1, Math.abs(x(value) - x(0))),
        height: ROW_HEIGHT * 0.7,
      }, group);
      const lo = frame.ciLow[feature] * factor;
      const hi = frame.ciHigh[feature] * factor;
      if (Number.isFinite(lo) && Number.isFinite(hi) && hi > lo) {
        svg("line", { class: "aefi-whisker", x1: x(lo), x2: x(hi), y1: y, y2: y }, group);
        for (const end of [lo, hi]) {
          svg("line", { class: "aefi-whisker", x1: x(end), x2: x(end), y1: y - 4, y2: y + 4 }, group);
        }
      }
    });
    if (top.length === 0) {
      const empty = svg("text", { class: "aefi-muted-text", x: LABEL_WIDTH, y: AXIS_HEIGHT + 14 }, this.root);
      empty.textContent = "waiting for the first results…";
    }
  }
}
