// The port for the host's one timer queue. Everything that comes due at an instant — a
// task's next occurrence, a failed delivery's next attempt — is armed here under a key;
// the scheduler takes what is due. Taking removes: an implementation shared by several
// hosts hands each due key to exactly one of them.

export interface DueTimer {
  key: string;
  /** The instant it was armed for (Unix ms). */
  at: number;
}

export interface TimerQueue {
  /** Arm `key` to come due at `at`, replacing any earlier arming of it. */
  arm(key: string, at: number): Promise<void>;
  disarm(key: string): Promise<void>;
  /** Remove and return the timers due at or before `now`, earliest first (at most `limit`). */
  takeDue(now: number, limit: number): Promise<DueTimer[]>;
  /** When the earliest armed timer comes due; undefined when none is armed. */
  nextAt(): Promise<number | undefined>;
  size(): Promise<number>;
  close(): Promise<void>;
}
