import "./preopens.ts";
import { resolve } from "node:path";
import { types } from "@bytecodealliance/jco";
import { GUEST_GLOBALS, guestDeclarations } from "./guest-types.ts";

/**
 * Generate the TypeScript types of the `partition-with-handover` world (the `partition` world and the optional `handover` export) from the WIT, in memory: jco's
 * (the host's view), and `guest.d.ts` and `guest-globals.d.ts` (a guest's view).
 */
export async function generateWitTypes(witDir: string): Promise<Map<string, string>> {
  const files = await types(resolve(witDir), {
    worldName: "partition-with-handover",
    instantiation: "sync",
    name: "partition",
    quiet: true,
  });
  const decoder = new TextDecoder();
  const generated = new Map(Object.entries(files as unknown as Record<string, Uint8Array>).map(([name, bytes]) => [name, decoder.decode(bytes)]));
  generated.set("guest.d.ts", guestDeclarations(generated));
  generated.set("guest-globals.d.ts", GUEST_GLOBALS);
  return generated;
}
