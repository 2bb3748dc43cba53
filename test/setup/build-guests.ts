// Builds the example guests once before the test files run (each build is cached).
import type { TestProject } from "vitest/node";
import { exampleComponent } from "../../guests/examples.ts";

export default async function setup(project: TestProject): Promise<void> {
  project.provide("guests", {
    counter: await exampleComponent("counter"),
    wat: await exampleComponent("wat-minimal"),
    recorder: await exampleComponent("task-recorder"),
    hostile: await exampleComponent("hostile"),
  });
}

declare module "vitest" {
  export interface ProvidedContext {
    guests: { counter: string; wat: string; recorder: string; hostile: string };
  }
}
