// `dormant new`: each template gives a guest whose own package.json scripts type-check
// (TS) and build it with this Dormant and run its test on the test kit (dormant/testing,
// linked by an offline npm install), and a README naming the commands.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN } from "../support/serve-process.ts";

function sh(file: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

describe("dormant new", () => {
  it.each([
    ["js", "guest.js", ["README.md", "guest.js", "guest.test.js", "package.json"]],
    ["ts", "guest.ts", ["README.md", "guest.test.js", "guest.ts", "package.json", "tsconfig.json"]],
    ["wat", "guest.wat", ["README.md", "guest.test.js", "guest.wat", "package.json"]],
  ])(
    "writes a %s guest that its own npm test type-checks, builds and tests on the test kit",
    async (template, source, files) => {
      const dir = join(await mkdtemp(join(tmpdir(), "dormant-new-")), "my-guest");
      const made = await sh("node", [BIN, "new", dir, "--template", template]);
      expect(made.code, made.stderr).toBe(0);
      expect((await readdir(dir)).sort()).toEqual(files);
      const readme = await readFile(join(dir, "README.md"), "utf8");
      expect(readme).toContain(`build ${source} -o guest.wasm`);
      expect(readme).toContain("deploy guest.wasm --name my-guest");
      expect(readme).toContain("npm install");
      const install = await sh("npm", ["install", "--offline", "--no-audit", "--no-fund"], dir);
      expect(install.code, install.stderr).toBe(0);
      const test = await sh("npm", ["test", "--silent"], dir);
      expect(test.code, test.stdout + test.stderr).toBe(0);
      expect(test.stdout).toMatch(/built guest\.wasm: \d+ bytes/);
      expect(test.stdout).toMatch(/^# pass [1-9]/m);
      expect(test.stdout).toMatch(/^# fail 0$/m);
    },
    240_000,
  ); // an npm install, a build and a test run with a host per test

  it("refuses a folder that is not empty, and an unknown template", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-new-"));
    await writeFile(join(dir, "mine.txt"), "keep me");
    expect(await sh("node", [BIN, "new", dir])).toMatchObject({ code: 1, stderr: `dormant: ${dir} is not empty; give dormant new a new or empty folder.\n` });
    await mkdir(join(dir, "x"));
    expect((await sh("node", [BIN, "new", join(dir, "x"), "--template", "rust"])).stderr).toMatch(/--template must be js, ts or wat; got "rust"/);
  });
});
