// The engine contract, for every engine implementation and every guest flavour: the
// WAT guest, and the counter built with each JS engine. Engines are created from their
// module, as executors create them.
import { readFile } from "node:fs/promises";
import { inject } from "vitest";
import type { EngineModule, GuestExports } from "../../runtime/engine.ts";
import { bodyText, event, JCO_ENGINE } from "../support/runtime.ts";
import { engineContract, type ContractGuest } from "./engine-contract.ts";

const guests = inject("guests");

function reply(exports: GuestExports, entry: string): string {
  const reply = exports.handler.onTask(event(entry));
  return bodyText(reply?.body);
}

const GUESTS: ContractGuest[] = [
  { name: "WAT", bytes: () => readFile(guests.wat), step: (exports) => Number(reply(exports, "tick")) },
  { name: "StarlingMonkey JS", bytes: () => readFile(guests.counter), step: (exports) => JSON.parse(reply(exports, "push")).count },
  { name: "QuickJS JS", bytes: () => readFile(guests["counter-qjs"]), step: (exports) => JSON.parse(reply(exports, "push")).count },
];

const ENGINES = [{ name: "jco on V8", module: JCO_ENGINE }];

for (const { name, module } of ENGINES) {
  const { createEngine } = (await import(module.href)) as EngineModule;
  engineContract(name, (cacheDir) => createEngine({ cacheDir }), GUESTS);
}
