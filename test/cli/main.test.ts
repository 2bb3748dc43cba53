// The `dormant` command itself, as users run it: bin/dormant.js on the compiled dist/
// (test/setup/build-dist.ts builds it before the tests).
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../../src/options.ts";
import { BIN } from "../support/serve-process.ts";

/** Runs `dormant …`; resolves with its exit code and output, whatever the code. */
function dormant(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("node", [BIN, ...args], (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

describe("dormant", () => {
  it("prints its usage and exits 0 with --help", async () => {
    const { code, stdout } = await dormant("--help");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: dormant <command> \[options\]/);
    for (const command of ["serve", "new", "build", "demo", "deploy", "activate", "ps", "tasks", "fire", "freeze", "rm", "dead-letters", "components"])
      expect(stdout).toContain(`  ${command} `);
  });

  it("prints the usage to stderr and exits 2 when given no command", async () => {
    const { code, stdout, stderr } = await dormant();
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^Usage: dormant/);
  });

  it("names an unknown command and exits 2", async () => {
    const { code, stderr } = await dormant("srve");
    expect(code).toBe(2);
    expect(stderr).toMatch(/^dormant: unknown command 'srve'/);
  });

  it("exits 2 on an unknown option", async () => {
    const { code, stderr } = await dormant("ps", "--colour");
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--colour'");
  });

  it("prints the version from package.json with --version", async () => {
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };
    expect(await dormant("--version")).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  it("lists every serve setting with its flag, variable, config key and default in serve --help", async () => {
    const { code, stdout } = await dormant("help", "serve");
    expect(code).toBe(0);
    for (const s of SETTINGS) {
      const flag = s.flag ? `--${s.flag} ${s.kind.arg}` : "\\(no flag\\)";
      expect(stdout).toMatch(new RegExp(`${flag} .*\\(default .+\\) \\[${s.env}, ${s.key.replaceAll(".", "\\.")}\\]`));
    }
  });

  it("refuses a bad setting before starting anything, naming it", async () => {
    const { code, stderr } = await dormant("serve", "--idle-timeout", "soon");
    expect(code).toBe(1);
    expect(stderr).toBe('dormant: --idle-timeout must be a whole number; got "soon".\n');
  });
});
