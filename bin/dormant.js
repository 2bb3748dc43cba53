#!/usr/bin/env node
// Dormant is written in TypeScript and compiled into dist/ by `npm install` (its prepare
// script) or `npm run build`; this runs the compiled CLI.
import { access } from "node:fs/promises";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
try {
  await access(main);
} catch {
  console.error("dormant: the compiled CLI (dist/) is missing: run npm install (or npm run build) in the Dormant checkout.");
  process.exit(1);
}
await import(main.href);
