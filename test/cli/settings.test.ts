// `dormant serve` settings: flags over DORMANT_* variables over the config file.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { settings } from "../../src/cli/serve.ts";

describe("serve settings", () => {
  it("takes a flag over the environment, and the environment over the config file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-settings-"));
    const file = join(dir, "dormant.json");
    await writeFile(file, JSON.stringify({ port: 1111, host: "0.0.0.0", maxLive: 7, tasks: { maxTasks: 10 }, http: { maxBodyBytes: 2048 } }));
    const { config } = await settings(["--config", file, "--port", "3333"], { DORMANT_PORT: "2222", DORMANT_HOST: "127.0.0.2", DORMANT_MAX_LIVE: "9" });
    expect(config).toMatchObject({ port: 3333, host: "127.0.0.2", maxLive: 9, tasks: { maxTasks: 10 }, http: { maxBodyBytes: 2048 } });
  });

  it("takes the admin port, its address and host names, proxy trust and the metrics token", async () => {
    const flags = ["--admin-port", "9001", "--admin-hostnames", "admin.example.com, ops.example.com", "--trust-proxy"];
    const { config } = await settings(flags, { DORMANT_ADMIN_HOST: "10.0.0.2", DORMANT_METRICS_TOKEN: "m" });
    const hostnames = ["admin.example.com", "ops.example.com"];
    expect(config).toMatchObject({ adminPort: 9001, adminHost: "10.0.0.2", adminHostnames: hostnames, trustProxy: true, metricsToken: "m" });
    expect((await settings([], { DORMANT_TRUST_PROXY: "0" })).config.trustProxy).toBe(false);
  });

  it("refuses a number that is not one, naming the setting", async () => {
    await expect(settings(["--port", "eighty"], {})).rejects.toThrow(/--port must be a whole number; got "eighty"/);
    await expect(settings([], { DORMANT_CPU_DEADLINE_MS: "-5" })).rejects.toThrow(/DORMANT_CPU_DEADLINE_MS must be a whole number/);
  });

  it("says which config file could not be read", async () => {
    await expect(settings(["--config", "/nonexistent/dormant.json"], {})).rejects.toThrow(/Cannot read the config file \/nonexistent\/dormant.json/);
  });
});
