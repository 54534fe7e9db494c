import { describe, expect, it } from "vitest";
import { heatLayout, heatLevel, heatRange, heatValueAt } from "./lib/heat";
import { axisKind, axisScale, logTickLabel, logTicks, nearestPoint } from "./lib/scatter";
import { scatterSize, topMembership } from "./views/compare";
import { heatLabelWidth } from "./views/heatmap";

describe("scatter axes", () => {
  it("go log for positive values spanning 100x or more, linear otherwise", () => {
    expect(axisKind([0.001, 0.5, 2])).toBe("log");
    expect(axisKind([1, 50])).toBe("linear");
    expect(axisKind([-0.01, 5, 100])).toBe("linear"); // a negative value has no place on a log axis
    expect(axisKind([0, 10, 1000])).toBe("linear");
    expect(axisKind([NaN, NaN])).toBe("linear");
  });
  it("map a log domain evenly per decade and drop non-positive values", () => {
    const x = axisScale([0.01, 1, 100], [0, 400]);
    expect(x.kind).toBe("log");
    expect(x(1) - x(0.01)).toBeCloseTo(x(100) - x(1));
    expect(x(0)).toBeNaN();
    expect(x(0.01)).toBeGreaterThan(0); // padded: not on the frame
    expect(x.ticks.map((t) => t.value)).toEqual([0.01, 0.1, 1, 10, 100]);
  });
  it("give linear axes nice ticks with one format", () => {
    const y = axisScale([0, 0.5, 1], [300, 0]);
    expect(y.kind).toBe("linear");
    expect(y(0)).toBeLessThan(300);
    expect(y(1)).toBeGreaterThan(0);
    expect(y.ticks.map((t) => t.label)).toEqual(["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
  });
  it("use 2x and 5x ticks on short log axes, and compact labels far from 1", () => {
    expect(logTicks(0.9, 60)).toEqual([1, 2, 5, 10, 20, 50]);
    expect(logTicks(1e-9, 1e9).length).toBeLessThanOrEqual(10);
    expect(logTickLabel(1e-6)).toBe("1e-6");
    expect(logTickLabel(5e6)).toBe("5×1e6");
    expect(logTickLabel(0.01)).toBe("0.01");
  });
  it("find the nearest point within the radius, ties to the lower index", () => {
    const xs = [10, 20, 20, NaN];
    const ys = [10, 20, 20, 15];
    expect(nearestPoint(xs, ys, 19, 19, 5)).toBe(1);
    expect(nearestPoint(xs, ys, 50, 50, 5)).toBe(-1);
    expect(nearestPoint(xs, ys, 12, 12, 5)).toBe(0);
  });
  it("colour units by membership in the two top-k lists", () => {
    const x = [5, 4, 3, 2, NaN];
    const y = [1, 9, 8, 2, 7];
    expect(Array.from(topMembership(x, y, 2))).toEqual([1, 2, 1, 0, 0]);
  });
  it("size the scatter to the width within bounds", () => {
    expect(scatterSize(1200)).toEqual({ width: 760, height: 480 });
    expect(scatterSize(500).width).toBe(500);
    expect(scatterSize(100)).toEqual({ width: 280, height: 260 });
  });
});

describe("heat map", () => {
  it("ramps opacity on a square-root scale of |value|, 0 for NaN", () => {
    const { max, negative } = heatRange([0.5, -2, NaN, 1]);
    expect(max).toBe(2);
    expect(negative).toBe(true);
    expect(heatLevel(2, max)).toBe(1);
    expect(heatLevel(0.5, max)).toBeCloseTo(0.5);
    expect(heatLevel(-0.5, max)).toBeCloseTo(0.5);
    expect(heatLevel(NaN, max)).toBe(0);
    expect(heatLevel(1, 0)).toBe(0);
    expect(heatValueAt(heatLevel(1.3, max), max)).toBeCloseTo(1.3);
  });
  it("fits 40 x 60 cells from 800 px and caps cells on wide outputs", () => {
    const narrow = heatLayout(800, 40, 60, 150, 80);
    expect(narrow.width).toBeLessThanOrEqual(800);
    expect(narrow.cellWidth).toBeGreaterThanOrEqual(8);
    const wide = heatLayout(1920, 10, 4, 150, 40);
    expect(wide.cellWidth).toBe(36);
    expect(wide.height).toBe(wide.headerHeight + 10 * 18 + 4);
  });
  it("sizes the label column to the names, capped", () => {
    expect(heatLabelWidth(40, 1280)).toBe(52);
    expect(heatLabelWidth(900, 1280)).toBe(220);
    expect(heatLabelWidth(900, 500)).toBe(125);
  });
});
