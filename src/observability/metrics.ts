// Prometheus metrics, fed by the host's events. Each host has its own registry, so two
// hosts in one process (tests) never mix their figures.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Host, HostEvent } from "../host.ts";

const LATENCY_BUCKETS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

export class Metrics {
  readonly registry = new Registry();
  readonly #activations = new Counter({
    name: "dormant_activations_total",
    help: "Partition activations, by kind.",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly #wake = new Histogram({
    name: "dormant_wake_latency_ms",
    help: "Time to make a frozen or new partition available, in ms.",
    labelNames: ["kind"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #freezes = new Counter({ name: "dormant_freezes_total", help: "Partitions frozen to storage.", registers: [this.registry] });
  readonly #checkpoints = new Counter({
    name: "dormant_checkpoints_total",
    help: "Snapshots of busy on-idle partitions taken without freezing them.",
    registers: [this.registry],
  });
  readonly #freezeBytes = new Counter({ name: "dormant_freeze_bytes_total", help: "Snapshot bytes written by freezes.", registers: [this.registry] });
  readonly #freezeTime = new Histogram({
    name: "dormant_freeze_duration_ms",
    help: "Time to freeze a partition, in ms.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #lateness = new Histogram({
    name: "dormant_fire_lateness_ms",
    help: "From a timer's due time to the start of its delivery, in ms.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #deliveries = new Counter({
    name: "dormant_deliveries_total",
    help: "Delivery attempts, by outcome.",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly #misfires = new Counter({ name: "dormant_misfires_total", help: "Misfires, by policy.", labelNames: ["policy"], registers: [this.registry] });
  readonly #missed = new Counter({ name: "dormant_missed_occurrences_total", help: "Occurrences that came due while missed.", registers: [this.registry] });
  readonly #retries = new Counter({ name: "dormant_retries_total", help: "Retries scheduled after a failed delivery.", registers: [this.registry] });
  readonly #takeoverRedeliveries = new Counter({
    name: "dormant_cluster_takeover_redeliveries_total",
    help: "Timers overdue and deliveries pending on shards taken from a host whose lease ran out: the most that may be delivered twice.",
    labelNames: ["what"],
    registers: [this.registry],
  });
  readonly #shardMoves = new Counter({
    name: "dormant_cluster_shard_moves_total",
    help: "Shards this host acquired, handed over, or lost to another host (its lease ran out).",
    labelNames: ["how"],
    registers: [this.registry],
  });
  readonly #deadLetters = new Counter({ name: "dormant_dead_letters_total", help: "Deliveries moved to the dead-letter list.", registers: [this.registry] });
  readonly #postponed = new Counter({
    name: "dormant_postponed_total",
    help: "Occurrences postponed by a constrained budget, by priority.",
    labelNames: ["priority"],
    registers: [this.registry],
  });
  readonly #dropped = new Counter({
    name: "dormant_dropped_total",
    help: "Occurrences dropped by a constrained budget, by priority.",
    labelNames: ["priority"],
    registers: [this.registry],
  });
  readonly #traps = new Counter({ name: "dormant_traps_total", help: "Guest traps and lost instances.", registers: [this.registry] });
  readonly #activationFailures = new Counter({
    name: "dormant_activation_failures_total",
    help: "Activations whose on-activate failed or trapped, by reason.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #deadLettersEvicted = new Counter({
    name: "dormant_dead_letters_evicted_total",
    help: "Dead letters removed to stay within their bounds, by reason (partition-limit, host-limit, age).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #componentsRemoved = new Counter({
    name: "dormant_components_removed_total",
    help: "Components removed, by reason (asked, unused).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #engineCacheEvictions = new Counter({
    name: "dormant_engine_cache_evictions_total",
    help: "Engine cache entries deleted, by reason (removed, over-size, orphan).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #pushes = new Counter({
    name: "dormant_push_requests_total",
    help: "Push requests, by HTTP status.",
    labelNames: ["status"],
    registers: [this.registry],
  });

  /** Add the gauges read from the host at each scrape. */
  watch(host: Pick<Host, "partitions" | "budget" | "registry" | "deliveries" | "tasks" | "clock" | "snapshots" | "cluster" | "retention">): void {
    const membership = host.cluster?.membership;
    if (membership) {
      new Gauge({
        name: "dormant_cluster_member",
        help: "1 while this host holds its cluster membership (its last lease renewal is current), else 0.",
        registers: [this.registry],
        collect() {
          this.set(membership.member ? 1 : 0);
        },
      });
      // The whole cluster as the database sees it: which host holds how many shards, and until when.
      new Gauge({
        name: "dormant_cluster_host_shards",
        help: "Shards each host of the cluster holds a live lease on.",
        labelNames: ["host"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const member of await membership.members()) this.set({ host: member.host }, member.shards);
        },
      });
      new Gauge({
        name: "dormant_cluster_host_lease_expiry_seconds",
        help: "Seconds until each host's membership runs out unless it heartbeats (negative: it has run out).",
        labelNames: ["host"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const member of await membership.members()) this.set({ host: member.host }, (member.expiresAt - Date.now()) / 1000);
        },
      });
    }
    // The snapshot cache keeps its own counts; counters read them at each scrape.
    const cache = () => host.snapshots.cacheStats;
    new Counter({
      name: "dormant_snapshot_cache_lookups_total",
      help: "Snapshot loads by whether the in-memory cache had the partition's latest snapshot (hit: no store read).",
      labelNames: ["result"],
      registers: [this.registry],
      collect() {
        const { hits, misses } = cache();
        this.reset();
        this.inc({ result: "hit" }, hits);
        this.inc({ result: "miss" }, misses);
      },
    });
    new Counter({
      name: "dormant_snapshot_cache_evictions_total",
      help: "Snapshots dropped from the in-memory cache to stay within its size.",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(cache().evictions);
      },
    });
    new Gauge({
      name: "dormant_snapshot_cache_bytes",
      help: "Bytes of snapshots held in the in-memory cache.",
      registers: [this.registry],
      collect() {
        this.set(cache().bytes);
      },
    });
    new Gauge({
      name: "dormant_snapshot_cache_entries",
      help: "Partitions whose latest snapshot is held in the in-memory cache.",
      registers: [this.registry],
      collect() {
        this.set(cache().entries);
      },
    });
    new Gauge({
      name: "dormant_disk_bytes",
      help: "Bytes on disk by kind: snapshots, components, deliveries, dead-letters, records (fs store only) and engine-cache; measured at most once a minute.",
      labelNames: ["kind"],
      registers: [this.registry],
      async collect() {
        const usage = await host.retention.recent(60_000);
        this.reset();
        for (const [kind, bytes] of Object.entries(usage.store ?? {})) this.set({ kind: kind === "deadLetters" ? "dead-letters" : kind }, bytes);
        this.set({ kind: "engine-cache" }, usage.engineCache.bytes);
      },
    });
    new Gauge({
      name: "dormant_engine_cache_capacity_bytes",
      help: "The size the engine cache is kept within (entries of live partitions' components stay even beyond it).",
      registers: [this.registry],
      async collect() {
        this.set((await host.retention.recent(60_000)).engineCache.capacityBytes);
      },
    });
    new Gauge({
      name: "dormant_partitions",
      help: "Partitions, by state.",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const counts = { active: 0, idle: 0, frozen: 0 };
        for (const record of host.partitions.list()) counts[host.partitions.stateOf(record.id) as keyof typeof counts]++;
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
    new Counter({
      name: "dormant_prewarms_total",
      help: "Frozen partitions woken ahead of a timer (--prewarm), so its event found them live.",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(host.tasks.stats.prewarmed);
      },
    });
    new Gauge({
      name: "dormant_tasks",
      help: "Registered tasks.",
      registers: [this.registry],
      collect() {
        this.set(host.registry.size);
      },
    });
    new Gauge({
      name: "dormant_budget_constrained",
      help: "1 while the host runs under a constrained budget.",
      registers: [this.registry],
      collect() {
        this.set(host.budget.state.constrained ? 1 : 0);
      },
    });
    new Gauge({
      name: "dormant_pending_deliveries",
      help: "Deliveries stored and not yet delivered: async pushes, manual fires and retries (the queue depth).",
      registers: [this.registry],
      collect() {
        this.set(host.deliveries.backlog.count);
      },
    });
    new Gauge({
      name: "dormant_pending_bytes",
      help: "Bytes of the deliveries stored and not yet delivered (request bodies and payloads).",
      registers: [this.registry],
      collect() {
        this.set(host.deliveries.backlog.bytes);
      },
    });
    new Gauge({
      name: "dormant_delivery_lag_seconds",
      help: "How long the oldest stored delivery has waited since it was accepted or came due.",
      registers: [this.registry],
      collect() {
        this.set(host.deliveries.backlog.lagMs(host.clock.now()) / 1000);
      },
    });
  }

  /** Feed one host event. */
  observe(event: HostEvent): void {
    switch (event.type) {
      case "activated":
        this.#activations.inc({ kind: event.kind });
        this.#wake.observe({ kind: event.kind }, event.ms);
        break;
      case "frozen":
        this.#freezes.inc();
        this.#freezeBytes.inc(event.bytes);
        this.#freezeTime.observe(event.ms);
        break;
      case "checkpointed":
        this.#checkpoints.inc();
        break;
      case "trap":
        this.#traps.inc();
        break;
      case "activation-failed":
        this.#activationFailures.inc({ reason: event.reason });
        break;
      case "delivered":
        this.#deliveries.inc({ outcome: event.outcome.ok ? "ok" : "failed" });
        if (event.attempt === 1 && event.kind === "timer") this.#lateness.observe(Math.max(0, event.firedAt - event.scheduledAt));
        break;
      case "misfire":
        this.#misfires.inc({ policy: event.policy });
        this.#missed.inc(event.missed);
        break;
      case "retry-scheduled":
        this.#retries.inc();
        break;
      case "shards-acquired":
        this.#shardMoves.inc({ how: "acquired" }, event.shards.length);
        break;
      case "shards-released":
        this.#shardMoves.inc({ how: event.how }, event.shards.length);
        break;
      case "takeover":
        this.#takeoverRedeliveries.inc({ what: "timer" }, event.overdueTimers);
        this.#takeoverRedeliveries.inc({ what: "delivery" }, event.pendingDeliveries);
        break;
      case "dead-lettered":
        this.#deadLetters.inc();
        break;
      case "dead-letter-evicted":
        this.#deadLettersEvicted.inc({ reason: event.reason });
        break;
      case "component-removed":
        this.#componentsRemoved.inc({ reason: event.reason });
        break;
      case "engine-cache-evicted":
        this.#engineCacheEvictions.inc({ reason: event.reason });
        break;
      case "postponed":
        this.#postponed.inc({ priority: String(event.priority) });
        break;
      case "dropped":
        this.#dropped.inc({ priority: String(event.priority) });
        break;
    }
  }

  push(status: number): void {
    this.#pushes.inc({ status: String(status) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
