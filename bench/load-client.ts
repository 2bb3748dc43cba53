// The load generator (autocannon), run as its own process so the load does not share the
// server's event loop: keep-alive connections, a fixed number of requests spread over the
// given URLs in order. URLs on several origins (the hosts of a cluster) get one autocannon
// instance per origin, the connections and requests shared out by the URLs' count, and
// one merged latency histogram. Prints one JSON line, with the loader's own CPU use so a
// reader can see whether the server or the loader was the bound.
import autocannon from "autocannon";

interface LoadSpec {
  urls: string[];
  connections: number;
  requests: number;
  method: string;
  body: string;
  headers?: Record<string, string>;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const byOrigin = new Map<string, string[]>();
for (const url of spec.urls) {
  const parsed = new URL(url);
  let paths = byOrigin.get(parsed.origin);
  if (!paths) byOrigin.set(parsed.origin, (paths = []));
  paths.push(parsed.pathname + parsed.search);
}
const share = (total: number, paths: string[]) => Math.max(1, Math.round((total * paths.length) / spec.urls.length));

const cpuBefore = process.cpuUsage();
const started = performance.now();
// Timed to the last answer: autocannon resolves a run only on its one-second tick, which
// would round a few-second run up to whole seconds.
let lastAnswer = started;
const results = await Promise.all(
  [...byOrigin].map(([origin, paths]) => {
    let next = 0;
    return autocannon({
      url: origin,
      connections: share(spec.connections, paths),
      amount: share(spec.requests, paths),
      method: spec.method as "POST",
      headers: spec.headers ?? {},
      body: spec.body,
      requests: [
        {
          setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length]! }),
          onResponse: () => {
            lastAnswer = performance.now();
          },
        },
      ],
      skipAggregateResult: true,
    });
  }),
);
const seconds = (lastAnswer - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
// Typed as autocannon's public result, which is what aggregateResult returns.
const aggregate = (autocannon as unknown as { aggregateResult(results: unknown[], opts: object): autocannon.Result }).aggregateResult;
const result = aggregate(results, { url: [...byOrigin.keys()][0], connections: spec.connections });
const statuses: Record<string, number> = {};
for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) statuses[status] = stats?.count ?? 0;
if (result.errors + result.timeouts > 0) statuses["0"] = result.errors + result.timeouts;
console.log(
  JSON.stringify({
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statuses,
    /** The loader's CPU time over the run's wall time: 1 means one core fully busy. */
    loaderCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  }),
);
