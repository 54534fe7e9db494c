import { describe, expect, it } from "vitest";
import { formatNumber, formatPercent, tickFormatter } from "./lib/format";

describe("formatNumber", () => {
  it("writes neighbouring small values alike (plain decimals, three significant digits)", () => {
    expect(formatNumber(8.57e-4)).toBe("0.000857");
    expect(formatNumber(0.00102)).toBe("0.00102");
    expect(formatNumber(0.0123456)).toBe("0.0123");
    expect(formatNumber(16.349)).toBe("16.3");
    expect(formatNumber(0.5)).toBe("0.5");
    expect(formatNumber(-2)).toBe("-2");
    expect(formatNumber(1234.5)).toBe("1,230");
    expect(formatNumber(-4.7e-5)).toBe("-0.000047");
  });
  it("falls back to scientific notation only at the extremes", () => {
    expect(formatNumber(3.2e-6)).toBe("3.20e-6");
    expect(formatNumber(4.5e7)).toBe("4.50e+7");
    expect(formatNumber(NaN)).toBe("–");
    expect(formatNumber(0)).toBe("0");
  });
});

describe("formatPercent", () => {
  it("shows shares in percent", () => {
    expect(formatPercent(0.1234)).toBe("12.3 %");
    expect(formatPercent(0.0041)).toBe("0.41 %");
    expect(formatPercent(NaN)).toBe("–");
  });
});

describe("tickFormatter", () => {
  it("gives every tick the decimals of the step", () => {
    const f = tickFormatter(0.0005);
    expect([0, 0.0005, 0.001, 0.0015].map(f)).toEqual(["0.0000", "0.0005", "0.0010", "0.0015"]);
    expect([0, 2.5, 5].map(tickFormatter(2.5))).toEqual(["0.0", "2.5", "5.0"]);
    expect([0, 20, 40].map(tickFormatter(20))).toEqual(["0", "20", "40"]);
    expect(tickFormatter(2000)(4000)).toBe("4,000");
  });
});
