/** Header: title, settings, progress (features first, then rounds), status, controls, banners. */

import { clear, html, setText } from "../lib/dom";
import { formatCount, formatDuration, formatNumber } from "../lib/format";
import type { Certified } from "../lib/methods";
import type { Send } from "../lib/model";
import type { ViewState } from "../lib/state";

// A warning stays visible this long after it last changed.
const WARNING_MS = 8000;
const HINT_MS = 4000;

/** Which controls a status allows: [pause, resume, stop]. */
export function controlsEnabled(status: string): [boolean, boolean, boolean] {
  return [
    status === "running",
    // Resume continues a paused job; after Stop it continues from the partial result.
    status === "paused" || status === "cancelled",
    status === "running" || status === "paused" || status === "idle",
  ];
}

/** A requested top-N clamped to [1, max], or null when it is not a whole number. */
export function clampTopN(text: string, max: number): number | null {
  const value = Number(text.trim());
  if (!text.trim() || !Number.isInteger(value)) return null;
  return Math.max(1, Math.min(max, value));
}

/** "certified top-20: 14 of 20", "(final)" once the race is over. */
export function certifiedText(certified: Certified): string {
  return `certified top-${certified.k}: ${certified.names.length} of ${certified.k}${certified.done ? " (final)" : ""}`;
}

/** What a row is: "features", or "units" when some rows are groups of features. */
export function unitWord(state: Pick<ViewState, "members">): string {
  return state.members.size > 0 ? "units" : "features";
}

