// The port for the host's one timer queue. Everything that comes due at an instant (a
// task's next occurrence, a delivery's next attempt, a partition's idle check) is armed
// here under a key; the timer loop claims what is due, handles it and acks it.
//
// Claims are leased (as golem's scheduler storage does): a claimed timer is handed to no
// one else until its lease runs out, and if its claimant dies before the ack it comes due
// again then. So a queue shared by several hosts delivers at least once, even across the
// loss of a host between claiming a timer and finishing with it.

export interface DueTimer {
  key: string;
  /** The instant it was armed for (Unix ms). */
  at: number;
}

export interface ClaimedTimer extends DueTimer {
  /** Identifies this claim: an ack or extension of an older claim of the key does nothing. */
  claim: number;
}

export interface TimerQueue {
  /** Arm `key` to come due at `at`, replacing any earlier arming (or claim) of it. */
  arm(key: string, at: number): Promise<void>;
  disarm(key: string): Promise<void>;
  /**
   * Claim the timers due at or before `now`, earliest first (at most `limit`), each leased
   * until `now + leaseMs`. An unacked claim whose lease ran out is due again, with its
   * original `at`.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedTimer[]>;
  /** Keep a claim until `until`; false when the claim is no longer held (re-armed, disarmed). */
  extend(timer: ClaimedTimer, until: number): Promise<boolean>;
  /** Done with a claimed timer: it is removed, unless it was armed again since the claim. */
  ack(timer: ClaimedTimer): Promise<void>;
  /** When the earliest armed timer, or lease expiry, comes due; undefined when none. */
  nextAt(): Promise<number | undefined>;
  size(): Promise<number>;
  close(): Promise<void>;
}
