/** Drilldown header: which feature is selected and its numbers (the bqplot panels sit below). */

import { html, setText } from "../lib/dom";
import { formatNumber } from "../lib/format";
import { countOf } from "../lib/labels";
import type { ViewState } from "../lib/state";
import { intervalOf } from "../lib/uncertainty";

export class SelectedView {
  private readonly name: HTMLElement;
  private readonly detail: HTMLElement;

  constructor(parent: HTMLElement) {
    const root = html("div", { class: "aefi-drilldown-header" }, parent);
    html("span", { class: "aefi-muted" }, root, "Drilldown: ");
    this.name = html("span", { class: "aefi-selected-name", "data-testid": "aefi-selected" }, root);
    this.detail = html("span", { class: "aefi-muted" }, root);
  }

  update(state: ViewState): void {
    setText(this.name, state.selected);
    if (!state.selected) {
      setText(this.detail, "click a bar, a box, a point, a map row or a search result to inspect a feature");
      return;
    }
    const feature = state.index.indexOf(state.selected);
    const { frame, labels } = state;
    const interval = feature < 0 ? null : intervalOf(frame, feature);
    // One estimate has no interval: say so rather than print "[x, x]".
    const spread = interval
      ? `${labels.interval ? "simultaneous bounds" : "95 % CI"} [${formatNumber(interval.low)}, ${formatNumber(interval.high)}]`
      : `no interval until a second ${labels.axis}`;
    setText(
      this.detail,
      feature < 0 || !(frame.nDone[feature] > 0)
        ? feature < 0 ? "" : " · not evaluated yet"
        : ` · mean ${labels.valueLabel} ${formatNumber(frame.mean[feature])}, ${spread} · ` +
          countOf(frame.nDone[feature], labels.count),
    );
  }
}
