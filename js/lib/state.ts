/** Everything a redraw needs, read from the model's synced traits in one place. */

import { readLabels, type Labels } from "./labels";
import type { WidgetModel } from "./model";
import { decodeFrame, decodeInt32, toBytes, type Frame } from "./protocol";
import { NameIndex } from "./search";

export interface Progress {
  done: number;
  total: number;
  fraction: number;
  elapsed_s: number;
  eta_s: number | null;
  evals_per_s: number | null;
  rounds_done: number;
  n_repeats: number;
}

export interface ViewState {
  index: NameIndex;
  frame: Frame;
  /** Top-N feature indices in the kernel's rank order, only features with a value (the rows
   * the charts draw). */
  top: number[];
  /** Features with at least one estimate (k of F). */
  evaluated: number;
  /** The selected feature when it has a value but is not among `top` (drawn as an extra row
   * below them, so the pick stays visible), else -1. */
  pinned: number;
  progress: Progress;
  status: string;
  header: Record<string, unknown>;
  labels: Labels;
  error: string;
  warning: string;
  warningCount: number;
  selected: string;
  topN: number;
  maxTopN: number;
}

const noProgress: Progress = {
  done: 0,
  total: 0,
  fraction: 0,
  elapsed_s: 0,
  eta_s: null,
  evals_per_s: null,
  rounds_done: 0,
  n_repeats: 0,
};

function number(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Caches the name index: rebuilding it for 20,000 names on every update would waste time. */
export class StateReader {
  private names: unknown = null;
  private index = new NameIndex([]);
  private rawLabels: unknown = null;
  private labels = readLabels(null);

  read(model: WidgetModel): ViewState {
    const names = model.get("feature_names");
    if (names !== this.names) {
      this.names = names;
      this.index = new NameIndex(Array.isArray(names) ? names.map(String) : []);
    }
    const nFeatures = this.index.names.length;
    const nRepeats = number(model.get("n_repeats"), 0);
    const frame = decodeFrame(
      model.get("summary"),
      model.get("repeat_rows"),
      model.get("repeats"),
      nFeatures,
      nRepeats,
    );
    const topN = number(model.get("top_n"), 20);
    // The kernel lists the top-N first in rank order, then possibly the selected feature.
    const rowBytes = toBytes(model.get("repeat_rows"));
    const rows = rowBytes ? Array.from(decodeInt32(rowBytes)) : [];
    // Until every feature has a value, rank only those that have one (never NaN rows).
    const top = rows
      .slice(0, Math.min(topN, nFeatures))
      .filter((i) => i >= 0 && i < nFeatures && frame.nDone[i] > 0);
    let evaluated = 0;
    for (let i = 0; i < nFeatures; i++) if (frame.nDone[i] > 0) evaluated++;
    const selected = text(model.get("selected_feature"));
    const chosen = this.index.indexOf(selected);
    const pinned = chosen >= 0 && !top.includes(chosen) && frame.nDone[chosen] > 0 ? chosen : -1;
    const progress = model.get("progress");
    const rawLabels = model.get("labels");
    if (rawLabels !== this.rawLabels) {
      this.rawLabels = rawLabels;
      this.labels = readLabels(rawLabels);
    }
    return {
      index: this.index,
      frame,
      top,
      evaluated,
      pinned,
      progress: { ...noProgress, ...(typeof progress === "object" ? progress : {}) },
      status: text(model.get("status")),
      header: (model.get("header") as Record<string, unknown>) ?? {},
      labels: this.labels,
      error: text(model.get("error")),
      warning: text(model.get("warning")),
      warningCount: number(model.get("warning_count"), 0),
      selected,
      topN,
      maxTopN: number(model.get("max_top_n"), 200),
    };
  }
}
