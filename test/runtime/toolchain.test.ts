// `dormant build` for JS guests: what each engine lacks is named at build time when the
// guest's own code uses it, and at the call when only a dependency does.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutorPool } from "../../runtime/executor/pool.ts";
import { buildComponent } from "../../runtime/toolchain/build.ts";
import { jsEngine, JS_ENGINES } from "../../runtime/toolchain/js-engines.ts";
import { TextDecoder as GuestTextDecoder, TextEncoder as GuestTextEncoder } from "../../runtime/toolchain/guest/quickjs.js";
import { event, LIMITS, noTasks, startPool } from "../support/runtime.ts";

const WIT = new URL("../../wit", import.meta.url).pathname;

/** Write a guest's files (path → source) into a fresh folder; returns the entry's path. */
async function guestSources(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "dormant-guest-"));
  for (const [path, source] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), source);
  }
  return join(dir, Object.keys(files)[0]!);
}

const EXPORTS = `export const lifecycle = { onActivate() {} };`;

describe("building a JS guest", () => {
  it("refuses a QuickJS guest whose own code uses what QuickJS lacks, naming each API and its file", async () => {
    const entry = await guestSources({
      "guest.js": `${EXPORTS}
        export const handler = { onTask(event) { fetch("https://example.com"); return { status: 200, headers: [], body: [Date.now() % 256] }; } };`,
    });
    const build = buildComponent(entry, { witDir: WIT, engine: "quickjs" });
    await expect(build).rejects.toMatchObject({ code: "guest-build" });
    await expect(build).rejects.toThrow(/uses what QuickJS guests do not have:\n {2}- fetch \(in .*guest\.js\): .*dormant:host/);
    await expect(build).rejects.toThrow(/- Date\.now \(in .*guest\.js\): there is no clock; use the task event's firedAt/);
  });

  it("suggests the other engine when it has what the guest uses", async () => {
    const entry = await guestSources({ "guest.ts": `${EXPORTS}\nexport const handler = { onTask(e: unknown) { new URL("https://a.example"); } };` });
    await expect(buildComponent(entry, { witDir: WIT, engine: "quickjs" })).rejects.toThrow(
      /- URL .*\nRemove these uses, or build with --engine starlingmonkey\./,
    );
  });

  it("says what to export when the guest does not export the world's interfaces", async () => {
    const entry = await guestSources({ "guest.js": `${EXPORTS}\nexport const handlers = {};` });
    await expect(buildComponent(entry, { witDir: WIT, engine: "quickjs" })).rejects.toThrow(/must export `handler` with an `onTask\(event\)` method/);
  });

  it("refuses an unknown engine name, listing the engines", () => {
    expect(() => jsEngine("v8")).toThrow("Unknown JS engine 'v8': use quickjs or starlingmonkey.");
    expect(jsEngine("qjs")).toBe("quickjs");
  });
});

describe.each(JS_ENGINES)("a %s guest whose dependency uses what the engine lacks", (engine) => {
  let pool: ExecutorPool;
  beforeAll(async () => {
    pool = await startPool({ size: 1 });
  });
  afterAll(() => pool.close());

  it("builds with a warning naming the API, and the call that reaches it fails naming the API", async () => {
    const entry = await guestSources({
      "guest.js": `import { later } from "slow-lib";
        ${EXPORTS}
        export const handler = { onTask(event) { if (typeof setTimeout === "function") later(); else later(); } };`,
      "node_modules/slow-lib/package.json": JSON.stringify({ name: "slow-lib", type: "module", main: "index.js" }),
      "node_modules/slow-lib/index.js": "export function later() { setTimeout(() => {}, 10); }",
    });
    const warnings: string[] = [];
    const bytes = await buildComponent(entry, { witDir: WIT, engine, onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual([
      expect.stringMatching(/node_modules\/slow-lib\/index\.js uses setTimeout, which .* guests do not have \(a guest runs only during a call/),
    ]);

    const component = await pool.prepare(bytes);
    await pool.activate(`lib-${engine}`, { component, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    const { outcome } = await pool.call(`lib-${engine}`, event("later"), noTasks(), 0, LIMITS);
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error).toMatch(/setTimeout is not (defined|available).* guests/);
  });
});

describe("QuickJS guests' TextEncoder and TextDecoder", () => {
  it("encode any text as Node does", () => {
    const mine = new GuestTextEncoder();
    const node = new TextEncoder();
    fc.assert(fc.property(fc.string({ unit: "binary" }), (text) => Buffer.from(mine.encode(text)).equals(Buffer.from(node.encode(text)))));
  });

  it("decode any bytes as Node does, valid UTF-8 or not", () => {
    const mine = new GuestTextDecoder();
    const node = new TextDecoder();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => mine.decode(bytes) === node.decode(bytes)));
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => mine.decode(new TextEncoder().encode(text)) === node.decode(new TextEncoder().encode(text))),
    );
  });

  it("refuse what only a fatal decoder refuses, and labels other than utf-8", () => {
    expect(() => new GuestTextDecoder("utf-8", { fatal: true }).decode(Uint8Array.of(0xc3))).toThrow(TypeError);
    expect(() => new GuestTextDecoder("latin1")).toThrow(/decode only utf-8/);
  });
});
