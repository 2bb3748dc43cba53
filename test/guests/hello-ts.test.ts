// The TypeScript example guest: tsc checks it against the shipped guest declarations
// (wit/types/guest.d.ts, no `paths` mapping), and a type error in a guest is caught; it
// builds and runs on both JS engines, its cron task firing and its push URL answering.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleComponent } from "../../guests/examples.ts";
import { JS_ENGINES } from "../../runtime/toolchain/js-engines.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const HELLO = join(ROOT, "guests", "hello-ts");

/** tsc on a project; resolves with its exit code and output. */
async function tsc(project: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run("node", [TSC, "-p", project]);
    return { code: 0, out: stdout };
  } catch (error) {
    const { code, stdout } = error as { code: number; stdout: string };
    return { code, out: stdout };
  }
}

describe("the hello-ts guest's types", () => {
  it("type-checks with its tsconfig, which only lists the shipped declarations", async () => {
    expect(await tsc(join(HELLO, "tsconfig.json"))).toEqual({ code: 0, out: "" });
  });

  it("catches a guest that gives a trigger the wrong shape or a time as a string", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-ts-guest-"));
    await writeFile(
      join(dir, "bad.ts"),
      `import { register } from "dormant:host/background-tasks@0.1.0";
register({ name: "x", trigger: { tag: "every", val: "60s" }, entry: "x", payload: new Uint8Array(), priority: 0, outlivePartition: false });
register({ name: "y", trigger: { tag: "cron", val: "* * * * *" }, entry: "y", payload: new Uint8Array(), priority: 0, outlivePartition: false });
`,
    );
    const types = join(ROOT, "wit", "types");
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022"], types: [] },
        files: ["bad.ts", join(types, "guest.d.ts"), join(types, "guest-globals.d.ts")],
      }),
    );
    const { code, out } = await tsc(join(dir, "tsconfig.json"));
    expect(code).not.toBe(0);
    expect(out).toMatch(/bad\.ts\(2,.*Type 'string' is not assignable to type 'number'/);
    expect(out).toMatch(/bad\.ts\(3,.*Type 'string' is not assignable to type 'CronSchedule'/);
  });
});

describe.each(JS_ENGINES)("the hello-ts guest on %s", (engine) => {
  let s: TestServer;
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = new Uint8Array(await readFile(await exampleComponent("hello-ts", { engine })));
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it("registers its cron and push tasks when deployed, answers its push URL, and runs its cron task", async () => {
    const { body: component } = await s.api("POST", "/api/components", bytes);
    const { status, body: partition } = await s.api("POST", "/api/partitions", { name: "hello-ts", component: component.digest });
    expect(status).toBe(201);
    expect(partition.tasks).toMatchObject([
      { name: "every-minute", trigger: { cron: "* * * * *", timezone: "Europe/Berlin" }, pushUrl: null },
      { name: "greet", trigger: { push: true }, absolutePushUrl: expect.stringMatching(/^http:\/\/.*\/push\//) },
    ]);
    const greet = partition.tasks[1].absolutePushUrl;
    expect(await (await fetch(greet, { method: "POST", body: "Ada" })).text()).toBe("hello, Ada (greeting #1; no minute yet)\n");
    const minute = partition.tasks[0].nextFire;
    await s.tick(minute);
    expect(s.events.find((e) => e.type === "delivered" && e.name === "every-minute")).toMatchObject({ outcome: { ok: true } });
    expect(await (await fetch(greet, { method: "POST" })).text()).toBe(`hello, world (greeting #2; last minute at ${minute})\n`);
  });
});
