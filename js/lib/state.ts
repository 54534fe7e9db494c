/** Everything a redraw needs, read from the model's synced traits in one place. */

import { readLabels, type Labels } from "./labels";
import {
  decodePoints,
  decodeSettled,
  noteOf,
  readCertified,
  readCompare,
  readGroups,
  readHeatmap,
  readLatentTop,
  readMembers,
  readMethods,
  readView,
  readViews,
  type Certified,
  type Compare,
  type GroupsState,
  type Heatmap,
  type LatentTop,
  type MethodEntry,
  type ViewEntry,
} from "./methods";
import type { ViewName, WidgetModel } from "./model";
import { decodeFrame, decodeInt32, toBytes, type Frame } from "./protocol";
import { NameIndex } from "./search";
import { readWhy, type Why } from "./matrix";
import { readRuns, type RunLine } from "./runline";
import { separation, type Separation } from "./uncertainty";

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
  /** How the intervals separate the top rows from the rest (see uncertainty.ts). */
  separation: Separation;
  progress: Progress;
  /** One header line per run on screen (empty from a kernel that sends none). */
  runs: RunLine[];
  status: string;
  header: Record<string, unknown>;
  labels: Labels;
  error: string;
  warning: string;
  warningCount: number;
  selected: string;
  topN: number;
  maxTopN: number;
  // Protocol v3: several methods, views, groups, comparison and maps.
  methods: MethodEntry[];
  method: string;
  view: ViewName;
  views: ViewEntry[];
  groups: GroupsState;
  members: Map<string, string[]>;
  /** (F,) +1 settled inside the top k, -1 outside, 0 open; null without a top-k run. */
  settled: Int8Array | null;
  certified: Certified | null;
  compare: Compare | null;
  comparePoints: { x: Float32Array; y: Float32Array } | null;
  heatmap: Heatmap | null;
  /** The compare / heat-map trait's note, also when it has nothing to draw (it says why). */
  compareNote: string;
  heatmapNote: string;
  latentTop: LatentTop | null;
  /** The compare view's "why do they disagree?" for the selection (null without one). */
  why: Why | null;
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

/** The decoded frame with what is derived from it alone: the rows to draw and how many have a value. */
function rankedFrame(
  summary: unknown,
  repeatRows: unknown,
  repeats: unknown,
  nFeatures: number,
  nRepeats: number,
  topN: number,
): { frame: Frame; top: number[]; evaluated: number } {
  const frame = decodeFrame(summary, repeatRows, repeats, nFeatures, nRepeats);
  // The kernel lists the top-N first in rank order, then possibly the selected feature.
  const rowBytes = toBytes(repeatRows);
  const rows = rowBytes ? decodeInt32(rowBytes) : new Int32Array(0);
  // Until every feature has a value, rank only those that have one (never NaN rows).
  const top = Array.from(rows.subarray(0, Math.min(topN, nFeatures))).filter(
    (i) => i >= 0 && i < nFeatures && frame.nDone[i] > 0,
  );
  let evaluated = 0;
  for (let i = 0; i < nFeatures; i++) if (frame.nDone[i] > 0) evaluated++;
  return { frame, top, evaluated };
}

/** True when `names` lists exactly the names of `index`, in order. */
export function sameNames(index: NameIndex, names: readonly unknown[]): boolean {
  if (index.names.length !== names.length) return false;
  for (let i = 0; i < names.length; i++) if (index.names[i] !== String(names[i])) return false;
  return true;
}

/**
 * Caches the name index: rebuilding it for 20,000 names on every update would waste time.
 * The units may change (a grouped run, a method over other units): the index is rebuilt
 * whenever `feature_names` holds other names, and kept when a new list repeats the same ones.
 */
export class StateReader {
  private names: unknown = null;
  private index = new NameIndex([]);
  private rawLabels: unknown = null;
  private labels = readLabels(null);

  // Decoded v3 traits by the raw values they came from: the same trait value gives the same
  // object, so a view can skip a redraw (a 20,000-point scatter) when nothing it draws changed.
  private readonly decoded = new Map<string, { raw: unknown[]; value: unknown }>();

  private cached<T>(key: string, raw: unknown[], make: () => T): T {
    const hit = this.decoded.get(key);
    if (hit && hit.raw.every((value, i) => value === raw[i])) return hit.value as T;
    const value = make();
    this.decoded.set(key, { raw, value });
    return value;
  }

  read(model: WidgetModel): ViewState {
    const get = (name: string) => model.get(name);
    const names = model.get("feature_names");
    if (names !== this.names) {
      this.names = names;
      const list = Array.isArray(names) ? names : [];
      if (!sameNames(this.index, list)) this.index = new NameIndex(list.map(String));
    }
    const nFeatures = this.index.names.length;
    const nRepeats = number(model.get("n_repeats"), 0);
    const topN = number(model.get("top_n"), 20);
    // Decoded once per new summary: the publisher's clock refreshes (progress only) reuse it,
    // and the charts skip their redraw when the frame is the same object.
    const ranked = this.cached(
      "frame",
      [get("summary"), get("repeat_rows"), get("repeats"), this.index, nRepeats, topN],
      () => rankedFrame(get("summary"), get("repeat_rows"), get("repeats"), nFeatures, nRepeats, topN),
    );
    const { frame, top, evaluated } = ranked;
    const separated = this.cached("separation", [frame, top], () => separation(frame, top));
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
      separation: separated,
      progress: { ...noProgress, ...(typeof progress === "object" ? progress : {}) },
      runs: this.cached("runs", [get("runs")], () => readRuns(get("runs"))),
      status: text(model.get("status")),
      header: (model.get("header") as Record<string, unknown>) ?? {},
      labels: this.labels,
      error: text(model.get("error")),
      warning: text(model.get("warning")),
      warningCount: number(model.get("warning_count"), 0),
      selected,
      topN,
      maxTopN: number(model.get("max_top_n"), 200),
      methods: this.cached("methods", [get("methods")], () => readMethods(get("methods"))),
      method: text(get("method")),
      view: readView(get("view")),
      views: this.cached("views", [get("views")], () => readViews(get("views"))),
      groups: this.cached("groups", [get("groups")], () => readGroups(get("groups"))),
      members: this.cached("members", [get("members")], () => readMembers(get("members"))),
      settled: this.cached("settled", [get("settled"), this.index], () => decodeSettled(get("settled"), nFeatures)),
      certified: this.cached("certified", [get("certified")], () => readCertified(get("certified"))),
      compare: this.cached("compare", [get("compare")], () => readCompare(get("compare"))),
      comparePoints: this.cached("points", [get("compare_points"), this.index], () =>
        decodePoints(get("compare_points"), nFeatures)),
      heatmap: this.cached("heatmap", [get("heatmap"), get("heatmap_values"), this.index], () =>
        readHeatmap(get("heatmap"), get("heatmap_values"), nFeatures)),
      compareNote: noteOf(get("compare")),
      heatmapNote: noteOf(get("heatmap")),
      why: this.cached("why", [get("why")], () => readWhy(get("why"))),
      latentTop: this.cached("latent_top", [get("latent_top"), this.index], () =>
        readLatentTop(get("latent_top"), nFeatures)),
    };
  }
}
