// The status page's forms: fire a task, freeze or activate a partition, retry a dead
// letter. A form post is honoured only from a signed-in browser, from this origin, with the
// session's CSRF token (an HMAC of the session id under a key derived from the admin token,
// so every host of a cluster knows it) in a hidden field. The outcome is kept for the
// session (in the shared store on a cluster) and shown once by the page it redirects to.
import { createHmac } from "node:crypto";
import type { Storage } from "unstorage";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import type { Host } from "../../host.ts";
import type { Activity } from "../../observability/activity.ts";
import { DormantError } from "../../../runtime/index.ts";
import { clientOf, lockWait, sameOrigin, type DoorOptions } from "../admin-door.ts";
import { ID } from "../admin-api.ts";
import { SESSION_COOKIE, sameSecret } from "../auth.ts";
import { messagePage } from "./page.ts";
import { millis, size } from "./format.ts";

/** How long a fire from the page waits for the first attempt's outcome. */
const FIRE_WAIT_MS = 5000;
/** Outcomes kept for sessions that have not looked yet. */
const MAX_FLASHES = 1000;

export type Flash = { ok: boolean; text: string };

export class FormGuard {
  readonly #key: Buffer;
  readonly #flashes = new Map<string, Flash>();
  readonly #shared: Storage<Flash> | undefined;

  constructor(adminToken: string, shared?: Storage) {
    this.#key = createHmac("sha256", adminToken).update("dormant status-page forms").digest();
    this.#shared = shared as Storage<Flash> | undefined;
  }

  /** The CSRF token of a session: the same for the whole session, useless for any other. */
  tokenOf(session: string): string {
    return createHmac("sha256", this.#key).update(session).digest("base64url");
  }

  valid(session: string, token: unknown): boolean {
    return typeof token === "string" && sameSecret(token, this.tokenOf(session));
  }

  async setFlash(session: string, flash: Flash): Promise<void> {
    const key = this.tokenOf(session);
    if (this.#shared) return this.#shared.setItem(key, flash);
    this.#flashes.delete(key);
    this.#flashes.set(key, flash);
    if (this.#flashes.size > MAX_FLASHES) this.#flashes.delete(this.#flashes.keys().next().value!);
  }

  /** The session's latest outcome, once. */
  async takeFlash(session: string): Promise<Flash | undefined> {
    const key = this.tokenOf(session);
    if (this.#shared) {
      const flash = (await this.#shared.getItem(key)) ?? undefined;
      if (flash) await this.#shared.removeItem(key);
      return flash;
    }
    const flash = this.#flashes.get(key);
    this.#flashes.delete(key);
    return flash;
  }
}

type Run = (id: string) => Promise<Flash>;

export function actionRoutes(host: Host, activity: Activity, o: DoorOptions, guard: FormGuard): Hono {
  const app = new Hono();
  const { tasks, registry, partitions, deliveries } = host;
  const partitionName = (id: string) => partitions.get(id).name;

  const runs: Record<string, [RegExp, Run]> = {
    fire: [
      ID.task,
      async (id) => {
        const name = registry.get(id)?.name ?? id;
        const delivery = await tasks.fireNow(id);
        const outcome = await activity.outcomeOf(delivery, FIRE_WAIT_MS);
        if (!outcome) return { ok: true, text: `Fired ${name}; still running after ${FIRE_WAIT_MS / 1000} s.` };
        if (outcome.ok) return { ok: true, text: `Fired ${name}: ok in ${millis(outcome.ms)}.` };
        return { ok: false, text: `Fired ${name}: failed: ${outcome.error} (it will be retried).` };
      },
    ],
    freeze: [
      ID.partition,
      async (id) => {
        const name = partitionName(id);
        await partitions.freeze(id);
        const bytes = (await host.snapshots.head(id))?.latest.bytes ?? 0;
        return { ok: true, text: `Froze ${name} (snapshot ${size(bytes)}).` };
      },
    ],
    activate: [
      ID.partition,
      async (id) => {
        const name = partitionName(id);
        const kind = await partitions.activate(id);
        return { ok: true, text: `Activated ${name} (${kind}).` };
      },
    ],
    retry: [
      ID.deadLetter,
      async (id) => {
        const letter = (await deliveries.deadLetters()).find((d) => d.id === id);
        if (!letter || !(await deliveries.retryDeadLetter(id))) return { ok: false, text: "That dead letter is gone (retried or removed already)." };
        return { ok: true, text: `Retrying ${letter.taskName} (dead letter ${id}).` };
      },
    ],
  };

  const refuse = (c: Context, status: 401 | 403 | 404 | 429, message: string) => c.html(messagePage(message), status);
  const small = bodyLimit({ maxSize: 4096, onError: (c) => c.html(messagePage("That form was too large."), 413) });

  app.post("/actions/:action/:id", small, async (c) => {
    const wait = lockWait(c, o);
    if (wait > 0) return refuse(c, 429, `Too many wrong tokens from your address; try again in ${wait} s.`);
    const session = getCookie(c, SESSION_COOKIE);
    if (session === undefined || !(await o.sessions.valid(session))) return refuse(c, 401, "Your session has ended; sign in again on the status page.");
    if (!sameOrigin(c, o.trustProxy)) {
      o.log({ event: "cross-origin-refused", client: clientOf(c, o.trustProxy), origin: c.req.header("origin") ?? null, method: "POST", path: c.req.path });
      return refuse(c, 403, "This form was not sent from this server's status page; use the buttons on the page itself.");
    }
    const form = await c.req.parseBody();
    if (!guard.valid(session, form.csrf)) {
      o.log({ event: "csrf-refused", client: clientOf(c, o.trustProxy), path: c.req.path });
      return refuse(c, 403, "This form is out of date or did not come from your status page; reload the page and try again.");
    }
    const name = c.req.param("action");
    const id = c.req.param("id");
    const run = Object.hasOwn(runs, name) ? runs[name] : undefined;
    if (!run || !run[0].test(id)) return refuse(c, 404, `There is no ${JSON.stringify(name)} action for ${JSON.stringify(id.slice(0, 80))}.`);
    const flash = await run[1](id).catch((error: Error): Flash => {
      if (error instanceof DormantError) return { ok: false, text: error.message };
      throw error;
    });
    await guard.setFlash(session, flash);
    return c.redirect(form.refresh === "off" ? "/?refresh=off" : "/", 303);
  });
  return app;
}
