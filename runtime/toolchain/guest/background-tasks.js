// What a guest's import of dormant:host/background-tasks resolves to (see edge.js).
import * as host from "dormant:host/background-tasks@0.1.0";
import { infoIn, specOut } from "./edge.js";

export function register(spec) {
  return infoIn(host.register(specOut(spec)));
}

export function cancel(name) {
  return host.cancel(name);
}

export function list() {
  return host.list().map(infoIn);
}

// QuickJS guests may import the interface as a default object; StarlingMonkey ones can too, through this module.
export default { register, cancel, list };
