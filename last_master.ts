/**
 * The last master's way back, and the replicas' wait for it: the I/O around recovery.ts's
 * decisions, at the points of Pacemaker's ordinary recovery where they are taken.
 *
 * | when                        | who                       | what                                       |
 * | --------------------------- | ------------------------- | ------------------------------------------ |
 * | promoted monitor fails      | the master                | {@link recordPromotedFailure}              |
 * | stop after that failure     | the master                | {@link decideAtStop}: in place or failover |
 * | start, REPL_INFO names it   | the last master           | {@link returnAsLastMaster}                 |
 * | start, REPL_INFO names another | a replica              | {@link noteColdStart}                      |
 * | monitor                     | a replica in a cold start | {@link coldStartWaiting}                   |
 * | pre-promote, promote        | the last master           | {@link lastMasterPosition}                 |
 *
 * @module
 */

import { type ReplInfo } from "./attrs.ts";
import type { PeerPosition } from "./election.ts";
import type { MysqlClient } from "./mysql.ts";
import { encodeCoordinates, formatPosition } from "./position.ts";
import {
  coldStartAtStart,
  coldStartState,
  decideRecovery,
  type PromotedFailureKind,
  type RecoveryDecision,
  withinRecovery,
} from "./recovery.ts";
import { ownLastTransaction } from "./resync_agent.ts";
import { loadState, type LocalState, type Run, saveState, updateState } from "./run.ts";

/**
 * Records a failure of this node's promoted instance for the stop that Pacemaker's recovery runs
 * next (recurring promoted monitors only: a probe finds what is, it recovers nothing).
 */
export function recordPromotedFailure(run: Run, kind: PromotedFailureKind): void {
  if (!run.ctx.promotable || run.ctx.role !== "Promoted" || run.ctx.intervalMs === 0) return;
  const state = loadState(run);
  // A full disk stays the reason even if the next monitor only finds the server dead.
  if (state.promotedFailure?.kind === "disk-full" && kind !== "disk-full") return;
  state.promotedFailure = { kind, at: Date.now() };
  saveState(run, state);
}

/** Forgets a failure the promoted instance recovered from by itself (a good promoted monitor). */
export function clearPromotedFailure(run: Run): void {
  const state = loadState(run);
  if (state.promotedFailure === undefined) return;
  delete state.promotedFailure;
  saveState(run, state);
}

/** What this node's last recovery decided, while it lasts (until promoted or following another). */
export function recoveryDecision(state: LocalState): RecoveryDecision | undefined {
  return state.recovery?.decision;
}

/**
 * True when this node is the last master back read-only as a promotion candidate: its start
 * found `<rsc>_REPL_INFO` naming it, and it did not fail over. A master demoted on purpose (a
 * switchover) is not one: its start did not happen, its score stays the demote's.
 */
export function lastMasterCandidate(state: LocalState): boolean {
  return state.lastMasterBack !== undefined && recoveryDecision(state) !== "failover";
}

/**
 * stop: after a failure of this node's promoted instance, decides whether Pacemaker's recovery
 * restarts it in place or fails over (recovery.ts), records the decision in `state` (the caller
 * saves it) and returns the promotion score the stop leaves: LAST_MASTER in place (above every
 * replica, so the re-plan starts and promotes this node again), none otherwise. A stop with no
 * failure to recover ends any earlier recovery.
 */
export async function decideAtStop(
  run: Run,
  state: LocalState,
  scoreInPlace: number,
): Promise<number | undefined> {
  const failure = state.promotedFailure;
  const earlier = state.recovery;
  delete state.promotedFailure;
  delete state.recovery;
  delete state.coldStart;
  delete state.lastMasterBack;
  if (failure === undefined) {
    // A second stop within the same recovery (Pacemaker re-placing clone instances before the
    // promote) keeps what the first one decided; any other stop ends the recovery.
    if (earlier === undefined || !withinRecovery(earlier.at, Date.now())) return undefined;
    state.recovery = earlier;
    return earlier.decision === "in-place" ? scoreInPlace : undefined;
  }
  const published = await run.cib.replInfo();
  const now = Date.now();
  const r = decideRecovery({
    failure,
    lastMaster: published?.host === run.node,
    tryRestart: run.params.tryRestartCrashedMaster,
    windowMs: run.params.crashRestartWindow * 1000,
    lastInPlaceAt: state.lastInPlaceAt,
    now,
  });
  if (r.decision === undefined) return undefined;
  state.recovery = { decision: r.decision, at: now };
  if (r.decision === "in-place") {
    state.lastInPlaceAt = now;
    run.log.info(
      `Promoted instance failed (${failure.kind}): restarting it in place (${r.reason}); ` +
        "keeping this node first in line for promotion",
    );
    return scoreInPlace;
  }
  run.log.info(
    `Promoted instance failed (${failure.kind}): failing over (${r.reason}); the start brings ` +
      "the server back read-only to hand its last commits to the new master",
  );
  return undefined;
}

/**
 * start, on the node `<rsc>_REPL_INFO` names: its server is back read-only (after a crash, a
 * planned restart, or a whole-cluster outage). Publishes where its last complete transaction
 * ends as its final position (the private `prm-<rsc>-final`, as a demote does), so that whichever
 * node is promoted receives all it committed before opening writes (failover.ts), and logs why it
 * is back.
 */
