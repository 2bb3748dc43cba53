import "./preopens.ts";
import { resolve } from "node:path";
import { types } from "@bytecodealliance/jco";

/** Generate the TypeScript types of the `partition` world from the WIT, in memory. */
export async function generateWitTypes(witDir: string): Promise<Map<string, string>> {
  const files = await types(resolve(witDir), {
    worldName: "partition",
    instantiation: "sync",
    name: "partition",
    quiet: true,
  });
  const decoder = new TextDecoder();
  return new Map(Object.entries(files as unknown as Record<string, Uint8Array>).map(([name, bytes]) => [name, decoder.decode(bytes)]));
}
