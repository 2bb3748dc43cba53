// `dormant logs`: a partition's recent guest log lines by id or name, and --follow printing
// new ones as they come. Runs bin/dormant.js against a server in this process.
import { execFile, spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BIN } from "../support/serve-process.ts";
import { testServers, type TestServer } from "../support/server.ts";

const server = testServers();

const envOf = (s: TestServer) => ({ ...process.env, DORMANT_URL: s.adminUrl, DORMANT_ADMIN_TOKEN: s.adminToken });

function dormant(s: TestServer, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("node", [BIN, ...args], { env: envOf(s) }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

async function activeCounter(s: TestServer): Promise<string> {
  const id = await s.deploy("counter");
  await s.api("POST", `/api/partitions/${id}/activate`);
  return id;
}

describe("dormant logs", () => {
  it("prints a partition's recent guest log lines with time and level, by name", async () => {
    const s = await server();
    await activeCounter(s);
    const { code, stdout } = await dormant(s, "logs", "counter");
    expect(code).toBe(0);
    expect(stdout).toBe(`${new Date(s.now.value).toISOString()}  info   counter activated (fresh), count=0\n`);
  });

  it("says what is wrong with an unknown partition", async () => {
    const s = await server();
    const { code, stderr } = await dormant(s, "logs", "nobody");
    expect(code).toBe(1);
    expect(stderr).toMatch(/404: No partition is named "nobody"/);
  });

  it("follows: prints new lines as the guest writes them", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const child = spawn("node", [BIN, "logs", id, "--follow"], { env: envOf(s) });
    try {
      let out = "";
      let waiting: (() => void) | undefined;
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        waiting?.();
      });
      const seen = (text: string) =>
        new Promise<void>((resolve) => {
          waiting = () => out.includes(text) && resolve();
          waiting();
        });
      await seen("counter activated (fresh)");
      await s.api("POST", `/api/partitions/${id}/freeze`);
      await s.api("POST", `/api/partitions/${id}/activate`);
      await seen("counter activated (restored)");
      expect(out.match(/counter activated/g)).toHaveLength(2);
    } finally {
      child.kill();
    }
  });
});
