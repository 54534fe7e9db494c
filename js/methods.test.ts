import { describe, expect, it } from "vitest";
import {
  comparePairs,
  decodePoints,
  decodeSettled,
  formatRho,
  groupsMessage,
  methodLabel,
  methodsTooltip,
  parseThreshold,
  readCertified,
  readCompare,
  readGroups,
  readHeatmap,
  readLatentTop,
  readMembers,
  readMethods,
  readView,
  readViews,
} from "./lib/methods";
import { groupsModes } from "./views/methods";

function float32Bytes(values: number[]): DataView {
  const view = new DataView(new ArrayBuffer(4 * values.length));
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return view;
}

const compareTrait = {
  keys: ["first_look", "permutation", "shapley"],
  titles: ["First look: permutation importance, 1 repeat on a subsample", "Permutation importance", "Shapley values"],
  rho: [[1, 0.8712, null], [0.8712, 1, -0.004], [null, -0.004, 1]],
  overlap: [[20, 17, 3], [17, 20, 9], [3, 9, 20]],
  k: 20,
  x: "first_look",
  y: "permutation",
  note: "means of runs over the same 100 units",
};

describe("methods and views traits", () => {
  it("reads methods in order, with defaults, dropping entries without a key", () => {
    const methods = readMethods([
      { key: "first_look", title: "First look: permutation importance, 1 repeat on a subsample", status: "done", note: "", has_result: true },
      { key: "shapley", title: "Shapley values", status: "unavailable", note: "d > 64: too many features" },
      { title: "no key" },
      "junk",
    ]);
    expect(methods.map((m) => m.key)).toEqual(["first_look", "shapley"]);
    expect(methods[0].hasResult).toBe(true);
    expect(methods[1]).toMatchObject({ status: "unavailable", note: "d > 64: too many features", hasResult: false });
    expect(readMethods(null)).toEqual([]);
  });
  it("labels a method with its status, and lists every note in the selector's tooltip", () => {
    const [done, unavailable, fresh] = readMethods([
      { key: "a", title: "A", status: "cancelled" },
      { key: "b", title: "B", status: "unavailable", note: "needs a latent layer" },
      { key: "c", title: "C", status: "not started" },
    ]);
    expect(methodLabel(done)).toBe("A · stopped");
    expect(methodLabel(unavailable)).toBe("B · unavailable");
    expect(methodLabel(fresh)).toBe("C");
    expect(methodsTooltip([done, unavailable])).toBe("A: stopped\nB: unavailable (needs a latent layer)");
  });
  it("keeps only the four known views, once each, and falls back to importance", () => {
    const views = readViews([
      { key: "importance", title: "Importance", available: true },
      { key: "outputs", title: "Per output", available: false, note: "one output" },
      { key: "outputs", title: "again", available: true },
      { key: "bogus", title: "?", available: true },
    ]);
    expect(views.map((v) => v.key)).toEqual(["importance", "outputs"]);
    expect(views[1]).toMatchObject({ available: false, note: "one output" });
    expect(readView("compare")).toBe("compare");
    expect(readView("nonsense")).toBe("importance");
  });
  it("reads groups, members and the certified top-k", () => {
    expect(readGroups({ mode: "auto", threshold: 0.7, n_groups: 12, has_custom: false, supported: true })).toEqual({
      mode: "auto", threshold: 0.7, nGroups: 12, hasCustom: false, supported: true,
    });
    expect(readGroups(undefined)).toMatchObject({ mode: "none", threshold: 0.8, supported: false });
    expect(readMembers({ g1: ["a", "b"], bad: 3 })).toEqual(new Map([["g1", ["a", "b"]]]));
    expect(readCertified({ k: 20, names: ["a", "b"], done: false })).toEqual({
      k: 20, names: ["a", "b"], done: false, tolerance: "", confidence: 0.95, tied: 0, open: 0, separationRows: 0,
    });
    expect(readCertified({
      k: 20, names: ["a"], done: true, tolerance: "10 % of the 20th importance", confidence: 0.9, tied: 7, open: -2,
      separation_rows: 1e6,
    })).toEqual({
      k: 20, names: ["a"], done: true, tolerance: "10 % of the 20th importance", confidence: 0.9, tied: 7, open: 0,
      separationRows: 1e6,
    });
    // Out-of-range values from a page message fall back: no "at 500 %" on screen.
    expect(readCertified({ k: 3, confidence: 5, separation_rows: -1 })).toMatchObject({ confidence: 0.95, separationRows: 0 });
    expect(readCertified({})).toBeNull();
  });
});

