/** Downloads of what the dashboard shows: the table as CSV, the charts as SVG and PNG. */

import type { Frame } from "./protocol";
import { rankOrder } from "./topn";
import { intervalOf } from "./uncertainty";

/** CSV field: quoted when it holds a comma, quote or newline (RFC 4180). */
function field(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function number(value: number): string {
  return Number.isFinite(value) ? String(value) : "";
}

/**
 * Every feature in rank order: feature, rank, mean, ci_low, ci_high, share_percent (of the
 * evaluated features' total, as the bars), n_done; empty cells where nothing is computed yet,
 * and no interval for a feature with one estimate (it has none).
 * Columns match `result.summary()` (share in percent), so the file reads back with pandas.
 */
export function tableCsv(names: readonly string[], frame: Frame): string {
  let total = 0;
  frame.mean.forEach((m) => (total += Number.isFinite(m) && m > 0 ? m : 0));
  const header = ["feature", "rank", "mean", "ci_low", "ci_high", "share_percent", "n_done"];
  const lines = [header.join(",")];
  const order = rankOrder(frame.mean);
  order.forEach((i, r) => {
    const mean = frame.mean[i];
    const share = Number.isFinite(mean) && total > 0 ? (100 * Math.max(0, mean)) / total : NaN;
    lines.push(
      [
        field(names[i]),
        String(r + 1),
        number(mean),
        number(intervalOf(frame, i)?.low ?? NaN),
        number(intervalOf(frame, i)?.high ?? NaN),
        number(share),
        String(frame.nDone[i]),
      ].join(","),
    );
  });
  return lines.join("\n") + "\n";
}

// Presentation properties an exported SVG needs inline: the page styles them through classes
// and JupyterLab's CSS variables, which a file opened elsewhere does not have.
const STYLE_PROPERTIES = [
  "fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
  "opacity", "font-family", "font-size", "font-weight", "text-anchor",
];

/** Words an exported picture carries with it: what it shows, in which units, and its legend. */
export interface ExportText {
  title: string;
  /** Method, metric and units, estimates and the interval's meaning, the date. */
  subtitle: string;
  legend: string;
}

/** "aefi-permutation-mse-2026-12-07-charts.svg": method, metric and date in every file name. */
export function exportName(method: string, metric: string, what: string, extension: string, date: Date): string {
  const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  const day = date.toISOString().slice(0, 10);
  const parts = ["aefi", slug(method) || "importance", slug(metric), day, what].filter(Boolean);
  return `${parts.join("-")}.${extension}`;
}

/** `text` in lines of at most `width` characters, broken at spaces. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

const TITLE_HEIGHT = 44;
const LEGEND_LINE = 14;

/**
 * A standalone SVG of `charts` placed as on screen, with computed styles inlined, a title and
 * subtitle above and the legend below (`text`), and no trace of the page's selection (the
 * selected row's highlight, the pinned row and the scatter's selection mark are left out).
 */
export function chartsSvg(charts: SVGSVGElement[], background: string, text?: ExportText): string {
  const boxes = charts.map((chart) => chart.getBoundingClientRect());
  const left = Math.min(...boxes.map((b) => b.left));
  const top = Math.min(...boxes.map((b) => b.top));
  const width = Math.ceil(Math.max(...boxes.map((b) => b.right)) - left);
  const chartsHeight = Math.ceil(Math.max(...boxes.map((b) => b.bottom)) - top);
  const legend = text ? wrapText(text.legend, Math.max(40, Math.floor(width / 6.2))) : [];
  const offset = text ? TITLE_HEIGHT : 0;
  const height = offset + chartsHeight + (legend.length ? 8 + legend.length * LEGEND_LINE : 0);
  const NS = "http://www.w3.org/2000/svg";
  const out = document.createElementNS(NS, "svg");
  out.setAttribute("xmlns", NS);
  out.setAttribute("width", String(width));
  out.setAttribute("height", String(height));
  out.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const back = document.createElementNS(NS, "rect");
  back.setAttribute("width", "100%");
  back.setAttribute("height", "100%");
  back.setAttribute("fill", background);
  out.appendChild(back);
  const ink = charts[0] ? getComputedStyle(charts[0]).color || "#222" : "#222";
  const line = (content: string, y: number, size: number, weight = "400") => {
    const element = document.createElementNS(NS, "text");
    element.setAttribute("x", "4");
    element.setAttribute("y", String(y));
    element.setAttribute("style", `fill:${ink};font-family:sans-serif;font-size:${size}px;font-weight:${weight}`);
    element.textContent = content;
    out.appendChild(element);
  };
  if (text) {
    line(text.title, 18, 15, "600");
    line(text.subtitle, 36, 11);
  }
  // The selection is the page's state, not the result's: styles are read without it.
  const selected = charts.flatMap((chart) => Array.from(chart.querySelectorAll(".aefi-selected-row")));
  selected.forEach((element) => element.classList.remove("aefi-selected-row"));
  try {
    charts.forEach((chart, k) => {
      const copy = chart.cloneNode(true) as SVGSVGElement;
      copy.setAttribute("x", String(boxes[k].left - left));
      copy.setAttribute("y", String(boxes[k].top - top + offset));
      const originals = [chart, ...Array.from(chart.querySelectorAll("*"))];
      const copies = [copy, ...Array.from(copy.querySelectorAll("*"))];
      originals.forEach((element, i) => {
        const style = getComputedStyle(element);
        const inline = STYLE_PROPERTIES.map((p) => `${p}:${style.getPropertyValue(p)}`).join(";");
        copies[i].setAttribute("style", inline);
      });
      for (const element of copy.querySelectorAll('[data-pinned="yes"], .aefi-pin-note, .aefi-dot-selected, .aefi-dot-label')) element.remove();
      for (const element of copy.querySelectorAll("*")) element.removeAttribute("class");
      copy.removeAttribute("class");
      out.appendChild(copy);
    });
  } finally {
    selected.forEach((element) => element.classList.add("aefi-selected-row"));
  }
  legend.forEach((content, i) => line(content, offset + chartsHeight + 8 + (i + 1) * LEGEND_LINE - 3, 10));
  return new XMLSerializer().serializeToString(out);
}

/** PNG bytes of an SVG string, drawn at `scale` times its size. */
export async function svgToPng(svgText: string, width: number, height: number, scale = 2): Promise<Blob> {
  const url = URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" }));
  try {
    const image = new Image();
    await new Promise<void>((resolve, reject) => {
      image.onload = () => resolve();
      image.onerror = () => reject(new Error("the chart could not be drawn as an image"));
      image.src = url;
    });
    const canvas = document.createElement("canvas");
    canvas.width = Math.ceil(width * scale);
    canvas.height = Math.ceil(height * scale);
    const context = canvas.getContext("2d");
    if (!context) throw new Error("no canvas to draw on");
    context.scale(scale, scale);
    context.drawImage(image, 0, 0);
    return await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("PNG encoding failed"))), "image/png"),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Offer `blob` as a download named `name`. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Revoked later: the browser reads the blob after this handler returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
