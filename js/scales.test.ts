import { describe, expect, it } from "vitest";
import { extent, linearScale, tickStep, ticks, valueDomain } from "./lib/scales";

describe("linearScale", () => {
  it("maps the domain ends onto the range ends and interpolates between", () => {
    const x = linearScale([0, 10], [100, 200]);
    expect(x(0)).toBe(100);
    expect(x(10)).toBe(200);
    expect(x(2.5)).toBe(125);
    expect(x(-10)).toBe(0); // extrapolates linearly
  });
  it("supports inverted ranges (y axes)", () => {
    const y = linearScale([0, 1], [50, 0]);
    expect(y(1)).toBe(0);
    expect(y(0.5)).toBe(25);
  });
  it("maps a degenerate domain to the middle of the range instead of NaN", () => {
    expect(linearScale([3, 3], [0, 100])(3)).toBe(50);
  });
});

describe("ticks", () => {
  it("uses 1-2-5 steps", () => {
    expect(tickStep(0, 1, 5)).toBeCloseTo(0.2);
    expect(tickStep(0, 100, 4)).toBe(50);
    expect(tickStep(0, 7, 7)).toBe(1);
  });
  it("lists round values inside the domain without float noise", () => {
    expect(ticks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(-0.03, 0.31, 4)).toEqual([0, 0.1, 0.2, 0.3]);
  });
  it("returns the single value of an empty span", () => {
    expect(ticks(2, 2)).toEqual([2]);
  });
});

describe("extent and valueDomain", () => {
  it("ignore NaN and infinities", () => {
    expect(extent([NaN, 3, -1, Infinity, 2])).toEqual([-1, 3]);
    expect(extent([NaN])).toBeNull();
  });
  it("always include zero and pad the data side", () => {
    const [lo, hi] = valueDomain([1, 2]);
    expect(lo).toBe(0);
    expect(hi).toBeCloseTo(2.1);
    const [lo2, hi2] = valueDomain([-2, -1]);
    expect(lo2).toBeCloseTo(-2.1);
    expect(hi2).toBe(0);
  });
  it("falls back to [0, 1] without data", () => {
    expect(valueDomain([NaN, NaN])).toEqual([0, 1]);
    expect(valueDomain([0, 0])).toEqual([0, 1]);
  });
});
