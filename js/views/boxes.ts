/** Box plot per top-N feature of the per-estimate values, with every estimate drawn as a point. */

import { boxStats } from "../lib/boxstats";
import { clear, svg } from "../lib/dom";
import { MARGIN_RIGHT, ROW_HEIGHT, chartHeight, drawAxis, featureRow, rowCentre } from "../lib/chart";
import { formatNumber } from "../lib/format";
import { countOf } from "../lib/labels";
import type { Send } from "../lib/model";
import { repeatsOf } from "../lib/protocol";
import { linearScale, valueDomain } from "../lib/scales";
import type { ViewState } from "../lib/state";

const WIDTH = 360;
const LEFT = 12;

export class BoxesView {
  private readonly root: SVGSVGElement;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = svg("svg", { class: "aefi-chart", "data-testid": "aefi-boxes", width: WIDTH }, parent);
  }

  update(state: ViewState): void {
    const { frame, top, index } = state;
    clear(this.root);
    this.root.setAttribute("height", String(chartHeight(top.length)));
    const perFeature = top.map((feature) => repeatsOf(frame, feature) ?? []);
    const x = linearScale(valueDomain(perFeature.flat()), [LEFT, WIDTH - MARGIN_RIGHT]);
    const { labels } = state;
    drawAxis(this.root, x, top.length, `${labels.valueLabel} per ${labels.axis}`);
    top.forEach((feature, row) => {
      const name = index.names[feature];
      const values = perFeature[row];
      const stats = boxStats(values);
      const tooltip = stats
        ? `${name}\nmedian ${formatNumber(stats.median)}, IQR [${formatNumber(stats.q1)}, ` +
          `${formatNumber(stats.q3)}], ${countOf(stats.n, labels.axis)}`
        : `${name}\nno ${labels.axis}s yet`;
      const group = featureRow(
        this.root,
        { testid: "aefi-box", name, row, width: WIDTH, selected: name === state.selected },
        tooltip,
        () => this.send({ type: "select", index: feature }),
      );
      if (!stats) return;
      const y = rowCentre(row);
      const half = ROW_HEIGHT * 0.3;
      svg("line", { class: "aefi-whisker", x1: x(stats.whiskerLow), x2: x(stats.whiskerHigh), y1: y, y2: y }, group);
      svg("rect", {
        class: "aefi-box-rect",
        x: x(stats.q1),
        y: y - half,
        width: Math.max(1, x(stats.q3) - x(stats.q1)),
        height: 2 * half,
      }, group);
      svg("line", { class: "aefi-median", x1: x(stats.median), x2: x(stats.median), y1: y - half, y2: y + half }, group);
      values.forEach((value, j) => {
        // Deterministic jitter (by repeat) so points do not hide each other and do not dance.
        const jitter = ((j * 7) % 9) / 8 - 0.5;
        svg("circle", { class: "aefi-point", cx: x(value), cy: y + jitter * half * 1.6, r: 2.2 }, group);
      });
    });
  }
}
