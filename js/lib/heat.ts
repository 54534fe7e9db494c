/**
 * Heat-map colour and geometry.
 *
 * Colour: one theme colour (`--jp-brand-color1`) laid over the background with an opacity that
 * grows with the value, so zero is the background and the largest value the full colour. That
 * is a sequential scale in both JupyterLab themes (light: white to blue, dark: grey-900 to
 * blue), with no palette that suits only one of them. Negative values (noise in a per-output
 * importance) use the warning colour the same way, so they are never mistaken for small
 * positive ones.
 */

/** The largest |value| over finite values (0 when none), and whether any value is negative. */
export function heatRange(values: ArrayLike<number>): { max: number; negative: boolean } {
  let max = 0;
  let negative = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (Math.abs(v) > max) max = Math.abs(v);
    if (v < 0) negative = true;
  }
  return { max, negative };
}

/**
 * Opacity for |value| on a square-root scale: importances are skewed (a few large, many small),
 * and on a linear ramp all but the largest cells would look blank. 0 for NaN or max 0.
 */
export function heatLevel(value: number, max: number): number {
  if (!Number.isFinite(value) || !(max > 0)) return 0;
  return Math.sqrt(Math.min(1, Math.abs(value) / max));
}

/** The value at which the colour reaches `level` (inverse of {@link heatLevel}), for the legend. */
export function heatValueAt(level: number, max: number): number {
  return level * level * max;
}

/** Geometry of a heat map: label column, column header, cell size. */
export interface HeatLayout {
  labelWidth: number;
  headerHeight: number;
  cellWidth: number;
  cellHeight: number;
  width: number;
  height: number;
}

export const CELL_HEIGHT = 18;
const CELL_MIN = 8;
const CELL_MAX = 36;
const RIGHT = 12;

/**
 * Cells fill the width left of the labels (within [8, 36] px, so 60 columns fit from ~800 px
 * and a few columns do not become huge blocks); the header is tall enough for its rotated
 * names (`headerText` px long at 55 degrees).
 */
export function heatLayout(
  available: number,
  nRows: number,
  nColumns: number,
  labelWidth: number,
  headerText: number,
): HeatLayout {
  const room = Math.max(0, available - labelWidth - RIGHT);
  const cellWidth = Math.max(CELL_MIN, Math.min(CELL_MAX, Math.floor(room / Math.max(1, nColumns))));
  const headerHeight = Math.ceil(Math.sin((55 * Math.PI) / 180) * headerText) + 14;
  return {
    labelWidth,
    headerHeight,
    cellWidth,
    cellHeight: CELL_HEIGHT,
    width: labelWidth + nColumns * cellWidth + RIGHT,
    height: headerHeight + nRows * CELL_HEIGHT + 4,
  };
}
