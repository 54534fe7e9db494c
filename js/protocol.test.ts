import { describe, expect, it } from "vitest";
import { decodeFrame, repeatsOf } from "./lib/protocol";

function float32Bytes(values: number[]): DataView {
  const view = new DataView(new ArrayBuffer(4 * values.length));
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return view;
}

function int32Bytes(values: number[]): DataView {
  const view = new DataView(new ArrayBuffer(4 * values.length));
  values.forEach((v, i) => view.setInt32(4 * i, v, true));
  return view;
}

describe("decodeFrame", () => {
  // 3 features, 2 repeats; rows: mean, ci_low, ci_high, normalized, n_done.
  const summary = float32Bytes([1, 2, NaN, 0.5, 1.5, NaN, 1.5, 2.5, NaN, 1 / 3, 2 / 3, NaN, 2, 2, 0]);
  it("splits the summary rows and maps repeat rows to features", () => {
    const frame = decodeFrame(summary, int32Bytes([1, 0]), float32Bytes([2, 2, 1, NaN]), 3, 2);
    expect(Array.from(frame.mean.subarray(0, 2))).toEqual([1, 2]);
    expect(frame.mean[2]).toBeNaN();
    expect(frame.ciHigh[1]).toBe(2.5);
    expect(Array.from(frame.nDone)).toEqual([2, 2, 0]);
    expect(repeatsOf(frame, 1)).toEqual([2, 2]);
    expect(repeatsOf(frame, 0)).toEqual([1]);
    expect(repeatsOf(frame, 2)).toBeNull();
  });
  it("reads unaligned views (a DataView at an odd offset)", () => {
    const raw = new Uint8Array(1 + 4 * 15);
    raw.set(new Uint8Array(summary.buffer), 1);
    const frame = decodeFrame(new DataView(raw.buffer, 1), null, null, 3, 2);
    expect(frame.mean[1]).toBe(2);
  });
  it("returns an empty frame for a summary of the wrong size", () => {
    const frame = decodeFrame(float32Bytes([1, 2]), null, null, 3, 2);
    expect(frame.nFeatures).toBe(3);
    expect(Number.isNaN(frame.mean[0])).toBe(true);
  });
  it("ignores per-repeat data whose size does not match the rows", () => {
    const frame = decodeFrame(summary, int32Bytes([0]), float32Bytes([1, 2, 3]), 3, 2);
    expect(repeatsOf(frame, 0)).toBeNull();
  });
});
