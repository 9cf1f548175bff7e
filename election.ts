/**
 * Election (pure): positions in the master's coordinates, replica health, promotion scores, and
 * the promote-time check that no live peer holds more of the old master's data.
 *
 * The agent compares what each replica holds of the old master: its received position
 * (Master_Log_File / Read_Master_Log_Pos), published in pre-promote. The promotee then applies its
 * relay log before it accepts writes, so after promotion it holds at least what any peer held; a
 * peer whose SQL thread is slow or blocked does not hold up the failover.
 *
 * @module
 */

import type { ReplicaStatus } from "./sql.ts";
import { type BinlogPosition, comparePositions, formatPosition } from "./position.ts";
import { type NotPromotable, SCORE } from "./attrs.ts";

/** The executed position of a replica, in its master's coordinates. */
export function executedPosition(s: ReplicaStatus): BinlogPosition | undefined {
  if (s.relayMasterLogFile === "") return undefined;
  return { file: s.relayMasterLogFile, pos: s.execMasterLogPos };
}

/** The received position of a replica (what the IO thread has read), in its master's coordinates. */
export function receivedPositionOf(s: ReplicaStatus): BinlogPosition | undefined {
  if (s.masterLogFile === "") return undefined;
  return { file: s.masterLogFile, pos: s.readMasterLogPos };
}

/** The SQL thread's state once it has applied all its relay log (MariaDB and MySQL alike). */
const SQL_THREAD_IDLE = /has read all relay log/i;

/**
 * True when the SQL thread has applied everything the IO thread received: the executed position
 * reached the received one; or, with the IO thread no longer receiving, the SQL thread waits
 * for more with its relay log read to the end. The second case is a transaction cut short when
 * the master died: its first events are in the relay log, its end never will be, so the
 * positions never meet, and rightly so (a partial transaction is never applied). While the IO
 * thread still receives, only the positions count: the SQL thread may not have woken up yet for
 * events just written.
 */
export function relayApplied(s: ReplicaStatus): boolean {
  const exec = executedPosition(s);
  const read = receivedPositionOf(s);
  if (exec === undefined || read === undefined) return true;
  if (comparePositions(exec, read) >= 0) return true;
  return s.ioRunning !== "Yes" && s.sqlRunning && SQL_THREAD_IDLE.test(s.sqlState);
}

/**
 * Client errors an IO thread shows while its master is unreachable (down, restarting, fenced):
 * 2003 can't connect, 2005 unknown host, 2006 gone away, 2013 lost connection, 1159/1158/1160/1161
 * network read/write errors. They say nothing about this replica's data.
 */
const CONNECTION_ERRNOS = new Set([2003, 2005, 2006, 2013, 1158, 1159, 1160, 1161]);

/**
 * What a replica's threads say, as a value the agent decides on (the `reason` text is for the
 * log only): replicating; its master unreachable (expected during a failover: still promotable);
 * lagging past max_slave_lag; the IO thread stopped by hand or broken by an error other than a
 * lost master; the SQL thread stopped or broken.
 */
export type ReplicaState =
  | "replicating"
  | "master-unreachable"
  | "lagging"
  | "io-stopped"
  | "io-broken"
  | "sql-broken";

/** Health of a replica. */
export interface ReplicaHealth {
  /** The state the decision rests on. */
  state: ReplicaState;
  /** True when the replica may be promoted and may serve reads (lag aside for promotion). */
  healthy: boolean;
  /** True when reads are fine (healthy, both threads running, lag known and within the limit). */
  readable: boolean;
  /** True when it lags over max_slave_lag. */
  outdated: boolean;
  /** Why, with the figures, for the log. */
  reason: string;
}

/** Options for {@link assessReplica}. */
export interface AssessOptions {
  /** max_slave_lag in seconds. */
  maxLag: number;
}

/**
 * Judges a replica from its status. A broken SQL thread, an SQL error, an IO error other than an
 * unreachable master, or a lag over the limit make it unhealthy: it gets no score, so it is never
 * promoted. An IO thread merely reconnecting to a lost master is expected during a failover.
 */
export function assessReplica(s: ReplicaStatus, options: AssessOptions): ReplicaHealth {
  const io = `io=${s.ioRunning || "-"}${s.lastIoErrno ? `(${s.lastIoErrno})` : ""}`;
  const sql = `sql=${s.sqlRunning ? "Yes" : "No"}${s.lastSqlErrno ? `(${s.lastSqlErrno})` : ""}`;
  const lag = `lag=${s.secondsBehind ?? "null"}s/max ${options.maxLag}s`;
  const figures = `${io} ${sql} ${lag} exec=${s.relayMasterLogFile}:${s.execMasterLogPos}`;
  if (!s.sqlRunning || s.lastSqlErrno !== 0) {
    return {
      state: "sql-broken",
      healthy: false,
      readable: false,
      outdated: false,
      reason: `SQL thread broken: ${figures} ${s.lastSqlError}`.trim(),
    };
  }
  const ioConnecting = s.ioRunning === "Connecting" || s.ioRunning === "No";
  if (s.lastIoErrno !== 0 && !CONNECTION_ERRNOS.has(s.lastIoErrno)) {
    return {
      state: "io-broken",
      healthy: false,
      readable: false,
      outdated: false,
      reason: `IO thread broken: ${figures} ${s.lastIoError}`.trim(),
    };
  }
  if (s.ioRunning === "No" && s.lastIoErrno === 0) {
    return {
      state: "io-stopped",
      healthy: false,
      readable: false,
      outdated: false,
      reason: `IO thread stopped: ${figures}`,
    };
  }
  if (s.secondsBehind !== null && s.secondsBehind > options.maxLag) {
    return {
      state: "lagging",
      healthy: false,
      readable: false,
      outdated: true,
      reason: `lagging: ${figures}`,
    };
  }
  if (ioConnecting || s.secondsBehind === null) {
    return {
      state: "master-unreachable",
      healthy: true,
      readable: false,
      outdated: false,
      reason: `master unreachable: ${figures}`,
    };
  }
  return {
    state: "replicating",
    healthy: true,
    readable: true,
    outdated: false,
    reason: `replicating: ${figures}`,
  };
}

