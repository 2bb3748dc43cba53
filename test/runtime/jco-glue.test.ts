// The glue jco writes for a component, as the jco engine caches it: its per-call debug
// logging is dropped, its instantiation throws no avoidable errors, Dormant's own imports
// (and where a guest imports nothing else, its exports) are called without jco's task
// bookkeeping, and an entry cached by an older revision gets the current glue.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { DIRECT_MARK, directExports, quietGlue } from "../../runtime/jco/glue.ts";
import { createEngine, GLUE_FILE, JCO_GLUE_FILE } from "../../runtime/jco/jco-engine.ts";
import { createHostBinding } from "../../src/tasks/executor/binding.ts";
import { bodyText, event, noTasks } from "../support/runtime.ts";

const guests = inject("guests");
let cacheDir: string;

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "dormant-glue-"));
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** One event through a fresh instance of the prepared component: the WAT guest's reply (its count). */
async function countAfterOneEvent(location: string, digest: string, bytes: number): Promise<string> {
  const compiled = await createEngine({ cacheDir }).compile({ digest, location, bytes });
  const binding = createHostBinding({ log: () => undefined });
  const instance = compiled.instantiate(binding.imports);
  binding.attach("p_glue");
  binding.begin(noTasks(), 0);
  try {
    return bodyText(instance.exports.handler.onTask(event("tick"))?.body);
  } finally {
    binding.end();
  }
}

/** The guest's on-activate through a fresh instance of the prepared component: what it logged and registered. */
async function activateOnce(location: string, digest: string, bytes: number) {
  const compiled = await createEngine({ cacheDir }).compile({ digest, location, bytes });
  const logs: string[] = [];
  const binding = createHostBinding({ log: (_partition, _level, message) => logs.push(message) });
  const instance = compiled.instantiate(binding.imports);
  binding.attach("p_glue");
  binding.begin(noTasks(), 0);
  instance.exports.lifecycle.onActivate("fresh");
  return { logs, effects: binding.end() };
}

