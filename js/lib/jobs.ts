/**
 * The kernel's aefi jobs as the page shows them (status-bar item and its popup): the messages
 * of the `aefi.jobs` comm (aefi_widget/job_feed.py), checked, and the words shown for them.
 *
 * Pure: no DOM, no JupyterLab import, so it is tested with vitest and shared by the lab
 * extension's views.
 */

import { formatCount, formatDuration } from "./format";

export const JOBS_TARGET = "aefi.jobs";
/** The most rows a message may carry (the kernel sends at most 20). */
export const MAX_ROWS = 50;
/** The most characters of a failed job's error kept (the kernel sends at most 200). */
export const MAX_ERROR = 200;
const STATUSES = ["idle", "running", "paused", "done", "cancelled", "error"] as const;
export type JobStatus = (typeof STATUSES)[number];
export type JobAction = "pause" | "resume" | "cancel";

export interface JobRow {
  id: number;
  method: string;
  status: JobStatus;
  done: number;
  total: number;
  fraction: number;
  elapsed_s: number;
  eta_s: number | null;
  /** Why it failed ("RuntimeError: model exploded"), only when status is "error". */
  error?: string;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isSeconds = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** One row of a kernel message, or null when any field is missing or of the wrong kind. */
export function parseRow(value: unknown): JobRow | null {
  if (typeof value !== "object" || value === null) return null;
  const r = value as Record<string, unknown>;
  if (!isCount(r.id) || !isCount(r.done) || !isCount(r.total) || !isSeconds(r.elapsed_s)) return null;
  if (typeof r.method !== "string" || !STATUSES.includes(r.status as JobStatus)) return null;
  if (typeof r.fraction !== "number" || !(r.fraction >= 0 && r.fraction <= 1)) return null;
  if (r.eta_s !== null && !isSeconds(r.eta_s)) return null;
  if (r.error !== undefined && typeof r.error !== "string") return null;
  const row: JobRow = {
    id: r.id, method: r.method.slice(0, 40), status: r.status as JobStatus, done: r.done,
    total: r.total, fraction: r.fraction, elapsed_s: r.elapsed_s, eta_s: r.eta_s as number | null,
  };
  if (typeof r.error === "string") row.error = r.error.slice(0, MAX_ERROR);
  return row;
}

/** The rows of a `{"jobs": [...]}` message (malformed rows dropped), or null for another message. */
export function parseJobs(data: unknown): JobRow[] | null {
  if (typeof data !== "object" || data === null || !Array.isArray((data as { jobs?: unknown }).jobs)) {
    return null;
  }
  const rows = (data as { jobs: unknown[] }).jobs.slice(0, MAX_ROWS).map(parseRow);
  return rows.filter((row): row is JobRow => row !== null);
}

/** Whether a job still needs watching (shown in the status bar). */
export const isActive = (row: JobRow): boolean => row.status === "running" || row.status === "paused";

/** The actions its popup row offers: pause or resume, and cancel, while it is active. */
export function actionsFor(row: JobRow): JobAction[] {
  if (row.status === "running") return ["pause", "cancel"];
  if (row.status === "paused") return ["resume", "cancel"];
  return [];
}

/** One job in words: "permutation 34 % · 1 min 5 s left", "shapley paused at 12 %", "done". */
export function describeJob(row: JobRow): string {
  const percent = `${Math.floor(100 * row.fraction)} %`;
  if (row.status === "running") {
    const eta = row.eta_s === null ? "" : ` · ${formatDuration(row.eta_s)} left`;
    return `${row.method} ${percent}${eta}`;
  }
  if (row.status === "paused") return `${row.method} paused at ${percent}`;
  if (row.status === "idle") return `${row.method} not started`;
  if (row.status === "done") return `${row.method} done (${formatCount(row.total)} evaluations)`;
  return `${row.method} ${row.status === "error" ? "failed" : "cancelled"} at ${percent}`;
}

/** How an ended job ended, in one word. */
const endWord = (row: JobRow): string =>
  row.status === "done" ? "done" : row.status === "error" ? "failed" : "cancelled";

/**
 * The jobs of `before` that were active and have ended in `after` (same id): what the status
 * bar reports for a moment, each as it ended (done, cancelled or failed).
 */
export function endedJobs(before: JobRow[], after: JobRow[]): JobRow[] {
  const wasActive = new Set(before.filter(isActive).map((row) => row.id));
  return after.filter((row) => wasActive.has(row.id) && !isActive(row) && row.status !== "idle");
}

/** How long (ms) the status bar says how the last jobs ended. */
export const ENDED_SHOWN_MS = 8000;

/** The jobs the status bar reports as just ended, and when the last of them ended (ms). */
export interface Ended {
  jobs: JobRow[];
  at: number;
}

/**
 * The ended jobs to report after the kernel's list went from `before` to `after` at `now` (ms):
 * jobs ending within ENDED_SHOWN_MS of each other are reported together; a job that starts
 * clears the report (what ended before it is old news).
 */
export function followEnded(ended: Ended, before: JobRow[], after: JobRow[], now: number): Ended {
  const wasActive = new Set(before.filter(isActive).map((row) => row.id));
  const started = after.some((row) => isActive(row) && !wasActive.has(row.id));
  const recent = !started && now - ended.at < ENDED_SHOWN_MS ? ended.jobs : [];
  const justEnded = endedJobs(before, after);
  if (justEnded.length === 0) return started ? { jobs: [], at: 0 } : ended;
  const ids = new Set(justEnded.map((row) => row.id));
  return { jobs: [...recent.filter((row) => !ids.has(row.id)), ...justEnded], at: now };
}

/**
 * The status-bar text: the active jobs ("aefi: permutation 34 % · 20 s left", "aefi: 2 jobs,
 * 1 paused"); else, for a moment, how the jobs that just ended ended ("aefi: permutation done",
 * "aefi: shapley failed at 12 %", "aefi: 2 jobs ended: 1 done, 1 cancelled"); else "".
 */
export function statusText(rows: JobRow[], justEnded: JobRow[]): string {
  const active = rows.filter(isActive);
  if (active.length === 1) return `aefi: ${describeJob(active[0])}`;
  if (active.length > 1) {
    const paused = active.filter((row) => row.status === "paused").length;
    return `aefi: ${active.length} jobs${paused ? `, ${paused} paused` : ""}`;
  }
  if (justEnded.length === 1) {
    const row = justEnded[0];
    return row.status === "done" ? `aefi: ${row.method} done` : `aefi: ${describeJob(row)}`;
  }
  if (justEnded.length > 1) {
    const counts = ["done", "cancelled", "failed"]
      .map((word) => [word, justEnded.filter((row) => endWord(row) === word).length] as const)
      .filter(([, n]) => n > 0)
      .map(([word, n]) => `${n} ${word}`);
    return `aefi: ${justEnded.length} jobs ended: ${counts.join(", ")}`;
  }
  return "";
}

/** The message asking the kernel to act on a job. */
export const actionMessage = (row: JobRow, action: JobAction): { action: JobAction; id: number } => ({
  action,
  id: row.id,
});
