import { describe, expect, it } from "vitest";
import type { WidgetModel } from "./lib/model";
import { StateReader } from "./lib/state";
import { membersLine, settledLine } from "./views/bars";
import { certifiedText, certifiedTitle, unitWord } from "./views/header";

function fakeModel(traits: Record<string, unknown>): WidgetModel & { traits: Record<string, unknown> } {
  return {
    traits,
    get: (name: string) => traits[name],
    on: () => undefined,
    off: () => undefined,
    send: () => undefined,
  };
}

describe("StateReader", () => {
  it("rebuilds the name index when the units change, keeps it when a list repeats them", () => {
    const model = fakeModel({ feature_names: ["a", "b", "c"] });
    const reader = new StateReader();
    const first = reader.read(model).index;
    expect(first.indexOf("c")).toBe(2);
    model.traits.feature_names = ["a", "b", "c"]; // a new list, same names
    expect(reader.read(model).index).toBe(first);
    model.traits.feature_names = ["group 1", "c"]; // a grouped run
    const grouped = reader.read(model).index;
    expect(grouped).not.toBe(first);
    expect(grouped.indexOf("c")).toBe(1);
    expect(grouped.indexOf("a")).toBe(-1);
  });
  it("decodes a v3 trait once per value and again when it or the units change", () => {
    const settled = new DataView(new Int8Array([1, 0, -1]).buffer);
    const model = fakeModel({ feature_names: ["a", "b", "c"], settled, compare: {}, view: "compare" });
    const reader = new StateReader();
    const first = reader.read(model);
    expect(Array.from(first.settled!)).toEqual([1, 0, -1]);
    expect(first.view).toBe("compare");
    expect(first.compare).toBeNull();
    expect(reader.read(model).settled).toBe(first.settled);
    model.traits.feature_names = ["a", "b"];
    expect(reader.read(model).settled).toBeNull(); // 3 values for 2 units: not shown
  });
  it("reads an old kernel (no v3 traits) as one method and the importance view", () => {
    const state = new StateReader().read(fakeModel({ feature_names: ["a"] }));
    expect(state.methods).toEqual([]);
    expect(state.views).toEqual([]);
    expect(state.view).toBe("importance");
    expect(state.settled).toBeNull();
    expect(state.members.size).toBe(0);
  });
});

describe("bar tooltips and the certified count", () => {
  it("name a group's members, at most 12", () => {
    expect(membersLine(["x", "y"])).toBe("\ngroup of 2: x, y");
    const many = Array.from({ length: 15 }, (_, i) => `f${i}`);
    expect(membersLine(many)).toMatch(/^\ngroup of 15: f0, .*, f11, … \(3 more\)$/);
    expect(membersLine(undefined)).toBe("");
  });
  it("say whether a unit is settled", () => {
    expect(settledLine(1, 20)).toBe("\nsettled: certainly in the top 20");
    expect(settledLine(-1, null)).toBe("\nsettled: certainly outside the top k");
    expect(settledLine(0, 20)).toBe("");
  });
  it("count the certified units", () => {
    const exact = { tolerance: "", confidence: 0.95, tied: 0, open: 0, separationRows: 0 };
    expect(certifiedText({ ...exact, k: 20, names: ["a", "b"], done: false })).toBe("certified top-20: 2 of 20");
    expect(certifiedText({ ...exact, k: 3, names: ["a", "b", "c"], done: true })).toBe("certified top-3: 3 of 3 (final)");
  });
  it("say a rows race's tolerance, confidence and tied places", () => {
    const race = { k: 20, tolerance: "10 % of the 20th importance", confidence: 0.95, separationRows: 123456 };
    const names = Array.from({ length: 10 }, (_, i) => `g${i}`);
    expect(certifiedText({ ...race, names, done: false, tied: 0, open: 40 })).toBe(
      "top 20 within 10 % of the 20th importance at 95 %: 10 of 20 certified");
    expect(certifiedText({ ...race, names, done: true, tied: 30, open: 4 })).toBe(
      "top 20 within 10 % of the 20th importance at 95 %: 10 of 20 certified; 10 places tied among 34 units (final)");
    const title = certifiedTitle({ ...race, names, done: true, tied: 30, open: 4 });
    expect(title).toContain("Certainly in the top 20 (within 10 % of the 20th importance):\ng0");
    expect(title).toContain("about 123,456 more rows");
    expect(certifiedTitle({ ...race, names: [], done: false, tied: 0, open: 5 })).toBe(
      "No feature is certain to be in the top 20 yet");
  });
});

describe("unit word", () => {
  it("says units once some rows are groups", () => {
    expect(unitWord({ members: new Map() })).toBe("features");
    expect(unitWord({ members: new Map([["x1 +2", ["x1", "x2", "x3"]]]) })).toBe("units");
  });
});
