/** The compare view's method x method matrix and its "why do they disagree?" text. */

import { formatRho, type Compare } from "./methods";

/** How a cell's agreement reads at a glance (its shade). */
export type Agreement = "self" | "high" | "mid" | "low" | "none";

export interface MatrixCell {
  x: string;
  y: string;
  /** Spearman's rho on the first line, the top-k overlap on the second. */
  lines: [string, string];
  agreement: Agreement;
  title: string;
}

/** rho >= 0.8 high, >= 0.5 mid, else low; undefined rho: none. */
export function agreementOf(rho: number | null): Agreement {
  if (rho === null) return "none";
  return rho >= 0.8 ? "high" : rho >= 0.5 ? "mid" : "low";
}

/** Row i, column j: run i against run j (symmetric; the diagonal names the method). */
export function matrixCells(compare: Compare): MatrixCell[][] {
  const { keys, titles, rho, overlap, k } = compare;
  return keys.map((x, i) =>
    keys.map((y, j) => {
      if (i === j) return { x, y, lines: ["—", ""], agreement: "self", title: titles[i] };
      return {
        x,
        y,
        lines: [`ρ ${formatRho(rho[i][j])}`, `${overlap[i][j]} / ${k}`],
        agreement: agreementOf(rho[i][j]),
        title:
          `${titles[i]} vs ${titles[j]}: Spearman ρ ${formatRho(rho[i][j])} over every unit, ` +
          `${overlap[i][j]} of the top ${k} in both. Click to plot this pair.`,
      };
    }),
  );
}

/** The `why` trait: sentences about the selected unit, or null. */
export interface Why {
  feature: string;
  sentences: string[];
  doc: string;
}

export function readWhy(raw: unknown): Why | null {
  if (!raw || typeof raw !== "object") return null;
  const source = raw as Record<string, unknown>;
  const sentences = Array.isArray(source.sentences) ? source.sentences.filter((s): s is string => typeof s === "string").slice(0, 12) : [];
  if (typeof source.feature !== "string" || sentences.length === 0) return null;
  return { feature: source.feature, sentences, doc: typeof source.doc === "string" ? source.doc : "" };
}
