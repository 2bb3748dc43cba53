// A small HTTP load generator, run as its own process so the load does not share the
// server's event loop: keep-alive connections, a fixed number of requests spread over
// the given URLs in order, latency per request. Prints one JSON line.
import { Agent, request } from "node:http";

interface LoadSpec {
  urls: string[];
  connections: number;
  requests: number;
  method: string;
  body: string;
  headers?: Record<string, string>;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
const latencies = new Float64Array(spec.requests);
const statuses: Record<number, number> = {};
let next = 0;

function send(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: spec.method, agent, headers: { "content-length": Buffer.byteLength(spec.body), ...spec.headers } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(spec.body);
  });
}

async function connection(): Promise<void> {
  while (next < spec.requests) {
    const i = next++;
    const started = performance.now();
    const status = await send(spec.urls[i % spec.urls.length]!).catch(() => 0);
    latencies[i] = performance.now() - started;
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: spec.connections }, connection));
const seconds = (performance.now() - started) / 1000;
const sorted = [...latencies].sort((a, b) => a - b);
const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
console.log(JSON.stringify({ rps: spec.requests / seconds, p50: at(50), p99: at(99), statuses }));
agent.destroy();
