import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replayRecords, replayScenario, vfioParamsOf } from "./replay.js";
import { OUT_MAX } from "./transcript.js";

type Rec = Record<string, unknown>;
const parse = (t: string): Rec[] =>
  t
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Rec);
/** Body records (after hello and setup, before done). */
const body = (t: string): Rec[] => parse(t).filter((r) => !["hello", "setup", "done"].includes(r.cmd as string));

describe("replayScenario: framing", () => {
  it("reports malformed lines as the probe's error records and goes on", () => {
    const t = replayScenario("platform x86-q35-vtd\nfrob\n---\nmap 0x1000\nunmap 0 0 all\nirq msi maybe dev=0\n");
    const recs = parse(t);
    expect(recs.map((r) => r.cmd)).toEqual(["error", "hello", "setup", "error", "unmap", "error", "done"]);
    expect(recs[0]).toEqual({ cmd: "error", line: 2, text: "frob", why: "unknown header line" });
    expect(recs[3]).toMatchObject({ line: 4, why: "usage: map IOVA SIZE PROT [vaddr=+OFF|vaddr=abs:ADDR]" });
    expect(recs[5]).toMatchObject({ line: 6 });
  });
  it("without a known platform uses the board the caller names, else says so", () => {
    expect(parse(replayScenario("---\next\n"))).toEqual([
      {
        cmd: "error",
        line: 0,
        text: "platform ",
        why: "no board for this platform (one of x86-q35-vtd, arm64-virt-smmuv3, arm64-virt-smmuv3-seed)",
      },
      { cmd: "done" },
    ]);
    const t = parse(replayScenario("platform my-lab\n---\nresv\n", { board: "arm64-virt-smmuv3" }));
    expect(t[0]).toMatchObject({ cmd: "hello", platform: "my-lab", group: 0 });
    expect(t[2]).toMatchObject({ cmd: "resv", regions: [["0x0000000008000000", "0x00000000080fffff", "msi"]] });
  });
  it("lists every device of `devices N` with its own group (x86 groups from 1, arm64 from 0)", () => {
    for (const [plat, first] of [
      ["x86-q35-vtd", 1],
      ["arm64-virt-smmuv3", 0],
    ] as const) {
      const hello = parse(replayScenario(`platform ${plat}\ndevices 3\n---\n`))[0]!;
      expect(hello.devices).toEqual(
        [0, 1, 2].map((k) => ({ dev: k, device: `0000:00:0${k + 1}.0`, group: first + k })),
      );
    }
  });
  it("passes vfio_iommu_type1 parameters, not other modules' ones", () => {
    expect(vfioParamsOf("dma_entry_limit=0x10 allow_unsafe_interrupts=Y intel_iommu.x=1 disable_hugepages=0")).toEqual({
      dmaEntryLimit: 16,
      allowUnsafeInterrupts: true,
      disableHugepages: false,
    });
  });
});

describe("replayScenario: scenarios the fixtures do not contain (kernel rules from the reference)", () => {
  it("RLIMIT_MEMLOCK without CAP_IPC_LOCK: the pin that would exceed it fails with ENOMEM (§6.4)", () => {
    const t = replayScenario(
      "platform x86-q35-vtd\nmemlock 0x2000\n---\nmap 0x100000 0x2000 rw\nmap 0x200000 0x1000 rw vaddr=+0x10000\nlocked\nunmap 0 0 all\nlocked\n",
    );
    expect(parse(t)[1]).toMatchObject({ cmd: "setup", memlock: "0x2000", cap_ipc_lock: 0, ret: 0 });
    expect(body(t)).toEqual([
      { cmd: "map", iova: "0x100000", size: "0x2000", prot: "rw", vaddr: "0x100000000000", ret: 0 },
      { cmd: "map", iova: "0x200000", size: "0x1000", prot: "rw", vaddr: "0x100000010000", ret: -1, errno: "ENOMEM" },
      { cmd: "locked", vmlck_kb: 8, vmpin_kb: 0 },
      { cmd: "unmap", iova: "0x0", size: "0x0", flags: ["all"], ret: 0, unmapped: "0x2000" },
      { cmd: "locked", vmlck_kb: 0, vmpin_kb: 0 },
    ]);
  });
  it("type1 (v1) unmap: offset into a mapping unmaps nothing, covering its start removes all of it (§6.5)", () => {
    const t = replayScenario(
      "platform arm64-virt-smmuv3\niommu type1\n---\nmap 0x100000 0x4000 rw\nunmap 0x101000 0x1000\nunmap 0x100000 0x1000\nunmap 0x100000 0x4000\n",
    );
    expect(body(t).map((r) => [r.ret, r.unmapped ?? null])).toEqual([
      [0, null],
      [0, "0x0"],
      [0, "0x4000"],
      [0, "0x0"],
    ]);
  });
  it("dirty tracking needs a v2 container: EACCES on type1 (§6.6)", () => {
    const r = body(replayScenario("platform x86-q35-vtd\niommu type1\n---\ndirty start\n"));
    expect(r).toEqual([{ cmd: "dirty", op: "start", ret: -1, errno: "EACCES" }]);
  });
  it("MAP_DMA with only VADDR: ENOENT with nothing there, EINVAL while the vaddr is valid, 0 after invalidation (§6.3)", () => {
    const r = body(
      replayScenario(
        "platform x86-q35-vtd\n---\nmapv 0x100000 0x1000\nmap 0x100000 0x1000 rw\nmapv 0x100000 0x1000\nunmap 0x100000 0x1000 vaddr\nmapv 0x100000 0x1000 vaddr=+0x1000\nunmap 0 0 all\n",
      ),
    );
    expect(r.map((x) => x.errno ?? x.ret)).toEqual(["ENOENT", 0, "EINVAL", 0, 0, 0]);
  });
});