describe("groups requests", () => {
  it("accepts thresholds in (0, 1] only", () => {
    expect(parseThreshold("0.8")).toBe(0.8);
    expect(parseThreshold(" 1 ")).toBe(1);
    for (const bad of ["0", "-0.5", "1.01", "", "abc", "NaN"]) expect(parseThreshold(bad)).toBeNull();
  });
  it("sends a threshold with auto only (the kernel drops messages with extra fields)", () => {
    expect(groupsMessage("auto", 0.6)).toEqual({ type: "groups", mode: "auto", threshold: 0.6 });
    expect(groupsMessage("auto", null)).toEqual({ type: "groups", mode: "auto" });
    expect(groupsMessage("none", 0.6)).toEqual({ type: "groups", mode: "none" });
    expect(groupsMessage("custom", 0.6)).toEqual({ type: "groups", mode: "custom" });
  });
  it("offers custom groups only when the explorer has them", () => {
    expect(groupsModes(false)).toEqual(["none", "auto"]);
    expect(groupsModes(true)).toEqual(["none", "auto", "custom"]);
  });
});

describe("compare", () => {
  it("lists every unordered pair with rho and overlap", () => {
    const compare = readCompare(compareTrait)!;
    const pairs = comparePairs(compare);
    expect(pairs.map((p) => `${p.x}/${p.y}`)).toEqual(["first_look/permutation", "first_look/shapley", "permutation/shapley"]);
    expect(pairs.map((p) => formatRho(p.rho))).toEqual(["0.87", "–", "0.00"]);
    expect(pairs.map((p) => `${p.overlap} / ${compare.k}`)).toEqual(["17 / 20", "3 / 20", "9 / 20"]);
  });
  it("formats rho with two decimals and a real minus sign", () => {
    expect(formatRho(-0.456)).toBe("−0.46");
    expect(formatRho(1)).toBe("1.00");
    expect(formatRho(null)).toBe("–");
  });
  it("rejects matrices of the wrong shape and an empty trait", () => {
    expect(readCompare({ ...compareTrait, rho: [[1]] })).toBeNull();
    expect(readCompare({})).toBeNull();
  });
  it("decodes the (2, F) points and refuses a wrong size", () => {
    const points = decodePoints(float32Bytes([1, 2, NaN, 4, 5, 6]), 3)!;
    expect(Array.from(points.x.subarray(0, 2))).toEqual([1, 2]);
    expect(points.x[2]).toBeNaN();
    expect(Array.from(points.y)).toEqual([4, 5, 6]);
    expect(decodePoints(float32Bytes([1, 2]), 3)).toBeNull();
  });
});

describe("settled, heat map and latent top", () => {
  it("decodes settled int8 values, empty bytes as none", () => {
    const raw = new DataView(new Int8Array([1, -1, 0]).buffer);
    expect(Array.from(decodeSettled(raw, 3)!)).toEqual([1, -1, 0]);
    expect(decodeSettled(new DataView(new ArrayBuffer(0)), 3)).toBeNull();
  });
  it("reads the map with its row-major values and checks rows and size", () => {
    const trait = { kind: "latent", rows: [2, 0], columns: ["z0", "z1", "z2"], value_label: "Δ latent", column_axis: "latent dimension", note: "" };
    const values = float32Bytes([1, 2, 3, 4, 5, 6]);
    const map = readHeatmap(trait, values, 3)!;
    expect(map.kind).toBe("latent");
    expect(map.values[1 * 3 + 2]).toBe(6);
    expect(readHeatmap({ ...trait, rows: [2, 3] }, values, 3)).toBeNull(); // row 3 out of range
    expect(readHeatmap(trait, float32Bytes([1, 2]), 3)).toBeNull();
  });
  it("keeps latent top entries that name a known unit", () => {
    const top = readLatentTop({ dimension: 1, name: "z1", features: [[2, 0.5], [9, 0.4], [0, 0.1]] }, 3)!;
    expect(top.features).toEqual([[2, 0.5], [0, 0.1]]);
    expect(readLatentTop({}, 3)).toBeNull();
  });
});

describe("heat-map columns", () => {
  it("map each column to its index among all dimensions (the map shows a clustered subset)", async () => {
    const { columnIndices, noteOf } = await import("./lib/methods");
    expect(columnIndices([7, 2], ["a", "b"])).toEqual([7, 2]);
    expect(columnIndices(undefined, ["z12", "z3"])).toEqual([12, 3]);
    expect(columnIndices([1], ["out_a", "out_b"])).toEqual([0, 1]); // wrong length: positions
    expect(noteOf({ rows: [], note: "No unit has a value yet." })).toBe("No unit has a value yet.");
    expect(noteOf(null)).toBe("");
  });
});
