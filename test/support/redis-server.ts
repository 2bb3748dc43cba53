// A Redis server of a test's own, on a free port, that the test can hang (SIGSTOP), kill
// and start again — never the shared one on 6379.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface OwnRedis {
  port: number;
  url: string;
  /** Start it (again); with `persist`, it keeps its data across kills (append-only file, fsync on every write). */
  start(): Promise<void>;
  kill(): Promise<void>;
  hang(): void;
  resume(): void;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => (socket.end(), resolve(true)));
    socket.on("error", () => resolve(false));
  });
}

export async function ownRedis({ persist = false } = {}): Promise<OwnRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "dormant-redis-"));
  let child: ChildProcess | undefined;
  const redis: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async start() {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir];
      if (persist) args.push("--appendonly", "yes", "--appendfsync", "always");
      child = spawn("redis-server", args, { stdio: "ignore" });
      while (!(await accepts(port))) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await gone;
    },
    hang: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
  };
  await redis.start();
  return redis;
}
