import { describe, expect, it } from "vitest";
import { shortenMiddle } from "./lib/text";

const measure = (text: string) => 6 * Array.from(text).length;

describe("shortenMiddle", () => {
  it("keeps names that fit", () => {
    expect(shortenMiddle("g0061", 60, measure)).toBe("g0061");
  });
  it("keeps both ends of a long gene identifier and fits the width", () => {
    const name = "ENSG00100498897.3|GENE63_ANTISENSE_RNA";
    const short = shortenMiddle(name, 120, measure);
    expect(measure(short)).toBeLessThanOrEqual(120);
    expect(short).toContain("…");
    expect(name.startsWith(short.split("…")[0])).toBe(true);
    expect(name.endsWith(short.split("…")[1])).toBe(true);
    expect(short.split("…")[1].length).toBeGreaterThan(4); // the end is kept, not only the start
  });
  it("uses all the room it has", () => {
    const short = shortenMiddle("abcdefghijklmnopqrstuvwxyz", 60, measure);
    expect(Array.from(short).length).toBe(10);
  });
  it("never splits a surrogate pair", () => {
    const short = shortenMiddle("😀".repeat(30), 60, measure);
    expect(short).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe("titleLines", () => {
  it("keeps a title that fits on one line and breaks a long one before its unit", async () => {
    const { titleLines } = await import("./lib/chart");
    expect(titleLines("Δ error per repeat", 200, measure)).toEqual(["Δ error per repeat"]);
    expect(titleLines("Δ error per repeat (MSE, squared input units)", 200, measure)).toEqual([
      "Δ error per repeat",
      "(MSE, squared input units)",
    ]);
  });
});
