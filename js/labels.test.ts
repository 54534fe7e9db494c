import { describe, expect, it } from "vitest";
import { countOf, readLabels } from "./lib/labels";

describe("readLabels", () => {
  it("takes the kernel's words", () => {
    const labels = readLabels({
      method: "toy", title: "Toy importance", value: "toy score", unit: "toy units",
      value_label: "toy score (toy units)", axis: "sample",
    });
    expect(labels).toEqual({
      method: "toy", title: "Toy importance", value: "toy score", unit: "toy units",
      valueLabel: "toy score (toy units)", axis: "sample", interval: "", count: "sample",
    });
    expect(readLabels({ axis: "repeat", count: "row", interval: "simultaneous 95 % bounds" })).toMatchObject({
      axis: "repeat", count: "row", interval: "simultaneous 95 % bounds",
    });
  });
  it("falls back to generic words and builds the value label from value and unit", () => {
    expect(readLabels(null).title).toBe("Importance");
    expect(readLabels({ value: "Δ error", unit: "MSE" }).valueLabel).toBe("Δ error (MSE)");
    expect(readLabels({ value: 3, axis: "" }).axis).toBe("repeat");
  });
});

describe("countOf", () => {
  it("pluralises the axis name", () => {
    expect(countOf(1, "repeat")).toBe("1 repeat");
    expect(countOf(3, "sample")).toBe("3 samples");
  });
});
