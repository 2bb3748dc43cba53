// Activation quotas against a hostile guest (issue #13, "activation quotas per partition").
// The guest is ready: a push to `<door>/renew` (or `/renew-at`) makes its `renew` task
// re-register itself `after(1)` (or `at(0)`) each time it runs, and `/renewals` counts
// the runs (see guests/hostile/README.md and startHostile in ./hostile.ts).
import { describe, it } from "vitest";

describe("activation quotas", () => {
  it.todo("hold a task that renews itself every 1 ms to the partition's activation rate");
  it.todo("hold a task that renews itself at(0) to the partition's activation rate");
});
