/**
 * Number and duration formatting for labels: one style everywhere.
 *
 * Values: three significant digits in plain decimals ("0.000857", "0.00102", "16.3", "1,250"),
 * so neighbouring numbers read alike; scientific notation only outside [1e-5, 1e6), where plain
 * decimals would get too long. Ticks use the decimals their step needs.
 */

const PLAIN_MIN = 1e-5;
const PLAIN_MAX = 1e6;

/** Three significant digits (see above); "–" for NaN/undefined. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude < PLAIN_MIN || magnitude >= PLAIN_MAX) return value.toExponential(2);
  // Decimals that show three significant digits, then trailing zeros dropped.
  const decimals = Math.max(0, 2 - Math.floor(Math.log10(magnitude)));
  const text = Number(value.toPrecision(3)).toFixed(decimals);
  const trimmed = text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
  return magnitude >= 1000 ? Number(trimmed).toLocaleString("en-US") : trimmed;
}

/** A share in [0, 1] as a percentage: "12.3 %", "0.41 %". */
export function formatPercent(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return "–";
  return `${formatNumber(100 * share)} %`;
}

/** Formatter for axis ticks `step` apart: the same number of decimals for every tick. */
export function tickFormatter(step: number): (value: number) => string {
  if (!(step > 0) || !Number.isFinite(step)) return formatNumber;
  if (step < PLAIN_MIN || step >= PLAIN_MAX) return (value) => (value === 0 ? "0" : value.toExponential(1));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  // 2.5, 0.25: a step with a second significant digit needs one decimal more.
  const extra = Number((step / Math.pow(10, -decimals)).toPrecision(6)) % 1 === 0 ? 0 : 1;
  return (value) => {
    const text = value.toFixed(decimals + extra);
    return Math.abs(value) >= 1000 ? Number(text).toLocaleString("en-US") : text;
  };
}

/** "1 h 02 min", "3 min 05 s", "12.3 s"; "–" when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return "–";
  }
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (x: number) => String(x).padStart(2, "0");
  return h > 0 ? `${h} h ${two(m)} min` : `${m} min ${two(s)} s`;
}

/** "12,345" */
export function formatCount(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–";
}
