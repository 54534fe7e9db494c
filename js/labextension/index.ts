/**
 * JupyterLab / Notebook 7 plugin: a status-bar item listing the current notebook kernel's aefi
 * jobs (method, progress, time left; paused and done), a popup with pause / resume / cancel,
 * and a "show" button that scrolls to the notebook's explorer.
 *
 * The jobs come from the kernel's `aefi.jobs` comm target (aefi_widget/job_feed.py): the page
 * opens a comm to it once the kernel is idle; a kernel without the target (aefi not loaded yet)
 * closes it, and the page asks again after the next execution, at most every 5 s.
 */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { INotebookTracker, type NotebookPanel } from "@jupyterlab/notebook";
import type { Kernel } from "@jupyterlab/services";
import { IStatusBar } from "@jupyterlab/statusbar";
import { Widget } from "@lumino/widgets";
import {
  actionMessage, actionsFor, describeJob, ENDED_SHOWN_MS, followEnded, JOBS_TARGET, parseJobs, statusText,
  type Ended, type JobRow,
} from "../lib/jobs";

const RETRY_MS = 5000;

/** One notebook's connection to its kernel's job list. */
class KernelJobs {
  rows: JobRow[] = [];
  /** The jobs that ended while watched, as they ended; shown for ENDED_SHOWN_MS after the last. */
  ended: Ended = { jobs: [], at: 0 };
  private comm: Kernel.IComm | null = null;
  private lastTry = 0;
  private retry: number | null = null;

  constructor(readonly panel: NotebookPanel, private readonly changed: () => void) {
    panel.sessionContext.statusChanged.connect((_, status) => {
      if (status === "idle") this.connect();
    });
    panel.sessionContext.kernelChanged.connect(() => {
      this.comm = null;
      this.rows = [];
      this.ended = { jobs: [], at: 0 };
      this.changed();
    });
  }

  connect(): void {
    const kernel = this.panel.sessionContext.session?.kernel;
    if (!kernel || this.comm || this.retry !== null) return;
    const wait = this.lastTry + RETRY_MS - Date.now();
    if (wait > 0) {
      // Asked too recently: ask once more when the wait is over (the kernel may be idle then).
      this.retry = window.setTimeout(() => {
        this.retry = null;
        this.connect();
      }, wait);
      return;
    }
    this.lastTry = Date.now();
    const comm = kernel.createComm(JOBS_TARGET);
    comm.onMsg = (message) => {
      const rows = parseJobs(message.content.data);
      if (rows === null) return;
      this.ended = followEnded(this.ended, this.rows, rows, Date.now());
      this.rows = rows;
      this.changed();
    };
    comm.onClose = () => {
      if (this.comm === comm) this.comm = null;
    };
    this.comm = comm;
    comm.open({});
  }

  act(row: JobRow, action: "pause" | "resume" | "cancel"): void {
    this.comm?.send(actionMessage(row, action));
  }
}

/** The status-bar item and its popup. */
class JobsItem extends Widget {
  private popup: HTMLElement | null = null;
  jobs: KernelJobs | null = null;

  constructor() {
    super();
    this.addClass("jp-StatusBar-TextItem");
    this.node.dataset.testid = "aefi-jobs-status";
    this.node.style.cursor = "pointer";
    this.node.addEventListener("click", () => this.togglePopup());
  }

  update(): void {
    const jobs = this.jobs;
    const shownFor = jobs ? jobs.ended.at + ENDED_SHOWN_MS - Date.now() : 0;
    const text = jobs ? statusText(jobs.rows, shownFor > 0 ? jobs.ended.jobs : []) : "";
    this.node.textContent = text;
    this.setHidden(text === "" && this.popup === null);
    if (this.popup) this.fillPopup(this.popup);
    if (shownFor > 0) window.setTimeout(() => this.update(), shownFor + 50);
  }

  private togglePopup(): void {
    if (this.popup) {
      this.popup.remove();
      this.popup = null;
      return;
    }
    const popup = document.createElement("div");
    popup.dataset.testid = "aefi-jobs-popup";
    popup.className = "jp-ThemedContainer";
    Object.assign(popup.style, {
      position: "fixed", bottom: "28px", right: "12px", zIndex: "10000", padding: "8px",
      background: "var(--jp-layout-color1)", color: "var(--jp-ui-font-color1)",
      border: "1px solid var(--jp-border-color1)", boxShadow: "var(--jp-elevation-z4)",
      font: "var(--jp-ui-font-size1) var(--jp-ui-font-family)", minWidth: "280px",
    });
    document.body.appendChild(popup);
    this.popup = popup;
    this.fillPopup(popup);
  }

  private fillPopup(popup: HTMLElement): void {
    popup.replaceChildren();
    const jobs = this.jobs;
    if (!jobs || jobs.rows.length === 0) {
      popup.textContent = "No aefi jobs in this kernel.";
      return;
    }
    for (const row of jobs.rows) {
      const line = document.createElement("div");
      line.dataset.job = String(row.id);
      line.dataset.status = row.status;
      line.style.margin = "4px 0";
      const label = document.createElement("span");
      label.textContent = `#${row.id} ${describeJob(row)} `; // textContent: names stay text
      line.appendChild(label);
      for (const action of actionsFor(row)) {
        line.appendChild(this.button(action, () => jobs.act(row, action)));
      }
      line.appendChild(this.button("show", () => scrollToExplorer(jobs.panel)));
      if (row.error) {
        const why = document.createElement("div");
        why.dataset.testid = "aefi-job-error";
        why.textContent = row.error; // an exception's text may hold anything: text, not HTML
        why.style.color = "var(--jp-error-color1)";
        line.appendChild(why);
      }
      popup.appendChild(line);
    }
  }

  private button(text: string, onClick: () => void): HTMLButtonElement {
    const button = document.createElement("button");
    button.textContent = text;
    button.dataset.action = text;
    button.className = "jp-Button jp-mod-styled jp-mod-minimal";
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      onClick();
    });
    return button;
  }
}

/** Scroll the notebook to its last explorer output (the most recent run). */
function scrollToExplorer(panel: NotebookPanel): void {
  const explorers = panel.node.querySelectorAll(".aefi-root");
  explorers[explorers.length - 1]?.scrollIntoView({ block: "center" });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "aefi-widget:jobs-status",
  description: "The kernel's aefi jobs in the status bar, with pause, resume and cancel.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker, statusBar: IStatusBar | null) => {
    const item = new JobsItem();
    const connections = new WeakMap<NotebookPanel, KernelJobs>();
    const refresh = () => {
      const panel = tracker.currentWidget;
      item.jobs = panel ? connections.get(panel) ?? null : null;
      item.update();
    };
    tracker.widgetAdded.connect((_, panel) => {
      connections.set(panel, new KernelJobs(panel, refresh));
    });
    tracker.currentChanged.connect(refresh);
    if (statusBar) {
      statusBar.registerStatusItem("aefi-widget:jobs", { item, align: "left", rank: 5 });
    } else {
      // Notebook 7 has no status bar: the item floats at the bottom right of the page.
      Object.assign(item.node.style, { position: "fixed", bottom: "4px", right: "12px", zIndex: "10000" });
      Widget.attach(item, document.body);
    }
    refresh();
  },
};

export default plugin;
