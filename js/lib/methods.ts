/**
 * Protocol v3 traits (several methods, views, groups, comparison, maps), read defensively:
 * a missing or malformed trait reads as "nothing to show", never as garbage on screen.
 * See docs/widget-protocol.md.
 */

import type { KernelMessage, ViewName } from "./model";
import { decodeFloat32, toBytes } from "./protocol";

export const VIEW_NAMES: readonly ViewName[] = ["importance", "compare", "outputs", "latent"];

/** One offered method (`methods` trait). */
export interface MethodEntry {
  key: string;
  title: string;
  /** "not started", "running", "paused", "done", "cancelled", "error" or "unavailable". */
  status: string;
  note: string;
  hasResult: boolean;
}

/** One of the four views (`views` trait). */
export interface ViewEntry {
  key: ViewName;
  title: string;
  available: boolean;
  note: string;
}

export type GroupsMode = "none" | "auto" | "custom";

/** The `groups` trait. */
export interface GroupsState {
  mode: GroupsMode;
  threshold: number;
  nGroups: number;
  hasCustom: boolean;
  supported: boolean;
}

/** The `certified` trait, or null when the shown run has no top-k. */
export interface Certified {
  k: number;
  names: string[];
  done: boolean;
  /** A rows race's tolerance in words ("10 % of the k-th importance"); "" for the exact race. */
  tolerance: string;
  /** Probability that every certified claim holds, e.g. 0.95. */
  confidence: number;
  /** Units given up as tied (a plateau the budget cannot separate) and units still open. */
  tied: number;
  open: number;
  /** Rows the open and tied units would still need to be separated (a projection). */
  separationRows: number;
}

/** The `compare` trait, or null when empty. */
export interface Compare {
  keys: string[];
  titles: string[];
  /** Spearman rho between runs i and j, null where undefined. */
  rho: (number | null)[][];
  /** Units in both runs' top k. */
  overlap: number[][];
  k: number;
  x: string;
  y: string;
  note: string;
}

/** The `heatmap` trait with its `heatmap_values`, or null when empty or inconsistent. */
export interface Heatmap {
  kind: "outputs" | "latent";
  /** Unit indices into feature_names, one per row. */
  rows: number[];
  columns: string[];
  valueLabel: string;
  columnAxis: string;
  note: string;
  /** Each column's index among all outputs / latent dimensions (the map shows a clustered
   * subset): what a latent_dim request names. */
  columnIndices: number[];
  /** (rows x columns) row-major. */
  values: Float32Array;
}

/** The `latent_top` trait, or null when empty. */
export interface LatentTop {
  dimension: number;
  name: string;
  /** [unit index, value] in the kernel's order (largest first). */
  features: [number, number][];
}

type Json = Record<string, unknown>;

