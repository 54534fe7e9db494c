import { describe, expect, it } from "vitest";
import { tableCsv } from "./lib/export";
import { emptyFrame } from "./lib/protocol";
import { SIDE_BY_SIDE_MIN, chartLayouts } from "./views/charts";
import { clampTopN, controlsEnabled } from "./views/header";

const measure = (text: string) => 6 * text.length;

describe("chartLayouts", () => {
  it("stacks the charts below the side-by-side width, each with its labels", () => {
    const { stacked, bars, boxes } = chartLayouts(SIDE_BY_SIDE_MIN - 1, 300, measure);
    expect(stacked).toBe(true);
    expect(bars.labelWidth).toBeGreaterThan(0);
    expect(boxes.labelWidth).toBe(bars.labelWidth);
    expect(bars.width).toBe(SIDE_BY_SIDE_MIN - 1);
  });
  it("puts them side by side on wide outputs, sharing one label column, within the width", () => {
    for (const width of [800, 1280, 1920]) {
      const { stacked, bars, boxes } = chartLayouts(width, 80, measure);
      expect(stacked).toBe(false);
      expect(boxes.labelWidth).toBe(0);
      expect(bars.width + boxes.width + 16).toBeLessThanOrEqual(Math.min(width, 1400));
    }
  });
  it("sizes the label column to the names, capped so long names get shortened", () => {
    expect(chartLayouts(1280, 40, measure).bars.labelWidth).toBe(52);
    expect(chartLayouts(1280, 900, measure).bars.labelWidth).toBe(260);
    expect(chartLayouts(500, 900, measure).bars.labelWidth).toBe(150);
  });
});

describe("header controls", () => {
  it("enables only what the status allows", () => {
    expect(controlsEnabled("running")).toEqual([true, false, true]);
    expect(controlsEnabled("paused")).toEqual([false, true, true]);
    expect(controlsEnabled("cancelled")).toEqual([false, true, false]);
    expect(controlsEnabled("done")).toEqual([false, false, false]);
    expect(controlsEnabled("saved")).toEqual([false, false, false]);
  });
  it("clamps the Top box instead of sending a value the kernel refuses", () => {
    expect(clampTopN("500", 200)).toBe(200);
    expect(clampTopN("0", 200)).toBe(1);
    expect(clampTopN(" 25 ", 200)).toBe(25);
    expect(clampTopN("2.5", 200)).toBeNull();
    expect(clampTopN("", 200)).toBeNull();
  });
});

describe("tableCsv", () => {
  it("lists every feature in rank order with shares in percent, quoting names", () => {
    const frame = emptyFrame(3, 2);
    frame.mean.set([1, 3, NaN]);
    frame.ciLow.set([0.5, 2, NaN]);
    frame.ciHigh.set([1.5, 4, NaN]);
    frame.nDone.set([2, 2, 0]);
    const csv = tableCsv(["a", "b,c", "d"], frame).trim().split("\n");
    expect(csv[0]).toBe("feature,rank,mean,ci_low,ci_high,share_percent,n_done");
    expect(csv[1]).toBe('"b,c",1,3,2,4,75,2');
    expect(csv[2]).toBe("a,2,1,0.5,1.5,25,2");
    expect(csv[3]).toBe("d,3,,,,,0");
  });
});
