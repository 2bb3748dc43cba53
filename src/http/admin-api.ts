// The admin API under /api: deploy components, manage (and upgrade) partitions, look at and fire tasks,
// retry dead letters, and set the activation budget. JSON in and out; every validation
// error is a 400 naming the field. Input is checked before it reaches the host: body
// sizes, content types, numeric ranges, and the shape of every id (ids become store keys).
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type BudgetState } from "../budget/budget.ts";
import type { Host } from "../host.ts";
import { visibleState, type Activity } from "../observability/activity.ts";
import type { Durability, PartitionLimits, PartitionRecord, RegistrationMode } from "../partitions/partition.ts";
import { pushPath, type TaskRecord } from "../tasks/task.ts";
import { errorResponse, problem } from "./errors.ts";
import { DormantError } from "../../runtime/index.ts";

export interface AdminOptions {
  maxComponentBytes: number;
  /** The push origin (http://host:port), to give tasks their full push URL. */
  pushOrigin?: string | undefined;
}

/** Starts with a letter or digit, so `.` and `..` are not names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Ids the host mints: a kind letter, `_`, base64url; a timer delivery adds `@<due time>`. */
export const ID = {
  partition: /^p_[A-Za-z0-9_-]{1,64}$/,
  task: /^t_[A-Za-z0-9_-]{1,64}$/,
  deadLetter: /^[et]_[A-Za-z0-9_-]{1,64}(@\d{1,16})?(\.p_[A-Za-z0-9_-]{1,64})?$/,
};
/** Every JSON body and anything sent to a route that takes none. */
const MAX_JSON_BYTES = 64 * 1024;
const MAX_CONCURRENT = 10_000;
/** How long `fire?wait` waits for the first attempt. */
const FIRE_WAIT_MS = 10_000;

/** A field of an admin request that is missing or wrong. */
const fieldError = (message: string) => new DormantError("invalid-field", message);