/** A peer's published position, as read back from a private attribute. */
export interface PeerPosition {
  /** Node name. */
  node: string;
  /** The master it replicated from. */
  masterHost: string;
  /** What it received, in that master's coordinates. */
  position: BinlogPosition;
}

/** The promote-time decision. */
export interface PromoteCheck {
  /** True when the promotee may go on. */
  proceed: boolean;
  /** The best peer when it holds more than the promotee. */
  better?: PeerPosition;
  /** Why, with the positions. */
  reason: string;
}

/** Input of {@link checkPromotee}. */
export interface PromoteInput {
  /** The promotee's node name: peers that replicated from it hold nothing it lacks. */
  self: string;
  /** The promotee's own position, undefined when it replicated from nobody. */
  mine?: PeerPosition;
  /** Positions published by live peers. */
  peers: PeerPosition[];
}

/**
 * Decides whether the promotee holds at least as much of the old master's data as every peer
 * that replicated from the same master. Peers of another master are not comparable and ignored;
 * an idle promotee loses to any peer that replicated from a third node.
 *
 * The last master back read-only (after a crash or a whole-cluster outage) publishes its own
 * binary log end in its own coordinates (`mine.masterHost` is itself): its replicas' received
 * positions are then compared with it, so that one holding more than its binary log (a tail the
 * crash lost) wins. Otherwise peers that replicated from the promotee hold nothing it lacks.
 */
export function checkPromotee(input: PromoteInput): PromoteCheck {
  const { mine, self } = input;
  const ownCoordinates = mine?.masterHost === self;
  const peers = input.peers.filter((p) =>
    p.node !== self && (ownCoordinates || p.masterHost !== self)
  );
  const peerText = peers.map((p) => `${p.node}=${formatPosition(p.position)}`).join(" ");
  if (mine === undefined) {
    if (peers.length === 0) return { proceed: true, reason: "no replica positions to compare" };
    const best = peers.reduce((a, b) => comparePositions(b.position, a.position) > 0 ? b : a);
    return {
      proceed: false,
      better: best,
      reason: `this node replicated from nobody while ${best.node} holds ${
        formatPosition(best.position)
      } of ${best.masterHost}`,
    };
  }
  let best: PeerPosition | undefined;
  for (const p of peers) {
    if (p.masterHost !== mine.masterHost) continue;
    if (comparePositions(p.position, mine.position) <= 0) continue;
    if (best === undefined || comparePositions(p.position, best.position) > 0) best = p;
  }
  if (best !== undefined) {
    return {
      proceed: false,
      better: best,
      reason: `${best.node} holds more of ${mine.masterHost}: ${formatPosition(best.position)} > ${
        formatPosition(mine.position)
      } (peers: ${peerText})`,
    };
  }
  return {
    proceed: true,
    reason: `this node holds the most of ${mine.masterHost}: ${
      formatPosition(mine.position)
    } (peers: ${peerText || "none"})`,
  };
}

/** Whether a node may be promoted: its score, or why not (the node attribute's value). */
export interface Candidacy {
  /** The promotion score; undefined deletes it (never promoted). */
  score?: number;
  /** Why the node is not a candidate; undefined when it is one. */
  notPromotable?: NotPromotable;
}

/** What {@link replicaCandidacy} weighs besides the replica's health. */
export interface CandidacyInput {
  /** Its health, or undefined when it replicates from nobody (idle). */
  health?: ReplicaHealth;
  /** Its history was repaired by hand: it loses ties (attrs.ts SCORE.REPAIRED_REPLICA). */
  repaired?: boolean;
  /** A reason that overrides the rest (disk full, cold-start wait), decided by the caller. */
  withheld?: NotPromotable;
  /**
   * It replicates from nobody and is the published master back read-only, not failed over: it
   * holds at least what its replicas received (LAST_MASTER, above them).
   */
  lastMaster?: boolean;
}

/**
 * The candidacy of an unpromoted node: a healthy replica scores REPLICA (REPAIRED_REPLICA when
 * repaired by hand), the last master back read-only LAST_MASTER, another idle server IDLE,
 * anything else no score, with the reason.
 */
export function replicaCandidacy(input: CandidacyInput): Candidacy {
  if (input.withheld !== undefined) return { notPromotable: input.withheld };
  const h = input.health;
  if (h === undefined) return { score: input.lastMaster ? SCORE.LAST_MASTER : SCORE.IDLE };
  if (!h.healthy) {
    return {
      notPromotable: h.state === "replicating" || h.state === "master-unreachable"
        ? undefined
        : h.state,
    };
  }
  return { score: input.repaired ? SCORE.REPAIRED_REPLICA : SCORE.REPLICA };
}

/** Reader attribute hysteresis: consecutive failures before going unreadable. */
export function nextReaderState(
  previous: { readable: boolean; failures: number },
  checkOk: boolean,
  failcount: number,
): { readable: boolean; failures: number } {
  if (checkOk) return { readable: true, failures: 0 };
  const failures = previous.failures + 1;
  return { readable: failures < failcount ? previous.readable : false, failures };
}
