import { describe, expect, it } from "vitest";
import { ARM_MAP, X86_MAP } from "./fixtures.js";
import { axisOf, renderHtml, renderSvg, renderText } from "./render.js";

function count(s: string, re: RegExp): number {
  return [...s.matchAll(re)].length;
}

describe.each([ARM_MAP, X86_MAP])("map of $board", (m) => {
  it("SVG: one group per region, with its kind, bounds and label", () => {
    const svg = renderSvg(m);
    expect(count(svg, /<g class="region"/g)).toBe(m.regions.length);
    for (const r of m.regions) {
      expect(svg).toContain(
        `data-region="${r.kind}" data-start="0x${r.start.toString(16)}" data-end="0x${r.end.toString(16)}"`,
      );
      expect(svg).toContain(r.label);
    }
  });

  it("SVG: every boundary is a labelled tick and bands grow with size (log scale)", () => {
    const svg = renderSvg(m);
    const { ticks, y } = axisOf(m);
    for (const t of ticks) expect(svg).toContain(`data-addr="0x${t.toString(16)}"`);
    for (let i = 1; i < ticks.length; i++) expect(y.get(ticks[i]!)! > y.get(ticks[i - 1]!)!).toBe(true);
    expect(svg).toContain('data-scale="log2"');
    expect(svg.trim().startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(count(svg, /<g /g)).toBe(count(svg, /<\/g>/g));
  });

  it("HTML: self-contained page with the SVG and one table row per region", () => {
    const html = renderHtml(m);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    expect(count(html, /<tr data-region=/g)).toBe(m.regions.length);
    expect(html).toContain("<svg");
  });

  it("text: one line per region with size", () => {
    const t = renderText(m);
    expect(t.trim().split("\n")).toHaveLength(m.regions.length + 1);
  });
});

it("arm64 map shows the doorbell page at the start of the software MSI window", () => {
  expect(renderText(ARM_MAP)).toMatch(/0x8000000 -\s+0x8000fff\s+doorbell\s+4 KiB/);
});
