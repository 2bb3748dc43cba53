// Everything a host reports, for observers (metrics, activity, logs, tests).
import type { ClusterEvent } from "./cluster/membership.ts";
import type { ComponentEvent } from "./components/registry.ts";
import type { DeadLetterEvicted } from "./delivery/delivery-store.ts";
import type { DeliveryEvent } from "./delivery/dispatcher.ts";
import type { PartitionEvent } from "./partitions/partition.ts";
import type { StoreEvent } from "./store/watch.ts";
import type { TaskServiceEvent } from "./tasks/service.ts";

export type HostEvent =
  PartitionEvent | DeliveryEvent | TaskServiceEvent | ClusterEvent | ComponentEvent | DeadLetterEvicted | Extract<StoreEvent, { type: "store-recovered" }>;
