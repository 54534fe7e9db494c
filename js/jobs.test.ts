import { describe, expect, it } from "vitest";
import {
  actionMessage, actionsFor, describeJob, ENDED_SHOWN_MS, endedJobs, followEnded, MAX_ERROR, MAX_ROWS, parseJobs,
  statusText, type Ended, type JobRow,
} from "./lib/jobs";

const row = (over: Partial<JobRow> = {}): JobRow => ({
  id: 1, method: "permutation", status: "running", done: 340, total: 1000, fraction: 0.34,
  elapsed_s: 10, eta_s: 65, ...over,
});

describe("parseJobs", () => {
  it("keeps well-formed rows and drops malformed ones", () => {
    const good = row();
    const rows = parseJobs({ jobs: [good, { ...good, status: "exploded" }, { ...good, id: -1 },
      { ...good, fraction: 2 }, { ...good, eta_s: null, id: 2 }, null, "x"] });
    expect(rows).toEqual([good, { ...good, eta_s: null, id: 2 }]);
  });
  it("says null for another message and bounds what a message may carry", () => {
    expect(parseJobs({ error: "no job 9" })).toBeNull();
    expect(parseJobs(null)).toBeNull();
    const many = Array.from({ length: 500 }, (_, i) => row({ id: i }));
    expect(parseJobs({ jobs: many })).toHaveLength(MAX_ROWS);
    expect(parseJobs({ jobs: [row({ method: "m".repeat(1000) })] })![0].method).toHaveLength(40);
    const failed = parseJobs({ jobs: [row({ status: "error", error: "E".repeat(5000) })] })!;
    expect(failed[0].error).toHaveLength(MAX_ERROR);
    expect(parseJobs({ jobs: [{ ...row(), error: { html: "<b>" } }] })).toEqual([]);
  });
});

describe("words shown", () => {
  it("describes each state", () => {
    expect(describeJob(row())).toBe("permutation 34 % · 1 min 05 s left");
    expect(describeJob(row({ eta_s: null }))).toBe("permutation 34 %");
    expect(describeJob(row({ status: "paused", method: "shapley", fraction: 0.129 }))).toBe(
      "shapley paused at 12 %",
    );
    expect(describeJob(row({ status: "done", fraction: 1 }))).toBe("permutation done (1,000 evaluations)");
    expect(describeJob(row({ status: "cancelled" }))).toBe("permutation cancelled at 34 %");
  });
  it("the status bar names one active job, counts several, else nothing", () => {
    expect(statusText([row()], [])).toBe("aefi: permutation 34 % · 1 min 05 s left");
    expect(statusText([row(), row({ id: 2, status: "paused" }), row({ id: 3, status: "done" })], []))
      .toBe("aefi: 2 jobs, 1 paused");
    expect(statusText([row({ status: "done" })], [])).toBe("");
    expect(statusText([], [])).toBe("");
  });
  it("says how a job that just ended ended: done, cancelled or failed", () => {
    const done = row({ status: "done", fraction: 1 });
    const cancelled = row({ id: 2, status: "cancelled", method: "shapley" });
    const failed = row({ id: 3, status: "error", fraction: 0.12, error: "RuntimeError: model exploded" });
    expect(statusText([done], [done])).toBe("aefi: permutation done");
    expect(statusText([cancelled], [cancelled])).toBe("aefi: shapley cancelled at 34 %");
    expect(statusText([failed], [failed])).toBe("aefi: permutation failed at 12 %");
    expect(statusText([done, cancelled, failed], [done, failed, cancelled]))
      .toBe("aefi: 3 jobs ended: 1 done, 1 cancelled, 1 failed");
    expect(statusText([done, row({ id: 4 })], [done])).toBe("aefi: permutation 34 % · 1 min 05 s left");
    expect(describeJob(failed)).toBe("permutation failed at 12 %");
  });
  it("finds the jobs that ended between two messages, not those that never ran", () => {
    const before = [row(), row({ id: 2, status: "paused" }), row({ id: 3 }), row({ id: 4, status: "idle" })];
    const after = [row({ status: "done" }), row({ id: 2, status: "cancelled" }), row({ id: 3 }),
      row({ id: 4, status: "cancelled" }), row({ id: 5, status: "error" })];
    expect(endedJobs(before, after).map((r) => [r.id, r.status])).toEqual([[1, "done"], [2, "cancelled"]]);
    expect(endedJobs(after, after)).toEqual([]);
  });
  it("reports jobs ending a moment apart together, until a job starts or the moment passes", () => {
    const a = row({ id: 1 });
    const b = row({ id: 2 });
    const none: Ended = { jobs: [], at: 0 };
    const aFailed = row({ id: 1, status: "error" });
    const bDone = row({ id: 2, status: "done" });
    const first = followEnded(none, [a, b], [aFailed, b], 1000);
    expect(first).toEqual({ jobs: [aFailed], at: 1000 });
    expect(followEnded(first, [aFailed, b], [aFailed, b], 2000)).toBe(first); // nothing new
    const both = followEnded(first, [aFailed, b], [aFailed, bDone], 3000);
    expect(both).toEqual({ jobs: [aFailed, bDone], at: 3000 });
    expect(statusText([aFailed, bDone], both.jobs)).toBe("aefi: 2 jobs ended: 1 done, 1 failed");
    const late = followEnded(first, [aFailed, b], [aFailed, bDone], 1000 + ENDED_SHOWN_MS);
    expect(late.jobs).toEqual([bDone]);
    const c = row({ id: 3 });
    expect(followEnded(both, [aFailed, bDone], [aFailed, bDone, c], 3500)).toEqual(none);
  });
  it("offers pause or resume and cancel only while a job is active", () => {
    expect(actionsFor(row())).toEqual(["pause", "cancel"]);
    expect(actionsFor(row({ status: "paused" }))).toEqual(["resume", "cancel"]);
    expect(actionsFor(row({ status: "done" }))).toEqual([]);
    expect(actionMessage(row({ id: 7 }), "pause")).toEqual({ action: "pause", id: 7 });
  });
});