describe("replayScenario: device paths when the device cannot be opened (probe.c formats)", () => {
  it("a device whose group is in no container: irq, dma and device lines carry the open errno", () => {
    const r = body(
      replayScenario(
        "platform x86-q35-vtd\ndevices 2\n---\nirq raise dev=1\ndma 0x1000 4 to-dev dev=1\ndevice 1 close\ndevice 1 open\n",
      ),
    );
    expect(r).toEqual([
      { cmd: "irq", op: "raise", dev: 1, step: "open device", ret: -1, errno: "EINVAL" },
      { cmd: "dma", dev: 1, error: "device open/mmap failed", errno: "EINVAL" },
      { cmd: "device", dev: 1, op: "close", was_open: 0, ret: 0 },
      { cmd: "device", dev: 1, op: "open", was_open: 0, ret: -1, errno: "EINVAL" },
    ]);
  });
  it("closing the device lets its group leave; the eventfd goes with the device", () => {
    const r = body(
      replayScenario(
        "platform arm64-virt-smmuv3\ndevices 2\n---\ngroup 1 set\nirq msi on dev=1\ngroup 1 unset\ndevice 1 close\ngroup 1 unset\nirq raise dev=1\n",
      ),
    );
    expect(r.map((x) => [x.cmd, x.op, x.errno ?? x.ret])).toEqual([
      ["group", "set", 0],
      ["irq", "msi-on", 0],
      ["group", "unset", "EBUSY"],
      ["device", "close", 0],
      ["group", "unset", 0],
      ["irq", "raise", "EINVAL"],
    ]);
    expect(r[1]).toMatchObject({ phys_msi: { enabled: 1, address: "0x8000040" }, vfio_msi: { address: "0x0" } });
  });
});

describe("replayScenario: the seed board (arm64-virt-smmuv3-seed)", () => {
  it("its per-range reserved-IOVA caps reach user space; probe.c shows them as unknown caps, raw untrimmed", () => {
    const info = body(replayScenario("platform arm64-virt-smmuv3-seed\n---\ninfo\n"))[0]!;
    const caps = info.caps as { id: number; offset: number; next: number; name: string; raw?: string }[];
    const seed = caps.filter((c) => c.id === 0x8001);
    expect(seed.length).toBeGreaterThanOrEqual(3);
    for (const c of seed) expect(c).toMatchObject({ name: "unknown", version: 1 });
    // the chain is info-relative and terminates (the 4.x cap_add/cap_shift bug would break this walk)
    for (let i = 1; i < caps.length; i++) expect(caps[i]!.offset).toBe(caps[i - 1]!.next);
    expect(caps.at(-1)!.next).toBe(0);
    // an unknown cap stops probe.c from trimming raw: the whole argsz comes back
    expect(info.raw_len).toBe(4096);
    expect((info.raw as string).length).toBe(2 * 4096);
  });
});

