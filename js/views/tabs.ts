/** View tabs: importance, compare, per-output map, latent map. The kernel's `view` decides what is drawn. */

import { clear, html } from "../lib/dom";
import type { ViewEntry } from "../lib/methods";
import type { Send } from "../lib/model";
import type { ViewState } from "../lib/state";

export class TabsView {
  readonly root: HTMLElement;
  private shown: ViewEntry[] | null = null;
  private buttons: HTMLButtonElement[] = [];

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = html("div", { class: "aefi-tabs", role: "tablist", "data-testid": "aefi-views" }, parent);
  }

  update(state: ViewState): void {
    this.root.hidden = state.views.length === 0;
    if (state.views !== this.shown) {
      this.shown = state.views;
      clear(this.root);
      this.buttons = state.views.map((entry) => {
        const button = html("button", {
          class: "aefi-tab",
          role: "tab",
          "data-testid": "aefi-view-tab",
          "data-view": entry.key,
          title: entry.available ? "" : entry.note || "not available for this run",
        }, this.root, entry.title);
        // aria-disabled, not disabled: a disabled button shows no tooltip in some browsers, and
        // the note says why the view is not available.
        button.setAttribute("aria-disabled", String(!entry.available));
        button.addEventListener("click", () => {
          if (entry.available) this.send({ type: "view", name: entry.key });
        });
        return button;
      });
    }
    state.views.forEach((entry, i) => {
      const active = entry.key === state.view;
      this.buttons[i].classList.toggle("aefi-tab-active", active);
      this.buttons[i].setAttribute("aria-selected", String(active));
    });
  }
}
