import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildComponent, DEFAULT_JS_ENGINE, jsEngine, PACKAGE_ROOT } from "../../runtime/index.ts";

const HELP = `Usage: dormant build <entry.js|.mjs|.ts|.mts|.wat> -o <out.wasm> [--engine quickjs|starlingmonkey] [--wit DIR]

Builds a WebAssembly component for the dormant:host/partition world, offline.
JS and TS guests are bundled and componentized with a JS engine, with WASI stubbed out:
a guest reaches the host only through dormant:host. WAT guests are assembled and wrapped.

Options:
  -o, --out FILE     Where to write the component (required)
  --engine NAME      The JS engine for a .js/.ts guest (default ${DEFAULT_JS_ENGINE}):
                       quickjs         1.7 MB, light and fast to wake; no clock, no Web APIs
                                       beyond TextEncoder/TextDecoder, console and atob/btoa
                       starlingmonkey  12.6 MB; URL, crypto, Date.now() and the other Web APIs
                     A guest that uses an API its engine lacks is refused, naming the API.
  --wit DIR          The WIT folder (default: the one shipped with Dormant)`;

const DEFAULT_WIT = join(PACKAGE_ROOT, "wit");

export async function build(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string", short: "o" }, wit: { type: "string" }, engine: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return void console.log(HELP);
  const entry = positionals[0];
  if (!entry || !values.out) throw new Error(`build needs an entry file and -o <out.wasm>.\n\n${HELP}`);
  const engine = values.engine === undefined ? undefined : jsEngine(values.engine);
  const started = performance.now();
  const bytes = await buildComponent(entry, {
    witDir: values.wit ?? DEFAULT_WIT,
    engine,
    onWarning: (message) => console.error(`warning: ${message}`),
  });
  await writeFile(values.out, bytes);
  console.log(`built ${values.out}: ${bytes.length} bytes in ${Math.round(performance.now() - started)} ms`);
}
