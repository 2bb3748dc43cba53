import { readdir, readFile } from "node:fs/promises";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { generateWitTypes } from "../../runtime/toolchain/wit-types.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && /\.(ts|js|mjs)$/.test(e.name)).map((e) => relative(root, join(e.parentPath, e.name)));
}

/** The relative imports of a file, resolved to repository paths. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(join(root, file), "utf8");
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.[^"']+)["']/g)].map((m) => m[1]!);
  return specifiers.map((spec) => normalize(join(dirname(file), spec)));
}

/** [files, import that is refused, why]: each boundary of the architecture, as a rule. */
const RULES: [from: RegExp, refused: RegExp, why: string][] = [
  [/^src\/partitions\//, /^src\/(tasks|delivery)\//, "the lifecycle knows nothing about tasks or their delivery"],
  [/^src\/delivery\//, /^src\/(tasks|partitions)\//, "delivery is generic over what it delivers and where"],
  [/^src\/scheduler\//, /^src\/(?!scheduler\/)/, "the timer loop and its queue know nothing above them"],
  [/^src\/(components|store|budget)\//, /^src\/(tasks|delivery|partitions|http|serve|cli)\//, "storage, components and the budget sit below the services"],
  [/^src\/http\//, /^runtime\/executor\//, "HTTP talks to services, not to the executor protocol"],
  [
    /^src\/cluster\//,
    /^src\/(tasks|delivery|partitions|http|serve|cli)\//,
    "membership and leases reach the lifecycle only through ShardOwner, which host.ts implements",
  ],
  [
    /^src\/tasks\/executor\//,
    /^(?!src\/tasks\/(executor\/|task\.ts|schedule\.ts|validate\.ts|limits\.ts)|wit\/|runtime\/index\.ts)/,
    "runs in executor threads: only the pure task modules",
  ],
  [/^src\//, /^runtime\/(?!index\.ts)/, "the runtime's face is runtime/index.ts"],
  [/^src\/(?!testing\/)/, /^src\/(testing\/|index\.ts$)/, "the package entry and the test kit sit on top: the host's own parts never depend on them"],
];

describe("boundaries", () => {
  it.each(RULES)("keeps %s from importing %s: %s", async (from, refused) => {
    const offenders: string[] = [];
    for (const file of (await sources("src")).filter((f) => from.test(f))) {
      for (const target of await importsOf(file)) if (refused.test(target)) offenders.push(`${file} → ${target}`);
    }
    expect(offenders).toEqual([]);
  });

  it("has no cycles between the folders of src/", async () => {
    // A file at the top of src/ (host.ts, options.ts, events.ts) is a node of its own.
    const folderOf = (file: string) => (dirname(file) === "src" ? file : dirname(file).split("/").slice(0, 2).join("/"));
    const edges = new Map<string, Set<string>>();
    for (const file of await sources("src")) {
      for (const target of await importsOf(file)) {
        if (!target.startsWith("src/") || folderOf(target) === folderOf(file)) continue;
        if (!edges.has(folderOf(file))) edges.set(folderOf(file), new Set());
        edges.get(folderOf(file))!.add(folderOf(target));
      }
    }
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      if (path.includes(node)) return void cycles.push([...path.slice(path.indexOf(node)), node].join(" → "));
      for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    };
    for (const node of edges.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });

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
