/** Tiny DOM helpers (HTML and SVG elements with attributes). */

const SVG_NS = "http://www.w3.org/2000/svg";

type Attributes = Record<string, string | number | undefined>;

function assign(element: Element, attributes: Attributes): void {
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) element.setAttribute(key, String(value));
  }
}

/** An HTML element with attributes and optional text, appended to `parent` when given. */
export function html<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  parent?: Element,
  text?: string,
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  assign(element, attributes);
  if (text !== undefined) element.textContent = text;
  parent?.appendChild(element);
  return element;
}

/** An SVG element with attributes, appended to `parent` when given. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  parent?: Element,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, tag);
  assign(element, attributes);
  parent?.appendChild(element);
  return element;
}

/** Remove every child of `element`. */
export function clear(element: Element): void {
  while (element.firstChild) element.removeChild(element.firstChild);
}

/** Set `element`'s text only when it differs: an equal write still replaces the text node and
 * makes the browser lay the line out again. */
export function setText(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}

/** Set an SVG's width and height (px) only when they changed (a write relays the page out). */
export function setSize(element: SVGSVGElement, width: number, height: number): void {
  if (element.getAttribute("width") !== String(width)) element.setAttribute("width", String(width));
  if (element.getAttribute("height") !== String(height)) element.setAttribute("height", String(height));
}

/**
 * Redraws an SVG subtree in place. The draw code makes the same calls as when building it
 * afresh, but each parent's children of the previous draw are reused in order (same tag:
 * attributes and text written only where they changed), and what is left over is removed by
 * {@link Redraw.finish}. Rebuilding ~400 elements per update cost a few ms in creation and
 * removal alone (profiled at 2,000 features); reuse keeps the DOM and its layout mostly still.
 */
export class Redraw {
  // Next child slot of every parent drawn into (element children only; text nodes are set
  // through `text`).
  private readonly cursors = new Map<Element, number>();
  // Attributes written by the last draw, to skip equal writes and drop stale ones.
  private static readonly written = new WeakMap<Element, Map<string, string>>();

  constructor(root: Element) {
    this.cursors.set(root, 0);
  }

  /** The next child of `parent`: the previous draw's element when it has this tag, else a new one. */
  svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Attributes, parent: Element): SVGElementTagNameMap[K] {
    const at = this.cursors.get(parent) ?? 0;
    this.cursors.set(parent, at + 1);
    let element = parent.children[at] as Element | undefined;
    if (!element || element.localName !== tag || element.namespaceURI !== SVG_NS) {
      const fresh = document.createElementNS(SVG_NS, tag);
      parent.insertBefore(fresh, element ?? null);
      element = fresh;
    }
    this.cursors.set(element, 0); // its own children are redrawn too
    let before = Redraw.written.get(element);
    if (!before) Redraw.written.set(element, (before = new Map()));
    const seen = new Set<string>();
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined) continue;
      const text = String(value);
      seen.add(key);
      if (before.get(key) !== text) {
        element.setAttribute(key, text);
        before.set(key, text);
      }
    }
    for (const key of before.keys()) {
      if (!seen.has(key)) {
        element.removeAttribute(key);
        before.delete(key);
      }
    }
    return element as SVGElementTagNameMap[K];
  }

  /** Set an element's text (only when it changed). */
  text(element: Element, text: string): void {
    setText(element, text);
  }

  /** Remove every element the draw did not reuse. */
  finish(): void {
    for (const [parent, used] of this.cursors) {
      while (parent.children.length > used) parent.lastElementChild?.remove();
    }
  }
}
