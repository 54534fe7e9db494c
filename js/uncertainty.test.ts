import { describe, expect, it, vi } from "vitest";
import { legendText, type Drawn } from "./lib/legend";
import { emptyFrame, type Frame } from "./lib/protocol";
import { readRuns, runLineText } from "./lib/runline";
import { intervalOf, rankRangeText, separation, stabilityText } from "./lib/uncertainty";

/** A frame of features with (mean, low, high, nDone). */
function frameOf(rows: [number, number, number, number][]): Frame {
  const frame = emptyFrame(rows.length, 4);
  rows.forEach(([mean, low, high, n], i) => {
    frame.mean[i] = mean;
    frame.ciLow[i] = low;
    frame.ciHigh[i] = high;
    frame.nDone[i] = n;
  });
  return frame;
}

describe("intervalOf", () => {
  it("gives no interval for one estimate (the kernel's low = high = mean) or none", () => {
    const frame = frameOf([[0.5, 0.5, 0.5, 1], [NaN, NaN, NaN, 0], [0.5, 0.4, 0.6, 2], [0, 0, 0, 3]]);
    expect(intervalOf(frame, 0)).toBeNull();
    expect(intervalOf(frame, 1)).toBeNull();
    expect(intervalOf(frame, 2)).toEqual({ low: expect.closeTo(0.4, 6), high: expect.closeTo(0.6, 6) });
    // Identical estimates: a real interval of width zero.
    expect(intervalOf(frame, 3)).toEqual({ low: 0, high: 0 });
  });
});

describe("separation", () => {
  const frame = frameOf([
    [10, 9, 11, 4], // clearly above everything outside the top 3
    [5, 3, 7, 4], // overlaps feature 3 (outside)
    [4.5, 4.2, 4.8, 4], // clear of feature 3's high 4.0? no: 4.2 > 4.0, clear
    [3, 2, 4, 4],
    [1, 0.5, 1.5, 4],
  ]);
  it("marks the top rows whose interval lies above every interval outside the top N", () => {
    const result = separation(frame, [0, 1, 2]);
    expect(result.clear).toEqual([true, false, true]);
    expect(result.withInterval).toBe(3);
  });
  it("gives the ranks each interval allows", () => {
    const result = separation(frame, [0, 1, 2]);
    // Feature 1 [3, 7]: feature 0 (low 9) is certainly above; features 4 (high 1.5) certainly below.
    expect(result.rankRange[1]).toEqual([2, 4]);
    expect(result.rankRange[0]).toEqual([1, 1]);
    expect(rankRangeText(result.rankRange[1])).toBe("#2–4");
    expect(rankRangeText(result.rankRange[0])).toBe("#1");
  });
  it("calls nothing clear while a feature outside has no interval", () => {
    const open = frameOf([[10, 9, 11, 4], [5, 4, 6, 4], [1, 1, 1, 1]]);
    expect(separation(open, [0, 1]).clear).toEqual([false, false]);
  });
});

describe("stabilityText", () => {
  const frame = frameOf([[10, 9, 11, 4], [5, 3, 7, 4], [3, 2, 4, 4]]);
  it("counts the clear and the tied rows, and says when nothing can be said yet", () => {
    const text = stabilityText(separation(frame, [0, 1]), 2, 3, "repeat", null);
    expect(text).toMatch(/^Ranking stable\? 1 of the top 2 lie clearly above/);
    expect(text).toMatch(/1 \(grey\) are within noise/);
    const all = stabilityText(separation(frame, [0]), 1, 3, "repeat", null);
    expect(all).toMatch(/^Ranking stable: all 1 of the top 1/);
    const single = frameOf([[10, 10, 10, 1], [5, 5, 5, 1]]);
    expect(stabilityText(separation(single, [0]), 1, 2, "repeat", null)).toMatch(/1 of the top 1 have one repeat, no interval yet/);
    const partial = frameOf([[10, 9, 11, 4], [NaN, NaN, NaN, 0]]);
    expect(stabilityText(separation(partial, [0]), 1, 2, "repeat", null)).toMatch(/1 of 2 evaluated/);
    expect(stabilityText(separation(frame, []), 0, 3, "repeat", { k: 20, inside: 3, done: false })).toBe(
      "Ranking: waiting for the first values. Race: ranks settled 3 of 20.",
    );
  });
});

describe("legendText", () => {
  const base: Drawn = { axis: "repeat", whiskers: true, single: false, tied: false, topN: 20, boxes: true, maxDots: 12, raceK: null, groups: false };
  it("names only the marks that are drawn", () => {
    expect(legendText(base)).toMatch(/whiskers: 95 % interval/);
    expect(legendText(base)).not.toMatch(/Grey bar|Light bar|✓/);
    const none = legendText({ ...base, whiskers: false, single: true, boxes: false });
    expect(none).not.toMatch(/whiskers|Boxes/);
    expect(none).toMatch(/Light bar: one repeat so far, no interval yet/);
    expect(legendText({ ...base, tied: true })).toMatch(/Grey bar: its interval overlaps a feature outside the top 20/);
  });
});