export async function returnAsLastMaster(run: Run, client: MysqlClient): Promise<void> {
  updateState(run, (state) => {
    state.lastMasterBack = Date.now();
  });
  const decision = recoveryDecision(loadState(run));
  const end = await ownLastTransaction(client).catch((err) => {
    run.log.warn(`Cannot read this node's binary log tail: ${(err as Error).message}`);
    return undefined;
  });
  if (end !== undefined) {
    await run.cib.setPrivate(run.names.final, encodeCoordinates({ host: run.node, ...end }));
  }
  const held = end === undefined ? "no transaction" : `commits up to ${formatPosition(end)}`;
  if (decision === "failover") {
    run.log.info(
      `Back read-only after the failure, holding ${held}: the new master receives them before ` +
        "it opens writes; this node follows it afterwards",
    );
  } else if (decision === "in-place") {
    run.log.info(`Back read-only after the crash, holding ${held}: waiting to be promoted again`);
  } else {
    run.log.info(
      `${run.names.replInfo} names this node: the last master is back read-only holding ${held}`,
    );
  }
}

/**
 * True when `node` runs an instance of this resource: it is a member of this partition and its
 * candidacy is published (the first monitor, at the end of every start, publishes a score or a
 * reason; transient attributes go when a node leaves, and the membership check guards against
 * any left from before an outage).
 */
async function runsInstance(run: Run, node: string): Promise<boolean> {
  const [members, score, reason] = await Promise.all([
    run.cib.partitionNodes(),
    run.cib.promotionScore(node),
    run.cib.nodeAttribute(run.names.notPromotable, node),
  ]);
  if (!members.includes(node)) return false;
  return score !== undefined || (reason !== undefined && reason !== "");
}

/**
 * start, a node whose published master is another: after a whole-cluster outage the replicas may
 * boot before the master, which may hold commits none of them received. When that master runs no
 * instance, this node withholds its promotion score (`cold-start-wait`) until it does, another
 * master is published, or `cold_start_timeout` passed.
 */
export async function noteColdStart(run: Run, master: string): Promise<void> {
  const state = loadState(run);
  const timeoutMs = run.params.coldStartTimeout * 1000;
  const wait = timeoutMs === 0 ? undefined : coldStartAtStart({
    self: run.node,
    published: master,
    masterPresent: await runsInstance(run, master),
    now: Date.now(),
  });
  if (wait === undefined && state.coldStart === undefined) return;
  if (wait === undefined) delete state.coldStart;
  else {
    state.coldStart = wait;
    run.log.warn(
      `Cold start: the last published master ${master} runs no instance, and may hold commits ` +
        `this node never received: not a promotion candidate (cold-start-wait) until it is ` +
        `back, for at most ${run.params.coldStartTimeout} s`,
    );
  }
  saveState(run, state);
}

/**
 * monitor: whether this replica still waits for the last master after a cold start; clears the
 * wait (for good, until the next start) once it is over.
 */
export async function coldStartWaiting(
  run: Run,
  published: ReplInfo | undefined,
): Promise<boolean> {
  const state = loadState(run);
  const wait = state.coldStart;
  if (wait === undefined) return false;
  const s = coldStartState({
    wait,
    published: published?.host,
    masterPresent: published?.host === wait.master && await runsInstance(run, wait.master),
    timeoutMs: run.params.coldStartTimeout * 1000,
    now: Date.now(),
  });
  if (s.waiting) {
    run.log.info(`Cold start: ${s.reason}`);
    return true;
  }
  run.log.info(`Cold start wait over: ${s.reason}`);
  delete state.coldStart;
  saveState(run, state);
  return false;
}

/**
 * The last master's own position for the election, when `<rsc>_REPL_INFO` names it (else
 * undefined): where its last complete transaction ends, in its own coordinates, so that its
 * replicas' received positions compare with it. Not the current binary log position: a restart
 * opens a new file, which would rank above any replica even when the server came back with less
 * than they received (a power loss with sync_binlog=0); the replica holding more must win then.
 * In pre-promote a node that failed over publishes none (it is not a candidate).
 */
export async function lastMasterPosition(
  run: Run,
  client: MysqlClient,
  options: { published: ReplInfo | undefined; candidateOnly: boolean },
): Promise<PeerPosition | undefined> {
  if (options.published?.host !== run.node) return undefined;
  if (options.candidateOnly && !lastMasterCandidate(loadState(run))) return undefined;
  const end = await ownLastTransaction(client);
  if (end === undefined) return undefined;
  return { node: run.node, masterHost: run.node, position: end };
}

/** Ends this node's recovery and cold-start records (it is promoted, or follows another). */
export function endRecovery(run: Run): void {
  updateState(run, (state) => {
    if (
      state.recovery === undefined && state.coldStart === undefined &&
      state.promotedFailure === undefined && state.lastMasterBack === undefined
    ) return false;
    delete state.recovery;
    delete state.coldStart;
    delete state.promotedFailure;
    delete state.lastMasterBack;
  });
}
