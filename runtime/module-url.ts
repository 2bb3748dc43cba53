// The same modules run from the TypeScript sources (tests, tsx) and compiled into dist/
// (the `dormant` command). Module URLs handed to worker threads and files shipped beside
// the sources (wit/, guests/) are found from here, for both layouts.
import { fileURLToPath } from "node:url";

/**
 * The URL of a module next to `base` (pass `import.meta.url`), named by its source path:
 * `moduleUrl("./worker.ts", import.meta.url)` is `worker.ts` from the sources and
 * `worker.js` when the caller itself was compiled to `.js`.
 */
export function moduleUrl(specifier: string, base: string): URL {
  const url = new URL(specifier, base);
  if (isCompiled(base) && url.pathname.endsWith(".ts")) url.pathname = `${url.pathname.slice(0, -3)}.js`;
  return url;
}

/** True for a module compiled into dist/, false for one run from its `.ts` source. */
export function isCompiled(moduleUrl: string | URL): boolean {
  return new URL(moduleUrl).pathname.endsWith(".js");
}

/** The package's root directory (holding package.json, wit/, guests/): dist/ sits inside it. */
export const PACKAGE_ROOT = fileURLToPath(new URL(isCompiled(import.meta.url) ? "../.." : "..", import.meta.url));
