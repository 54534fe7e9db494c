/** Linear scales and tick positions for the SVG charts (no d3: a few lines do). */

export interface LinearScale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
}

/** Map [d0, d1] onto [r0, r1]; a degenerate domain maps everything to the range's middle. */
export function linearScale(domain: [number, number], range: [number, number]): LinearScale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const scale = ((value: number) =>
    span === 0 ? (r0 + r1) / 2 : r0 + ((value - d0) / span) * (r1 - r0)) as LinearScale;
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  return scale;
}

/** Smallest and largest finite value, or null when there is none. */
export function extent(values: ArrayLike<number>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks. */
export function tickStep(lo: number, hi: number, count: number): number {
  const raw = Math.abs(hi - lo) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 0;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power; // in [1, 10)
  // The smallest nice multiplier >= fraction, so there are at most about `count` ticks.
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** Tick values that are multiples of a nice step, inside [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  const step = tickStep(lo, hi, count);
  if (step === 0) return Number.isFinite(lo) ? [lo] : [];
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let k = first; k <= last; k++) {
    // Round away float noise (0.1 * 3 = 0.30000000000000004).
    out.push(Number((k * step).toPrecision(12)));
  }
  return out;
}

/**
 * A domain for a value axis: the data's extent, always including zero (bars start at zero),
 * padded by 5 % so whiskers do not touch the edge; [0, 1] when there is no data.
 */
export function valueDomain(values: ArrayLike<number>): [number, number] {
  const found = extent(values);
  if (!found) return [0, 1];
  let [lo, hi] = found;
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  if (lo === hi) return [lo, lo + 1];
  const pad = 0.05 * (hi - lo);
  return [lo < 0 ? lo - pad : lo, hi > 0 ? hi + pad : hi];
}
