import { describe, expect, it } from "vitest";
import { NameIndex } from "./lib/search";

describe("NameIndex.search", () => {
  const index = new NameIndex(["GeneA", "geneB", "CD4", "xgene", "ABC"]);
  it("matches substrings case-insensitively, prefixes first", () => {
    expect(index.search("GENE")).toEqual([0, 1, 3]);
    // "abc" starts with "a" and comes first; "genea" only contains it.
    expect(index.search("a")).toEqual([4, 0]);
  });
  it("returns nothing for an empty or blank query and respects the limit", () => {
    expect(index.search("")).toEqual([]);
    expect(index.search("   ")).toEqual([]);
    expect(index.search("gene", 2)).toEqual([0, 1]);
  });
  it("finds exact names", () => {
    expect(index.indexOf("CD4")).toBe(2);
    expect(index.indexOf("cd4")).toBe(-1);
  });
  it("searches 20,000 names fast", () => {
    const names = Array.from({ length: 20000 }, (_, i) => `feature_${i}`);
    const big = new NameIndex(names);
    const started = performance.now();
    for (let k = 0; k < 20; k++) big.search(`_1${k}`);
    const perQuery = (performance.now() - started) / 20;
    expect(perQuery).toBeLessThan(20);
    expect(big.search("FEATURE_19999")).toEqual([19999]);
    expect(big.search("_1999", 100)).toEqual([1999, 19990, 19991, 19992, 19993, 19994, 19995, 19996, 19997, 19998, 19999]);
  });
});

describe("bestMatches", () => {
  it("ranks matches by importance, counts all, unevaluated last", async () => {
    const { bestMatches, splitMatch } = await import("./lib/search");
    const index = new NameIndex(["g0061", "g1061", "g0961", "g0610", "x"]);
    const mean = [0.5, NaN, 2, 0.1, 9];
    expect(bestMatches(index, "061", mean, 2)).toEqual({ matches: [0, 3], total: 3 });
    expect(bestMatches(index, "061", mean, 10).matches).toEqual([0, 3, 1]);
    expect(splitMatch("GENE_12", "ne_1")).toEqual(["GE", "NE_1", "2"]);
    expect(splitMatch("abc", "z")).toEqual(["abc", "", ""]);
  });
});