export class HeaderView {
  private readonly title: HTMLElement;
  private readonly settings: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly rounds: HTMLElement;
  private readonly evaluated: HTMLElement;
  private readonly evaluations: HTMLElement;
  private readonly timing: HTMLElement;
  private readonly certified: HTMLElement;
  private readonly status: HTMLElement;
  private readonly pause: HTMLButtonElement;
  private readonly resume: HTMLButtonElement;
  private readonly stop: HTMLButtonElement;
  private readonly topN: HTMLInputElement;
  private readonly topHint: HTMLElement;
  private readonly stoppedNote: HTMLElement;
  readonly tools: HTMLElement;
  private readonly errorBanner: HTMLElement;
  private readonly warningBanner: HTMLElement;
  private shownHeader: unknown = null;
  private shownIndex: unknown = null;
  private shownWarning = -1;
  private maxTopN = 200;
  private warningTimer: ReturnType<typeof setTimeout> | undefined;
  private hintTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(parent: HTMLElement, private readonly send: Send) {
    const root = html("div", { class: "aefi-header" }, parent);
    const top = html("div", { class: "aefi-header-row" }, root);
    this.title = html("span", { class: "aefi-title", "data-testid": "aefi-title" }, top);
    this.settings = html("span", { class: "aefi-settings", "data-testid": "aefi-settings" }, top);
    const progressRow = html("div", { class: "aefi-header-row" }, root);
    const track = html("div", { class: "aefi-progress", role: "progressbar" }, progressRow);
    this.bar = html("div", { class: "aefi-progress-fill" }, track);
    this.rounds = html("span", { class: "aefi-rounds", "data-testid": "aefi-rounds" }, progressRow);
    this.evaluated = html("span", { class: "aefi-evaluated", "data-testid": "aefi-evaluated" }, progressRow);
    this.evaluations = html("span", { class: "aefi-muted" }, progressRow);
    this.timing = html("span", { class: "aefi-muted" }, progressRow);
    this.certified = html("span", { class: "aefi-certified", "data-testid": "aefi-certified" }, progressRow);
    const controls = html("div", { class: "aefi-header-row" }, root);
    this.status = html("span", { class: "aefi-status", "data-testid": "aefi-status" }, controls);
    const button = (label: string, testid: string, action: "pause" | "resume" | "stop") => {
      const element = html("button", { class: "aefi-button", "data-testid": testid }, controls);
      element.textContent = label;
      element.addEventListener("click", () => send({ type: "control", action }));
      return element;
    };
    this.pause = button("Pause", "aefi-pause", "pause");
    this.resume = button("Resume", "aefi-resume", "resume");
    this.stop = button("Stop", "aefi-stop", "stop");
    const label = html("label", { class: "aefi-topn" }, controls, "Top ");
    this.topN = html("input", { type: "number", min: 1, step: 1, class: "aefi-topn-input", "data-testid": "aefi-top" }, label);
    this.topHint = html("span", { class: "aefi-muted", "data-testid": "aefi-top-hint" }, controls);
    this.topN.addEventListener("change", () => this.submitTopN());
    this.topN.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.submitTopN();
    });
    this.tools = html("span", { class: "aefi-tools" }, controls);
    this.stoppedNote = html("div", { class: "aefi-muted", "data-testid": "aefi-stopped" }, root);
    this.errorBanner = html("div", { class: "aefi-error", "data-testid": "aefi-error" }, root);
    this.warningBanner = html("div", { class: "aefi-warning", "data-testid": "aefi-warning" }, root);
  }

  private submitTopN(): void {
    const value = clampTopN(this.topN.value, this.maxTopN);
    if (value === null) {
      this.showHint(`Top takes a whole number from 1 to ${this.maxTopN}`);
      return;
    }
    if (String(value) !== this.topN.value.trim()) this.showHint(`Top is between 1 and ${this.maxTopN}: showing ${value}`);
    this.topN.value = String(value);
    this.send({ type: "top_n", value });
  }

  private showHint(text: string): void {
    this.topHint.textContent = text;
    clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => (this.topHint.textContent = ""), HINT_MS);
  }

  update(state: ViewState): void {
    const { progress } = state;
    setText(this.title, state.labels.title);
    this.updateSettings(state);
    const percent = Math.round(1000 * Math.min(1, Math.max(0, progress.fraction))) / 10;
    this.bar.style.width = `${percent}%`;
    this.bar.parentElement?.setAttribute("aria-valuenow", String(percent));
    setText(this.rounds, `${progress.rounds_done} / ${progress.n_repeats} rounds`);
    // Until every feature has a first value, progress reads in features.
    const total = state.index.names.length;
    setText(this.evaluated, `${formatCount(state.evaluated)} of ${formatCount(total)} ${unitWord(state)} evaluated`);
    this.evaluated.hidden = state.evaluated >= total;
    setText(this.evaluations, `${percent}% · ${formatCount(progress.done)} / ${formatCount(progress.total)} evaluations`);
    const rate = progress.evals_per_s ? ` · ${formatCount(progress.evals_per_s)}/s` : "";
    setText(this.timing, `elapsed ${formatDuration(progress.elapsed_s)} · ETA ${formatDuration(progress.eta_s)}${rate}`);
    this.updateCertified(state);
    setText(this.status, state.status === "cancelled" ? "stopped" : state.status || "idle");
    this.status.dataset.status = state.status;
    const [pause, resume, stop] = controlsEnabled(state.status);
    this.pause.disabled = !pause;
    this.resume.disabled = !resume;
    this.stop.disabled = !stop;
    setText(this.resume, state.status === "cancelled" ? "Continue" : "Resume");
    setText(
      this.stoppedNote,
      state.status === "cancelled"
        ? "Stopped: the partial result is in explorer.result; Continue computes the rest from there."
        : "",
    );
    this.stoppedNote.hidden = state.status !== "cancelled";
    this.maxTopN = state.maxTopN;
    this.topN.max = String(state.maxTopN);
    if (document.activeElement !== this.topN) this.topN.value = String(state.topN);
    setText(this.errorBanner, state.error);
    this.errorBanner.hidden = !state.error;
    this.updateWarning(state);
  }

  /** "certified top-20: 14 of 20" while a top-k race runs (names on hover). */
  private updateCertified(state: ViewState): void {
    const { certified } = state;
    this.certified.hidden = certified === null;
    if (!certified) return;
    setText(this.certified, certifiedText(certified));
    this.certified.title = certified.names.length
      ? `Certainly in the top ${certified.k}:\n${certified.names.join("\n")}`
      : `No feature is certain to be in the top ${certified.k} yet`;
  }

  /** One span per field, so the line wraps between fields, never inside one. */
  private updateSettings(state: ViewState): void {
    // The units may change (another method, groups): the feature count is part of the key.
    if (state.header === this.shownHeader && state.index === this.shownIndex) return;
    this.shownHeader = state.header;
    this.shownIndex = state.index;
    clear(this.settings);
    const field = (name: string, value: string) => {
      const item = html("span", { class: "aefi-field" }, this.settings);
      html("span", { class: "aefi-field-name" }, item, `${name} `);
      html("span", { class: "aefi-field-value" }, item, value);
    };
    field(unitWord(state), formatCount(state.index.names.length));
    for (const [name, value] of Object.entries(state.header)) {
      if (typeof value === "number") field(name, Number.isInteger(value) ? formatCount(value) : formatNumber(value));
      else if (typeof value === "string") field(name, value);
    }
  }

  private updateWarning(state: ViewState): void {
    if (state.warningCount === this.shownWarning) return;
    this.shownWarning = state.warningCount;
    setText(this.warningBanner, state.warning);
    this.warningBanner.hidden = !state.warning;
    clearTimeout(this.warningTimer);
    this.warningTimer = setTimeout(() => (this.warningBanner.hidden = true), WARNING_MS);
  }

  dispose(): void {
    clearTimeout(this.warningTimer);
    clearTimeout(this.hintTimer);
  }
}
