/**
 * Method selector and groups control: which run is shown, and whether units are single features
 * or groups of correlated ones. The kernel decides; these only send requests.
 */

import { clear, html } from "../lib/dom";
import { groupsMessage, methodLabel, methodsTooltip, parseThreshold, statusWord, type GroupsMode, type MethodEntry } from "../lib/methods";
import type { Send } from "../lib/model";
import type { ViewState } from "../lib/state";

const HINT_MS = 4000;

/** The groups modes offered: custom only when the explorer was given groups. */
export function groupsModes(hasCustom: boolean): GroupsMode[] {
  return hasCustom ? ["none", "auto", "custom"] : ["none", "auto"];
}

const MODE_WORDS: Record<GroupsMode, string> = {
  none: "single features",
  auto: "correlated groups",
  custom: "your groups",
};

export class MethodsView {
  readonly root: HTMLElement;
  private readonly method: HTMLSelectElement;
  private readonly groupsBox: HTMLElement;
  private readonly groups: HTMLSelectElement;
  private readonly thresholdBox: HTMLElement;
  private readonly threshold: HTMLInputElement;
  private readonly groupsInfo: HTMLElement;
  private readonly hint: HTMLElement;
  private shownMethods: MethodEntry[] | null = null;
  private shownModes = "";
  private hintTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(parent: HTMLElement, private readonly send: Send) {
    this.root = html("div", { class: "aefi-header-row aefi-methods" }, parent);
    const label = html("label", { class: "aefi-control" }, this.root, "Method ");
    this.method = html("select", { class: "aefi-select", "data-testid": "aefi-method" }, label);
    this.method.addEventListener("change", () => {
      if (this.method.value) this.send({ type: "method", key: this.method.value });
    });
    this.groupsBox = html("span", { class: "aefi-groups" }, this.root);
    const groupsLabel = html("label", { class: "aefi-control" }, this.groupsBox, "Units ");
    this.groups = html("select", { class: "aefi-select", "data-testid": "aefi-groups" }, groupsLabel);
    this.groups.addEventListener("change", () => this.submitGroups());
    this.thresholdBox = html("label", {
      class: "aefi-control",
      title: "Features whose absolute correlation reaches this value form a group (0 < threshold ≤ 1)",
    }, this.groupsBox, "|r| ≥ ");
    this.threshold = html("input", {
      type: "number",
      min: 0.05,
      max: 1,
      step: 0.05,
      class: "aefi-topn-input",
      "data-testid": "aefi-groups-threshold",
    }, this.thresholdBox);
    this.threshold.addEventListener("change", () => this.submitGroups());
    this.threshold.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.submitGroups();
    });
    this.groupsInfo = html("span", { class: "aefi-muted", "data-testid": "aefi-groups-info" }, this.groupsBox);
    this.hint = html("span", { class: "aefi-muted", "data-testid": "aefi-groups-hint" }, this.groupsBox);
  }

  private submitGroups(): void {
    const mode = this.groups.value as GroupsMode;
    this.thresholdBox.hidden = mode !== "auto";
    if (mode !== "auto") {
      this.send(groupsMessage(mode, null));
      return;
    }
    const threshold = parseThreshold(this.threshold.value);
    if (threshold === null) {
      this.showHint("the threshold is a number above 0 and at most 1");
      return;
    }
    this.send(groupsMessage("auto", threshold));
  }

  private showHint(text: string): void {
    this.hint.textContent = text;
    clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => (this.hint.textContent = ""), HINT_MS);
  }

  update(state: ViewState): void {
    this.root.hidden = state.methods.length === 0;
    this.updateMethods(state);
    this.updateGroups(state);
  }

  private updateMethods(state: ViewState): void {
    const { methods } = state;
    if (methods !== this.shownMethods) {
      const sameKeys =
        this.shownMethods !== null &&
        this.shownMethods.length === methods.length &&
        this.shownMethods.every((m, i) => m.key === methods[i].key);
      // Same methods: relabel in place, so an open drop-down is not rebuilt under the pointer.
      if (!sameKeys) {
        clear(this.method);
        for (const entry of methods) html("option", { value: entry.key }, this.method);
      }
      methods.forEach((entry, i) => {
        const option = this.method.options[i];
        option.textContent = methodLabel(entry);
        option.title = entry.note || `${entry.title}: ${statusWord(entry.status)}`;
        option.disabled = entry.status === "unavailable";
        option.dataset.status = entry.status;
      });
      this.method.title = methodsTooltip(methods);
      this.shownMethods = methods;
    }
    if (this.method.value !== state.method) this.method.value = state.method;
  }

  private updateGroups(state: ViewState): void {
    const { groups } = state;
    this.groupsBox.hidden = !groups.supported;
    const modes = groupsModes(groups.hasCustom);
    if (modes.join() !== this.shownModes) {
      clear(this.groups);
      for (const mode of modes) html("option", { value: mode }, this.groups, MODE_WORDS[mode]);
      this.shownModes = modes.join();
    }
    if (document.activeElement !== this.groups) this.groups.value = groups.mode;
    if (document.activeElement !== this.threshold) this.threshold.value = String(groups.threshold);
    this.thresholdBox.hidden = this.groups.value !== "auto";
    this.groupsInfo.textContent =
      groups.mode === "none" ? "" : `${groups.nGroups.toLocaleString("en-US")} group${groups.nGroups === 1 ? "" : "s"}`;
  }

  dispose(): void {
    clearTimeout(this.hintTimer);
  }
}
