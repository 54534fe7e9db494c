/**
 * aefi_widget dashboard (anywidget entry point).
 *
 * The kernel owns all state: this file only reads synced traits and sends small validated
 * requests (docs/widget-protocol.md). It never calls `model.set`, so a second view of the same
 * widget, or a re-rendered one, draws exactly what the kernel last published.
 */

import "./widget.css";
import { html, setText } from "./lib/dom";
import { chartsSvg, download, exportName, svgToPng, tableCsv, type ExportText } from "./lib/export";
import { LiveCheck, NEEDS_KERNEL, SAVED_NOTICE } from "./lib/live";
import type { KernelMessage, WidgetModel } from "./lib/model";
import { StateReader, type ViewState } from "./lib/state";
import { ChartsView } from "./views/charts";
import { CompareView } from "./views/compare";
import { HeaderView } from "./views/header";
import { HeatmapView } from "./views/heatmap";
import { MethodsView } from "./views/methods";
import { SearchView } from "./views/search";
import { SelectedView } from "./views/selected";
import { TabsView } from "./views/tabs";

/** What an exported picture says about itself: title, subtitle (units, estimates, interval,
 * date) and the legend of the view on show. */
function exportText(root: HTMLElement, state: ViewState, date: Date): ExportText {
  const { labels } = state;
  const metric = typeof state.header.metric === "string" ? state.header.metric : "";
  const repeats = state.frame.nRepeats;
  const subtitle = [
    labels.valueLabel,
    state.view === "importance" ? `top ${state.top.length} of ${state.index.names.length.toLocaleString("en-US")}` : "",
    repeats ? `${repeats} ${labels.axis}s asked` : "",
    state.view === "importance" ? "whiskers: 95 % interval of the mean" : "",
    metric ? `metric ${metric}` : "",
    `exported ${date.toISOString().slice(0, 16).replace("T", " ")} UTC`,
  ].filter(Boolean).join(" · ");
  const legendId = state.view === "compare" ? "aefi-compare-legend" : state.view === "importance" ? "aefi-legend" : "aefi-heat-legend";
  const legend = root.querySelector(`[data-testid="${legendId}"]`)?.textContent ?? "";
  return { title: labels.title, subtitle, legend };
}

/** CSV / SVG / PNG buttons: the current table and the charts as drawn, named by method, metric
 * and date. */
function exportButtons(parent: HTMLElement, root: HTMLElement, charts: () => SVGSVGElement[], current: () => ViewState): void {
  const button = (label: string, testid: string, title: string, action: () => void | Promise<void>) => {
    const element = html("button", { class: "aefi-button aefi-export", "data-testid": testid, title }, parent);
    element.textContent = label;
    element.addEventListener("click", () => void action());
  };
  const name = (what: string, extension: string) => {
    const state = current();
    const metric = typeof state.header.metric === "string" ? state.header.metric : "";
    return exportName(state.method || state.labels.method || state.labels.title, metric, what, extension, new Date());
  };
  const svgText = () => chartsSvg(charts(), getComputedStyle(root).backgroundColor || "#fff", exportText(root, current(), new Date()));
  button("CSV", "aefi-export-csv", "Download every feature's numbers (rank order) as CSV", () => {
    const state = current();
    download(new Blob([tableCsv(state.index.names, state.frame)], { type: "text/csv" }), name("table", "csv"));
  });
  button("SVG", "aefi-export-svg", "Download the charts on show as SVG (title, legend, no selection)", () => {
    download(new Blob([svgText()], { type: "image/svg+xml" }), name(current().view, "svg"));
  });
  button("PNG", "aefi-export-png", "Download the charts on show as PNG (title, legend, no selection)", async () => {
    const text = svgText();
    const size = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    const png = await svgToPng(text, Number(size.getAttribute("width")), Number(size.getAttribute("height")));
    download(png, name(current().view, "png"));
  });
}

function render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
  const root = html("div", { class: "aefi-root", "data-testid": "aefi-dashboard" }, el);
  const notice = html("div", { class: "aefi-saved-notice", "data-testid": "aefi-saved-notice", role: "status" }, root);
  notice.hidden = true;
  let frame = 0;
  // Several traits change per kernel update; draw once per animation frame, not per trait.
  const schedule = () => {
    if (frame === 0) frame = requestAnimationFrame(draw);
  };
  const live = new LiveCheck(schedule);
  // A saved picture's controls say what they need instead of sending into the void; the
  // redraw puts a selector the user changed back to what is shown.
  const send = (message: KernelMessage) => {
    if (live.state === "saved") {
      header.needsKernel(NEEDS_KERNEL);
      schedule();
      return;
    }
    model.send(message);
  };
  const header = new HeaderView(root, send);
  const methods = new MethodsView(root, send);
  const tabs = new TabsView(root, send);
  const search = new SearchView(root, send);
  // One box per view; the kernel's `view` trait says which one shows.
  const box = (name: string) => html("div", { class: "aefi-view", "data-view": name }, root);
  const importanceBox = box("importance");
  const compareBox = box("compare");
  const heatmapBox = box("heatmap");
  let draws = 0;
  // Render time per redraw, read by the browser tests (with how many units had a value, so they
  // can tell the first update with data); bounded so a long run keeps no history.
  const timed = (redraw: () => void) => {
    performance.mark("aefi-draw-start");
    redraw();
    performance.measure("aefi-draw", { start: "aefi-draw-start", detail: { evaluated: state.evaluated } });
    performance.clearMarks("aefi-draw-start");
    if (++draws % 1000 === 0) performance.clearMeasures("aefi-draw");
  };
  const charts = new ChartsView(importanceBox, send, timed);
  const compare = new CompareView(compareBox, send);
  const heatmap = new HeatmapView(heatmapBox, send);
  const selected = new SelectedView(root);
  const reader = new StateReader();
  let state = reader.read(model);
  const shownCharts = (): SVGSVGElement[] => {
    if (state.view === "compare") return [compare.scatter];
    if (state.view === "outputs" || state.view === "latent") return [heatmap.map];
    return charts.charts();
  };
  exportButtons(header.tools, root, shownCharts, () => state);

  const draw = () => timed(() => {
    frame = 0;
    state = reader.read(model);
    notice.hidden = live.state !== "saved";
    setText(notice, live.state === "saved" ? SAVED_NOTICE : "");
    root.classList.toggle("aefi-saved", live.state === "saved");
    header.update(state, live.state);
    methods.update(state);
    tabs.update(state);
    search.update(state);
    // Only the view on show is drawn (a hidden one has no width; it draws when shown).
    const view = state.view === "latent" ? "outputs" : state.view;
    importanceBox.hidden = view !== "importance";
    compareBox.hidden = view !== "compare";
    heatmapBox.hidden = view !== "outputs";
    if (view === "importance") charts.update(state);
    else if (view === "compare") compare.update(state);
    else heatmap.update(state);
    selected.update(state);
  });
  const changed = () => {
    live.heard(); // only a kernel changes traits (the page never sets one)
    schedule();
  };
  const answer = (content: unknown) => {
    if (content && typeof content === "object" && (content as { type?: unknown }).type === "live") live.heard();
  };
  model.on("change", changed);
  model.on("msg:custom", answer);
  draw();
  live.start(() => model.send({ type: "hello" }));
  return () => {
    live.dispose();
    model.off("change", changed);
    model.off("msg:custom", answer);
    if (frame !== 0) cancelAnimationFrame(frame);
    header.dispose();
    methods.dispose();
    charts.dispose();
    compare.dispose();
    heatmap.dispose();
    root.remove();
  };
}

export default { render };
