/**
 * Is a kernel behind this view? A notebook saved with widget state reopens with the dashboard
 * drawn from its saved traits, but nothing answers its messages: its controls would look live and
 * do nothing. The view says hello on render; the kernel answers "live" (dashboard.py). Any trait
 * update from the kernel proves it too. No answer within HELLO_TIMEOUT_MS: a saved picture.
 */

export type Liveness = "checking" | "live" | "saved";

/** Long enough for a kernel that is busy in a cell (browser messages reach it on a subshell
 * thread since JupyterLab 4.4, but an older setup answers only after the cell). */
export const HELLO_TIMEOUT_MS = 4000;

export class LiveCheck {
  state: Liveness = "checking";
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** @param onChange Called after every change of `state`. */
  constructor(private readonly onChange: () => void) {}

  /** Say hello (with `send`) and start waiting for the answer. */
  start(send: () => void, timeoutMs = HELLO_TIMEOUT_MS): void {
    send();
    this.timer = setTimeout(() => {
      if (this.state === "checking") this.set("saved");
    }, timeoutMs);
  }

  /** The kernel answered or sent an update: live (also after a "saved" verdict). */
  heard(): void {
    clearTimeout(this.timer);
    if (this.state !== "live") this.set("live");
  }

  dispose(): void {
    clearTimeout(this.timer);
  }

  private set(state: Liveness): void {
    this.state = state;
    this.onChange();
  }
}

/** The notice a saved picture shows, and the words a control says instead of acting. */
export const SAVED_NOTICE = "Saved picture: no kernel is connected to this widget. Run the cell to compute.";
export const NEEDS_KERNEL = "This control needs a live kernel: run the cell to compute.";
