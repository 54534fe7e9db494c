/** Header: title, settings, progress (features first, then rounds), status, controls, banners. */

import { clear, html, setText } from "../lib/dom";
import { formatCount, formatNumber } from "../lib/format";
import type { Certified } from "../lib/methods";
import type { Send } from "../lib/model";
import type { Liveness } from "../lib/live";
import { runLineText, type RunLine } from "../lib/runline";
import type { ViewState } from "../lib/state";
import { stabilityText } from "../lib/uncertainty";

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

/** "certified top-20: 14 of 20", "(final)" once the race is over; a rows race says its
 * tolerance and confidence ("top 20 within 10 % of the 20th importance at 95 %: 12 of 20
 * certified") and, once units are tied, which places they share. */
export function certifiedText(certified: Certified): string {
  const { k, names, done, tolerance } = certified;
  const final = done ? " (final)" : "";
  if (!tolerance) return `certified top-${k}: ${names.length} of ${k}${final}`;
  const level = `${Math.round(certified.confidence * 1000) / 10} %`;
  let text = `top ${k} within ${tolerance} at ${level}: ${names.length} of ${k} certified`;
  const places = k - names.length;
  const sharing = certified.tied + certified.open;
  if (places > 0 && certified.tied > 0) {
    text += `; ${places} place${places === 1 ? "" : "s"} tied among ${formatCount(sharing)} units`;
  }
  return text + final;
}

/** The certified set's tooltip: the names, and for a plateau the work a separation needs. */
export function certifiedTitle(certified: Certified): string {
  const head = certified.names.length
    ? `Certainly in the top ${certified.k}${certified.tolerance ? ` (within ${certified.tolerance})` : ""}:\n${certified.names.join("\n")}`
    : `No feature is certain to be in the top ${certified.k} yet`;
  if (certified.tied > 0 && certified.separationRows > 0) {
    return `${head}\nThe tied units sit in a plateau: separating them would take about ` +
      `${formatCount(Math.round(certified.separationRows))} more rows (projected).`;
  }
  return head;
}

/** What a row is: "features", or "units" when some rows are groups of features. */
export function unitWord(state: Pick<ViewState, "members">): string {
  return state.members.size > 0 ? "units" : "features";
}

/** A line from the single-run traits, for a kernel that sends no `runs`. */
function fallbackLine(state: ViewState): RunLine {
  const { progress } = state;
  return {
    role: "shown+computing", title: state.labels.title, status: state.status || "idle", note: "",
    done: progress.done, total: progress.total, fraction: progress.fraction,
    rounds_done: progress.rounds_done, n_repeats: progress.n_repeats, axis: state.labels.axis,
    evaluated: state.evaluated, n_units: state.index.names.length, elapsed_s: progress.elapsed_s,
    eta_s: state.status === "running" ? progress.eta_s : null, race_round: null,
    evals_per_s: state.status === "running" ? progress.evals_per_s : null,
  };
}

/** The elements of one run line, in the order runLineText gives its words. */
function runRow(parent: HTMLElement): HTMLElement {
  const row = html("div", { class: "aefi-header-row aefi-run-line", "data-testid": "aefi-run-line" }, parent);
  html("span", { class: "aefi-run-role" }, row);
  html("span", { class: "aefi-run-title" }, row);
  html("span", { class: "aefi-run-status", "data-testid": "aefi-run-status" }, row);
  const track = html("div", { class: "aefi-progress", role: "progressbar" }, row);
  html("div", { class: "aefi-progress-fill" }, track);
  html("span", { class: "aefi-rounds" }, row);
  html("span", { class: "aefi-evaluated" }, row);
  html("span", { class: "aefi-muted aefi-run-detail", "data-testid": "aefi-run-detail" }, row);
  return row;
}

/** The first 3 lines and at most 300 characters of an error, "…" when cut. */
export function shortError(error: string): string {
  const lines = error.split("\n");
  let text = lines.slice(0, 3).join("\n");
  if (text.length > 300) text = text.slice(0, 300);
  return text.length < error.length ? `${text.trimEnd()} … (hover for all of it)` : text;
}

/** Three significant digits, trailing zeros kept: 1 -> "1.00", 0.285 -> "0.285". */
export function formatMeasured(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-5 || magnitude >= 1e6)) return value.toExponential(2);
  return value.toPrecision(3);
}

