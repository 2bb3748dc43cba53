import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { generateWitTypes } from "../../runtime/toolchain/wit-types.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && /\.(ts|js|mjs)$/.test(e.name)).map((e) => relative(root, join(e.parentPath, e.name)));
}

describe("boundaries", () => {
  it("lets only runtime/ import jco and componentize-js", async () => {
    const offenders: string[] = [];
    for (const dir of ["src", "guests", "bench", "bin", "scripts"]) {
      for (const file of await sources(dir)) {
        const text = await readFile(join(root, file), "utf8");
        if (/from\s+["']@bytecodealliance\//.test(text) || /import\(["']@bytecodealliance\//.test(text)) offenders.push(file);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("keeps the committed WIT types in step with the WIT", async () => {
    const generated = await generateWitTypes(join(root, "wit"));
    for (const [name, text] of generated) {
      expect(await readFile(join(root, "wit", "types", name), "utf8"), `wit/types/${name} is stale: run npm run wit:types`).toBe(text);
    }
  });
});
