// Isolation and access: unguessable ids and push URLs, owner-only data files, and no
// door out of the sandbox but the dormant:host world.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHostBinding } from "../../src/tasks/executor/binding.ts";
import { DEFAULT_TASK_LIMITS } from "../../src/tasks/limits.ts";
import type { TaskInfo, TaskSpec } from "../../wit/index.ts";
import type { CallOutcome } from "../../runtime/index.ts";
import { startTestHost } from "../support/host.ts";
import { event } from "../support/runtime.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const reply = (outcome: CallOutcome) => (outcome.ok ? new TextDecoder().decode(outcome.reply?.body) : outcome.error);

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    yield path;
    if (entry.isDirectory()) yield* walk(path);
  }
}

describe("isolation and access", () => {
  let s: TestServer;
  let dataDir: string;
  beforeAll(async () => {
    s = await startTestServer({ engineCacheDir: undefined });
    dataDir = s.host.store.description.replace(/^fs:/, "");
    const id = await s.deploy("counter");
    await s.api("POST", `/api/partitions/${id}/activate`);
    await s.api("POST", `/api/partitions/${id}/freeze`);
  });
  afterAll(() => s.close());

  it("creates every data file owner-only (0600) in owner-only directories (0700)", async () => {
    let files = 0;
    for await (const path of walk(dataDir)) {
      const info = await stat(path);
      const mode = info.mode & 0o777;
      if (info.isDirectory()) expect([path, mode.toString(8)]).toEqual([path, "700"]);
      else {
        files++;
        expect([path, mode.toString(8)]).toEqual([path, "600"]);
      }
    }
    expect(files).toBeGreaterThan(5); // snapshots, registrations, components, partitions, engine cache, admin token
  });

  it("hands a frozen partition's instance to another partition only reset to pristine", async () => {
    const h = await startTestHost();
    try {
      for (const guest of ["counter", "wat"] as const) {
        const component = await h.deploy(guest);
        const a = (await h.partitions.create({ name: `${guest}-a`, component })).id;
        for (let i = 0; i < 5; i++) await h.partitions.deliver(a, event("push"));
        await h.partitions.freeze(a);
        const b = (await h.partitions.create({ name: `${guest}-b`, component })).id;
        const first = await h.partitions.deliver(b, event("push"));
        const woken = h.events.filter((e) => e.type === "activated" && e.partition === b);
        expect(woken, guest).toMatchObject([{ kind: "fresh", pooled: true }]);
        expect(reply(first), guest).toMatch(guest === "counter" ? /"count":1,"activations":1/ : /^1$/);
        expect(reply(await h.partitions.deliver(a, event("push"))), guest).toMatch(guest === "counter" ? /"count":6,"activations":2/ : /^6$/);
      }
    } finally {
      await h.close();
    }
  });

  it("issues task ids of 128 random bits and push URLs of 192, never twice", () => {
    const binding = createHostBinding({ log: () => undefined });
    binding.attach("p_ids");
    const register = (binding.imports["dormant:host/background-tasks@0.1.0"] as { register(spec: TaskSpec): TaskInfo }).register;
    binding.begin({ tasks: [], limits: { ...DEFAULT_TASK_LIMITS, maxTasks: 5000 }, registrations: { left: Infinity, perSecond: 10 } }, 0);
    const ids = new Set<string>();
    const urls = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const info = register({ name: `t${i}`, trigger: { tag: "push" }, entry: "e", payload: new Uint8Array(), priority: 0, outlivePartition: false });
      ids.add(info.id);
      urls.add(info.pushUrl!);
    }
    binding.end();
    expect(ids.size).toBe(2000);
    expect(urls.size).toBe(2000);
    for (const id of ids) expect(id).toMatch(/^t_[A-Za-z0-9_-]{22}$/); // 16 bytes
    for (const url of urls) expect(url).toMatch(/^\/push\/[A-Za-z0-9_-]{32}$/); // 24 bytes
  });

  it("refuses at deploy a component that imports network or file system access, naming the import", async () => {
    for (const [pkg, iface] of [
      ["wasi:http@0.2.0", "outgoing-handler"],
      ["wasi:filesystem@0.2.0", "preopens"],
    ] as const) {
      const name = `${pkg.split("@")[0]}/${iface}@0.2.0`;
      const core = await parse(
        `(module (import "${name}" "open" (func)) (memory (export "memory") 1) (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0) (func (export "run") (result i32) i32.const 0))`,
      );
      const witSource = `package other:thing;
        world escape { import ${name}; export run: func() -> u32; }
        package ${pkg} { interface ${iface} { open: func(); } }`;
      const component = await componentNew(await componentEmbed({ binary: core, witSource, world: "escape" }));
      const { status, body } = await s.api("POST", "/api/components", component);
      expect(status).toBe(400);
      expect(body.error.message).toContain(`imports ${pkg.split("@")[0]}/${iface}`);
    }
  });
});
