/** Scatter-plot pieces: axes that pick log or linear from the data, and the nearest point. */

import { formatNumber, tickFormatter } from "./format";
import { extent, linearScale, tickStep, ticks } from "./scales";

/** A position scale with its kind, domain, range and labelled ticks. */
export interface AxisScale {
  (value: number): number;
  kind: "linear" | "log";
  domain: [number, number];
  range: [number, number];
  ticks: { value: number; label: string }[];
}

/** Orders of magnitude from which a positive axis reads better on a log scale. */
export const LOG_SPAN = 100;

/**
 * Log when every finite value is positive and they span at least {@link LOG_SPAN}x (importances
 * are often a few large and many tiny values: on a linear axis the tiny ones pile up at zero);
 * linear otherwise (zero or negative values have no place on a log axis).
 */
export function axisKind(values: ArrayLike<number>): "linear" | "log" {
  const found = extent(values);
  if (!found) return "linear";
  const [lo, hi] = found;
  return lo > 0 && hi / lo >= LOG_SPAN ? "log" : "linear";
}

/** Log-axis tick values: powers of ten inside [lo, hi], with 2x and 5x when there are few. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi >= lo)) return [];
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  const decades = Math.log10(hi / lo);
  const steps = decades <= 2.5 ? [1, 2, 5] : [1];
  // Every power of ten would crowd a long axis: every second or third one then.
  const every = Math.max(1, Math.ceil(decades / 8));
  const out: number[] = [];
  for (let e = first; e <= last; e++) {
    if ((e - first) % every !== 0) continue;
    for (const m of steps) {
      const value = Number((m * Math.pow(10, e)).toPrecision(12));
      if (value >= lo * (1 - 1e-9) && value <= hi * (1 + 1e-9)) out.push(value);
    }
  }
  return out;
}

/** A log tick's label: plain decimals for 0.001 ... 10,000, "1e-6" beyond. */
export function logTickLabel(value: number): string {
  if (value >= 1e-3 && value < 1e5) return formatNumber(value);
  const exponent = Math.floor(Math.log10(value) + 1e-9);
  const mantissa = Number((value / Math.pow(10, exponent)).toPrecision(3));
  return `${mantissa === 1 ? "" : `${mantissa}×`}1e${exponent}`;
}

/**
 * The axis for `values` over the pixel `range`: log or linear ({@link axisKind}), the domain
 * padded by 5 % of its span (on a log axis, of its span in decades) so points do not sit on
 * the frame. Non-positive values on a log axis map to NaN (not drawn).
 */
export function axisScale(values: ArrayLike<number>, range: [number, number], count = 7): AxisScale {
  const kind = axisKind(values);
  const found = extent(values) ?? [0, 1];
  if (kind === "log") {
    const [l0, l1] = [Math.log10(found[0]), Math.log10(found[1])];
    const pad = 0.05 * (l1 - l0);
    const inner = linearScale([l0 - pad, l1 + pad], range);
    const domain: [number, number] = [Math.pow(10, l0 - pad), Math.pow(10, l1 + pad)];
    const scale = ((value: number) => (value > 0 ? inner(Math.log10(value)) : NaN)) as AxisScale;
    return Object.assign(scale, {
      kind,
      domain,
      range,
      ticks: logTicks(domain[0], domain[1]).map((value) => ({ value, label: logTickLabel(value) })),
    });
  }
  let [lo, hi] = found;
  if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = 0.05 * (hi - lo);
  const domain: [number, number] = [lo - pad, hi + pad];
  const inner = linearScale(domain, range);
  const format = tickFormatter(tickStep(domain[0], domain[1], count));
  const scale = ((value: number) => inner(value)) as AxisScale;
  return Object.assign(scale, {
    kind,
    domain,
    range,
    ticks: ticks(domain[0], domain[1], count).map((value) => ({ value, label: format(value) })),
  });
}

/**
 * Index of the point nearest to (px, py) within `radius` px, or -1. `xs`/`ys` are the points'
 * pixel positions (NaN = not drawn). A linear scan: ~0.1 ms for 20,000 points per mouse move,
 * simpler than a spatial index and fast enough.
 */
export function nearestPoint(xs: ArrayLike<number>, ys: ArrayLike<number>, px: number, py: number, radius: number): number {
  let best = -1;
  let bestDistance = radius * radius;
  for (let i = 0; i < xs.length; i++) {
    const dx = xs[i] - px;
    const dy = ys[i] - py;
    const distance = dx * dx + dy * dy;
    if (distance <= bestDistance) {
      // Ties go to the lower index, so the choice does not depend on the scan's details.
      if (distance === bestDistance && best >= 0) continue;
      best = i;
      bestDistance = distance;
    }
  }
  return best;
}
