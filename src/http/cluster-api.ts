// The admin API of a cluster host: what the whole cluster looks like (members, their lease
// expiries, every shard's owner, every partition and who holds it), and the forwarding of
// a request about a partition another host holds (by id or by name) to that host's admin
// listener, once.
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { forward, wasForwarded } from "../cluster/forward.ts";
import type { ClusterHost, Host } from "../host.ts";
import type { PartitionRecord } from "../partitions/partition.ts";
import { readAllRecords } from "../store/records.ts";
import { DormantError } from "../../runtime/index.ts";

/** How long a forwarded admin request may take (an upgrade or a fire with ?wait runs the guest). */
const FORWARD_TIMEOUT_MS = 60_000;

export function clusterRoutes(host: Host, cluster: ClusterHost): Hono {
  const { membership } = cluster;
  const api = new Hono();
  /**
   * The id a partition's name stands for in the whole cluster, when no partition of this
   * host has that name (those answer here, as on a single host). Names are unique per host
   * only, so one shared by partitions on several hosts is refused with their ids.
   */
  const idOfName = async (name: string): Promise<string | undefined> => {
    if (host.partitions.list().some((record) => record.name === name)) return undefined;
    const records = await readAllRecords<PartitionRecord>(host.store.partitions);
    const named = records.map(({ value }) => value).filter((record) => record.name === name);
    if (named.length > 1) {
      throw new DormantError(
        "invalid-field",
        `${named.length} partitions of the cluster are named ${JSON.stringify(name)} (${named.map((p) => p.id).join(", ")}); give the id instead.`,
      );
    }
    return named[0]?.id;
  };
  const toOwner =
    (partitionOf: (c: Context) => string | undefined): MiddlewareHandler =>
    async (c, next) => {
      const given = partitionOf(c);
      if (given === undefined || wasForwarded(c.req.raw)) return next();
      const id = given.startsWith("p_") ? given : await idOfName(given);
      if (id === undefined || host.partitions.has(id)) return next();
      const owner = await membership.ownerOf(id);
      if (!owner || owner.host === membership.host) return next();
      return forward(c.req.raw, owner.adminAddress, membership.host, FORWARD_TIMEOUT_MS);
    };
  api.use(
    "/partitions/:partition/*",
    toOwner((c) => c.req.param("partition")),
  );
  api.use(
    "/partitions/:partition",
    toOwner((c) => c.req.param("partition")),
  );
  api.use(
    "/tasks",
    toOwner((c) => c.req.query("partition")),
  );

  api.get("/cluster", async (c) => {
    const [members, shards] = await Promise.all([membership.members(), membership.shards()]);
    return c.json({ cluster: { host: membership.host, member: membership.member, ...membership.settings, members, shards } });
  });
  api.get("/cluster/owner/:partition", async (c) => {
    const partition = c.req.param("partition");
    const owner = await membership.ownerOf(partition);
    return c.json({ partition, shard: membership.shardOf(partition), ...(owner ?? { host: null }) });
  });
  // Every partition of the cluster, read from the shared store, with the host that holds its shard now.
  api.get("/cluster/partitions", async (c) => {
    const [records, shards] = await Promise.all([readAllRecords<PartitionRecord>(host.store.partitions), membership.shards()]);
    const ownerOf = new Map(shards.map((shard) => [shard.shard, shard.expiresAt !== null && shard.expiresAt > Date.now() ? shard.owner : null]));
    const partitions = records.map(({ value: { id, name, component, durability, registrations } }) => {
      const shard = membership.shardOf(id);
      return { id, name, component, durability, registrations, shard, host: ownerOf.get(shard) ?? null };
    });
    return c.json({ partitions });
  });
  return api;
}
