/** The header's progress lines, one per run on screen (the kernel's `runs` trait, run_lines.py). */

import { formatCount, formatDuration } from "./format";

export interface RunLine {
  /** "shown", "computing" or "shown+computing". */
  role: string;
  title: string;
  status: string;
  /** What replaces what ("shown until ..."), or "". */
  note: string;
  done: number;
  total: number;
  fraction: number;
  rounds_done: number;
  n_repeats: number;
  axis: string;
  evaluated: number;
  n_units: number;
  elapsed_s: number;
  /** Only while running (a paused or finished run has no ETA). */
  eta_s: number | null;
  evals_per_s: number | null;
  /** A rows race's rounds decided (its total is an expectation, not a plan); null otherwise. */
  race_round: number | null;
}

function num(value: unknown, fallback = 0): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** The trait's lines (at most 4; anything malformed is dropped). */
export function readRuns(raw: unknown): RunLine[] {
  if (!Array.isArray(raw)) return [];
  return raw.slice(0, 4).filter((item) => item && typeof item === "object").map((item) => {
    const line = item as Record<string, unknown>;
    const maybe = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);
    return {
      role: str(line.role) || "shown+computing",
      title: str(line.title),
      status: str(line.status) || "idle",
      note: str(line.note),
      done: num(line.done),
      total: num(line.total),
      fraction: Math.min(1, Math.max(0, num(line.fraction))),
      rounds_done: num(line.rounds_done),
      n_repeats: num(line.n_repeats),
      axis: str(line.axis) || "repeat",
      evaluated: num(line.evaluated),
      n_units: num(line.n_units),
      elapsed_s: num(line.elapsed_s),
      eta_s: maybe(line.eta_s),
      evals_per_s: maybe(line.evals_per_s),
      race_round: maybe(line.race_round),
    };
  });
}

/** The words of one line, in the order drawn. */
export interface RunLineText {
  /** "Shown:", "Computing:" or "" (one run is both). */
  role: string;
  title: string;
  status: string;
  percent: number;
  rounds: string;
  /** "1,029 of 2,000 features evaluated" until every unit has a value, else "". */
  evaluated: string;
  evaluations: string;
  /** "elapsed 1 min 13 s · ETA 22 min 16 s · 13,487/s" (no ETA or rate unless running). */
  timing: string;
  note: string;
}

const STATUS_WORDS: Record<string, string> = { cancelled: "stopped", saved: "saved", idle: "not started" };

export function runLineText(line: RunLine, unitWord: string): RunLineText {
  const percent = Math.round(1000 * line.fraction) / 10;
  const running = line.status === "running";
  const timing = [`elapsed ${formatDuration(line.elapsed_s)}`];
  if (running && line.eta_s !== null) timing.push(`ETA ${formatDuration(line.eta_s)}`);
  if (running && line.evals_per_s) timing.push(`${formatCount(line.evals_per_s)}/s`);
  if (line.status === "paused") timing.push("no ETA while paused");
  return {
    role: line.role === "shown" ? "Shown:" : line.role === "computing" ? "Computing:" : "",
    title: line.title,
    status: STATUS_WORDS[line.status] ?? line.status,
    percent,
    rounds: line.race_round !== null
      ? `race: ${line.race_round} round${line.race_round === 1 ? "" : "s"} decided`
      : `${line.rounds_done} / ${line.n_repeats} rounds`,
    evaluated: line.evaluated < line.n_units
      ? `${formatCount(line.evaluated)} of ${formatCount(line.n_units)} ${unitWord} evaluated`
      : "",
    // A race's total is what it still expects to need (it shrinks as units settle).
    evaluations: `${percent}% · ${formatCount(line.done)} / ${line.race_round !== null && line.status !== "done" ? "~" : ""}` +
      `${formatCount(line.total)} evaluations${line.race_round !== null && line.status !== "done" ? " expected" : ""}`,
    timing: line.status === "done" ? `done in ${formatDuration(line.elapsed_s)}` : line.status === "saved" ? "" : timing.join(" · "),
    note: line.note,
  };
}
