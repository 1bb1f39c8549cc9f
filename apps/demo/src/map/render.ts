/**
 * Renderings of an IOVA map: plain text, a self-contained SVG, and an HTML page embedding it. The
 * address axis is piecewise: every region boundary is a tick, and the band between two ticks is
 * as tall as log2 of its size, so a 4 KiB doorbell page and a 256 TiB range are both readable.
 */
import { sizeText } from "../vmm/layout.js";
import type { IovaMap, MapRegion, MapRegionKind } from "./iova-map.js";

const hex = (v: bigint) => `0x${v.toString(16)}`;

export const KIND_STYLE: Readonly<Record<MapRegionKind, { fill: string; legend: string; column: 0 | 1 }>> = {
  valid: { fill: "#cfe8cf", legend: "valid IOVA range (GET_INFO)", column: 0 },
  reserved: { fill: "#bdbdbd", legend: "reserved", column: 0 },
  msi: { fill: "#f4a3a3", legend: "MSI window (hardware, untranslated)", column: 0 },
  "sw-msi": { fill: "#f7c27a", legend: "software MSI window", column: 0 },
  direct: { fill: "#9cc3f0", legend: "direct (identity, required)", column: 0 },
  "direct-relaxable": { fill: "#c9dcf5", legend: "direct-relaxable", column: 0 },
  mapping: { fill: "#6fa8dc", legend: "DMA mapping (guest RAM)", column: 1 },
  doorbell: { fill: "#d9534f", legend: "MSI doorbell page", column: 1 },
};

function size(r: MapRegion): bigint {
  return r.end - r.start + 1n;
}

/** The host a map was drawn on: the board, and the kernel modelled when known. */
function hostOf(m: IovaMap): string {
  return m.kernel === undefined ? m.board : `${m.board}, Linux ${m.kernel}`;
}

