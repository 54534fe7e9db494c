/**
 * Decoding of the kernel's binary state (see docs/widget-protocol.md).
 *
 * The kernel sends float32/int32 arrays as raw little-endian bytes inside synced traits; the
 * Jupyter widget manager hands them to us as DataView (or ArrayBuffer / typed arrays in other
 * managers). Everything here is defensive: a buffer of the wrong length yields an empty frame
 * instead of garbage on screen.
 */

/** Rows of the `summary` buffer, in order; each row holds one float32 per feature. */
export const SUMMARY_ROWS = ["mean", "ci_low", "ci_high", "normalized", "n_done"] as const;

/** One decoded update: per-feature summary for all F features, per-repeat values for a few. */
export interface Frame {
  nFeatures: number;
  nRepeats: number;
  mean: Float32Array;
  ciLow: Float32Array;
  ciHigh: Float32Array;
  normalized: Float32Array;
  nDone: Float32Array;
  /** Feature index -> row of `repeats` (only top-N and the selected feature have rows). */
  repeatRow: Map<number, number>;
  /** (rows x nRepeats) Δerror per repeat, NaN where not computed yet. */
  repeats: Float32Array;
}

/** The bytes of a binary trait value, or null when it is not binary. */
export function toBytes(value: unknown): Uint8Array | null {
  if (value instanceof DataView) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return null;
}

type Reader = "getFloat32" | "getInt32";

// Typed arrays use the host's byte order; every browser host is little-endian, but check.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function decode<T extends Float32Array | Int32Array>(bytes: Uint8Array, out: new (buffer: ArrayBuffer) => T & { length: number }, read: Reader): T {
  const n = Math.floor(bytes.byteLength / 4);
  // On a little-endian host, one copy of the bytes (aligned, as a typed array needs; the
  // buffers may sit at any offset) is the decode: ~20x faster than a DataView read per value
  // while the code is still cold, which the first update with data is.
  if (LITTLE_ENDIAN) return new out(bytes.slice(0, 4 * n).buffer as ArrayBuffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new out(new ArrayBuffer(4 * n));
  for (let i = 0; i < n; i++) values[i] = view[read](4 * i, true);
  return values;
}

/** Little-endian float32 values. */
export function decodeFloat32(bytes: Uint8Array): Float32Array {
  return decode(bytes, Float32Array, "getFloat32");
}

/** Little-endian int32 values. */
export function decodeInt32(bytes: Uint8Array): Int32Array {
  return decode(bytes, Int32Array, "getInt32");
}

/** A frame with no data (shown before the first update or when an update is malformed). */
export function emptyFrame(nFeatures = 0, nRepeats = 0): Frame {
  const nan = () => new Float32Array(nFeatures).fill(NaN);
  return {
    nFeatures,
    nRepeats,
    mean: nan(),
    ciLow: nan(),
    ciHigh: nan(),
    normalized: nan(),
    nDone: new Float32Array(nFeatures),
    repeatRow: new Map(),
    repeats: new Float32Array(0),
  };
}

/**
 * Decode the `summary`, `repeat_rows` and `repeats` traits.
 *
 * @param nFeatures F, the number of feature names.
 * @param nRepeats R, repeats per feature.
 */
export function decodeFrame(
  summary: unknown,
  repeatRows: unknown,
  repeats: unknown,
  nFeatures: number,
  nRepeats: number,
): Frame {
  const summaryBytes = toBytes(summary);
  const rowBytes = toBytes(repeatRows);
  const repeatBytes = toBytes(repeats);
  const rows = SUMMARY_ROWS.length;
  if (!summaryBytes || summaryBytes.byteLength !== 4 * rows * nFeatures) {
    return emptyFrame(nFeatures, nRepeats);
  }
  const values = decodeFloat32(summaryBytes);
  const row = (i: number) => values.subarray(i * nFeatures, (i + 1) * nFeatures);
  const indices = rowBytes ? decodeInt32(rowBytes) : new Int32Array(0);
  let perRepeat = repeatBytes ? decodeFloat32(repeatBytes) : new Float32Array(0);
  const repeatRow = new Map<number, number>();
  if (perRepeat.length === indices.length * nRepeats) {
    indices.forEach((feature, r) => {
      if (feature >= 0 && feature < nFeatures) repeatRow.set(feature, r);
    });
  } else {
    perRepeat = new Float32Array(0);
  }
  return {
    nFeatures,
    nRepeats,
    mean: row(0),
    ciLow: row(1),
    ciHigh: row(2),
    normalized: row(3),
    nDone: row(4),
    repeatRow,
    repeats: perRepeat,
  };
}

/** The per-repeat Δerror of one feature (finite values only), or null when not sent. */
export function repeatsOf(frame: Frame, feature: number): number[] | null {
  const row = frame.repeatRow.get(feature);
  if (row === undefined) return null;
  const start = row * frame.nRepeats;
  const out: number[] = [];
  for (let j = start; j < start + frame.nRepeats; j++) {
    if (Number.isFinite(frame.repeats[j])) out.push(frame.repeats[j]);
  }
  return out;
}
