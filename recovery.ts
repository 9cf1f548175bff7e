/**
 * Recovery decisions (pure): what happens to a master whose server failed while its node stays
 * up, and what replicas do when they start while the last master is missing. The agent takes
 * them at fixed points of Pacemaker's ordinary recovery; nothing here restarts anything.
 *
 * **A failed master** (mysqld died, or the promoted monitor failed): the recurring promoted
 * monitor reports it (OCF_NOT_RUNNING, or an error with an exit reason) and records the failure
 * in the state folder ({@link PromotedFailure}). Pacemaker counts the failure and recovers the
 * instance: demote (a no-op on a dead server), stop, start, promote. The stop decides
 * ({@link decideRecovery}):
 *
 * - `in-place`: `try_restart_crashed_master` is on, this node is still the published master, the
 *   failure was the server itself (not a full disk), and no in-place restart happened within
 *   `crash_restart_window`. The stop leaves the node a score above every replica
 *   (attrs.ts `SCORE.LAST_MASTER`) instead of deleting it, so the re-plan starts and promotes it
 *   again: the start brings the server back read-only (crash recovery inside the start timeout),
 *   the promote opens writes. Replicas keep their coordinates.
 * - `failover`: the stop deletes the score as always and another node is promoted; the start
 *   (when migration-threshold still lets this node run the instance) brings the server back
 *   read-only with a score below every replica and publishes where its binary log ends, so the
 *   promotee receives the old master's last commits before it opens writes.
 *
 * Writes never open on two nodes: the restarted server is read-only until Pacemaker promotes it,
 * and Pacemaker promotes one instance (promoted-max=1) after demoting the other.
 *
 * **A cold start** (every node lost, the replicas booting first): a replica that starts while the
 * published master has no running instance withholds its score (`cold-start-wait`,
 * {@link coldStartAtStart}, {@link coldStartState}) until that master is back (then it is
 * promoted: it holds the most) or `cold_start_timeout` passed since the replica's start (then the
 * best present node is). A cluster that never published a master never waits.
 *
 * @module
 */

/** Why the promoted monitor failed, as it records it. */
export type PromotedFailureKind =
  /** The server process is gone (crash, kill -9, OOM). */
  | "crashed"
  /** The server runs but failed its checks (unresponsive, failing queries). */
  | "failed"
  /** Its datadir filesystem is nearly full: never restarted in place. */
  | "disk-full";

/** A failure of the promoted instance, recorded by its monitor for the recovery after it. */
export interface PromotedFailure {
  /** What failed. */
  kind: PromotedFailureKind;
  /** When (Date.now() ms). */
  at: number;
}

/** What the stop after a promoted failure decided. */
export type RecoveryDecision = "in-place" | "failover";

/** The decision and why, for the log. */
export interface Recovery {
  /** Undefined when no failure of this node's promoted instance is being recovered. */
  decision?: RecoveryDecision;
  /** One sentence. */
  reason: string;
}

/**
 * How long a recorded failure belongs to the recovery that follows it. Pacemaker stops a failed
 * instance within seconds; a record older than this was left by a failure whose recovery did not
 * stop the instance, and must not decide a later stop (a standby, a move).
 */
export const FAILURE_RECORD_MS = 10 * 60_000;

/**
 * True while a decision taken at `at` still belongs to the recovery it was taken for (the same
 * bound as a failure record: Pacemaker runs the start and the promote within seconds).
 */
export function withinRecovery(at: number, now: number): boolean {
  return at <= now && now - at <= FAILURE_RECORD_MS;
}

/** Input of {@link decideRecovery}. */
export interface RecoveryInput {
  /** The promoted monitor's record, if any. */
  failure?: PromotedFailure;
  /** True when `<rsc>_REPL_INFO` still names this node (nobody was promoted since). */
  lastMaster: boolean;
  /** try_restart_crashed_master. */
  tryRestart: boolean;
  /** crash_restart_window in ms. */
  windowMs: number;
  /** When this node last restarted in place (Date.now() ms), if it did. */
  lastInPlaceAt?: number;
  /** Now (Date.now() ms). */
  now: number;
}

