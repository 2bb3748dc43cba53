// Deployed components: their bytes in the store (so any host can load them) and their
// prepared form in the engine's cache (`<cacheDir>/<hex>`, about 25 MB for a JS guest).
// A component is removed only when no partition runs it and no task would provision one
// with it; its cache entry goes with it. The cache is bounded: beyond its size the entries
// of components without a live partition go, least recently used first, and are prepared
// again from the stored bytes when next needed.
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Storage } from "unstorage";
import { treeBytesOf as treeBytes } from "../store/tree-bytes.ts";
import type { ExecutorPool, PreparedComponent } from "../../runtime/index.ts";
import { DormantError } from "../../runtime/index.ts";

/** Who needs a component now. */
export interface ComponentUsers {
  partitions: string[];
  /** Whether one of the partitions is live (its instance may compile from the cache at any moment). */
  live: boolean;
  /** Tasks that outlived their partition and would provision a new one running it. */
  tasks: string[];
}

export type ComponentEvent =
  | { type: "component-removed"; component: string; reason: "asked" | "unused" }
  | { type: "engine-cache-evicted"; component: string; bytes: number; reason: "removed" | "over-size" | "orphan" };

export interface EngineCacheUsage {
  bytes: number;
  entries: number;
  capacityBytes: number;
}

export interface ComponentRegistryOptions {
  /** The engine's cache folder. */
  cacheDir: string;
  /** False for a cache folder shared with other hosts: its entries are measured, never deleted. */
  ownsCache: boolean;
  /** Bytes the cache may hold before entries of components without a live partition go. */
  cacheBytes: number;
  /** How long a component nobody uses is kept before it is removed (0: kept until removed by hand). */
  unusedMs: number;
  usersOf(digest: string): ComponentUsers;
  /** On a cluster host: every partition in the shared store by component, since other hosts' partitions are not in `usersOf`. */
  storedUsers?: () => Promise<Map<string, string[]>>;
  /** The host's clock. */
  now(): number;
  onEvent?: (event: ComponentEvent) => void;
}

const HEX = /^[0-9a-f]{64}$/;
/** Entries made or used this recently are never evicted: a deploy or an activation may be about to read them. */
const RECENT_MS = 60_000;

export class ComponentRegistry {
  readonly #storage: Storage;
  readonly #pool: ExecutorPool;
  readonly #o: ComponentRegistryOptions;
  readonly #prepared = new Map<string, Promise<PreparedComponent>>();
  /** When each component was last added or asked for (host clock), for least-recently-used eviction. */
  readonly #lastUsed = new Map<string, number>();
  /** Host-clock time since which each stored component has had no user. */
  readonly #unusedSince = new Map<string, number>();

  constructor(storage: Storage, pool: ExecutorPool, options: ComponentRegistryOptions) {
    this.#storage = storage;
    this.#pool = pool;
    this.#o = options;
  }