function object(value: unknown): Json | null {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function str(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function num(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function int(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) ? value : null;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The `methods` trait: entries with a string key, in the kernel's order. */
export function readMethods(raw: unknown): MethodEntry[] {
  return list(raw).flatMap((item) => {
    const entry = object(item);
    const key = str(entry?.key);
    if (!entry || !key) return [];
    return [{
      key,
      title: str(entry.title, key),
      status: str(entry.status, "not started"),
      note: str(entry.note),
      hasResult: entry.has_result === true,
    }];
  });
}

/** The `views` trait: only the four known views, each at most once. */
export function readViews(raw: unknown): ViewEntry[] {
  const seen = new Set<string>();
  return list(raw).flatMap((item) => {
    const entry = object(item);
    const key = str(entry?.key) as ViewName;
    if (!entry || !VIEW_NAMES.includes(key) || seen.has(key)) return [];
    seen.add(key);
    return [{ key, title: str(entry.title, key), available: entry.available === true, note: str(entry.note) }];
  });
}

/** The shown view: the `view` trait when known, else the importance view. */
export function readView(raw: unknown): ViewName {
  return VIEW_NAMES.includes(raw as ViewName) ? (raw as ViewName) : "importance";
}

export function readGroups(raw: unknown): GroupsState {
  const source = object(raw) ?? {};
  const mode = str(source.mode, "none");
  return {
    mode: mode === "auto" || mode === "custom" ? mode : "none",
    threshold: num(source.threshold, 0.8),
    nGroups: num(source.n_groups, 0),
    hasCustom: source.has_custom === true,
    supported: source.supported === true,
  };
}

/** `members`: unit name -> member names (only entries that are lists of strings). */
export function readMembers(raw: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, members] of Object.entries(object(raw) ?? {})) {
    if (Array.isArray(members)) out.set(name, members.map(String));
  }
  return out;
}

export function readCertified(raw: unknown): Certified | null {
  const source = object(raw);
  const k = int(source?.k);
  if (!source || k === null) return null;
  const count = (value: unknown): number => Math.max(0, int(value) ?? 0);
  const confidence = typeof source.confidence === "number" && source.confidence > 0 && source.confidence < 1
    ? source.confidence : 0.95;
  const separation = typeof source.separation_rows === "number" && Number.isFinite(source.separation_rows)
    ? Math.max(0, source.separation_rows) : 0;
  return {
    k,
    names: list(source.names).map(String),
    done: source.done === true,
    tolerance: typeof source.tolerance === "string" ? source.tolerance : "",
    confidence,
    tied: count(source.tied),
    open: count(source.open),
    separationRows: separation,
  };
}

/** A square matrix of size n from a list of lists, `read` per cell; null if the shape is off. */
function matrix<T>(raw: unknown, n: number, read: (value: unknown) => T): T[][] | null {
  const rows = list(raw);
  if (rows.length !== n) return null;
  const out = rows.map((row) => list(row).map(read));
  return out.every((row) => row.length === n) ? out : null;
}

export function readCompare(raw: unknown): Compare | null {
  const source = object(raw);
  if (!source) return null;
  const keys = list(source.keys).map(String);
  if (keys.length === 0) return null;
  const n = keys.length;
  const titles = list(source.titles).map(String);
  const rho = matrix(source.rho, n, (v) => (typeof v === "number" && Number.isFinite(v) ? v : null));
  const overlap = matrix(source.overlap, n, (v) => num(v, 0));
  if (!rho || !overlap) return null;
  return {
    keys,
    titles: keys.map((key, i) => titles[i] || key),
    rho,
    overlap,
    k: num(source.k, 0),
    x: str(source.x, keys[0]),
    y: str(source.y, keys[Math.min(1, n - 1)]),
    note: str(source.note),
  };
}

/** One row of the comparison table: runs i < j. */
export interface ComparePair {
  x: string;
  y: string;
  xTitle: string;
  yTitle: string;
  rho: number | null;
  overlap: number;
}

/** Every unordered pair of runs, in the kernel's key order. */
export function comparePairs(compare: Compare): ComparePair[] {
  const pairs: ComparePair[] = [];
  const { keys, titles } = compare;
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) {
      pairs.push({
        x: keys[i],
        y: keys[j],
        xTitle: titles[i],
        yTitle: titles[j],
        rho: compare.rho[i][j],
        overlap: compare.overlap[i][j],
      });
    }
  }
  return pairs;
}

/** Spearman's rho with two decimals ("0.87", "−0.12"), "–" when undefined. */
export function formatRho(rho: number | null): string {
  if (rho === null || !Number.isFinite(rho)) return "–";
  const text = rho.toFixed(2);
  return text === "-0.00" ? "0.00" : text.replace("-", "−");
}

/** `compare_points`: the (2, F) means of runs x and y, or null when the size is off. */
export function decodePoints(raw: unknown, nUnits: number): { x: Float32Array; y: Float32Array } | null {
  const bytes = toBytes(raw);
  if (!bytes || nUnits === 0 || bytes.byteLength !== 8 * nUnits) return null;
  const values = decodeFloat32(bytes);
  return { x: values.subarray(0, nUnits), y: values.subarray(nUnits) };
}