export class HeaderView {
  private readonly title: HTMLElement;
  private readonly settings: HTMLElement;
  private readonly lines: HTMLElement;
  private readonly certified: HTMLElement;
  private readonly stability: HTMLElement;
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
    this.lines = html("div", { class: "aefi-run-lines", "data-testid": "aefi-runs" }, root);
    const summaryRow = html("div", { class: "aefi-header-row" }, root);
    this.stability = html("span", { class: "aefi-stability", "data-testid": "aefi-stability" }, summaryRow);
    this.certified = html("span", { class: "aefi-certified", "data-testid": "aefi-certified" }, summaryRow);
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

  /** A control was used on a saved picture: say what it needs (for a few seconds). */
  needsKernel(text: string): void {
    this.showHint(text);
  }

  update(state: ViewState, live: Liveness = "live"): void {
    setText(this.title, state.labels.title);
    this.updateSettings(state);
    this.updateLines(state, live === "saved");
    this.updateStability(state);
    this.updateCertified(state);
    const saved = live === "saved";
    setText(this.status, saved ? "saved picture" : state.status === "cancelled" ? "stopped" : state.status || "idle");
    this.status.dataset.status = saved ? "saved" : state.status;
    // On a saved picture the buttons stay clickable so that a click can say what they need.
    const [pause, resume, stop] = saved ? [true, true, true] : controlsEnabled(state.status);
    this.pause.disabled = !pause;
    this.resume.disabled = !resume;
    this.stop.disabled = !stop;
    for (const button of [this.pause, this.resume, this.stop]) button.title = saved ? "Needs a live kernel: run the cell" : "";
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
    // A long error (a traceback in the message) is cut to its first lines; all of it on hover.
    setText(this.errorBanner, shortError(state.error));
    this.errorBanner.title = state.error;
    this.errorBanner.hidden = !state.error;
    this.updateWarning(state);
  }

  /** One tqdm-style line per run on screen; the line of the run the controls act on carries
   * the `aefi-rounds` / `aefi-evaluated` ids. */
  private updateLines(state: ViewState, saved: boolean): void {
    const lines = state.runs.length > 0 ? state.runs : [fallbackLine(state)];
    while (this.lines.children.length > lines.length) this.lines.lastElementChild?.remove();
    lines.forEach((line, k) => {
      let row = this.lines.children[k] as HTMLElement | undefined;
      if (!row) row = runRow(this.lines);
      const words = runLineText(line, unitWord(state));
      if (saved) {
        // Nothing computes behind a saved picture: no ETA, and the status says what it is.
        words.status = `saved picture (${words.status})`;
        words.timing = "";
      }
      const controlled = line.role !== "shown" || lines.length === 1;
      row.dataset.role = line.role;
      row.dataset.status = line.status;
      const [role, title, status, track, rounds, evaluated, detail] = Array.from(row.children) as HTMLElement[];
      setText(role, words.role);
      role.hidden = !words.role;
      setText(title, words.title);
      setText(status, words.status);
      const fill = track.firstElementChild as HTMLElement;
      fill.style.width = `${words.percent}%`;
      track.setAttribute("aria-valuenow", String(words.percent));
      setText(rounds, words.rounds);
      rounds.dataset.testid = controlled ? "aefi-rounds" : "aefi-run-rounds";
      setText(evaluated, words.evaluated);
      evaluated.hidden = !words.evaluated;
      evaluated.dataset.testid = controlled ? "aefi-evaluated" : "aefi-run-evaluated";
      // Counts, time and what replaces what in one muted run of text that wraps as a whole.
      setText(detail, [words.evaluations, words.timing, words.note].filter(Boolean).join(" · "));
    });
  }

  /** The always-visible "ranking stable?" line. */
  private updateStability(state: ViewState): void {
    let settled = null;
    if (state.certified && state.settled) {
      settled = { k: state.certified.k, inside: state.certified.names.length, done: state.certified.done };
    }
    const text = stabilityText(state.separation, state.top.length, state.index.names.length, state.labels.axis, settled);
    setText(this.stability, text);
    this.stability.dataset.stable = text.startsWith("Ranking stable:") ? "yes" : "no";
  }

  /** "certified top-20: 14 of 20" while a top-k race runs (names on hover). */
  private updateCertified(state: ViewState): void {
    const { certified } = state;
    this.certified.hidden = certified === null;
    if (!certified) return;
    setText(this.certified, certifiedText(certified));
    this.certified.title = certifiedTitle(certified);
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
      // A measured value (an error) is a float even when it prints as a whole number: three
      // significant digits ("1.00"), never a count's "1".
      if (typeof value === "number" && name.includes("error")) field(name, formatMeasured(value));
      else if (typeof value === "number") field(name, Number.isInteger(value) ? formatCount(value) : formatNumber(value));
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
