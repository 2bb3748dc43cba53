// `dormant serve` settings: one table (src/options.ts) gives the flags, DORMANT_* variables
// and config-file keys; flags over variables over the file over the defaults.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serveOptions, settings } from "../../src/cli/serve.ts";
import { getPath, optionOf, SERVE_DEFAULTS, SETTINGS } from "../../src/options.ts";

async function configFile(content: unknown): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), "dormant-settings-")), "dormant.json");
  await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

describe("serve settings", () => {
  it("takes a flag over the environment, and the environment over the config file", async () => {
    const file = await configFile({ port: 1111, host: "0.0.0.0", maxLive: 7, tasks: { maxTasks: 10 }, http: { maxBodyBytes: 2048 } });
    const { config } = await settings(["--config", file, "--port", "3333"], { DORMANT_PORT: "2222", DORMANT_HOST: "127.0.0.2", DORMANT_MAX_LIVE: "9" });
    expect(config).toMatchObject({ port: 3333, host: "127.0.0.2", maxLive: 9, tasks: { maxTasks: 10 }, http: { maxBodyBytes: 2048 } });
  });

  it("layers a nested setting the same way: flag, then variable, then file", async () => {
    const file = await configFile({ tasks: { maxTasks: 10, minIntervalMs: 5000 }, http: { pushRate: { perSecond: 5 } } });
    const env = { DORMANT_MAX_TASKS: "20", DORMANT_PUSH_BURST: "7" };
    expect((await settings(["--config", file, "--max-tasks", "30"], env)).config).toMatchObject({
      tasks: { maxTasks: 30, minIntervalMs: 5000 },
      http: { pushRate: { perSecond: 5, burst: 7 } },
    });
    expect((await settings(["--config", file], env)).config).toMatchObject({ tasks: { maxTasks: 20 } });
    expect((await settings(["--config", file], {})).config).toMatchObject({ tasks: { maxTasks: 10 } });
  });

  it("reads every setting from its DORMANT_* variable", async () => {
    const { config } = await settings([], { DORMANT_IDLE_TIMEOUT_MS: "2500", DORMANT_STORE: "redis://127.0.0.1:6379/0", DORMANT_PUSH_RATE: "0.5" });
    expect(config).toEqual({ idleTimeoutMs: 2500, store: "redis://127.0.0.1:6379/0", http: { pushRate: { perSecond: 0.5 } } });
  });

  it("refuses a number that is not one, naming the setting", async () => {
    await expect(settings(["--port", "eighty"], {})).rejects.toThrow(/--port must be a whole number; got "eighty"/);
    await expect(settings([], { DORMANT_CPU_DEADLINE_MS: "-5" })).rejects.toThrow(/DORMANT_CPU_DEADLINE_MS must be a whole number/);
    await expect(settings(["--port", "70000"], {})).rejects.toThrow(/--port must be at most 65535; got "70000"/);
    await expect(settings(["--executors", "0"], {})).rejects.toThrow(/--executors must be at least 1; got "0"/);
  });

  it("says which config file could not be read", async () => {
    await expect(settings(["--config", "/nonexistent/dormant.json"], {})).rejects.toThrow(/Cannot read the config file \/nonexistent\/dormant.json/);
    const broken = await configFile("{ port: 1 }");
    await expect(settings(["--config", broken], {})).rejects.toThrow(`Cannot read the config file ${broken}`);
  });

  it("refuses an unknown config-file key, naming it and the file and suggesting the key meant", async () => {
    const file = await configFile({ port: 1, idleTimeout: 5000 });
    const error = await settings(["--config", file], {}).catch((e: Error) => e);
    expect((error as Error).message).toContain(`Config file ${file}: unknown key "idleTimeout" (did you mean "idleTimeoutMs"?)`);
    expect((error as Error).message).toContain("Valid keys: dataDir, store, port, host, adminPort");
    await expect(settings(["--config", await configFile({ tasks: { maxTask: 1 } })], {})).rejects.toThrow(
      /unknown key "tasks.maxTask" \(did you mean "tasks.maxTasks"\?\)/,
    );
    await expect(settings(["--config", await configFile({ "memory-limit": 64 })], {})).rejects.toThrow(
      /unknown key "memory-limit" \(did you mean "memoryLimitMiB"\?\)/,
    );
  });

  it("refuses a config-file value of the wrong type, naming the key and the file", async () => {
    const file = await configFile({ port: "8080" });
    await expect(settings(["--config", file], {})).rejects.toThrow(`Config file ${file}: "port" must be a whole number; got "8080".`);
    await expect(settings(["--config", await configFile({ tasks: 5 })], {})).rejects.toThrow(/"tasks" must be an object; got 5/);
    await expect(settings(["--config", await configFile({ store: 6379 })], {})).rejects.toThrow(/"store" must be a non-empty string; got 6379/);
    await expect(settings(["--config", await configFile([1])], {})).rejects.toThrow(/must hold a JSON object/);
  });

  it("turns settings into server options over the defaults", async () => {
    const { config } = await settings(["--host", "0.0.0.0", "--memory-limit", "64", "--max-concurrent", "3"], { DORMANT_MAX_BODY_BYTES: "4096" });
    const options = serveOptions(config);
    expect(options).toMatchObject({
      hostname: "0.0.0.0",
      port: SERVE_DEFAULTS.port,
      idleTimeoutMs: SERVE_DEFAULTS.idleTimeoutMs,
      partitionLimits: { ...SERVE_DEFAULTS.partitionLimits, memoryBytes: 64 * 2 ** 20 },
      budget: { ...SERVE_DEFAULTS.budget, maxConcurrent: 3 },
      http: { ...SERVE_DEFAULTS.http, maxBodyBytes: 4096 },
      taskLimits: SERVE_DEFAULTS.taskLimits,
    });
    expect(options.store).toBeUndefined();
    expect(options.executors).toBeUndefined();
  });

  it("gives every setting a distinct flag, variable and key, and a place in the server options", () => {
    const flagged = SETTINGS.filter((s) => s.flag);
    expect(new Set(flagged.map((s) => s.flag)).size).toBe(flagged.length);
    for (const field of ["env", "key"] as const) expect(new Set(SETTINGS.map((s) => s[field])).size).toBe(SETTINGS.length);
    expect(SETTINGS.filter((s) => !s.flag).map((s) => s.key)).toEqual(["metricsToken"]);
    const withoutDefault = SETTINGS.filter((s) => getPath(SERVE_DEFAULTS, optionOf(s)) === undefined).map((s) => [s.key, s.unset]);
    expect(withoutDefault).toEqual([
      ["store", "fs in the data directory"],
      ["metricsToken", "open on the admin port"],
      ["executors", "one per core"],
      ["powerFile", "none"],
      ["cluster", "a single host"],
      ["clusterAdvertise", "the push listener's address"],
    ]);
  });
});
