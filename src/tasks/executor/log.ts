// The `log` import: a guest's lines go to the host's log, attributed to its partition.
import type { LogLevel } from "../../../wit/index.ts";

const MAX_LOG_MESSAGE = 8 * 1024;

export function log(write: (level: LogLevel, message: string) => void) {
  return {
    log(level: LogLevel, message: string): void {
      write(level, message.length > MAX_LOG_MESSAGE ? `${message.slice(0, MAX_LOG_MESSAGE)}… (${message.length} characters)` : message);
    },
  };
}