/** Trampolines of `dormant:host` imports in a glue, and how many of them are called directly. */
function hostTrampolines(glue: string): { all: number; direct: number } {
  return {
    all: glue.match(/_trampoline\d+\.fnName = 'dormant:host\//g)?.length ?? 0,
    direct: glue.match(new RegExp(`_trampoline\\d+\\.${DIRECT_MARK} = true;`, "g"))?.length ?? 0,
  };
}

/** Exports that run on jco's task machinery, and those whose task is made only when asked for. */
function exportTasks(glue: string): { jco: number; lazy: number } {
  return {
    jco: glue.match(/createNewCurrentTask\(\{[^}]*?callingWasmExport: true/g)?.length ?? 0,
    lazy: glue.match(/const task = new _DormantLazyTask\(/g)?.length ?? 0,
  };
}

/** Two pushes to a fresh instance of the prepared QuickJS counter: the counts it answers. */
async function pushTwice(location: string, digest: string, bytes: number): Promise<number[]> {
  const compiled = await createEngine({ cacheDir }).compile({ digest, location, bytes });
  const binding = createHostBinding({ log: () => undefined });
  const instance = compiled.instantiate(binding.imports);
  binding.attach("p_glue");
  const counts: number[] = [];
  for (let i = 0; i < 2; i++) {
    binding.begin(noTasks(), 0);
    try {
      counts.push((JSON.parse(bodyText(instance.exports.handler.onTask(event("push"))?.body)) as { count: number }).count);
    } finally {
      binding.end();
    }
  }
  return counts;
}

describe("the jco engine's cached glue", () => {
  it("does no debug-logging work in a guest call: every _debugLog statement is short-circuited", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    expect(glue).not.toMatch(/^\s*_debugLog\(/m);
    // jco still writes these calls; if it stops, this test says the patch has nothing left to do.
    expect(glue).toMatch(/^\s*false && _debugLog\(/m);
    expect(await countAfterOneEvent(prepared.location, prepared.digest, prepared.bytes)).toBe("1");
  });

  it("instantiates without calling the WebAssembly.promising Node lacks: the glue calls a stand-in", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    const direct = glue.split("\n").filter((line) => line.includes("WebAssembly.promising(") && !line.includes("const _dormantPromising"));
    expect(direct).toEqual([]);
    // jco still tries it for every export; if it stops, this test says the stand-in has nothing left to do.
    expect(glue).toMatch(/= _dormantPromising\(/);
    expect(await countAfterOneEvent(prepared.location, prepared.digest, prepared.bytes)).toBe("1");
  });

  it("calls every dormant:host import of a QuickJS guest without jco's task bookkeeping, and the guest still logs and registers through them", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests["counter-qjs"]));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    // register, cancel, list and log.
    expect(hostTrampolines(glue)).toEqual({ all: 4, direct: 4 });
    const { logs, effects } = await activateOnce(prepared.location, prepared.digest, prepared.bytes);
    expect(logs).toEqual(["counter activated (fresh), count=0"]);
    expect(effects.upserts.map((task) => task.name).sort()).toEqual(["heartbeat", "inbox"]);
  });

  it("still traps the guest call when a directly called import throws, with the import's error as the cause", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests["counter-qjs"]));
    const compiled = await createEngine({ cacheDir }).compile(prepared);
    const binding = createHostBinding({ log: () => undefined });
    const instance = compiled.instantiate(binding.imports);
    binding.attach("p_glue");
    // No call begun: background-tasks refuses, as it does for a host bug.
    expect(() => instance.exports.lifecycle.onActivate("fresh")).toThrow(/outside a host call/);
  });

  it("leaves an import whose trampoline is not in the shape it knows as jco wrote it, and that import still works", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const jcoGlue = await readFile(join(prepared.location, JCO_GLUE_FILE), "utf8");
    const unfamiliar = jcoGlue.replace("const createTask = () => {", "const createTask = () =>  {");
    expect(unfamiliar).not.toBe(jcoGlue);
    const glue = quietGlue(Buffer.from(unfamiliar));
    expect(hostTrampolines(glue)).toEqual({ all: 1, direct: 0 });
    await writeFile(join(prepared.location, GLUE_FILE), glue);
    const { logs } = await activateOnce(prepared.location, prepared.digest, prepared.bytes);
    expect(logs).toEqual(["wat-minimal activated"]);
  });

  it("runs the exports of a guest that imports only Dormant's interfaces without jco's task bookkeeping, and the guest still counts and logs", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    // on-activate and on-task.
    expect(exportTasks(glue)).toEqual({ jco: 0, lazy: 2 });
    expect(await countAfterOneEvent(prepared.location, prepared.digest, prepared.bytes)).toBe("1");
    expect((await activateOnce(prepared.location, prepared.digest, prepared.bytes)).logs).toEqual(["wat-minimal activated"]);
  });

  it("runs a QuickJS guest's exports on tasks made only when asked for, and the guest still logs, registers and counts", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests["counter-qjs"]));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    // Its runtime's init, the handover pair, on-task and on-activate.
    expect(exportTasks(glue)).toEqual({ jco: 0, lazy: 5 });
    const { logs, effects } = await activateOnce(prepared.location, prepared.digest, prepared.bytes);
    expect(logs).toEqual(["counter activated (fresh), count=0"]);
    expect(effects.upserts).toHaveLength(2);
    expect(await pushTwice(prepared.location, prepared.digest, prepared.bytes)).toEqual([1, 2]);
  });

  it("gives an adapter between a guest's components the task jco would have made for its caller, entered and current", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests["counter-qjs"]));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    // None of the example guests' calls reaches one of its runtime's adapters: on-task calls one here, as a fused adapter would.
    const caller = /new _DormantLazyTask\(\{\s*componentIdx: (\d+),[^}]*entryFnName: 'handler010OnTask'/.exec(glue)?.[1];
    expect(caller).toBeDefined();
    const core = "fn: () => handler010OnTask(ptr0),";
    expect(glue.split(core)).toHaveLength(2);
    const throughAdapter = `fn: () => { _symmetricSyncGuestCallEnter(${caller}, false, 9999); try { return handler010OnTask(ptr0); } finally { _symmetricSyncGuestCallExit(); } },`;
    // The glue hands the test its task-meta reader, to see what the export leaves current.
    const exported = "return { handler: handler010,";
    const withMetaReader = glue.replace(core, throughAdapter).replace(exported, `globalThis.__dormantTaskMeta = _getGlobalCurrentTaskMeta; ${exported}`);
    await writeFile(join(prepared.location, GLUE_FILE), withMetaReader);
    expect(await pushTwice(prepared.location, prepared.digest, prepared.bytes)).toEqual([1, 2]);
    // Once the export exits, its task is no longer current, as after jco's own export wrapper.
    const meta = globalThis as { __dormantTaskMeta?: (componentIdx?: number) => unknown };
    expect(meta.__dormantTaskMeta?.(Number(caller))).toBeUndefined();
    expect(meta.__dormantTaskMeta?.()).toBeUndefined();
    delete meta.__dormantTaskMeta;
    // Asked for only after the export resolved (its post-return through an adapter): the task made then is resolved too.
    const afterResolve = await createEngine({ cacheDir: join(cacheDir, "post-return") }).prepare(await readFile(guests["counter-qjs"]));
    const postReturn = new RegExp(`(postReturn\\d+)\\(ret\\);`).exec(glue.slice(glue.indexOf(core)));
    expect(postReturn).not.toBeNull();
    const at = glue.indexOf(core) + postReturn!.index;
    const wrapped = `_symmetricSyncGuestCallEnter(${caller}, false, 9999); try { ${postReturn![0]} } finally { _symmetricSyncGuestCallExit(); }`;
    await writeFile(join(afterResolve.location, GLUE_FILE), glue.slice(0, at) + wrapped + glue.slice(at + postReturn![0].length));
    expect(await pushTwice(afterResolve.location, afterResolve.digest, afterResolve.bytes)).toEqual([1, 2]);
    // Without the task made on demand, the adapter finds no caller task (another cache: a glue module is loaded once per path).
    const elsewhere = await createEngine({ cacheDir: join(cacheDir, "unaided") }).prepare(await readFile(guests["counter-qjs"]));
    const unaided = glue.replace(core, throughAdapter).replace(" ?? _dormantCallerTask(callerComponentIdx)", "");
    await writeFile(join(elsewhere.location, GLUE_FILE), unaided);
    await expect(pushTwice(elsewhere.location, elsewhere.digest, elsewhere.bytes)).rejects.toThrow(/missing current caller task/);
  });

  it("keeps jco's tasks for the exports when an import is not called directly, and the guest still works", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const jcoGlue = await readFile(join(prepared.location, JCO_GLUE_FILE), "utf8");
    const glue = quietGlue(Buffer.from(jcoGlue.replace("const createTask = () => {", "const createTask = () =>  {")));
    expect(exportTasks(glue)).toEqual({ jco: 2, lazy: 0 });
    await writeFile(join(prepared.location, GLUE_FILE), glue);
    expect(await countAfterOneEvent(prepared.location, prepared.digest, prepared.bytes)).toBe("1");
  });

  it("leaves exports whose task code is not in the shape it knows as jco wrote them", async () => {
    const prepared = await createEngine({ cacheDir }).prepare(await readFile(guests.wat));
    const glue = await readFile(join(prepared.location, GLUE_FILE), "utf8");
    const jcoGlue = await readFile(join(prepared.location, JCO_GLUE_FILE), "utf8");
    // One export's task made in a shape it does not know: then none is rewritten.
    const unfamiliar = quietGlue(Buffer.from(jcoGlue.replace("callingWasmExport: true,", "callingWasmExport: true ,")));
    expect(unfamiliar).not.toBe(glue);
    expect(exportTasks(unfamiliar)).toEqual({ jco: 2, lazy: 0 });
    expect(directExports(unfamiliar)).toBe(unfamiliar);
    await writeFile(join(prepared.location, GLUE_FILE), unfamiliar);
    expect(await countAfterOneEvent(prepared.location, prepared.digest, prepared.bytes)).toBe("1");
  });

  it("gives an entry cached by an older glue revision the current glue, keeping jco's own beside it", async () => {
    const bytes = await readFile(guests.wat);
    const prepared = await createEngine({ cacheDir }).prepare(bytes);
    const manifestPath = join(prepared.location, "manifest.json");
    const { glue: _revision, ...older } = JSON.parse(await readFile(manifestPath, "utf8")) as Record<string, unknown>;
    await writeFile(manifestPath, JSON.stringify(older));
    await writeFile(join(prepared.location, GLUE_FILE), "throw new Error('stale glue');");

    const again = await createEngine({ cacheDir }).prepare(bytes);
    expect(again).toEqual(prepared);
    expect(JSON.parse(await readFile(manifestPath, "utf8"))).toHaveProperty("glue");
    expect(await readFile(join(prepared.location, JCO_GLUE_FILE), "utf8")).toMatch(/^\s*_debugLog\(/m);
    expect(await countAfterOneEvent(again.location, again.digest, again.bytes)).toBe("1");
  });
});
