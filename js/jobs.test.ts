import { describe, expect, it } from "vitest";
import { actionMessage, actionsFor, describeJob, MAX_ROWS, parseJobs, statusText, type JobRow } from "./lib/jobs";

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
  it("the status bar names one active job, counts several, says done once, else nothing", () => {
    expect(statusText([row()], false)).toBe("aefi: permutation 34 % · 1 min 05 s left");
    expect(statusText([row(), row({ id: 2, status: "paused" }), row({ id: 3, status: "done" })], false))
      .toBe("aefi: 2 jobs, 1 paused");
    expect(statusText([row({ status: "done" })], true)).toBe("aefi: done");
    expect(statusText([row({ status: "done" })], false)).toBe("");
    expect(statusText([], true)).toBe("");
  });
  it("offers pause or resume and cancel only while a job is active", () => {
    expect(actionsFor(row())).toEqual(["pause", "cancel"]);
    expect(actionsFor(row({ status: "paused" }))).toEqual(["resume", "cancel"]);
    expect(actionsFor(row({ status: "done" }))).toEqual([]);
    expect(actionMessage(row({ id: 7 }), "pause")).toEqual({ action: "pause", id: 7 });
  });
});