describe("run lines", () => {
  const raw = {
    role: "computing", title: "Permutation importance", status: "running", note: "", done: 986100, total: 19e6,
    fraction: 0.0519, rounds_done: 0, n_repeats: 10, axis: "repeat", evaluated: 1029, n_units: 2000,
    elapsed_s: 73, eta_s: 1336, evals_per_s: 13487,
  };
  it("reads the trait and words a running line tqdm-style", () => {
    const [line] = readRuns([raw, "junk"]);
    const words = runLineText(line, "features");
    expect(words.role).toBe("Computing:");
    expect(words.rounds).toBe("0 / 10 rounds");
    expect(words.evaluated).toBe("1,029 of 2,000 features evaluated");
    expect(words.timing).toBe("elapsed 1 min 13 s · ETA 22 min 16 s · 13,487/s");
  });
  it("shows no ETA while paused, and none once done", () => {
    const [paused, done] = readRuns([{ ...raw, status: "paused", eta_s: null }, { ...raw, status: "done", evaluated: 2000, fraction: 1 }]);
    expect(runLineText(paused, "features").timing).toBe("elapsed 1 min 13 s · no ETA while paused");
    // Even if a kernel sent one: the page does not show an ETA for a run that is not running.
    expect(runLineText({ ...paused, eta_s: 12 }, "features").timing).not.toMatch(/ETA \d/);
    expect(runLineText(done, "features").timing).toBe("done in 1 min 13 s");
    expect(runLineText(done, "features").evaluated).toBe("");
  });
  it("words a rows race by its rounds decided and its expected total", () => {
    const [race, over] = readRuns([{ ...raw, race_round: 3 }, { ...raw, race_round: 1, status: "done" }]);
    expect(runLineText(race, "features").rounds).toBe("race: 3 rounds decided");
    expect(runLineText(race, "features").evaluations).toBe("5.2% · 986,100 / ~19,000,000 evaluations expected");
    expect(runLineText(over, "features").rounds).toBe("race: 1 round decided");
    expect(runLineText(over, "features").evaluations).toBe("5.2% · 986,100 / 19,000,000 evaluations");
    expect(readRuns([raw])[0].race_round).toBeNull();
  });
});

describe("LiveCheck", () => {
  it("calls a view without an answer a saved picture, and live once the kernel answers", async () => {
    const { LiveCheck } = await import("./lib/live");
    vi.useFakeTimers();
    try {
      let changes = 0;
      let hellos = 0;
      const check = new LiveCheck(() => changes++);
      check.start(() => hellos++, 1000);
      expect(hellos).toBe(1);
      expect(check.state).toBe("checking");
      vi.advanceTimersByTime(999);
      expect(check.state).toBe("checking");
      vi.advanceTimersByTime(1);
      expect(check.state).toBe("saved");
      check.heard(); // a kernel reconnected (or was only busy): live again
      expect(check.state).toBe("live");
      expect(changes).toBe(2);
      const answered = new LiveCheck(() => undefined);
      answered.start(() => undefined, 1000);
      answered.heard();
      vi.advanceTimersByTime(5000);
      expect(answered.state).toBe("live");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("compare matrix", () => {
  it("puts rho and the top-k overlap in each cell, shades by rho, and reads the why trait", async () => {
    const { matrixCells, agreementOf, readWhy } = await import("./lib/matrix");
    const compare = {
      keys: ["p", "s", "g"], titles: ["Permutation", "Shapley", "IG"],
      rho: [[1, 0.48, 0.9], [0.48, 1, null], [0.9, null, 1]], overlap: [[20, 3, 15], [3, 20, 0], [15, 0, 20]],
      k: 20, x: "p", y: "s", note: "",
    };
    const cells = matrixCells(compare);
    expect(cells[0][1].lines).toEqual(["ρ 0.48", "3 / 20"]);
    expect(cells[1][0].lines).toEqual(cells[0][1].lines);
    expect(cells[0][0].agreement).toBe("self");
    expect([cells[0][1].agreement, cells[0][2].agreement, cells[1][2].agreement]).toEqual(["low", "high", "none"]);
    expect(agreementOf(0.5)).toBe("mid");
    expect(readWhy({ feature: "g1", sentences: ["a", 3, "b"], doc: "docs/methods.md" })).toEqual({ feature: "g1", sentences: ["a", "b"], doc: "docs/methods.md" });
    expect(readWhy({ feature: "g1", sentences: [] })).toBeNull();
  });
});

describe("formatMeasured", () => {
  it("keeps three significant digits of a measured error", async () => {
    const { formatMeasured } = await import("./views/header");
    expect(formatMeasured(1)).toBe("1.00");
    expect(formatMeasured(0.285)).toBe("0.285");
    expect(formatMeasured(12.5)).toBe("12.5");
    expect(formatMeasured(1e-7)).toBe("1.00e-7");
  });
});

describe("shortError", () => {
  it("cuts a traceback to its first lines and says so", async () => {
    const { shortError } = await import("./views/header");
    expect(shortError("ValueError: bad")).toBe("ValueError: bad");
    const long = ["RuntimeError: model exploded", ...Array.from({ length: 40 }, (_, i) => `  File "x.py", line ${i}`)].join("\n");
    const short = shortError(long);
    expect(short.split("\n").length).toBe(3);
    expect(short.endsWith("… (hover for all of it)")).toBe(true);
    expect(shortError("x".repeat(1000)).length).toBeLessThan(330);
  });
});
