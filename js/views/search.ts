/** Search box: find any feature by (part of) its name and select it. */

import { clear, html } from "../lib/dom";
import { formatNumber } from "../lib/format";
import type { Send } from "../lib/model";
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
      const [first] = this.state.index.search(this.input.value, 1);
      if (first !== undefined) this.send({ type: "select", index: first });
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
    const matches = state.index.search(this.input.value, SHOWN);
    if (matches.length) this.rank = ranks(rankOrder(state.frame.mean));
    for (const feature of matches) {
      const name = state.index.names[feature];
      const item = html("li", { class: "aefi-search-item", "data-testid": "aefi-search-item" }, this.list);
      item.dataset.feature = name;
      html("span", { class: "aefi-search-name" }, item, name);
      const mean = state.frame.mean[feature];
      const detail = Number.isFinite(mean) ? `#${this.rank[feature]} · ${formatNumber(mean)}` : "not yet";
      html("span", { class: "aefi-muted" }, item, detail);
      item.addEventListener("click", () => this.send({ type: "select", index: feature }));
    }
    if (this.input.value.trim() && matches.length === 0) {
      html("li", { class: "aefi-muted" }, this.list, "no feature matches");
    }
  }
}
