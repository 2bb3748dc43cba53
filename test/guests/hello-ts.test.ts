// The TypeScript example guest: tsc checks it against the shipped guest declarations
// (wit/types/guest.d.ts, no `paths` mapping), and a type error in a guest is caught; it
// builds and runs on both JS engines, its cron task firing and its push URL answering,
// tested as its author would test it: through the test kit ("dormant/testing").
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestHost, type TestHost } from "dormant/testing";
import { exampleComponent } from "../../guests/examples.ts";
import { JS_ENGINES } from "../../runtime/toolchain/js-engines.ts";

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

describe.each(JS_ENGINES)("the hello-ts guest on %s, through the test kit", (engine) => {
  let t: TestHost;
  beforeEach(async () => {
    t = await createTestHost({ guest: await exampleComponent("hello-ts", { engine }), start: "2030-01-01T00:00:30Z" });
  });
  afterEach(() => t.close());

  it("registers its cron and push tasks when first activated", () => {
    expect(t.tasks()).toMatchObject([
      {
        name: "every-minute",
        trigger: { tag: "cron", val: { expression: "* * * * *", timezone: "Europe/Berlin" } },
        nextFire: new Date("2030-01-01T00:01:00Z"),
      },
      { name: "greet", trigger: { tag: "push" }, nextFire: undefined, pushPath: expect.stringMatching(/^\/push\//) },
    ]);
  });

  it("greets whoever a push names, and says when its cron task last ran", async () => {
    const first = await t.push("greet", { body: "Ada" });
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await first.text()).toBe("hello, Ada (greeting #1; no minute yet)\n");
    await t.advance("1m");
    expect(await (await t.push("greet")).text()).toBe(`hello, world (greeting #2; last minute at ${Date.parse("2030-01-01T00:01:00Z")})\n`);
  });

  it("logs its registrations and each minute, with their levels", async () => {
    await t.advanceTo("2030-01-01T00:02:00Z");
    expect(t.logs.map(({ level, message }) => [level, message])).toEqual([
      ["info", "registered every-minute"],
      ["info", expect.stringMatching(/^registered greet at \/push\//)],
      ["info", `minute at ${Date.parse("2030-01-01T00:01:00Z")} (1 occurrence(s))`],
      ["info", `minute at ${Date.parse("2030-01-01T00:02:00Z")} (1 occurrence(s))`],
    ]);
  });

  it("keeps its count of greetings across a freeze", async () => {
    await t.push("greet");
    await t.freeze();
    expect(t.state()).toBe("frozen");
    expect(await (await t.push("greet")).text()).toMatch(/greeting #2/);
    expect(t.events.filter((e) => e.type === "activated").map((e) => e.type === "activated" && e.kind)).toEqual(["fresh", "rehydrated"]);
  });
});

describe("the test kit on a TypeScript source", () => {
  it("builds the guest itself and runs it", async () => {
    const t = await createTestHost({ guest: join(HELLO, "hello.ts"), engine: "quickjs" });
    try {
      expect(await (await t.push("greet", { body: "Grace" })).text()).toBe("hello, Grace (greeting #1; no minute yet)\n");
    } finally {
      await t.close();
    }
  });
});
