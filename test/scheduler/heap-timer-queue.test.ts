import { HeapTimerQueue } from "../../src/scheduler/heap-timer-queue.ts";
import { timerQueueContract } from "./timer-queue-contract.ts";

timerQueueContract("in-process heap", async () => new HeapTimerQueue());
