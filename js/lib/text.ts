/** Fitting names into label columns: shortened in the middle, measured in the page's font. */

/** Width in px of a string (the page measures with a canvas; tests pass a stand-in). */
export type Measure = (text: string) => number;

const ELLIPSIS = "…";

/**
 * `name` if it fits in `maxWidth` px, else its start and end around "…", as long as fits.
 * Gene identifiers differ at both ends ("ENSG00000336.3|GENE336_ANTISENSE_RNA"), so the middle
 * is the part to drop; the full name stays in the tooltip.
 */
export function shortenMiddle(name: string, maxWidth: number, measure: Measure): string {
  if (measure(name) <= maxWidth) return name;
  const chars = Array.from(name); // code points: never split a surrogate pair
  // The most characters kept (split ~55 % start / 45 % end) that still fit: binary search.
  let lo = 0;
  let hi = chars.length - 1;
  const build = (keep: number) => {
    const head = Math.ceil(keep * 0.55);
    return chars.slice(0, head).join("") + ELLIPSIS + chars.slice(chars.length - (keep - head)).join("");
  };
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measure(build(mid)) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? ELLIPSIS : build(lo);
}

/** A cached canvas measure for an SVG/HTML font such as "11px sans-serif". */
export function canvasMeasure(font: string): Measure {
  const context = document.createElement("canvas").getContext("2d");
  const cache = new Map<string, number>();
  if (!context) return (text) => 6.5 * text.length; // no canvas (tests): a fair average
  context.font = font;
  return (text) => {
    let width = cache.get(text);
    if (width === undefined) {
      width = context.measureText(text).width;
      if (cache.size > 50_000) cache.clear();
      cache.set(text, width);
    }
    return width;
  };
}

let scratch: CanvasRenderingContext2D | null | undefined;

/** `font` as a canvas spells it (families normalised), to tell whether two CSS font values
 * name the same font. */
export function canonicalFont(font: string): string {
  if (scratch === undefined) scratch = document.createElement("canvas").getContext("2d");
  if (!scratch) return font;
  scratch.font = font;
  return scratch.font;
}