  /** Validate and store component bytes; returns its prepared handle (digest included). */
  async add(bytes: Uint8Array): Promise<PreparedComponent> {
    const prepared = await this.#pool.prepare(bytes);
    const key = keyOf(prepared.digest);
    this.#lastUsed.set(prepared.digest, this.#o.now());
    try {
      if (!(await this.#storage.hasItem(key))) await this.#storage.setItemRaw(key, bytes);
    } catch (error) {
      // Not stored, so not deployed: its cache entry would only hold the space (unless it was there before).
      if (!this.#prepared.has(prepared.digest)) await this.#deleteEntry(prepared.digest);
      throw error;
    }
    this.#prepared.set(prepared.digest, Promise.resolve(prepared));
    return prepared;
  }

  /** Digests of every stored component. */
  async list(): Promise<string[]> {
    return (await this.#storage.getKeys()).map((key) => `sha256:${key}`);
  }

  /** The prepared handle of a stored component, preparing it again after a restart or an eviction. */
  get(digest: string): Promise<PreparedComponent> {
    this.#lastUsed.set(digest, this.#o.now());
    let prepared = this.#prepared.get(digest);
    if (!prepared) {
      prepared = this.#storage.getItemRaw<Uint8Array>(keyOf(digest)).then((bytes) => {
        if (!bytes) throw new DormantError("unknown-component", `Component ${digest} is not deployed on this host; deploy it first.`);
        return this.#pool.prepare(new Uint8Array(bytes));
      });
      this.#prepared.set(digest, prepared);
      prepared.catch(() => this.#prepared.delete(digest));
    }
    return prepared;
  }

  /** Remove a component nobody uses: its stored bytes and its cache entry. Refused (`component-in-use`) while it is used. */
  async remove(digest: string, reason: "asked" | "unused" = "asked", stored?: Map<string, string[]>): Promise<void> {
    const users = await this.#allUsersOf(digest, stored ?? (await this.#o.storedUsers?.()));
    if (users.partitions.length > 0 || users.tasks.length > 0) {
      const named = [
        ...(users.partitions.length > 0 ? [`partitions ${users.partitions.join(", ")}`] : []),
        ...(users.tasks.length > 0 ? [`tasks ${users.tasks.join(", ")} (which outlived their partition and would provision one with it)`] : []),
      ].join(" and ");
      throw new DormantError("component-in-use", `Component ${digest} is in use by ${named}; delete those first (dormant rm), then remove it.`, {
        details: { component: digest, partitions: users.partitions, tasks: users.tasks },
      });
    }
    if (!(await this.#storage.hasItem(keyOf(digest)))) {
      throw new DormantError("unknown-component", `Component ${digest} is not deployed on this host; list them with dormant components.`);
    }
    await this.#storage.removeItem(keyOf(digest));
    this.#prepared.delete(digest);
    this.#lastUsed.delete(digest);
    this.#unusedSince.delete(digest);
    this.#o.onEvent?.({ type: "component-removed", component: digest, reason });
    await this.#evict(digest, "removed");
  }

  /** Remove the components that have had no user for the configured time (`now`: the host's clock). */
  async collect(now: number): Promise<string[]> {
    const removed: string[] = [];
    const stored = await this.list();
    for (const digest of [...this.#unusedSince.keys()]) if (!stored.includes(digest)) this.#unusedSince.delete(digest);
    const everywhere = await this.#o.storedUsers?.();
    for (const digest of stored) {
      const users = await this.#allUsersOf(digest, everywhere);
      if (users.partitions.length > 0 || users.tasks.length > 0) {
        this.#unusedSince.delete(digest);
        continue;
      }
      const since = this.#unusedSince.get(digest) ?? now;
      this.#unusedSince.set(digest, since);
      if (this.#o.unusedMs > 0 && now - since >= this.#o.unusedMs) {
        await this.remove(digest, "unused", everywhere);
        removed.push(digest);
      }
    }
    return removed;
  }

  /** The cache's entries (staging folders left out) and their sizes. */
  async #entries(): Promise<{ digest: string; bytes: number }[]> {
    const names = await readdir(this.#o.cacheDir).catch(() => [] as string[]);
    const entries = await Promise.all(
      names
        .filter((name) => HEX.test(name))
        .map(async (name) => {
          const path = join(this.#o.cacheDir, name);
          return { digest: `sha256:${name}`, bytes: await treeBytes(path) };
        }),
    );
    return entries.filter((entry) => entry !== undefined);
  }

  async cacheUsage(): Promise<EngineCacheUsage> {
    const entries = await this.#entries();
    return { bytes: entries.reduce((sum, e) => sum + e.bytes, 0), entries: entries.length, capacityBytes: this.#o.cacheBytes };
  }

  /**
   * Keep the cache within its size: first entries of components this host does not store
   * (a deploy that failed after transpiling), then those of components without a live
   * partition, least recently used first (those this host has not touched since it started
   * count as oldest). Entries made or used in the last minute stay.
   */
  async trimCache(): Promise<void> {
    if (!this.#o.ownsCache) return;
    const entries = await this.#entries();
    let total = entries.reduce((sum, e) => sum + e.bytes, 0);
    if (total <= this.#o.cacheBytes) return;
    const stored = new Set(await this.list());
    const now = this.#o.now();
    const lastUsed = (e: { digest: string }) => this.#lastUsed.get(e.digest) ?? 0;
    // 0: not stored here; 1: stored, nobody uses it; 2: its partitions are all frozen; live ones are kept.
    const rank = (digest: string) => {
      if (!stored.has(digest)) return 0;
      const users = this.#o.usersOf(digest);
      return users.live ? Infinity : users.partitions.length + users.tasks.length === 0 ? 1 : 2;
    };
    const candidates = entries
      .map((e) => ({ ...e, rank: rank(e.digest) }))
      .filter((e) => e.rank !== Infinity && now - lastUsed(e) >= RECENT_MS)
      .sort((a, b) => a.rank - b.rank || lastUsed(a) - lastUsed(b));
    for (const entry of candidates) {
      if (total <= this.#o.cacheBytes) break;
      await this.#evict(entry.digest, entry.rank === 0 ? "orphan" : "over-size", entry.bytes);
      total -= entry.bytes;
    }
  }

  /** This host's users of a component, with the partitions other hosts of a cluster run it in. */
  async #allUsersOf(digest: string, stored: Map<string, string[]> | undefined): Promise<ComponentUsers> {
    const users = this.#o.usersOf(digest);
    const elsewhere = (stored?.get(digest) ?? []).filter((id) => !users.partitions.includes(id));
    return elsewhere.length === 0 ? users : { ...users, partitions: [...users.partitions, ...elsewhere] };
  }

  async #evict(digest: string, reason: "removed" | "over-size" | "orphan", bytes?: number): Promise<void> {
    if (!this.#o.ownsCache) return;
    const path = join(this.#o.cacheDir, keyOf(digest));
    const size = bytes ?? (await treeBytes(path));
    // Prepared again from the stored bytes when next needed.
    this.#prepared.delete(digest);
    if (await this.#deleteEntry(digest)) this.#o.onEvent?.({ type: "engine-cache-evicted", component: digest, bytes: size, reason });
  }

  async #deleteEntry(digest: string): Promise<boolean> {
    if (!this.#o.ownsCache) return false;
    const path = join(this.#o.cacheDir, keyOf(digest));
    if (!(await stat(path).catch(() => undefined))) return false;
    await rm(path, { recursive: true, force: true });
    return true;
  }
}

function keyOf(digest: string): string {
  return digest.replace(/^sha256:/, "");
}
