import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Redraw } from "./lib/dom";

// A minimal stand-in for the DOM parts Redraw uses (the tests run without a browser).
class FakeElement {
  readonly children: FakeElement[] = [];
  readonly attributes = new Map<string, string>();
  parent: FakeElement | null = null;
  textContent = "";
  writes = 0;
  constructor(readonly localName: string, readonly namespaceURI = "http://www.w3.org/2000/svg") {}
  setAttribute(key: string, value: string): void {
    this.writes++;
    this.attributes.set(key, value);
  }
  removeAttribute(key: string): void {
    this.attributes.delete(key);
  }
  insertBefore(child: FakeElement, before: FakeElement | null): void {
    const at = before ? this.children.indexOf(before) : this.children.length;
    this.children.splice(at, 0, child);
    child.parent = this;
  }
  get lastElementChild(): FakeElement | null {
    return this.children[this.children.length - 1] ?? null;
  }
  remove(): void {
    this.parent?.children.splice(this.parent.children.indexOf(this), 1);
    this.parent = null;
  }
}

const saved = globalThis.document;
beforeEach(() => {
  (globalThis as { document: unknown }).document = {
    createElementNS: (ns: string, tag: string) => new FakeElement(tag, ns),
  };
});
afterEach(() => {
  (globalThis as { document: unknown }).document = saved;
});

function draw(root: FakeElement, rows: { name: string; whisker: boolean }[]): void {
  const redraw = new Redraw(root as unknown as Element);
  for (const row of rows) {
    const group = redraw.svg("g", { "data-feature": row.name, "data-settled": row.whisker ? undefined : "outside" }, root as unknown as Element);
    redraw.text(redraw.svg("title", {}, group), row.name);
    if (row.whisker) redraw.svg("line", { x1: 1, x2: 2 }, group);
    redraw.svg("rect", { width: row.name.length }, group);
  }
  redraw.finish();
}

describe("Redraw", () => {
  it("reuses the previous draw's elements and writes only what changed", () => {
    const root = new FakeElement("svg");
    draw(root, [{ name: "a", whisker: true }, { name: "bb", whisker: true }]);
    const [first, second] = root.children;
    const writes = first.writes;
    draw(root, [{ name: "a", whisker: true }, { name: "ccc", whisker: true }]);
    expect(root.children[0]).toBe(first);
    expect(root.children[1]).toBe(second);
    expect(first.writes).toBe(writes); // nothing changed in the first row
    expect(second.attributes.get("data-feature")).toBe("ccc");
    expect(second.children[0].textContent).toBe("ccc");
    expect(second.children[2].attributes.get("width")).toBe("3");
  });

  it("inserts elements of another tag, drops stale attributes and removes leftovers", () => {
    const root = new FakeElement("svg");
    draw(root, [{ name: "a", whisker: true }, { name: "b", whisker: true }, { name: "c", whisker: true }]);
    draw(root, [{ name: "a", whisker: false }, { name: "b", whisker: true }]);
    expect(root.children.map((g) => g.attributes.get("data-feature"))).toEqual(["a", "b"]);
    // Row a lost its whisker: title, rect (the line removed, not left between them).
    expect(root.children[0].children.map((c) => c.localName)).toEqual(["title", "rect"]);
    expect(root.children[0].attributes.get("data-settled")).toBe("outside");
    draw(root, [{ name: "a", whisker: true }]);
    expect(root.children).toHaveLength(1);
    expect(root.children[0].attributes.has("data-settled")).toBe(false);
    expect(root.children[0].children.map((c) => c.localName)).toEqual(["title", "line", "rect"]);
  });
});
