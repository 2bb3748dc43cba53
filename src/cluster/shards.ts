// Which shard a partition belongs to, and which partition a stored key belongs to. A
// cluster leases shards, not partitions: renewing a host's leases is one statement however
// many partitions it holds, and a partition's shard is a pure function of its id, so any
// host can tell where a partition lives without asking anyone.

/** FNV-1a over the id's UTF-16 code units: stable across hosts and versions. */
export function shardOf(partition: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < partition.length; i++) {
    hash ^= partition.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** Mounts whose keys start with the partition id (see store/open.ts). */
const BY_PARTITION = new Set(["snapshots", "registrations", "partitions"]);
/** Mounts whose keys are delivery ids, which carry their partition after a dot (delivery/dispatcher.ts newDeliveryId). */
const BY_DELIVERY = new Set(["deliveries", "dead-letters"]);

/** The partition a store key belongs to, or undefined for shared keys (components, the store's identity). */
export function partitionOfKey(key: string): string | undefined {
  const [mount, id] = key.split(":", 2);
  if (mount === undefined || id === undefined || id === "") return undefined;
  if (BY_PARTITION.has(mount)) return id;
  if (BY_DELIVERY.has(mount)) {
    const dot = id.indexOf(".");
    return dot > 0 ? id.slice(dot + 1) : undefined;
  }
  return undefined;
}
