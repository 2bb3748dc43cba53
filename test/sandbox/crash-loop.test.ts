// Crash testing: `dormant serve` runs as a child process under timers and async pushes
// and is killed with SIGKILL at random moments, then restarted. Afterwards no
// registration is lost, no snapshot is torn, and every push answered 202 was delivered.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { startTestHost } from "../support/host.ts";
import { recorder, registerTasks } from "../support/recorder.ts";
import { killServe, spawnServe } from "../support/serve-process.ts";

const TOKEN = generateToken();
// The suite kills 10 times; `npm run soak` (DORMANT_SOAK=1) 100 times; DORMANT_CRASH_KILLS sets any number.
const KILLS = Number(process.env.DORMANT_CRASH_KILLS ?? (process.env.DORMANT_SOAK ? 100 : 10));

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("crash loop", () => {
  it(`loses no registration, tears no snapshot and delivers every accepted push across ${KILLS} SIGKILLs`, { timeout: 120_000 + KILLS * 15_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "dormant-crash-"));
    // Set-up in process: a per-activation partition with a 1 s timer and a push task.
    const setup = await startTestHost({ dataDir, startAt: Date.now(), engineCacheDir: join(dataDir, "engine-cache") });
    const partition = await recorder(setup, { durability: "per-activation" });
    await registerTasks(
      setup,
      partition,
      { name: "tick", every: 1000 },
      { name: "inbox", push: true, retry: { maxAttempts: 100, initialBackoffMs: 200, maxBackoffMs: 1000 } },
    );
    const before = setup.registry.tasksOf(partition).map((t) => ({ id: t.id, name: t.name, pushToken: t.pushToken }));
    const pushPath = `/push/${before.find((t) => t.name === "inbox")!.pushToken}`;
    await setup.close();

    const accepted: string[] = [];
    const statuses: Record<number, number> = {};
    const sent: string[] = [];
    const logs: string[] = [];
    for (let cycle = 0; cycle < KILLS; cycle++) {
      const child = await spawnServe(dataDir, TOKEN);
      const until = Date.now() + 200 + Math.random() * 1300;
      let n = 0;
      const inFlight: Promise<void>[] = [];
      while (Date.now() < until) {
        const id = `c${cycle}-m${n++}`;
        sent.push(id);
        inFlight.push(
          fetch(`${child.pushUrl}${pushPath}`, { method: "POST", headers: { prefer: "respond-async" }, body: id })
            .then((response) => {
              statuses[response.status] = (statuses[response.status] ?? 0) + 1;
              if (response.status === 202) accepted.push(id);
            })
            .catch(() => undefined), // killed mid-request: never acknowledged
        );
        await pause(15);
      }
      await killServe(child);
      await Promise.all(inFlight);
      logs.push(...child.stdout);
    }

    const final = await spawnServe(dataDir, TOKEN);
    try {
      // Wait (bounded) for the retries of everything accepted to be delivered.
      let report: { received: { name: string; body?: string }[] } = { received: [] };
      let reportStatus = 0;
      // A per-activation partition drains ~20 deliveries/s on a quiet machine; allow a loaded one five times as long.
      const deadline = Date.now() + 60_000 + accepted.length * 250;
      for (;;) {
        const response = await fetch(`${final.pushUrl}${pushPath}/report`, { method: "POST" });
        const answer = await response.json();
        // The probe may queue behind the redeliveries and miss its deadline (504): ask again.
        reportStatus = response.status;
        if (response.status === 200) report = answer;
        else if (response.status !== 504) throw new Error(`report push answered ${response.status}: ${JSON.stringify(answer)}`);
        const delivered = new Set(report.received.map((event) => event.body));
        if (accepted.every((id) => delivered.has(id)) || Date.now() > deadline) break;
        await pause(250);
      }
      const bodies = report.received.filter((event) => event.name === "inbox").map((event) => event.body!);
      const duplicates = bodies.length - new Set(bodies).size;
      console.log(
        `crash loop: ${KILLS} SIGKILLs, ${sent.length} pushes sent, ${accepted.length} accepted (202), ${new Set(bodies).size} delivered, ` +
          `${duplicates} delivered twice, ${report.received.filter((e) => e.name === "tick").length} timer events; ` +
          `answers ${JSON.stringify(statuses)}, last report status ${reportStatus}`,
      );
      expect(accepted.length).toBeGreaterThan(KILLS);
      expect(accepted.filter((id) => !bodies.includes(id))).toEqual([]);
      expect(bodies.filter((body) => !sent.includes(body))).toEqual([]);
      expect(report.received.some((event) => event.name === "tick")).toBe(true);

      const tasks = await (await fetch(`${final.adminUrl}/api/tasks?partition=${partition}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
      expect(tasks.tasks.map((t: { id: string; name: string; pushUrl: string | null }) => ({ id: t.id, name: t.name, push: t.pushUrl }))).toEqual(
        before.map((t) => ({ id: t.id, name: t.name, push: t.pushToken ? `/push/${t.pushToken}` : null })),
      );
      logs.push(...final.stdout);
      const problems = logs
        .join("")
        .split("\n")
        .filter((line) => /"event":"(snapshot-problem|freeze-failed)"/.test(line));
      expect(problems).toEqual([]);
    } finally {
      await killServe(final);
    }
  });
});