describe("replayScenario: any scenario", () => {
  const num = fc.oneof(
    fc.constantFrom("0", "0x1000", "0x2000", "0x100000", "0x101000", "0x8000000", "0xfee00000", "0x7ffffff000"),
    fc.constantFrom("0xfffffffffffff000", "0x1_000", "0x800", "4096", "0x"),
  );
  const cmd = fc.oneof(
    fc.constantFrom("ext", "resv", "info", "info argsz=20 fill=0xa5", "locked", "dirty start", "dirty stop"),
    fc.constantFrom("irq msi on", "irq msi off", "irq raise", "device 0 open", "device 0 close", "set-iommu type1"),
    fc.constantFrom("group 0 status", "group 0 unset", "group 0 set", "touch +0 0x2000", "unmap 0 0 all"),
    fc.tuple(num, num, fc.constantFrom("r", "w", "rw", "-", "x")).map(([a, b, p]) => `map ${a} ${b} ${p}`),
    fc
      .tuple(num, num, fc.constantFrom("", " all", " vaddr", " dirty 0x1000"))
      .map(([a, b, f]) => `unmap ${a} ${b}${f}`),
    fc.tuple(num, num).map(([a, b]) => `dirty get ${a} ${b} 0x1000`),
    fc
      .tuple(num, fc.constantFrom("0x4", "0x100", "0x1000", "0"), fc.constantFrom("to-dev", "from-dev"))
      .map(([a, l, d]) => `dma ${a} ${l} ${d}`),
    fc.string({ maxLength: 12 }),
  );
  const scenario = fc.record({
    plat: fc.constantFrom("x86-q35-vtd", "arm64-virt-smmuv3"),
    iommu: fc.constantFrom("type1", "type1v2"),
    memlock: fc.option(fc.constantFrom("0x1000", "0x10000"), { nil: undefined }),
    cmds: fc.array(cmd, { maxLength: 12 }),
  });
  it("never throws, writes one valid JSON line per command plus hello/setup/done, and is deterministic", {
    tags: ["slow"],
  }, () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const text = [
          `platform ${s.plat}`,
          `iommu ${s.iommu}`,
          ...(s.memlock ? [`memlock ${s.memlock}`] : []),
          "---",
          ...s.cmds.map((c) => c.replace(/[\n\r]/g, " ")),
        ].join("\n");
        const t = replayScenario(text);
        // a line longer than probe.c's 1 MiB buffer is cut (no brace, no newline): split it back off
        const chunks = t
          .trimEnd()
          .split("\n")
          .flatMap((l) => (l.length > OUT_MAX ? [null, l.slice(OUT_MAX)] : [l]));
        const recs = chunks.map((l) => (l === null ? { cmd: "(cut)" } : (JSON.parse(l) as Rec)));
        const nonEmpty = s.cmds.filter((c) => c.replace(/#.*/, "").trim().length > 0).length;
        expect(recs.length).toBe(nonEmpty + 3);
        expect(recs[0]!.cmd).toBe("hello");
        expect(recs[1]).toMatchObject({ cmd: "setup", ret: 0 });
        expect(recs.at(-1)).toEqual({ cmd: "done" });
        expect(replayScenario(text)).toBe(t);
        // --json's records are the same records: equal to the text wherever its line is whole
        const records = replayRecords(text);
        expect(records).toHaveLength(recs.length);
        let i = 0;
        for (const l of t.trimEnd().split("\n")) {
          if (l.length > OUT_MAX) {
            expect(records[i++]).toMatchObject({ line_cut: true });
            if (l.slice(OUT_MAX)) expect(records[i++]).toEqual(JSON.parse(l.slice(OUT_MAX)));
          } else expect(records[i++]).toEqual(JSON.parse(l));
        }
      }),
      { numRuns: 20, seed: 14 },
    );
  });
});

describe("replayRecords (issue #13 rule 4: --json from the records, not from the text)", () => {
  it("a record past probe.c's 1 MiB line is one object marked line_cut, with the bitmap the line shows", () => {
    const scn =
      "platform x86-q35-vtd\n---\nmap 0x100000 0x1000 rw\ndirty start\ndirty get 0x100000 0x1000000000 0x1\next\n";
    const text = replayScenario(scn);
    // the text cuts the dirty record and runs the next one onto its line, as probe.c does
    const cut = text.split("\n").find((l) => l.startsWith('{"cmd":"dirty","op":"get"'))!;
    expect(cut.length).toBeGreaterThan(OUT_MAX);
    expect(() => JSON.parse(cut)).toThrow();
    const records = replayRecords(scn);
    expect(records.map((r) => r.cmd)).toEqual(["hello", "setup", "map", "dirty", "dirty", "ext", "done"]);
    const get = records[4]!;
    expect(get).toMatchObject({
      op: "get",
      size: "0x1000000000",
      pgsize: "0x1",
      bitmap_size: "0x1000000",
      line_cut: true,
    });
    // the line's bytes up to the cut: the record's text before the bitmap, then as many whole bytes as fit
    const bitmap = get.bitmap as string;
    expect(bitmap.length % 2).toBe(0);
    expect(cut.slice(0, OUT_MAX)).toContain(`"bitmap":"${bitmap}`);
    expect(OUT_MAX - cut.indexOf('"bitmap":"') - '"bitmap":"'.length - bitmap.length).toBeLessThan(2);
    expect(records[5]).toEqual(JSON.parse(cut.slice(OUT_MAX)));
  });
});