/**
 * The stop's decision after a failure of this node's promoted instance.
 *
 * @example
 * ```ts
 * const now = Date.now();
 * const r = decideRecovery({
 *   failure: { kind: "crashed", at: now - 2_000 },
 *   lastMaster: true,
 *   tryRestart: true,
 *   windowMs: 3_600_000,
 *   now,
 * });
 * console.assert(r.decision === "in-place");
 * ```
 */
export function decideRecovery(input: RecoveryInput): Recovery {
  const f = input.failure;
  if (f === undefined || !withinRecovery(f.at, input.now)) {
    return { reason: "no failure of the promoted instance to recover" };
  }
  if (!input.lastMaster) {
    return {
      decision: "failover",
      reason: "another node is the published master: nothing to restart in place",
    };
  }
  if (f.kind === "disk-full") {
    return { decision: "failover", reason: "its datadir filesystem is nearly full" };
  }
  if (!input.tryRestart) {
    return { decision: "failover", reason: "try_restart_crashed_master is off" };
  }
  const since = input.lastInPlaceAt === undefined ? undefined : input.now - input.lastInPlaceAt;
  if (since !== undefined && since >= 0 && since < input.windowMs) {
    return {
      decision: "failover",
      reason: `restarted in place ${Math.round(since / 1000)} s ago, within crash_restart_window (${
        Math.round(input.windowMs / 1000)
      } s): a crash loop`,
    };
  }
  return {
    decision: "in-place",
    reason: `${f.kind === "crashed" ? "the server died" : "the server failed"}; ${
      since === undefined
        ? "no in-place restart before"
        : `last in-place restart ${Math.round(since / 1000)} s ago`
    }`,
  };
}

/** A replica's wait for the last published master after a cold start. */
export interface ColdStartWait {
  /** When the replica started (Date.now() ms). */
  since: number;
  /** The published master it waits for. */
  master: string;
}

/** Input of {@link coldStartAtStart}. */
export interface ColdStartInput {
  /** This node. */
  self: string;
  /** The published master's node, undefined when none was ever published. */
  published?: string;
  /** True when the published master runs an instance in the cluster now. */
  masterPresent: boolean;
  /** Now (Date.now() ms). */
  now: number;
}

/**
 * Whether a replica starting now must wait for the published master: only when one was
 * published, it is another node, and that node runs no instance.
 */
export function coldStartAtStart(input: ColdStartInput): ColdStartWait | undefined {
  if (input.published === undefined || input.published === input.self) return undefined;
  if (input.masterPresent) return undefined;
  return { since: input.now, master: input.published };
}

/** Where a cold-start wait stands. */
export interface ColdStartState {
  /** True while the replica must withhold its score. */
  waiting: boolean;
  /** One sentence, for the log. */
  reason: string;
}

/** Input of {@link coldStartState}. */
export interface ColdStartStateInput {
  /** The wait recorded at start. */
  wait: ColdStartWait;
  /** The published master now (undefined when unset or unreadable). */
  published?: string;
  /** True when the awaited master runs an instance now. */
  masterPresent: boolean;
  /** cold_start_timeout in ms. */
  timeoutMs: number;
  /** Now (Date.now() ms). */
  now: number;
}

/**
 * Whether a replica still waits: until its master is back, another master is published, or the
 * timeout since its start passed.
 */
export function coldStartState(input: ColdStartStateInput): ColdStartState {
  const { wait } = input;
  if (input.published !== undefined && input.published !== wait.master) {
    return { waiting: false, reason: `${input.published} is the published master now` };
  }
  if (input.masterPresent) {
    return { waiting: false, reason: `the last master ${wait.master} is back` };
  }
  const waited = input.now - wait.since;
  if (waited >= input.timeoutMs) {
    return {
      waiting: false,
      reason: `${wait.master} missing for ${
        Math.round(waited / 1000)
      } s (cold_start_timeout): the best present node may be promoted`,
    };
  }
  return {
    waiting: true,
    reason: `waiting for the last master ${wait.master}, which may hold more (${
      Math.round(waited / 1000)
    } of ${Math.round(input.timeoutMs / 1000)} s)`,
  };
}
