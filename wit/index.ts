// The WIT types the host speaks, in one place (generated into wit/types by `npm run wit:types`).
export type { TaskEvent } from "./types/interfaces/dormant-host-handler.d.ts";
export type { PushRequest, Reply, Header } from "./types/interfaces/dormant-host-types.d.ts";
export type { ActivationReason } from "./types/interfaces/dormant-host-lifecycle.d.ts";
export type {
  MisfirePolicy,
  RetryPolicy,
  TaskError,
  TaskInfo,
  TaskSpec,
  Trigger,
  WhenConstrained,
} from "./types/interfaces/dormant-host-background-tasks.d.ts";
export type { Level as LogLevel } from "./types/interfaces/dormant-host-log.d.ts";