export function renderText(m: IovaMap): string {
  const out = [`IOVA space of group ${m.group} (${m.device}) on ${hostOf(m)}: [0x0, ${hex(m.apertureEnd)}]`];
  const w = Math.max(...m.regions.map((r) => hex(r.end).length), 10);
  for (const r of m.regions) {
    out.push(
      `  ${hex(r.start).padStart(w)} - ${hex(r.end).padStart(w)}  ${r.kind.padEnd(16)} ${sizeText(size(r)).padStart(10)}  ${r.label}`,
    );
  }
  if (m.hostGroups?.length) {
    out.push("", "IOMMU groups of the host (/sys/kernel/iommu_groups):");
    for (const g of m.hostGroups) {
      out.push(`  group ${g.id} [${g.type}] ${g.devices.join(" ")}`);
      for (const l of g.reservedRegions) out.push(`    ${l}`);
    }
  }
  return `${out.join("\n")}\n`;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Band geometry: each boundary gets a y; heights grow with log2(size). */
export function axisOf(m: IovaMap): { ticks: bigint[]; y: Map<bigint, number>; height: number } {
  const set = new Set<bigint>([0n, m.apertureEnd + 1n]);
  for (const r of m.regions) {
    set.add(r.start);
    set.add(r.end + 1n);
  }
  const ticks = [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const y = new Map<bigint, number>();
  let at = 40;
  for (let i = 0; i < ticks.length; i++) {
    const t = ticks[i] as bigint;
    y.set(t, at);
    const next = ticks[i + 1];
    if (next !== undefined) at += 12 + 3 * Math.log2(Number(next - t));
  }
  return { ticks, y, height: Math.ceil(at) + 60 };
}

export function renderSvg(m: IovaMap): string {
  const { ticks, y, height } = axisOf(m);
  const colX = [170, 490] as const;
  const colW = 300;
  const width = 800;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11" data-board="${esc(m.board)}" data-scale="log2">`,
  );
  parts.push(`<title>IOVA space of group ${m.group} (${esc(m.device)}) on ${esc(hostOf(m))}</title>`);
  parts.push(
    `<text x="10" y="18" font-size="13" font-weight="bold">IOVA space, group ${m.group} (${esc(m.device)}), ${esc(hostOf(m))}</text>`,
  );
  parts.push(`<text x="${colX[0]}" y="34" class="column">host: ranges and reserved regions</text>`);
  parts.push(`<text x="${colX[1]}" y="34" class="column">container: mappings and doorbells</text>`);
  for (const t of ticks) {
    const ty = y.get(t) as number;
    parts.push(`<line x1="150" x2="${colX[1] + colW}" y1="${ty}" y2="${ty}" stroke="#ddd" class="tick"/>`);
    parts.push(
      `<text x="145" y="${ty + 4}" text-anchor="end" class="tick-label" data-addr="${hex(t)}">${hex(t)}</text>`,
    );
  }
  for (const r of m.regions) {
    const st = KIND_STYLE[r.kind];
    const y0 = y.get(r.start) as number;
    const y1 = y.get(r.end + 1n) as number;
    const x = colX[st.column] as number;
    const h = Math.max(y1 - y0, 2);
    parts.push(
      `<g class="region" data-region="${r.kind}" data-start="${hex(r.start)}" data-end="${hex(r.end)}"><rect x="${x}" y="${y0}" width="${colW}" height="${h.toFixed(1)}" fill="${st.fill}" stroke="#555" stroke-width="0.5"/><title>${esc(r.label)}: [${hex(r.start)}, ${hex(r.end)}] ${sizeText(size(r))}</title>${
        h >= 12
          ? `<text x="${x + 6}" y="${(y0 + Math.min(h / 2 + 4, 14)).toFixed(1)}" class="label">${esc(r.label)} (${sizeText(size(r))})</text>`
          : ""
      }</g>`,
    );
  }
  const ly = height - 40;
  let lx = 10;
  const kinds = [...new Set(m.regions.map((r) => r.kind))];
  for (const k of kinds) {
    const st = KIND_STYLE[k];
    parts.push(
      `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${st.fill}" stroke="#555" class="legend" data-kind="${k}"/>`,
    );
    parts.push(`<text x="${lx + 14}" y="${ly + 9}">${esc(k)}</text>`);
    lx += 24 + 7 * k.length;
  }
  parts.push(
    `<text x="10" y="${height - 12}" class="scale">scale: one band per boundary, height 12 + 3·log2(size) px</text>`,
  );
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

export function renderHtml(m: IovaMap): string {
  const rows = m.regions
    .map(
      (r) =>
        `<tr data-region="${r.kind}"><td><span class="sw" style="background:${KIND_STYLE[r.kind].fill}"></span>${r.kind}</td><td>${hex(r.start)}</td><td>${hex(r.end)}</td><td>${sizeText(size(r))}</td><td>${esc(r.label)}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>IOVA map: ${esc(hostOf(m))}, group ${m.group}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; }
table { border-collapse: collapse; margin-top: 16px; font-family: monospace; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border: 1px solid #555; }
figure { margin: 0; }
</style>
</head>
<body>
<h1>IOVA space of group ${m.group} (${esc(m.device)}) on ${esc(hostOf(m))}</h1>
<p>Aperture [0x0, ${hex(m.apertureEnd)}]. Left: what the host reports (valid ranges from VFIO_IOMMU_GET_INFO, reserved regions from sysfs). Right: what the VMM mapped and the MSI doorbell pages the host mapped for the device. The axis is piecewise: each band's height grows with log2 of its size.</p>
<figure id="map">
${renderSvg(m)}</figure>
<table id="regions">
<thead><tr><th>kind</th><th>start</th><th>end (inclusive)</th><th>size</th><th>what</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${
  m.hostGroups?.length
    ? `<h2>IOMMU groups of the host</h2>\n<table id="groups">\n<thead><tr><th>group</th><th>type</th><th>devices</th><th>reserved_regions</th></tr></thead>\n<tbody>\n${m.hostGroups
        .map(
          (g) =>
            `<tr><td>${g.id}</td><td>${esc(g.type)}</td><td>${esc(g.devices.join(" "))}</td><td><pre>${esc(g.reservedRegions.join("\n"))}</pre></td></tr>`,
        )
        .join("\n")}\n</tbody>\n</table>`
    : ""
}
</body>
</html>
`;
}
