/**
 * The HTML map in a real headless browser: Debian's chromium driven by playwright-core (never a
 * downloaded browser). Every region must render with a visible box; a screenshot is written.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBoard } from "@iommu-sim/host";
import { chromium } from "playwright-core";
import { expect, it } from "vitest";
import { Vmm } from "../vmm/vmm.js";
import { ARM_MAP, X86_MAP } from "./fixtures.js";
import { type IovaMap, iovaMapOf } from "./iova-map.js";
import { renderHtml } from "./render.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = join(import.meta.dirname, "../../out");

/** A map straight from a VMM run on the seed board (reserved host-bridge windows, doorbell, RAM). */
function seedMap(): IovaMap {
  const vmm = new Vmm(createBoard("arm64-virt-smmuv3-seed", { qemuQuirks: false }), { guestRam: 1n << 30n });
  vmm.run();
  return { ...iovaMapOf(vmm), board: "arm64-virt-smmuv3-seed" };
}

it.each([ARM_MAP, X86_MAP, seedMap()])("the $board map renders every region in chromium", async (m) => {
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
