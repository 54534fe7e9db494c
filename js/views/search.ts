/** Search box: find any feature by (part of) its name, best ranked first, and select it. */

import { clear, html } from "../lib/dom";
import { formatNumber, formatPercent } from "../lib/format";
import type { Send } from "../lib/model";
import { bestMatches, splitMatch } from "../lib/search";
import type { ViewState } from "../lib/state";
import { rankOrder, ranks } from "../lib/topn";

const SHOWN = 12;

export class SearchView {
  private readonly input: HTMLInputElement;
  private readonly list: HTMLElement;
  private state: ViewState | null = null;
  private rank: Int32Array = new Int32Array(0);

  constructor(parent: HTMLElement, private readonly send: Send) {
    const root = html("div", { class: "aefi-search" }, parent);
    this.input = html("input", {
      type: "search",
      placeholder: "Search features…",
      "data-testid": "aefi-search",
      class: "aefi-search-input",
      maxlength: 200,
    }, root);
    this.list = html("ul", { class: "aefi-search-results", "data-testid": "aefi-search-results" }, root);
    this.input.addEventListener("input", () => this.render());
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || !this.state) return;
      const { matches } = bestMatches(this.state.index, this.input.value, this.state.frame.mean, 1);
      if (matches.length) this.send({ type: "select", index: matches[0] });
    });
  }

  update(state: ViewState): void {
    this.state = state;
    // Ranks only matter while results are listed; skip the sort otherwise.
    if (this.input.value.trim()) this.render();
  }

  private render(): void {
    clear(this.list);
    const state = this.state;
    if (!state) return;
    const query = this.input.value;
    const { matches, total } = bestMatches(state.index, query, state.frame.mean, SHOWN);
    if (matches.length) this.rank = ranks(rankOrder(state.frame.mean));
    let sum = 0;
    for (let i = 0; i < state.frame.mean.length; i++) {
      const m = state.frame.mean[i];
      if (m > 0 && Number.isFinite(m)) sum += m;
    }
    for (const feature of matches) {
      const name = state.index.names[feature];
      const selected = name === state.selected ? " aefi-search-selected" : "";
      const item = html("li", { class: `aefi-search-item${selected}`, "data-testid": "aefi-search-item", title: name }, this.list);
      item.dataset.feature = name;
      const label = html("span", { class: "aefi-search-name" }, item);
      const [before, hit, after] = splitMatch(name, query);
      label.append(before);
      if (hit) html("mark", { class: "aefi-search-hit" }, label, hit);
      label.append(after);
      const mean = state.frame.mean[feature];
      const share = sum > 0 ? ` · ${formatPercent(Math.max(0, mean) / sum)}` : "";
      const detail = Number.isFinite(mean) ? `#${this.rank[feature]} · ${formatNumber(mean)}${share}` : "not yet evaluated";
      html("span", { class: "aefi-muted" }, item, detail);
      item.addEventListener("click", () => this.send({ type: "select", index: feature }));
    }
    if (total > matches.length) {
      html("li", { class: "aefi-muted", "data-testid": "aefi-search-more" }, this.list,
        `… ${(total - matches.length).toLocaleString("en-US")} more: type more of the name`);
    }
    if (query.trim() && total === 0) {
      html("li", { class: "aefi-muted" }, this.list, "no feature matches");
    }
  }
}