/** `settled` int8 (F,): +1 settled inside the top k, -1 outside, 0 open; null when absent. */
export function decodeSettled(raw: unknown, nUnits: number): Int8Array | null {
  const bytes = toBytes(raw);
  if (!bytes || nUnits === 0 || bytes.byteLength !== nUnits) return null;
  return new Int8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + nUnits));
}

export function readHeatmap(raw: unknown, values: unknown, nUnits: number): Heatmap | null {
  const source = object(raw);
  if (!source) return null;
  const rows = list(source.rows).map(int);
  const columns = list(source.columns).map(String);
  if (rows.length === 0 || columns.length === 0) return null;
  if (rows.some((r) => r === null || r < 0 || r >= nUnits)) return null;
  const bytes = toBytes(values);
  if (!bytes || bytes.byteLength !== 4 * rows.length * columns.length) return null;
  return {
    kind: source.kind === "latent" ? "latent" : "outputs",
    columnIndices: columnIndices(source.column_indices, columns),
    rows: rows as number[],
    columns,
    valueLabel: str(source.value_label),
    columnAxis: str(source.column_axis, source.kind === "latent" ? "latent dimension" : "output"),
    note: str(source.note),
    values: decodeFloat32(bytes),
  };
}

/**
 * The columns' indices among all columns: the trait's `column_indices` when it has one per
 * column; else from names "z<k>" (the latent methods' names for dimension k); else positions.
 */
export function columnIndices(raw: unknown, columns: string[]): number[] {
  const given = list(raw).map(int);
  if (given.length === columns.length && given.every((i) => i !== null && i >= 0)) return given as number[];
  const parsed = columns.map((name) => /^z(\d+)$/.exec(name));
  if (parsed.every((m) => m !== null)) return parsed.map((m) => Number(m![1]));
  return columns.map((_, i) => i);
}

/** The `note` of a view's trait even when it has nothing to draw (it says why). */
export function noteOf(raw: unknown): string {
  return str(object(raw)?.note);
}

export function readLatentTop(raw: unknown, nUnits: number): LatentTop | null {
  const source = object(raw);
  const dimension = int(source?.dimension);
  if (!source || dimension === null) return null;
  const features = list(source.features).flatMap((item) => {
    const [unit, value] = list(item);
    const index = int(unit);
    return index !== null && index >= 0 && index < nUnits && typeof value === "number" ? [[index, value] as [number, number]] : [];
  });
  return { dimension, name: str(source.name, `dimension ${dimension}`), features };
}

/** A groups threshold typed by the user: a number in (0, 1], else null. */
export function parseThreshold(text: string): number | null {
  const value = Number(text.trim());
  if (!text.trim() || !Number.isFinite(value) || value <= 0 || value > 1) return null;
  return value;
}

/** The request for a groups mode: a threshold only with "auto" (the kernel drops extra fields). */
export function groupsMessage(mode: GroupsMode, threshold: number | null): KernelMessage {
  if (mode === "auto") return threshold === null ? { type: "groups", mode } : { type: "groups", mode, threshold };
  return { type: "groups", mode };
}

/** A method's label in the selector: its title and, unless it is plain, its status. */
export function methodLabel(entry: MethodEntry): string {
  return entry.status && entry.status !== "not started" ? `${entry.title} · ${statusWord(entry.status)}` : entry.title;
}

/** The status words the page shows ("cancelled" reads "stopped", as in the header). */
export function statusWord(status: string): string {
  return status === "cancelled" ? "stopped" : status;
}

/** The selector's tooltip: every method with its status, and why the unavailable ones are. */
export function methodsTooltip(methods: MethodEntry[]): string {
  return methods
    .map((m) => `${m.title}: ${statusWord(m.status)}${m.note ? ` (${m.note})` : ""}`)
    .join("\n");
}
