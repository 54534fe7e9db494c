import { describe, expect, it } from "vitest";
import { axisTicks } from "./lib/chart";
import { ticks } from "./lib/scales";

/** A monospace measure: 7 px per character. */
const measure = (text: string): number => 7 * text.length;

describe("axisTicks", () => {
  it("labels every tick when the labels fit", () => {
    const { values, labels } = axisTicks(0, 1, 600, measure);
    expect(values).toEqual(ticks(0, 1, 4)); // the 4-tick choice, as on a wide chart
    expect(labels.every((label) => label !== null)).toBe(true);
  });

  it("takes fewer nice ticks, not fewer labels, on a narrow axis", () => {
    const wide = axisTicks(0, 0.0123, 600, measure);
    const narrow = axisTicks(0, 0.0123, 90, measure);
    expect(narrow.values.length).toBeLessThan(wide.values.length);
    expect(narrow.values.length).toBeGreaterThanOrEqual(2);
    expect(narrow.labels.every((label) => label !== null)).toBe(true);
    // The labels fit side by side in the room given.
    const needed = narrow.labels.reduce((sum, label) => sum + measure(label ?? "") + 10, 0);
    expect(needed).toBeLessThanOrEqual(90);
  });

  it("never leaves only the zero tick labelled when there is no room", () => {
    const { values, labels } = axisTicks(0, 0.0123, 20, measure);
    const shown = labels.filter((label): label is string => label !== null);
    expect(shown).toHaveLength(1);
    expect(shown[0]).not.toBe("0");
    expect(Number(shown[0])).toBe(Math.max(...values));
  });

  it("labels the outermost tick of a negative axis", () => {
    const { labels } = axisTicks(-2.4, 0, 10, measure);
    expect(labels.filter((label) => label !== null)).toEqual(["-2"]);
  });
});
