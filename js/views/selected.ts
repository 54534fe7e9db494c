/** Drilldown header: which feature is selected and its numbers (the bqplot panels sit below). */

import { html, setText } from "../lib/dom";
import { formatNumber } from "../lib/format";
import { countOf } from "../lib/labels";
import type { ViewState } from "../lib/state";

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
    setText(
      this.detail,
      feature < 0
        ? ""
        : ` · mean ${labels.valueLabel} ${formatNumber(frame.mean[feature])} ` +
          `[${formatNumber(frame.ciLow[feature])}, ${formatNumber(frame.ciHigh[feature])}] · ` +
          countOf(frame.nDone[feature], labels.axis),
    );
  }
}
