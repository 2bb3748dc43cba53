// The test kit itself (dormant/testing), on the smallest guest: what it makes and removes,
// what it refuses and how it says so, and that its types reach a guest author's tsc
// through the package's exports.
import { execFile } from "node:child_process";
import { access, mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createTestHost } from "dormant/testing";
import { durationMs } from "../../src/testing/index.ts";
import { guestFile } from "../support/guests.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");

describe("the test kit", () => {
  it("makes a temporary data directory for the host and removes it on close", async () => {
    const t = await createTestHost({ guest: guestFile("wat") });
    const { config } = t.dormant.host.store;
    expect(config.kind).toBe("fs");
    const dir = config.kind === "fs" ? config.dir : "";
    await expect(access(dir)).resolves.toBeUndefined();
    await t.close();
    await expect(access(dir)).rejects.toThrow(/ENOENT/);
  });

  it("refuses a push to a task the guest never registered, naming the ones it has", async () => {
    const t = await createTestHost({ guest: guestFile("wat") });
    try {
      await expect(t.push("inbox")).rejects.toThrow('The guest has no task named "inbox"; it has none.');
    } finally {
      await t.close();
    }
  });

  it("refuses a guest that is neither a component nor a source it can build", async () => {
    await expect(createTestHost({ guest: "guest.txt" })).rejects.toThrow(
      /must be a \.wasm component or a \.js, \.mjs, \.ts, \.mts or \.wat source; got guest\.txt/,
    );
  });

  it("reads durations as a person writes them, and refuses what it cannot read", () => {
    expect([durationMs("250ms"), durationMs("90s"), durationMs("1h30m"), durationMs("2d"), durationMs(5)]).toEqual([250, 90_000, 5_400_000, 172_800_000, 5]);
    expect(() => durationMs("an hour")).toThrow('Cannot read "an hour" as a duration; write it like "250ms", "90s", "15m", "1h30m" or "2d".');
    expect(() => durationMs("1h and 5m")).toThrow(/Cannot read/);
  });

  it("gives a guest author's tsc the types of dormant and dormant/testing through the package's exports", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-kit-types-"));
    await mkdir(join(dir, "node_modules"));
    await symlink(ROOT, join(dir, "node_modules", "dormant"));
    await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    await writeFile(
      join(dir, "guest.test.ts"),
      `import { createTestHost, type TestHost } from "dormant/testing";
import { createDormant } from "dormant";
const t: TestHost = await createTestHost({ guest: "guest.wasm", start: new Date() });
const status: number = (await t.push("greet", { body: "Ada" })).status;
const level: "trace" | "debug" | "info" | "warn" | "error" = t.logs[0]!.level;
const when: string = t.tasks()[0]!.nextFire;
await createDormant({ admin: { token: 42 } });
`,
    );
    const types = join(ROOT, "node_modules", "@types");
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
          typeRoots: [types],
        },
        files: ["guest.test.ts"],
      }),
    );
    const out = await run("node", [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."], { cwd: dir }).then(
      () => "",
      (error: { stdout: string }) => error.stdout,
    );
    // Exactly the two mistakes: the types are there, and are not `any`.
    expect(out.split("\n").filter((line) => line.startsWith("guest.test.ts"))).toEqual([
      expect.stringMatching(/^guest\.test\.ts\(6,7\): error TS2322: Type 'Date \| undefined' is not assignable to type 'string'/),
      expect.stringMatching(/^guest\.test\.ts\(7,.*error TS2322: Type 'number' is not assignable to type 'string'/),
    ]);
  });
});
