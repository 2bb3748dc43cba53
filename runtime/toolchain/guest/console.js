// `console` for guests: lines go to the host's log (neither engine has stdio in a Dormant guest).
import { log } from "dormant:host/log@0.1.0";

function text(args) {
  return args.map((value) => (typeof value === "string" ? value : show(value))).join(" ");
}

function show(value) {
  if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
  try {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

const at =
  (level) =>
  (...args) =>
    log(level, text(args));

export const console = { log: at("info"), info: at("info"), debug: at("debug"), trace: at("trace"), warn: at("warn"), error: at("error") };
