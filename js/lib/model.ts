/** The part of anywidget's model API the views use (typed here to avoid a runtime dependency). */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Callback = (...args: any[]) => void;

export interface WidgetModel {
  get(name: string): unknown;
  on(event: string, callback: Callback): void;
  off(event?: string | null, callback?: Callback | null): void;
  send(content: Record<string, unknown>, callbacks?: unknown, buffers?: ArrayBuffer[]): void;
}

/** A message to the kernel; see docs/widget-protocol.md for the accepted kinds. */
export type KernelMessage =
  | { type: "select"; index: number }
  | { type: "select"; name: string }
  | { type: "control"; action: "pause" | "resume" | "stop" }
  | { type: "top_n"; value: number }
  | { type: "method"; key: string }
  | { type: "view"; name: ViewName }
  | { type: "groups"; mode: "none" | "custom" }
  | { type: "groups"; mode: "auto"; threshold?: number }
  | { type: "compare_pair"; x: string; y: string }
  | { type: "latent_dim"; index: number }
  | { type: "hello" };

/** The kernel's four views (the `view` trait decides which is drawn). */
export type ViewName = "importance" | "compare" | "outputs" | "latent";

export type Send = (message: KernelMessage) => void;
