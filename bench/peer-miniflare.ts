// The peer: Cloudflare Durable Object alarms in Miniflare (workerd), measured in the same
// run. Each object stores its due time, sets an alarm, and reports how late `alarm()`
// started (Date.now() at entry minus the due time) to a Node service binding.
import { Miniflare } from "miniflare";

const WORKER = `
export class Alarmed {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    const at = Number(new URL(request.url).searchParams.get("at"));
    await this.ctx.storage.put("at", at);
    await this.ctx.storage.setAlarm(at);
    return new Response("armed");
  }
  async alarm() {
    const late = Date.now() - (await this.ctx.storage.get("at"));
    await this.env.REPORT.fetch("http://report/", { method: "POST", body: String(late) });
  }
}
export default {
  async fetch(request, env) {
    const name = new URL(request.url).searchParams.get("name");
    return env.ALARMED.get(env.ALARMED.idFromName(name)).fetch(request);
  },
};
`.replace("constructor(ctx) { this.ctx = ctx; }", "constructor(ctx, env) { this.ctx = ctx; this.env = env; }");

/** Lateness (ms) of `count` alarms, one per object, due at `start` plus an even spread over `spreadMs`. */
export async function miniflareAlarmLateness(count: number, spreadMs: number): Promise<number[]> {
  const late: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const mf = new Miniflare({
    modules: true,
    script: WORKER,
    durableObjects: { ALARMED: "Alarmed" },
    serviceBindings: {
      REPORT: async (request: { text(): Promise<string> }) => {
        late.push(Number(await request.text()));
        if (late.length === count) done();
        return new Response("ok");
      },
    },
  });
  try {
    await mf.ready;
    // Arming 1,000 objects takes a few seconds in Miniflare; leave room for it.
    const start = Date.now() + 3000 + count * 4;
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, (_, j) => {
          const at = start + Math.floor(((i + j) * spreadMs) / count);
          return mf.dispatchFetch(`http://bench/?name=o${i + j}&at=${at}`).then((response) => response.text());
        }),
      );
    }
    const timeout = setTimeout(done, spreadMs + 60_000);
    await all;
    clearTimeout(timeout);
    return late;
  } finally {
    await mf.dispose();
  }
}
