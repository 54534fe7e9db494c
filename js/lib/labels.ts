/** Words that follow the method: title, value label with its unit, what one estimate is. */

/** The `labels` trait (see aefi_widget/widget/labels.py `page_labels`). */
export interface Labels {
  method: string;
  title: string;
  /** Short name of the value, e.g. "Δ error" (tooltips). */
  value: string;
  /** The value's unit, e.g. "MSE, squared input units"; "" when unknown. */
  unit: string;
  /** `value (unit)`, for axes. */
  valueLabel: string;
  /** What one estimate is: "repeat", "permutation", "sample". */
  axis: string;
  /** What the whiskers are when not a Student-t interval over the estimates (a rows race's
   * simultaneous bounds); "" otherwise. */
  interval: string;
  /** What the summary's done count counts: the axis, or a rows race's "row". */
  count: string;
}

export const DEFAULT_LABELS: Labels = {
  method: "",
  title: "Importance",
  value: "importance",
  unit: "",
  valueLabel: "importance",
  axis: "repeat",
  interval: "",
  count: "repeat",
};

function text(value: unknown, fallback: string): string {
  return typeof value === "string" && value ? value : fallback;
}

/** Labels from the trait's value (anything: missing keys fall back to generic words). */
export function readLabels(raw: unknown): Labels {
  const source = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const value = text(source.value, DEFAULT_LABELS.value);
  const unit = text(source.unit, "");
  return {
    method: text(source.method, ""),
    title: text(source.title, DEFAULT_LABELS.title),
    value,
    unit,
    valueLabel: text(source.value_label, unit ? `${value} (${unit})` : value),
    axis: text(source.axis, DEFAULT_LABELS.axis),
    interval: text(source.interval, ""),
    count: text(source.count, text(source.axis, DEFAULT_LABELS.axis)),
  };
}

/** "1 repeat", "3 repeats", "2 samples". */
export function countOf(count: number, noun: string): string {
  return `${count} ${count === 1 ? noun : `${noun}s`}`;
}
