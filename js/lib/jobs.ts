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
  return {
    id: r.id, method: r.method.slice(0, 40), status: r.status as JobStatus, done: r.done,
    total: r.total, fraction: r.fraction, elapsed_s: r.elapsed_s, eta_s: r.eta_s as number | null,
  };
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
  return `${row.method} ${row.status} at ${percent}`;
}

/**
 * The status-bar text: the active jobs ("aefi: permutation 34 % · 20 s left", "aefi: 2 jobs,
 * 1 paused"), "aefi: done" for a moment after the last one ended, "" when there is nothing to show.
 */
export function statusText(rows: JobRow[], justEnded: boolean): string {
  const active = rows.filter(isActive);
  if (active.length === 1) return `aefi: ${describeJob(active[0])}`;
  if (active.length > 1) {
    const paused = active.filter((row) => row.status === "paused").length;
    return `aefi: ${active.length} jobs${paused ? `, ${paused} paused` : ""}`;
  }
  return justEnded && rows.length ? "aefi: done" : "";
}

/** The message asking the kernel to act on a job. */
export const actionMessage = (row: JobRow, action: JobAction): { action: JobAction; id: number } => ({
  action,
  id: row.id,
});
