// The load generator (autocannon), run as its own process so the load does not share the
// server's event loop: keep-alive connections, a fixed number of requests spread over the
// given URLs (one host) in order. Prints one JSON line, with the loader's own CPU use so a
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
const origin = new URL(spec.urls[0]!).origin;
const paths = spec.urls.map((url) => {
  const parsed = new URL(url);
  if (parsed.origin !== origin) throw new Error(`Every URL must be on ${origin}; got ${url}.`);
  return parsed.pathname + parsed.search;
});
let next = 0;

const cpuBefore = process.cpuUsage();
const started = performance.now();
const result = await autocannon({
  url: origin,
  connections: spec.connections,
  amount: spec.requests,
  method: spec.method as "POST",
  headers: spec.headers ?? {},
  body: spec.body,
  requests: [{ setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length]! }) }],
});
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
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
