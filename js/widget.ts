/**
 * aefi_widget dashboard (anywidget entry point).
 *
 * The kernel owns all state: this file only reads synced traits and sends small validated
 * requests (docs/widget-protocol.md). It never calls `model.set`, so a second view of the same
 * widget, or a re-rendered one, draws exactly what the kernel last published.
 */

import "./widget.css";
import { html } from "./lib/dom";
import type { KernelMessage, WidgetModel } from "./lib/model";
import { StateReader } from "./lib/state";
import { BarsView } from "./views/bars";
import { BoxesView } from "./views/boxes";
import { HeaderView } from "./views/header";
import { SearchView } from "./views/search";
import { SelectedView } from "./views/selected";

function render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
  const root = html("div", { class: "aefi-root", "data-testid": "aefi-dashboard" }, el);
  const send = (message: KernelMessage) => model.send(message);
  const header = new HeaderView(root, send);
  const search = new SearchView(root, send);
  const charts = html("div", { class: "aefi-charts" }, root);
  const bars = new BarsView(charts, send);
  const boxes = new BoxesView(charts, send);
  const selected = new SelectedView(root);
  const reader = new StateReader();

  let frame = 0;
  const draw = () => {
    frame = 0;
    const state = reader.read(model);
    header.update(state);
    bars.update(state);
    boxes.update(state);
    search.update(state);
    selected.update(state);
  };
  // Several traits change per kernel update; draw once per animation frame, not per trait.
  const schedule = () => {
    if (frame === 0) frame = requestAnimationFrame(draw);
  };
  model.on("change", schedule);
  draw();
  return () => {
    model.off("change", schedule);
    if (frame !== 0) cancelAnimationFrame(frame);
    header.dispose();
    root.remove();
  };
}

export default { render };
