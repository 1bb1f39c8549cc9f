/**
 * The HTML map in a real headless browser: Debian's chromium driven by playwright-core (never a
 * downloaded browser). Every region must render with a visible box; a screenshot is written.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { expect, it } from "vitest";
import { ARM_MAP, X86_MAP } from "./fixtures.js";
import { renderHtml } from "./render.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = join(import.meta.dirname, "../../out");

it.each([ARM_MAP, X86_MAP])("the $board map renders every region in chromium", async (m) => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  }
  const dir = mkdtempSync(join(tmpdir(), "iommu-demo-browser-"));
  const page = join(dir, "map.html");
  writeFileSync(page, renderHtml(m));
  const ctx = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  try {
    const p = ctx.pages()[0] ?? (await ctx.newPage());
    await p.goto(`file://${page}`);
    const boxes = await p.$$eval("svg g.region rect", (rects) =>
      rects.map((r) => {
        const b = r.getBoundingClientRect();
        return { w: b.width, h: b.height, kind: r.parentElement?.getAttribute("data-region") };
      }),
    );
    expect(boxes).toHaveLength(m.regions.length);
    for (const b of boxes) {
      expect(b.w).toBeGreaterThan(0);
      expect(b.h).toBeGreaterThan(0);
    }
    expect(await p.$$eval("#regions tbody tr", (rows) => rows.length)).toBe(m.regions.length);
    mkdirSync(OUT, { recursive: true });
    const shot = join(OUT, `map-${m.board}.png`);
    await p.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
