/** A hover box for charts with many marks (scatter points, heat-map cells), where one native
 * `<title>` per mark would be slow to build and cannot follow the pointer. */

import { html } from "./dom";

export class Tooltip {
  readonly element: HTMLElement;

  /** `parent` must be positioned (the box is placed relative to it). */
  constructor(private readonly parent: HTMLElement) {
    this.element = html("div", { class: "aefi-tooltip", "data-testid": "aefi-tooltip", role: "tooltip" }, parent);
    this.element.hidden = true;
  }

  /** Show `lines` near the pointer, kept inside the parent; `feature` names the mark (tests). */
  show(lines: string[], clientX: number, clientY: number, feature = ""): void {
    this.element.textContent = lines.join("\n");
    this.element.dataset.feature = feature;
    this.element.hidden = false;
    const box = this.parent.getBoundingClientRect();
    const width = this.element.offsetWidth;
    let left = clientX - box.left + 14;
    if (left + width > box.width) left = Math.max(0, clientX - box.left - width - 14);
    this.element.style.left = `${left}px`;
    this.element.style.top = `${clientY - box.top + 14}px`;
  }

  hide(): void {
    this.element.hidden = true;
  }
}
