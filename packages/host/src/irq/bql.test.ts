import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Bql } from "./bql.js";

describe("Bql (QEMU's big lock): an interrupt handler waits for the device callback that raised it", () => {
  it("serves an interrupt at once while no callback runs", () => {
    const bql = new Bql();
    const seen: string[] = [];
    bql.interrupt(() => seen.push("handler"));
    expect(seen).toEqual(["handler"]);
  });

  it("runs handlers raised inside a callback after the outermost callback returns, in the order raised", () => {
    const bql = new Bql();
    const seen: string[] = [];
    const r = bql.run(() => {
      bql.interrupt(() => seen.push("first"));
      bql.run(() => {
        bql.interrupt(() => seen.push("second"));
        seen.push("inner done");
      });
      seen.push("outer done");
      return 7;
    });
    expect(r).toBe(7);
    expect(seen).toEqual(["inner done", "outer done", "first", "second"]);
    expect(bql.held).toBe(false);
  });

  it("a handler runs unlocked: a callback it makes and an interrupt that raises are served within it", () => {
    const bql = new Bql();
    const seen: string[] = [];
    bql.run(() =>
      bql.interrupt(() => {
        expect(bql.held).toBe(false);
        bql.run(() => bql.interrupt(() => seen.push("nested")));
        seen.push("handler");
      }),
    );
    expect(seen).toEqual(["nested", "handler"]);
  });

  it("releases when a callback throws, and the waiting handlers still run", () => {
    const bql = new Bql();
    const seen: string[] = [];
    expect(() =>
      bql.run(() => {
        bql.interrupt(() => seen.push("handler"));
        throw new Error("device error");
      }),
    ).toThrow("device error");
    expect(seen).toEqual(["handler"]);
    expect(bql.held).toBe(false);
  });

  it("property: whatever the nesting, every handler runs exactly once, after all the callback work raised before it", () => {
    // a tree of callbacks: each node raises `raise` interrupts and runs its children under the lock
    type Node = { raise: number; children: readonly Node[] };
    const raise = fc.integer({ min: 0, max: 3 });
    const node: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.oneof(
        { maxDepth: 3 },
        fc.record({ raise, children: fc.constant([]) }),
        fc.record({ raise, children: fc.array(tie("node"), { maxLength: 3 }) }),
      ),
    })).node;
    fc.assert(
      fc.property(node, (root) => {
        const bql = new Bql();
        const events: string[] = [];
        let raised = 0;
        const visit = (n: Node): void =>
          bql.run(() => {
            for (let i = 0; i < n.raise; i++) {
              const id = raised++;
              bql.interrupt(() => events.push(`h${id}`));
            }
            n.children.forEach(visit);
            events.push("work");
          });
        visit(root);
        const firstHandler = events.findIndex((e) => e.startsWith("h"));
        const handlers = events.filter((e) => e.startsWith("h"));
        expect(handlers).toEqual(Array.from({ length: raised }, (_, i) => `h${i}`));
        if (firstHandler >= 0) expect(events.slice(firstHandler).every((e) => e.startsWith("h"))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
