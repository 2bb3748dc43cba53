// Staging folders that a failed or killed deploy left in the engine cache are removed at
// start; a live process's are not.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testHosts } from "../support/host.ts";

const hosts = testHosts();

describe("staging folders", () => {
  it("removes at start those whose writer is gone, and keeps a running writer's", async () => {
    const cache = await mkdtemp(join(tmpdir(), "dormant-cache-"));
    const gone = spawnSync("true").pid!; // a process that has exited
    const left = `${"a".repeat(64)}.${gone}.0123456789ab.tmp`;
    const writing = `${"b".repeat(64)}.${process.pid}.0123456789ab.tmp`;
    for (const name of [left, writing]) {
      await mkdir(join(cache, name));
      await writeFile(join(cache, name, "core.wasm"), new Uint8Array(1024));
    }
    await hosts.start({ engineCacheDir: cache });
    expect(await readdir(cache)).toEqual([writing]);
  });
});
