// Builds the example guests once before the test files run (each build is cached): every
// JS example on both engines, named `<guest>` (StarlingMonkey) and `<guest>-qjs` (QuickJS).
import type { TestProject } from "vitest/node";
import { exampleComponent } from "../../guests/examples.ts";

export type GuestFlavour = "counter" | "counter-qjs" | "counter-v2" | "counter-v2-qjs" | "recorder" | "recorder-qjs" | "wat" | "refuses-upgrade" | "hostile";

export default async function setup(project: TestProject): Promise<void> {
  const guests: Record<GuestFlavour, string> = {
    counter: await exampleComponent("counter", { engine: "starlingmonkey" }),
    "counter-qjs": await exampleComponent("counter", { engine: "quickjs" }),
    "counter-v2": await exampleComponent("counter-v2", { engine: "starlingmonkey" }),
    "counter-v2-qjs": await exampleComponent("counter-v2", { engine: "quickjs" }),
    recorder: await exampleComponent("task-recorder", { engine: "starlingmonkey" }),
    "recorder-qjs": await exampleComponent("task-recorder", { engine: "quickjs" }),
    wat: await exampleComponent("wat-minimal"),
    "refuses-upgrade": await exampleComponent("wat-refuses-upgrade"),
    hostile: await exampleComponent("hostile", { engine: "starlingmonkey" }),
  };
  project.provide("guests", guests);
}

declare module "vitest" {
  export interface ProvidedContext {
    guests: Record<GuestFlavour, string>;
  }
}
