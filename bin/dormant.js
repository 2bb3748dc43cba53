#!/usr/bin/env node
// Dormant is written in TypeScript and runs from source: register tsx's loader, then
// hand over to the CLI.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
