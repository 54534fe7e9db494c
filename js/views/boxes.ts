/** Box plot per top feature of its per-estimate values, every estimate drawn as a dot. */

import { boxStats } from "../lib/boxstats";
import { MARGIN_RIGHT, ROW_HEIGHT, chartHeight, chartRows, drawAxis, featureRow, rowCentre, rowsSpan, type ChartLayout } from "../lib/chart";
import { Redraw, setSize, svg } from "../lib/dom";
import { formatNumber } from "../lib/format";
import { countOf } from "../lib/labels";
import type { Send } from "../lib/model";
import { repeatsOf } from "../lib/protocol";
import { linearScale, valueDomain } from "../lib/scales";
import type { ViewState } from "../lib/state";

/** Most estimates drawn each as a dot. */
export const MAX_DOTS = 12;
/** Left padding when the chart has no label column of its own. */
const LEFT = 12;

export class BoxesView {
  readonly root: SVGSVGElement;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = svg("svg", { class: "aefi-chart", "data-testid": "aefi-boxes" }, parent);
  }

  update(state: ViewState, layout: ChartLayout): void {
    const { frame, top, index, labels } = state;
    const draw = new Redraw(this.root);
    setSize(this.root, layout.width, chartHeight(rowsSpan(top, state.pinned)));
    const rows = chartRows(top, state.pinned);
    const span = rowsSpan(top, state.pinned);
    const perFeature = rows.map(({ feature }) => repeatsOf(frame, feature) ?? []);
    const start = layout.labelWidth > 0 ? layout.labelWidth : LEFT;
    const x = linearScale(valueDomain(perFeature.flat()), [start, layout.width - MARGIN_RIGHT]);
    // The unit last, so a narrow chart breaks the title before it.
    const unit = labels.unit ? ` (${labels.unit})` : "";
    drawAxis(draw, this.root, x, span, `${labels.value} per ${labels.axis}${unit}`, layout.measure);
    rows.forEach(({ feature, row, pinned }, k) => {
      const name = index.names[feature];
      const values = perFeature[k];
      const stats = boxStats(values);
      const tooltip = stats
        ? `${name}\n` +
          (stats.n > 1
            ? `median ${formatNumber(stats.median)}, middle half [${formatNumber(stats.q1)}, ` +
              `${formatNumber(stats.q3)}], `
            : `${labels.value} ${formatNumber(stats.median)}, `) +
          countOf(stats.n, labels.axis)
        : `${name}\nno ${labels.axis}s yet`;
      const group = featureRow(
        draw,
        this.root,
        { testid: "aefi-box", name, row, layout, selected: name === state.selected, pinned },
        tooltip,
        () => this.send({ type: "select", index: feature }),
      );
      if (!stats) return;
      const y = rowCentre(row);
      const half = ROW_HEIGHT * 0.3;
      // A box needs at least two estimates; one is drawn as its dot alone.
      if (stats.n > 1) {
        draw.svg("line", { class: "aefi-whisker", x1: x(stats.whiskerLow), x2: x(stats.whiskerHigh), y1: y, y2: y }, group);
        draw.svg("rect", {
          class: "aefi-box-rect",
          x: x(stats.q1),
          y: y - half,
          width: Math.max(1, x(stats.q3) - x(stats.q1)),
          height: 2 * half,
        }, group);
        draw.svg("line", { class: "aefi-median", x1: x(stats.median), x2: x(stats.median), y1: y - half, y2: y + half }, group);
      }
      // Up to MAX_DOTS estimates every one is a dot; beyond, only those outside the whiskers
      // (as in any box plot), so the box stays visible.
      const dots = stats.n <= MAX_DOTS ? values : stats.outliers;
      dots.forEach((value, j) => {
        // Deterministic jitter (by estimate) so dots do not hide each other and do not dance.
        const jitter = stats.n > 1 ? ((j * 7) % 9) / 8 - 0.5 : 0;
        draw.svg("circle", { class: "aefi-point", cx: x(value), cy: y + jitter * half * 1.6, r: stats.n > 1 ? 2.2 : 3 }, group);
      });
    });
    draw.finish();
  }
}
