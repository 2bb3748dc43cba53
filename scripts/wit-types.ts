// Writes wit/types/: the TypeScript types of the `partition` world, generated from the
// WIT by jco. Run after editing the WIT (`npm run wit:types`); a test fails while the
// committed types lag behind the WIT.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateWitTypes } from "../runtime/toolchain/wit-types.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "wit", "types");
const files = await generateWitTypes(join(root, "wit"));
await rm(outDir, { recursive: true, force: true });
for (const [name, text] of files) {
  const path = join(outDir, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}
console.log(`wrote ${files.size} files to ${outDir}`);
