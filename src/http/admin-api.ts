// The admin API under /api: deploy components, manage partitions, look at and fire tasks,
// retry dead letters, and set the activation budget. JSON in and out; every validation
// error is a 400 naming the field.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ComponentError } from "../../runtime/index.ts";
import { BudgetError, type BudgetState } from "../budget/budget.ts";
import type { Host } from "../host.ts";
import type { Activity } from "../observability/activity.ts";
import { UnknownComponentError } from "../components/registry.ts";
import { UnknownPartitionError } from "../partitions/manager.ts";
import type { Durability, PartitionLimits, PartitionRecord, RegistrationMode } from "../partitions/partition.ts";
import { UnknownTaskError } from "../tasks/service.ts";
import { pushPath, type TaskRecord } from "../tasks/task.ts";
import { problem } from "./errors.ts";

export interface AdminOptions {
  maxComponentBytes: number;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

class FieldError extends Error {}

function field<T>(body: Record<string, unknown>, name: string, check: (value: unknown) => value is T, expected: string, fallback?: T): T {
  const value = body[name];
  if (value === undefined && fallback !== undefined) return fallback;
  if (!check(value)) throw new FieldError(`Field "${name}" must be ${expected}; got ${JSON.stringify(value) ?? "nothing"}.`);
  return value;
}

const isName = (v: unknown): v is string => typeof v === "string" && NAME.test(v);
const isDigest = (v: unknown): v is string => typeof v === "string" && /^sha256:[0-9a-f]{64}$/.test(v);
const isMode = (v: unknown): v is RegistrationMode => v === "host" || v === "guest";
const LIMIT_RANGES: Record<keyof PartitionLimits, [number, number]> = {
  cpuDeadlineMs: [1, 600_000],
  memoryBytes: [2 ** 20, 2 ** 32],
  snapshotBytes: [1024, 2 ** 30],
};
const isLimits = (v: unknown): v is Partial<PartitionLimits> =>
  typeof v === "object" && v !== null && !Array.isArray(v) &&
  Object.entries(v).every(([key, value]) => {
    const range = LIMIT_RANGES[key as keyof PartitionLimits];
    return range !== undefined && Number.isInteger(value) && (value as number) >= range[0] && (value as number) <= range[1];
  });
const isDurability = (v: unknown): v is Durability => v === "on-idle" || v === "per-activation";

export function taskJson(task: TaskRecord) {
  return {
    id: task.id,
    partition: task.partition,
    name: task.name,
    trigger: task.trigger.tag === "cron" ? { cron: task.trigger.val.expression, timezone: task.trigger.val.timezone ?? "UTC" } : task.trigger.tag === "push" ? { push: true } : { [task.trigger.tag]: task.trigger.val },
    entry: task.entry,
    priority: task.priority,
    outlivePartition: task.outlivePartition,
    nextFire: task.nextFire ?? null,
    pushUrl: task.pushToken === undefined ? null : pushPath(task.pushToken),
    orphaned: task.provision !== undefined,
  };
}

export function adminRoutes(host: Host, activity: Activity, options: AdminOptions): Hono {
  const api = new Hono();
  const { partitions, tasks, registry, components, deliveries } = host;

  const partitionJson = async (record: PartitionRecord, detail: boolean) => {
    const base = { ...record, state: partitions.stateOf(record.id), snapshotBytes: (await host.snapshots.head(record.id))?.latest.bytes ?? 0 };
    if (!detail) return base;
    return { ...base, ...activity.of(record.id), tasks: registry.tasksOf(record.id).map(taskJson) };
  };

  api.onError((error, c) => {
    if (error instanceof FieldError) return problem(c, 400, "invalid-field", error.message);
    if (error instanceof ComponentError) return problem(c, 400, "invalid-component", error.message);
    if (error instanceof UnknownComponentError) return problem(c, 400, "unknown-component", error.message);
    if (error instanceof BudgetError) return problem(c, 400, "invalid-field", error.message);
    if (error instanceof UnknownPartitionError) return problem(c, 404, "unknown-partition", error.message);
    if (error instanceof UnknownTaskError) return problem(c, 404, "unknown-task", error.message);
    if (error instanceof SyntaxError) return problem(c, 400, "invalid-json", `The body is not valid JSON: ${error.message}`);
    return problem(c, 500, "internal", `${error.name}: ${error.message}`);
  });

  const json = async (request: Request): Promise<Record<string, unknown>> => {
    const body: unknown = await request.json();
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new FieldError("The body must be a JSON object.");
    return body as Record<string, unknown>;
  };

  api.post(
    "/components",
    bodyLimit({ maxSize: options.maxComponentBytes, onError: (c) => problem(c, 413, "body-too-large", `Components are limited to ${options.maxComponentBytes} bytes.`) }),
    async (c) => {
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      if (bytes.length === 0) throw new FieldError("The body must be the component's wasm bytes (Content-Type: application/wasm).");
      const prepared = await components.add(bytes);
      return c.json({ digest: prepared.digest, bytes: prepared.bytes }, 201);
    },
  );
  api.get("/components", async (c) => c.json({ components: (await components.list()).map((digest) => ({ digest })) }));

  api.post("/partitions", async (c) => {
    const body = await json(c.req.raw);
    const record = await partitions.create({
      name: field(body, "name", isName, "1 to 64 characters from a-z A-Z 0-9 . _ -"),
      component: field(body, "component", isDigest, 'a component digest like "sha256:<64 hex>" from POST /api/components'),
      registrations: field(body, "registrations", isMode, '"host" or "guest"', "host" as RegistrationMode),
      durability: field(body, "durability", isDurability, '"on-idle" or "per-activation"', "on-idle" as Durability),
      limits: field(body, "limits", isLimits, "an object with any of cpuDeadlineMs (1-600000), memoryBytes (1 MiB-4 GiB), snapshotBytes (1 KiB-1 GiB)", {}),
    });
    return c.json(await partitionJson(record, true), 201);
  });
  api.get("/partitions", async (c) => c.json({ partitions: await Promise.all(partitions.list().map((record) => partitionJson(record, false))) }));
  api.get("/partitions/:id", async (c) => c.json(await partitionJson(partitions.get(c.req.param("id")), true)));
  api.delete("/partitions/:id", async (c) => {
    await partitions.delete(c.req.param("id"));
    activity.forget(c.req.param("id"));
    return c.body(null, 204);
  });
  api.post("/partitions/:id/freeze", async (c) => {
    await partitions.freeze(c.req.param("id"));
    return c.json(await partitionJson(partitions.get(c.req.param("id")), false));
  });
  api.post("/partitions/:id/activate", async (c) => {
    const kind = await partitions.activate(c.req.param("id"));
    return c.json({ kind, ...(await partitionJson(partitions.get(c.req.param("id")), false)) });
  });

  api.get("/tasks", (c) => {
    const partition = c.req.query("partition");
    const list = partition === undefined ? registry.all() : registry.tasksOf(partition);
    return c.json({ tasks: list.map(taskJson) });
  });
  api.post("/tasks/:id/fire", async (c) => c.json({ delivery: await tasks.fireNow(c.req.param("id")) }, 202));

  api.get("/dead-letters", async (c) =>
    c.json({
      deadLetters: (await deliveries.deadLetters()).map((letter) => ({
        id: letter.id, kind: letter.kind, task: letter.taskId, name: letter.taskName, partition: letter.partition,
        scheduledAt: letter.scheduledAt, attempts: letter.attempts, lastError: letter.lastError, deadAt: letter.deadAt,
      })),
    }),
  );
  api.post("/dead-letters/:id/retry", async (c) => {
    if (!(await deliveries.retryDeadLetter(c.req.param("id")))) return problem(c, 404, "unknown-dead-letter", "No dead letter has this id; list them with GET /api/dead-letters.");
    return c.json({ retrying: c.req.param("id") }, 202);
  });

  api.get("/budget", (c) => c.json(budgetJson(host)));
  api.put("/budget", async (c) => {
    const body = await json(c.req.raw);
    const change: Partial<BudgetState> = {};
    for (const key of Object.keys(body)) {
      if (key !== "constrained" && key !== "threshold" && key !== "maxConcurrent") throw new FieldError(`Unknown field "${key}"; the budget has constrained, threshold and maxConcurrent.`);
    }
    if (body.constrained !== undefined) change.constrained = body.constrained as boolean;
    if (body.threshold !== undefined) change.threshold = body.threshold as number;
    if (body.maxConcurrent !== undefined) change.maxConcurrent = body.maxConcurrent as number;
    host.budget.set(change);
    return c.json(budgetJson(host));
  });
  return api;
}

function budgetJson(host: Host) {
  return { ...host.budget.state, running: host.budget.running, waiting: host.budget.waiting, postponedNow: host.deliveries.postponedCount, postponed: host.deliveries.stats.postponed, dropped: host.deliveries.stats.dropped };
}
