import { DormantError } from "./errors.ts";

/** The imports a partition may use: the `dormant:host` world provides these and nothing else. */
export const WORLD_IMPORTS = ["dormant:host/background-tasks", "dormant:host/log"] as const;
/** The exports every partition must provide (world `partition-with-handover` adds `handover`). */
export const WORLD_EXPORTS = ["dormant:host/handler@0.1.0", "dormant:host/lifecycle@0.1.0"] as const;

/** An interface name without its version: `dormant:host/log@0.1.0` → `dormant:host/log`. */
export function unversioned(name: string): string {
  return name.replace(/@[^/]*$/, "");
}

/** Check a component's imports and exports (as the engine reports them) against the `partition` world. */
export function assertPartitionWorld(imports: readonly string[], exports: readonly string[]): void {
  const extra = imports.filter((name) => !(WORLD_IMPORTS as readonly string[]).includes(unversioned(name)));
  const missing = WORLD_EXPORTS.filter((name) => !exports.includes(name));
  const problems: string[] = [];
  if (extra.length > 0) {
    problems.push(
      `it imports ${extra.join(", ")}, which the partition world does not provide (a partition reaches the host only through ${WORLD_IMPORTS.join(" and ")})`,
    );
  }
  if (missing.length > 0) {
    const seen = exports.filter((name) => name.includes(":")).join(", ") || "no interfaces";
    problems.push(`it does not export ${missing.join(" and ")} (it exports ${seen})`);
  }
  if (problems.length > 0) {
    throw new DormantError(
      "invalid-component",
      `The component does not target the dormant:host/partition@0.1.0 world: ${problems.join("; ")}. ` +
        "Build it against the WIT in wit/ with `dormant build`, which also disables WASI.",
    );
  }
}