function field<T>(body: Record<string, unknown>, name: string, check: (value: unknown) => value is T, expected: string, fallback?: T): T {
  const value = body[name];
  if (value === undefined && fallback !== undefined) return fallback;
  if (!check(value)) throw fieldError(`Field "${name}" must be ${expected}; got ${JSON.stringify(value) ?? "nothing"}.`);
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
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  Object.entries(v).every(([key, value]) => {
    const range = LIMIT_RANGES[key as keyof PartitionLimits];
    return range !== undefined && Number.isInteger(value) && (value as number) >= range[0] && (value as number) <= range[1];
  });
const isDurability = (v: unknown): v is Durability => v === "on-idle" || v === "per-activation";
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isIntIn =
  (min: number, max: number) =>
  (v: unknown): v is number =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

const ID_HINT = { task: ["task", "t_…", "tasks"], deadLetter: ["dead-letter", "e_…", "dead-letters"] } as const;

/** A path parameter that must look like an id of this kind before anything looks it up. */
function idParam(c: Context, kind: keyof typeof ID_HINT): string {
  const id = c.req.param("id") ?? "";
  const [name, shape, list] = ID_HINT[kind];
  if (!ID[kind].test(id)) {
    throw fieldError(`${JSON.stringify(id.slice(0, 80))} is not a ${name} id; ids look like ${shape} (list them with GET /api/${list}).`);
  }
  return id;
}

/** A whole-number query parameter within a range, or the fallback when absent. */
function queryInt(c: Context, name: string, min: number, max: number, fallback: number): number {
  const given = c.req.query(name);
  if (given === undefined) return fallback;
  const value = Number(given);
  if (!/^\d+$/.test(given) || value < min || value > max)
    throw fieldError(`Query "${name}" must be a whole number from ${min} to ${max}; got ${JSON.stringify(given.slice(0, 40))}.`);
  return value;
}

function allowOnly(body: Record<string, unknown>, fields: string[], what: string): void {
  const unknown = Object.keys(body).find((key) => !fields.includes(key));
  if (unknown !== undefined) throw fieldError(`Unknown field ${JSON.stringify(unknown)}; ${what} has ${fields.join(", ")}.`);
}

function contentType(type: string): MiddlewareHandler {
  const pattern = new RegExp(`^${type.replace("/", "\\/")}\\s*(;|$)`, "i");
  return async (c, next) => {
    if (pattern.test(c.req.header("content-type") ?? "")) return next();
    return problem(c, 415, "unsupported-media-type", `Send this with Content-Type: ${type}; got ${JSON.stringify(c.req.header("content-type") ?? "none")}.`);
  };
}

function triggerJson(trigger: TaskRecord["trigger"]) {
  if (trigger.tag === "cron") return { cron: trigger.val.expression, timezone: trigger.val.timezone ?? "UTC" };
  return trigger.tag === "push" ? { push: true } : { [trigger.tag]: Number(trigger.val) };
}

export function taskJson(task: TaskRecord, pushOrigin?: string) {
  const push = task.pushToken === undefined ? null : pushPath(task.pushToken);
  return {
    id: task.id,
    partition: task.partition,
    name: task.name,
    trigger: triggerJson(task.trigger),
    entry: task.entry,
    priority: task.priority,
    outlivePartition: task.outlivePartition,
    nextFire: task.nextFire ?? null,
    pushUrl: push,
    ...(pushOrigin ? { absolutePushUrl: push && `${pushOrigin}${push}` } : {}),
    orphaned: task.provision !== undefined,
  };
}

export function adminRoutes(host: Host, activity: Activity, options: AdminOptions): Hono {
  const api = new Hono();
  const { partitions, tasks, registry, components, deliveries, snapshots } = host;

  const tasksJson = (list: TaskRecord[]) => list.map((task) => taskJson(task, options.pushOrigin));
  const partitionJson = async (record: PartitionRecord, detail: boolean) => {
    const seen = activity.of(record.id);
    const base = {
      ...record,
      state: visibleState(partitions.stateOf(record.id), seen),
      snapshotBytes: (await snapshots.head(record.id))?.latest.bytes ?? 0,
      ...(seen.activationError ? { activationError: seen.activationError } : {}),
    };
    if (!detail) return base;
    return { ...base, ...seen, tasks: tasksJson(registry.tasksOf(record.id)) };
  };

  /** A partition named by its id or, where no id is given, by its name (which must be unique). */
  const resolvePartition = (given: string, where: string): string => {
    if (ID.partition.test(given)) return given;
    // Anything shaped like an id is taken as one, so a name never shadows an id.
    if (given.startsWith("p_") || !NAME.test(given)) {
      throw fieldError(`${where}: ${JSON.stringify(given.slice(0, 80))} is not a partition id (p_…) nor a partition name; list them with GET /api/partitions.`);
    }
    const named = partitions.list().filter((p) => p.name === given);
    if (named.length === 1) return named[0]!.id;
    if (named.length === 0) throw new DormantError("unknown-partition", `No partition is named ${JSON.stringify(given)}; list them with GET /api/partitions.`);
    throw fieldError(`${named.length} partitions are named ${JSON.stringify(given)} (${named.map((p) => p.id).join(", ")}); give the id instead.`);
  };
  const partitionParam = (c: Context) => resolvePartition(c.req.param("id") ?? "", "Path");

  /** Activate a partition; a failure is answered with its cause and the partition as it now is. */
  const activateAnswer = async (c: Context, id: string, created: boolean) => {
    try {
      const kind = await partitions.activate(id);
      return c.json({ kind, ...(await partitionJson(partitions.get(id), true)) }, created ? 201 : 200);
    } catch (error) {
      const answer = errorResponse(c, error);
      const body = (await answer.json()) as { error: { code: string; message: string } };
      if (created)
        body.error.message = `${body.error.message.replace(/\.?$/, ".")} The partition ${id} was created; fix the guest and replace it, or activate it again.`;
      return c.json({ ...body, partition: await partitionJson(partitions.get(id), true) }, answer.status as 502);
    }
  };

  api.onError((error, c) => errorResponse(c, error));

  const tooLarge = `Admin requests are limited to ${MAX_JSON_BYTES} bytes (components to ${options.maxComponentBytes}).`;
  const small = bodyLimit({ maxSize: MAX_JSON_BYTES, onError: (c) => problem(c, 413, "body-too-large", tooLarge) });
  // Component bytes: to /components, or to a partition's /upgrade as application/wasm.
  const isWasm = (c: Context) => /^application\/wasm\s*(;|$)/i.test(c.req.header("content-type") ?? "");
  const carriesComponent = (c: Context) => c.req.path.endsWith("/api/components") || (c.req.path.endsWith("/upgrade") && isWasm(c));
  api.use(async (c, next) => (c.req.method === "POST" && carriesComponent(c) ? next() : small(c, next)));
  const json = contentType("application/json");
  const componentLimit = bodyLimit({
    maxSize: options.maxComponentBytes,
    onError: (c) => problem(c, 413, "body-too-large", `Components are limited to ${options.maxComponentBytes} bytes.`),
  });
  const componentBytes = async (c: Context) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0) throw fieldError("The body must be the component's wasm bytes.");
    return bytes;
  };

  const read = async (request: Request): Promise<Record<string, unknown>> => {
    const body: unknown = await request.json();
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw fieldError("The body must be a JSON object.");
    return body as Record<string, unknown>;
  };

  api.post("/components", contentType("application/wasm"), componentLimit, async (c) => {
    const prepared = await components.add(await componentBytes(c));
    return c.json({ digest: prepared.digest, bytes: prepared.bytes }, 201);
  });
  api.get("/components", async (c) => c.json({ components: (await components.list()).map((digest) => ({ digest })) }));
  api.delete("/components/:digest", async (c) => {
    const given = c.req.param("digest");
    const digest = /^[0-9a-f]{64}$/.test(given) ? `sha256:${given}` : given;
    if (!isDigest(digest))
      throw fieldError(`${JSON.stringify(given.slice(0, 80))} is not a component digest ("sha256:<64 hex>"); list them with GET /api/components.`);
    await components.remove(digest);
    return c.body(null, 204);
  });
  // What the host keeps on disk, by kind, measured now.
  api.get("/stats", async (c) => {
    const usage = await host.retention.measure();
    const { count, bytes } = deliveries.backlog;
    return c.json({ disk: usage, snapshotCache: snapshots.cacheStats, pendingDeliveries: { count, bytes } });
  });

  api.post("/partitions", json, async (c) => {
    const body = await read(c.req.raw);
    allowOnly(body, ["name", "component", "registrations", "durability", "limits", "activate", "replace"], "a partition");
    const name = field(body, "name", isName, "1 to 64 characters from a-z A-Z 0-9 . _ -");
    const activate = field(body, "activate", isBoolean, "true or false", true);
    const replace = field(body, "replace", isBoolean, "true or false", false);
    const existing = partitions.list().filter((p) => p.name === name);
    if (existing.length > 0 && !replace) {
      throw new DormantError(
        "name-taken",
        `A partition is already named ${JSON.stringify(name)} (${existing[0]!.id}); choose another name, ` +
          `or send "replace": true (dormant deploy --replace) to delete it and deploy anew.`,
      );
    }
    const spec = {
      name,
      component: field(body, "component", isDigest, 'a component digest like "sha256:<64 hex>" from POST /api/components'),
      registrations: field(body, "registrations", isMode, '"host" or "guest"', "host" as RegistrationMode),
      durability: field(body, "durability", isDurability, '"on-idle" or "per-activation"', "on-idle" as Durability),
      limits: field(body, "limits", isLimits, "an object with any of cpuDeadlineMs (1-600000), memoryBytes (1 MiB-4 GiB), snapshotBytes (1 KiB-1 GiB)", {}),
    };
    await components.get(spec.component); // an unknown component is refused before anything is replaced
    for (const old of existing) {
      await partitions.delete(old.id);
      activity.forget(old.id);
    }
    const record = await partitions.create(spec);
    if (!activate) return c.json(await partitionJson(record, true), 201);
    return activateAnswer(c, record.id, true);
  });
  api.get("/partitions", async (c) => c.json({ partitions: await Promise.all(partitions.list().map((record) => partitionJson(record, false))) }));
  api.get("/partitions/:id", async (c) => c.json(await partitionJson(partitions.get(partitionParam(c)), true)));
  api.delete("/partitions/:id", async (c) => {
    const id = partitionParam(c);
    await partitions.delete(id);
    activity.forget(id);
    return c.body(null, 204);
  });
  api.post("/partitions/:id/freeze", async (c) => {
    const id = partitionParam(c);
    await partitions.freeze(id);
    return c.json(await partitionJson(partitions.get(id), false));
  });
  api.post("/partitions/:id/activate", async (c) => activateAnswer(c, partitionParam(c), false));
  // Recent guest log lines, oldest first; `next` is the `since` that asks for only newer ones (dormant logs --follow).
  api.get("/partitions/:id/logs", (c) => {
    const id = partitions.get(partitionParam(c)).id;
    const since = queryInt(c, "since", 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = queryInt(c, "limit", 1, 1000, 1000);
    const { lines, dropped } = activity.logs.of(id, since, limit);
    return c.json({ partition: id, logs: lines, dropped, next: lines.at(-1)?.seq ?? since });
  });
  // A new component version for a partition: its digest as JSON ({"component": "sha256:…"}),
  // or its bytes as application/wasm (deployed first). Its tasks are kept; see upgrade.ts.
  api.post(
    "/partitions/:id/upgrade",
    async (c, next) => (isWasm(c) ? componentLimit(c, next) : json(c, next)),
    async (c) => {
      const id = partitionParam(c);
      let component: string;
      if (isWasm(c)) {
        component = (await components.add(await componentBytes(c))).digest;
      } else {
        const body = await read(c.req.raw);
        allowOnly(body, ["component"], "an upgrade");
        component = field(
          body,
          "component",
          isDigest,
          'a component digest like "sha256:<64 hex>" from POST /api/components, or send the wasm bytes as application/wasm',
        );
      }
      const upgraded = await partitions.upgrade(id, component);
      const handedOver = upgraded.handedOver ?? null;
      return c.json({ upgraded: { from: upgraded.from, to: component, handedOver }, ...(await partitionJson(partitions.get(id), true)) });
    },
  );

  api.get("/tasks", (c) => {
    const given = c.req.query("partition");
    const list = given === undefined ? registry.all() : registry.tasksOf(resolvePartition(given, 'Query "partition"'));
    return c.json({ tasks: tasksJson(list) });
  });
  api.post("/tasks/:id/fire", async (c) => {
    const delivery = await tasks.fireNow(idParam(c, "task"));
    // ?wait: answer with the first attempt's outcome (null if it took longer than the wait).
    if (c.req.query("wait") === undefined) return c.json({ delivery }, 202);
    const outcome = (await activity.outcomeOf(delivery, FIRE_WAIT_MS)) ?? null;
    return c.json({ delivery, outcome }, outcome ? 200 : 202);
  });

  api.get("/dead-letters", async (c) =>
    c.json({
      deadLetters: (await deliveries.deadLetters()).map((letter) => ({
        id: letter.id,
        kind: letter.kind,
        task: letter.taskId,
        name: letter.taskName,
        partition: letter.partition,
        scheduledAt: letter.scheduledAt,
        attempts: letter.attempts,
        lastError: letter.lastError,
        deadAt: letter.deadAt,
      })),
    }),
  );
  api.post("/dead-letters/:id/retry", async (c) => {
    const id = idParam(c, "deadLetter");
    if (!(await deliveries.retryDeadLetter(id)))
      return problem(c, 404, "unknown-dead-letter", "No dead letter has this id; list them with GET /api/dead-letters.");
    return c.json({ retrying: id }, 202);
  });

  api.get("/budget", (c) => c.json(budgetJson(host)));
  api.put("/budget", json, async (c) => {
    const body = await read(c.req.raw);
    allowOnly(body, ["constrained", "threshold", "maxConcurrent"], "the budget");
    const change: Partial<BudgetState> = {};
    if (body.constrained !== undefined) change.constrained = field(body, "constrained", isBoolean, "true or false");
    if (body.threshold !== undefined) change.threshold = field(body, "threshold", isIntIn(0, 255), "a priority from 0 to 255");
    if (body.maxConcurrent !== undefined) {
      change.maxConcurrent = field(body, "maxConcurrent", isIntIn(1, MAX_CONCURRENT), `a whole number from 1 to ${MAX_CONCURRENT}`);
    }
    host.budget.set(change);
    return c.json(budgetJson(host));
  });
  return api;
}

function budgetJson(host: Host) {
  const { budget, deliveries } = host;
  const { postponed, dropped } = deliveries.stats;
  return { ...budget.state, running: budget.running, waiting: budget.waiting, postponedNow: deliveries.postponedCount, postponed, dropped };
}
