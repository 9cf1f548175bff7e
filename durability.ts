/**
 * Whether the promoted node's latest commits have a copy on a replica (pure). When they cannot,
 * the promoted monitor says so with OCF_DEGRADED_PROMOTED (191) and an exit reason instead of
 * hiding the risk: the master runs and takes writes, but losing it now loses acknowledged ones.
 *
 * - `semi-sync-fallback`: `semi_sync` is on and the master fell back to asynchronous replication
 *   (no replica acknowledged within semi_sync_timeout): commits are acknowledged with no copy.
 * - `no-replica`: the clone has other instances but no replica is connected to the binary log.
 * - `replicas-lagging`: every connected replica lags past `max_slave_lag` (their
 *   `prm-<rsc>-not-promotable` attribute says `lagging`).
 *
 * The monitor returns 8 again once none of these holds.
 *
 * @module
 */

import type { NotPromotable } from "./attrs.ts";

/** One of the risks above. */
export type DurabilityRisk = "semi-sync-fallback" | "no-replica" | "replicas-lagging";

/** What the promoted monitor observed. */
export interface DurabilityInput {
  /** The semi_sync parameter. */
  semiSync: boolean;
  /** `Rpl_semi_sync_*` status variables (name → value), when semi_sync is on. */
  semiSyncStatus?: Record<string, string>;
  /** Replicas connected to this server's binary log (Binlog Dump threads). */
  connectedReplicas: number;
  /** True when the clone may run other instances (clone-max above 1). */
  expectReplicas: boolean;
  /**
   * The not-promotable reasons the other nodes publish. A replica reports `lagging` only while
   * its IO thread is connected (Seconds_Behind_Master is NULL otherwise), so the lagging ones
   * are among the connected ones.
   */
  replicaReasons: (NotPromotable | undefined)[];
  /** max_slave_lag, for the sentence. */
  maxLagSeconds: number;
}

/** The verdict: a risk with its sentence, or none. */
export interface Durability {
  /** Undefined when the latest commits have a copy (or should soon). */
  risk?: DurabilityRisk;
  /** One sentence for the exit reason and the log. */
  reason: string;
}

/** The semi-sync status variable, MariaDB's or MySQL 8's name. */
function semiSyncOn(status: Record<string, string>): boolean | undefined {
  const v = status.Rpl_semi_sync_master_status ?? status.Rpl_semi_sync_source_status;
  return v === undefined ? undefined : /^(ON|1)$/i.test(v.trim());
}

/**
 * Judges the promoted node's exposure.
 *
 * @example
 * ```ts
 * const d = durabilityOf({
 *   semiSync: true,
 *   semiSyncStatus: { Rpl_semi_sync_master_status: "OFF" },
 *   connectedReplicas: 2,
 *   expectReplicas: true,
 *   replicaReasons: [undefined, undefined],
 *   maxLagSeconds: 60,
 * });
 * console.assert(d.risk === "semi-sync-fallback");
 * ```
 */
export function durabilityOf(input: DurabilityInput): Durability {
  if (input.semiSync && input.semiSyncStatus !== undefined) {
    if (semiSyncOn(input.semiSyncStatus) === false) {
      return {
        risk: "semi-sync-fallback",
        reason: "Semi-sync fell back to asynchronous replication: commits are acknowledged " +
          "before any replica has them",
      };
    }
  }
  if (!input.expectReplicas) return { reason: "no replicas expected (clone-max 1)" };
  if (input.connectedReplicas === 0) {
    return {
      risk: "no-replica",
      reason: "No replica is connected: commits are acknowledged with no copy elsewhere",
    };
  }
  const lagging = input.replicaReasons.filter((r) => r === "lagging").length;
  if (lagging >= input.connectedReplicas) {
    return {
      risk: "replicas-lagging",
      reason: `Every replica lags past max_slave_lag (${input.maxLagSeconds} s): the latest ` +
        "commits have no copy that could be promoted",
    };
  }
  return {
    reason: `${input.connectedReplicas} replica(s) connected${
      input.semiSync ? ", semi-sync active" : ""
    }`,
  };
}
