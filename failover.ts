/**
 * The failover protocol: how a promotable clone moves its master, as named steps. Pacemaker
 * drives it; this module says what each node does at each step and why it is safe.
 *
 * 1. **pre-promote** (notify, every active instance, {@link notifyPrePromote}): let the IO thread
 *    receive what a demoted master published as its final position (switchover), then publish
 *    what this node received (`prm-<rsc>-pos`, private) for the election. The promotee also
 *    records which peers it expects, and compares at once ({@link electBeforePromote}): when a
 *    peer holds more, it moves the scores, and that CIB change aborts the transition before the
 *    promote starts (no failed action, nothing counted against migration-threshold).
 * 2. **promote** ({@link actionPromote}): refuse a replica whose SQL thread is broken; compare
 *    again with every live peer (a promote that started anyway), step aside if one holds more
 *    (scores moved, `prm-<rsc>-refused` set so peers stop waiting, the promote fails so that
 *    Pacemaker re-plans); GTID mode compares GTID positions too; apply the whole relay log;
 *    stop and reset replication; publish `<rsc>_REPL_INFO` (the coordinates taken after
 *    everything was applied and before any write); semi-sync as source; open writes.
 * 3. **post-promote** (notify, {@link notifyPostPromote}): every other instance waits for the
 *    promotee's coordinates and follows it (follow.ts: resync to the exact position after its
 *    last transaction, or kept out); the new master cleans up the deliberate failure of a
 *    promotee that stepped aside ({@link clearSteppedAside}).
 *
 * Time: every step takes its share of the action's one budget (budget.ts), as {@link STEPS}
 * says; nothing waits past the operation's timeout less the agent's margin.
 *
 * @module
 */

import {
  decodePublishedPosition,
  decodeRefused,
  encodePromotionRecord,
  encodePublishedPosition,
  encodeRefused,
  IDLE_MARK,
  READABLE,
  SCORE,
} from "./attrs.ts";
import { type Budget, type SliceOptions, waitUntil } from "./budget.ts";
import { runChild } from "./child.ts";
import {
  assessReplica,
  checkPromotee,
  type PeerPosition,
  receivedPositionOf,
  relayApplied,
} from "./election.ts";
import { followPublishedMaster, publishedMaster } from "./follow.ts";
import { remoteFinal, siteRole } from "./geo.ts";
import { gtidElection, publishElectionGtid, publishGtidFork } from "./gtid_agent.ts";
import { endRecovery, lastMasterPosition } from "./last_master.ts";
import { heartbeatHook, monitorPromoted } from "./lifecycle.ts";
import {
  isClientFailure,
  observe,
  waitReceived,
  waitRelayApplied,
  withClient,
} from "./local_server.ts";
import { describeError, type MysqlClient } from "./mysql.ts";
import { serverPid } from "./mysqld.ts";
import { OCF, type OcfCode } from "./ocf.ts";
import {
  type BinlogPosition,
  type Coordinates,
  decodeCoordinates,
  formatPosition,
} from "./position.ts";
import { failWith, loadState, type Run, updateState } from "./run.ts";
import type { ReplicaStatus } from "./sql.ts";

/**
 * The notifications (`type-operation`) the agent acts on. It answers every other one with
 * success and nothing else, and so do the launchers, without starting Deno: a failover runs
 * several rounds of them on every node, and each round waits for the slowest node.
 */
export const NOTIFICATIONS_ACTED_ON: readonly string[] = ["pre-promote", "post-promote"];

/**
 * Each step's share of its action's budget: at most `maxMs`, at most `fraction` of what is left,
 * leaving `reserveMs` for what follows. The waits are for other nodes (their published values)
 * and for this node's own threads; past its share, a step goes on without (and says so).
 */
export const STEPS = {
  /**
   * pre-promote: the IO thread receiving an old master's final position (a demote's, or the
   * server of a failed master back read-only); at most catchup_timeout ({@link catchupStep}).
   */
  preFinalPosition: { fraction: 0.5 },
  /** pre-promote, promotee: the moved score reaching the CIB (the abort must come first). */
  scoreMove: { maxMs: 3_000 },
  /** promote: the same wait again; at most catchup_timeout ({@link catchupStep}). */
  finalPosition: { fraction: 0.25 },
  /** promote: the expected peers' published positions. */
  peerPositions: { maxMs: 10_000, fraction: 0.25 },
  /** promote, GTID mode: the expected peers' GTID positions. */
  peerGtids: { maxMs: 5_000, fraction: 0.125 },
  /** promote: the relay log applied, leaving time to open writes and publish. */
  relayApplied: { reserveMs: 5_000 },
  /** post-promote: the promotee's published coordinates. */
  coordinates: { maxMs: 10_000, fraction: 0.5 },
  /** post_promote_script. */
  postPromoteScript: { maxMs: 30_000 },
} as const satisfies Record<string, SliceOptions>;

/** A catch-up step's share: at most catchup_timeout, and at most its fraction of what is left. */
function catchupStep(run: Run, step: SliceOptions): SliceOptions {
  return { ...step, maxMs: run.params.catchupTimeout * 1000 };
}

/**
 * A tool call started early, awaited later: its failure must not become an unhandled rejection
 * (which would end the action) while it waits.
 */
function prefetch<T>(p: Promise<T>): Promise<T | undefined> {
  // Where it is awaited, a failed call is a missing value, as when the tool answers nothing.
  return p.catch(() => undefined);
}

/**
 * promote. Pacemaker sends the post-promote notifications even when the promote failed (for one,
 * when a peer held more data and the scores were moved): the peers wait there for the promotee's
 * coordinates. A failed promote says so at once (`prm-<rsc>-refused`), so that they do not wait
 * in vain and the cluster re-plans without delay.
 */
export async function actionPromote(run: Run): Promise<OcfCode> {
  // Cleared while the promote runs: peers read it only after the promote returned.
  const clearing = run.ctx.promotable
    ? run.cib.setPrivate(run.names.refused, undefined)
    : Promise.resolve(true);
  const outcome = await promote(run);
  await clearing;
  if (outcome.code !== OCF.SUCCESS && run.ctx.promotable) {
    // Stepping aside fails the promote on purpose (so that Pacemaker re-plans): the new master
    // clears that failure (clearSteppedAside), other failures stay for a person to see.
    const mark = outcome.steppedAside
      ? encodeRefused({ steppedAside: true })
      : encodeRefused({ steppedAside: false, code: outcome.code });
    await run.cib.setPrivate(run.names.refused, mark).catch(() => false);
  }
  return outcome.code;
}

/** What {@link promote} decided: the exit code, and whether it stepped aside for a peer. */
interface PromoteOutcome {
  code: OcfCode;
  steppedAside: boolean;
}

function done(code: OcfCode): PromoteOutcome {
  return { code, steppedAside: false };
}

async function promote(run: Run): Promise<PromoteOutcome> {
  const startedAt = Date.now();
  // Tool calls started while connecting to the server: both answers are needed below.
  const finals = run.ctx.promotable ? prefetch(run.cib.privateAll(run.names.final)) : undefined;
  const positions = run.ctx.promotable
    ? prefetch(run.cib.privateAll(run.names.position))
    : undefined;
  const site = prefetch(siteRole(run));
  const obs = await observe(run);
  if (obs.kind !== "up") {
    return done(failWith(run, OCF.ERR_GENERIC, `Cannot promote: ${obs.detail}`));
  }
  if ((await site) === "standby") {
    // Pacemaker promotes only where the ticket is (rsc_ticket): this is a configuration missing
    // its constraint, or a ticket lost meanwhile. Never a master without the ticket.
    await obs.client.close();
    return done(
      failWith(
        run,
        OCF.ERR_GENERIC,
        `Not promoting: this site does not hold booth ticket ${run.booth!.ticket}`,
      ),
    );
  }
  const client = obs.client;
  try {
    if (!(await client.readOnly())) {
      run.log.info("Already writable: promote is a no-op");
      if (run.ctx.promotable) await monitorPromoted(run, client);
      return done(OCF.SUCCESS);
    }
    if (!run.ctx.promotable) {
      await client.setReadOnly(false);
      run.log.info("Standalone server made writable");
      return done(OCF.SUCCESS);
    }
    const status = await receiveFinalPosition(run, client, finals);
    const refusal = await refuseBrokenReplica(run, status);
    if (refusal !== undefined) return done(refusal);
    const election = await electOnPromote(run, client, status, positions);
    if (election !== undefined) return election;
    const notApplied = await applyRelayLog(run, client, status);
    if (notApplied !== undefined) return done(notApplied);
    return done(await openWrites(run, client, startedAt));
  } catch (err) {
    return done(failWith(run, OCF.ERR_GENERIC, `Promote failed: ${describeError(err)}`));
  } finally {
    await client.close();
  }
}

/**
 * Step 2a: in a switchover the demoted master published where it stopped writing; the IO thread
 * receives up to there before anything is compared, so the move loses nothing.
 */
async function receiveFinalPosition(
  run: Run,
  client: MysqlClient,
  finals: Promise<Map<string, string> | undefined> | undefined,
): Promise<ReplicaStatus | undefined> {
  const status = await client.replicaStatus();
  if (status === undefined) return undefined;
  const final = await finalPositionOf(run, status.masterHost, finals);
  if (final === undefined) return status;
  return await waitReceived(run, client, {
    budget: run.budget.slice(catchupStep(run, STEPS.finalPosition)),
    target: final,
    reconnect: true,
  });
}

/** Step 2b: a replica whose SQL thread is broken holds data nobody can vouch for. */
async function refuseBrokenReplica(
  run: Run,
  status: ReplicaStatus | undefined,
): Promise<OcfCode | undefined> {
  if (status === undefined) return undefined;
  // Lag does not count here (the master is gone); a stopped or broken IO thread neither.
  const health = assessReplica(status, { maxLag: Number.MAX_SAFE_INTEGER });
  if (health.state !== "sql-broken") return undefined;
  await run.cib.setPromotionScore(undefined);
  return failWith(run, OCF.ERR_GENERIC, `Refusing to promote a broken replica: ${health.reason}`);
}

/**
 * Step 2c: the election, checked again on the promotee against every live peer's published
 * position (and GTID position in GTID mode). Returns the outcome when this node steps aside.
 */
async function electOnPromote(
  run: Run,
  client: MysqlClient,
  status: ReplicaStatus | undefined,
  positions: Promise<Map<string, string> | undefined> | undefined,
): Promise<PromoteOutcome | undefined> {
  const received = status ? receivedPositionOf(status) : undefined;
  const mine = status && received
    ? { node: run.node, masterHost: status.masterHost, position: received }
    : status === undefined
    ? await lastMasterPosition(run, client, {
      published: await publishedMaster(run),
      candidateOnly: false,
    })
    : undefined;
  const check = checkPromotee({ self: run.node, mine, peers: await peerPositions(run, positions) });
  run.log.info(`Election: ${check.reason}`);
  if (!check.proceed && check.better !== undefined) {
    return await stepAside(run, check.better.node, "holds more data");
  }
  if (run.params.replicationMode !== "gtid") return undefined;
  const g = await gtidElection(client, run.cib, {
    names: run.names,
    self: run.node,
    expected: expectedPeers(run),
    budget: run.budget.slice(STEPS.peerGtids),
  });
  run.log.info(`GTID election: ${g.reason}`);
  if (!g.proceed && g.better !== undefined) {
    return await stepAside(run, g.better.node, "holds more GTIDs");
  }
  return undefined;
}

async function stepAside(run: Run, better: string, why: string): Promise<PromoteOutcome> {
  await moveScoresTo(run, better);
  return {
    code: failWith(
      run,
      OCF.ERR_GENERIC,
      `Not promoting: ${better} ${why}; scores moved so the cluster re-plans`,
    ),
    steppedAside: true,
  };
}

/** Step 2d: everything received is applied before this node accepts writes. */
async function applyRelayLog(
  run: Run,
  client: MysqlClient,
  status: ReplicaStatus | undefined,
): Promise<OcfCode | undefined> {
  if (status === undefined) return undefined;
  const applied = await waitRelayApplied(run, client, {
    budget: run.budget.slice(STEPS.relayApplied),
  });
  if (applied !== undefined && applied.sqlRunning && !relayApplied(applied)) {
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Relay log not applied within the promote timeout: executed ${applied.relayMasterLogFile}:${applied.execMasterLogPos} of ${applied.masterLogFile}:${applied.readMasterLogPos}`,
    );
  }
  return undefined;
}

/**
 * Step 2e: stop and reset replication, publish the coordinates (taken after everything was
 * applied and before any write), semi-sync as source, then open writes.
 */
async function openWrites(run: Run, client: MysqlClient, startedAt: number): Promise<OcfCode> {
  await client.stopReplica();
  await client.resetReplica();
  const binlog = await client.binlogStatus();
  if (binlog === undefined) {
    return failWith(
      run,
      OCF.ERR_CONFIGURED,
      "Binary logging is off: replicas cannot follow this node",
    );
  }
  // The replicas read the coordinates in post-promote, after this action: the tool call runs
  // meanwhile.
  const publishing = prefetch(
    run.cib.setReplInfo({ host: run.node, file: binlog.file, pos: binlog.pos }),
  );
  if (run.params.replicationMode === "gtid") {
    await publishGtidFork(client, run.cib, { names: run.names, log: run.log });
  }
  // Semi-sync as the source before the first write, so that no write escapes it.
  if (run.params.semiSync) {
    await client.configureSemiSync("source", run.params.semiSyncTimeoutMs);
  }
  await client.setReadOnly(false);
  const openedAt = Date.now();
  run.log.info(`Promoted: writable at ${binlog.file}:${binlog.pos}`);
  // The failover's span on this node, for the metrics: from its pre-promote when it had one
  // (recent: a stale mark from an aborted transition does not count) to writes open.
  const pre = loadState(run).prePromoteAt;
  const since = pre !== undefined && pre <= startedAt && startedAt - pre < 120_000
    ? pre
    : startedAt;
  // A recovery or a cold-start wait is over; a new master gives its replicas a grace to connect.
  endRecovery(run);
  updateState(run, (state) => {
    state.promotedAt = openedAt;
  });
  // With semi-sync, the writer's first statements may wait semi_sync_timeout for a replica that
  // is not repointed yet: the first promoted monitor starts it instead, off the failover path.
  if (run.params.heartbeat && !run.params.semiSync) await heartbeatHook(run, client, "start");
  // Writable already: these are bookkeeping, done together (each a tool call).
  await Promise.all([
    publishing,
    run.cib.setPromotionScore(SCORE.PROMOTED),
    run.cib.setNodeAttribute(run.names.notPromotable, undefined),
    run.cib.setNodeAttribute(run.names.reader, READABLE.yes),
    run.cib.setPrivate(run.names.position, undefined),
    // Private: no CIB write, so no transition abort on the way to the writer VIP.
    run.cib.setPrivate(
      run.names.promoted,
      encodePromotionRecord({ atMs: openedAt, durationMs: openedAt - since }),
    ),
  ]);
  run.cib.save();
  await runPostPromoteScript(run, binlog);
  return OCF.SUCCESS;
}

/** Puts `better` ahead of this node in the promotion scores, so that Pacemaker promotes it. */
async function moveScoresTo(run: Run, better: string): Promise<void> {
  await run.cib.setPromotionScore(SCORE.BETTER_PEER, better);
  await run.cib.setPromotionScore(SCORE.STEPPED_ASIDE);
  run.cib.save();
}

function expectedPeers(run: Run): string[] {
  return (loadState(run).expectedPeers ?? []).filter((n) => n !== run.node);
}

/**
 * pre-promote, on the promotee: promote's comparison with the peers' positions, made before
 * Pacemaker starts the promote (see the module comment).
 */
async function electBeforePromote(run: Run, mine: PeerPosition | undefined): Promise<void> {
  // What is published now, without waiting: Pacemaker may run the pre-promote notifications one
  // node after the other (measured in the lab: a switchover stalled 10 s here waiting for a peer
  // whose notification could only start once this one returned). promote waits for the rest.
  const check = checkPromotee({
    self: run.node,
    mine,
    peers: await peerPositions(run, undefined, { wait: false }),
  });
  if (check.proceed || check.better === undefined) return;
  run.log.info(`Election before the promote: ${check.reason}; moving the scores to re-plan`);
  await moveScoresTo(run, check.better.node);
  // Until the CIB holds the new score: the abort it causes must reach the controller before
  // the result of this notification does.
  const better = check.better.node;
  await waitUntil(
    async () => (await run.cib.promotionScore(better)) === SCORE.BETTER_PEER || undefined,
    {
      budget: run.budget.slice(STEPS.scoreMove),
      intervalMs: 50,
      abandon: () => run.cib.unavailable,
    },
  );
}

/**
 * post-promote, on the new master: a node whose promote stepped aside for this one failed it on
 * purpose; that failure counts toward migration-threshold and may keep its replica stopped, so
 * it is cleaned up here and the node comes back as a replica of this one.
 */
async function clearSteppedAside(run: Run): Promise<void> {
  const refused = await run.cib.privateAll(run.names.refused);
  for (const [node, value] of refused) {
    if (node === run.node || decodeRefused(value)?.steppedAside !== true) continue;
    const cleaned = await run.cib.cleanupFailures(node);
    await run.cib.setPrivate(run.names.refused, undefined, node);
    run.log.info(
      `${node} stepped aside for this node: its failed promote ${
        cleaned ? "is cleaned up" : "could not be cleaned up"
      }, so that it comes back as a replica`,
    );
  }
}

/**
 * The final position the old master `host` published (its demote, or its start after a failure),
 * if any. With `awaitWithin` (the old master is being started in this transition), waits within
 * that budget for it to appear.
 */
async function finalPositionOf(
  run: Run,
  host: string,
  prefetched?: Promise<Map<string, string> | undefined>,
  awaitWithin?: Budget,
): Promise<BinlogPosition | undefined> {
  // Only a master that this very transition demotes or starts again, or that is back read-only
  // (an unpromoted instance now), has a final position to wait for: any other value is left
  // over from an earlier transition, and waiting for it would hold the failover for the whole
  // step (seen: 10 s per pre-promote round for a frozen master whose demote had failed).
  // Two sites: a master of the other site, demoted there when its site lost the ticket, is never
  // part of this site's transition; it stored its final position here with the booth ticket
  // (geo.ts), and a site that becomes active deletes what the other site stored, so it is fresh.
  const final = (loadState(run).finalHosts ?? []).includes(host)
    ? await localFinal(run, host, { prefetched, awaitWithin })
    : await remoteFinal(run, host);
  if (final === undefined) return undefined;
  run.log.info(`Old master ${host} stopped writing at ${formatPosition(final)}`);
  return { file: final.file, pos: final.pos };
}

/**
 * The final position `host` of this site published (private attribute), if any; with
 * `awaitWithin`, waits within it for an old master that is being started to publish it.
 */
async function localFinal(
  run: Run,
  host: string,
  options: {
    prefetched?: Promise<Map<string, string> | undefined>;
    awaitWithin?: Budget;
  },
): Promise<Coordinates | undefined> {
  const decode = (values: Map<string, string>) => {
    const raw = values.get(host);
    const final = raw === undefined ? undefined : decodeCoordinates(raw);
    return final?.host === host ? final : undefined;
  };
  const final = decode((await options.prefetched) ?? await run.cib.privateAll(run.names.final));
  if (final !== undefined || options.awaitWithin === undefined) return final;
  run.log.info(`Old master ${host} is being started: waiting for where its commits end`);
  return await waitUntil(async () => decode(await run.cib.privateAll(run.names.final)), {
    budget: options.awaitWithin,
    intervalMs: 100,
    abandon: () => run.cib.unavailable,
  });
}

/** Peer positions published in pre-promote, waiting (within its step's share) for the expected. */
async function peerPositions(
  run: Run,
  prefetched?: Promise<Map<string, string> | undefined>,
  options: { wait?: boolean } = {},
): Promise<PeerPosition[]> {
  const expected = expectedPeers(run);
  let values = (await prefetched) ?? await run.cib.privateAll(run.names.position);
  if (options.wait === false) return decodePeers(run, values);
  if (expected.some((n) => !values.has(n))) {
    await waitUntil(async () => {
      values = await run.cib.privateAll(run.names.position);
      return expected.every((n) => values.has(n)) || undefined;
    }, { budget: run.budget.slice(STEPS.peerPositions), abandon: () => run.cib.unavailable });
  }
  const missing = expected.filter((n) => !values.has(n));
  if (missing.length) {
    run.log.warn(
      `No position published by ${missing.join(", ")} (seen: ${
        [...values].map(([n, v]) => `${n}=${v || "-"}`).join(" ") || "nothing"
      }): going on without`,
    );
  }
  return decodePeers(run, values);
}

function decodePeers(run: Run, values: Map<string, string>): PeerPosition[] {
  const peers: PeerPosition[] = [];
  for (const [node, value] of values) {
    if (node === run.node) continue;
    const p = decodePublishedPosition(value);
    if (p === undefined) run.log.warn(`Ignoring malformed position from ${node}`);
    else if (!p.idle) peers.push({ node, masterHost: p.masterHost, position: p.position });
  }
  return peers;
}

/**
 * Runs post_promote_script with a minimal environment (never the agent's, which holds every
 * OCF_RESKEY_* value, passwords too): the resource, this node and the published coordinates.
 */
async function runPostPromoteScript(run: Run, at: BinlogPosition): Promise<void> {
  if (run.params.postPromoteScript === "") return;
  const r = await runChild([run.params.postPromoteScript], {
    budget: run.budget.slice(STEPS.postPromoteScript),
    env: {
      OCF_RESOURCE_INSTANCE: run.names.resource,
      PRM_RESOURCE: run.names.resource,
      PRM_NODE: run.node,
      PRM_MASTER_FILE: at.file,
      PRM_MASTER_POS: String(at.pos),
    },
    maxOutputBytes: 64 * 1024,
  });
  const text = r.stderr.split("\n").slice(-3).join(" | ");
  if (r.code === 0) run.log.info("post_promote_script succeeded");
  else run.log.warn(`post_promote_script exited ${r.code}: ${text}`);
}

/** notify: the pre- and post-promote steps; every other notification is answered at once. */
export async function actionNotify(run: Run): Promise<OcfCode> {
  const n = run.ctx.notify;
  if (n === undefined || !run.ctx.promotable) return OCF.SUCCESS;
  const what = `${n.type}-${n.operation}`;
  if (!NOTIFICATIONS_ACTED_ON.includes(what)) return OCF.SUCCESS;
  run.log.debug(
    `Notify ${what}: promote=${n.promote.map((e) => e.uname)} demote=${
      n.demote.map((e) => e.uname)
    } active=${n.active.map((e) => e.uname)} promoted=${n.promoted.map((e) => e.uname)}`,
  );
  try {
    if (what === "pre-promote") await notifyPrePromote(run);
    else {
      // The demoted master's final position must outlive post-demote: pre-promote and promote
      // wait for it. Once a new master is up it has served its purpose.
      const clearing = prefetch(run.cib.setPrivate(run.names.final, undefined));
      await notifyPostPromote(run);
      await clearing;
    }
  } catch (err) {
    run.log.warn(`Notify ${what} could not finish: ${describeError(err)}`);
  }
  run.cib.save();
  return OCF.SUCCESS;
}

/**
 * Step 1, pre-promote, every active instance: publish what this node received (old master's
 * coordinates) for the promotee to compare.
 */
async function notifyPrePromote(run: Run): Promise<void> {
  const n = run.ctx.notify!;
  const promotee = n.promote[0]?.uname;
  const stopping = new Set(n.stop.map((e) => e.uname));
  const peers = new Set(
    [...n.active, ...n.unpromoted, ...n.promoted, ...n.demote].map((e) => e.uname),
  );
  updateState(run, (state) => {
    // The masters this transition demotes or starts again, and the unpromoted instances (an
    // old master back read-only after a failure, started in an earlier, aborted transition):
    // theirs are the final positions that count (finalPositionOf), here and in the promote.
    state.finalHosts = [...n.demote, ...n.start, ...n.unpromoted]
      .map((e) => e.uname)
      .filter((u) => u !== "" && !stopping.has(u));
    if (promotee === run.node) {
      state.prePromoteAt = Date.now();
      state.expectedPeers = [...peers].filter((u) =>
        u !== run.node && !stopping.has(u) && u !== ""
      );
    }
  });
  const finals = prefetch(run.cib.privateAll(run.names.final));
  const value = await withClient(run, async (c) => {
    const before = await c.replicaStatus();
    if (before === undefined) {
      // The last master back read-only is a candidate in its own coordinates (last_master.ts).
      const own = await lastMasterPosition(run, c, {
        published: await publishedMaster(run),
        candidateOnly: true,
      });
      return own === undefined ? IDLE_MARK : encodePublishedPosition({
        idle: false,
        masterHost: own.masterHost,
        position: own.position,
      });
    }
    // The old master published where its commits end (a demote in a switchover, or its server
    // back read-only after a failure): let the IO thread get there, unless it is the promotee.
    const budget = run.budget.slice(catchupStep(run, STEPS.preFinalPosition));
    const final = promotee === before.masterHost ? undefined : await finalPositionOf(
      run,
      before.masterHost,
      finals,
      n.start.some((e) => e.uname === before.masterHost) ? budget : undefined,
    );
    const status = final === undefined ? before : await waitReceived(run, c, {
      budget,
      target: final,
      reconnect: true,
    });
    const received = receivedPositionOf(status);
    if (received === undefined) return IDLE_MARK;
    // What this node holds (received, applied or not): the promotee applies its relay log before
    // opening writes, so a peer whose SQL thread is slow or blocked does not delay the failover.
    run.log.info(
      `Position for the election: ${status.masterHost} received ${
        formatPosition(received)
      }, executed ${status.relayMasterLogFile}:${status.execMasterLogPos}`,
    );
    return encodePublishedPosition({
      idle: false,
      masterHost: status.masterHost,
      position: received,
    });
  });
  if (run.params.replicationMode === "gtid") {
    // Before the position: the promotee waits for the position, then finds the GTID too.
    const g = await withClient(
      run,
      (c) => publishElectionGtid(c, run.cib, { names: run.names, log: run.log }),
    );
    if (isClientFailure(g)) run.log.warn(`Cannot publish the GTID position: ${g.error}`);
  }
  if (isClientFailure(value)) {
    run.log.warn(`Cannot read this node's position: ${value.error}`);
    return;
  }
  await run.cib.setPrivate(run.names.position, value);
  if (promotee === run.node) {
    const published = decodePublishedPosition(value);
    await electBeforePromote(
      run,
      published === undefined || published.idle
        ? undefined
        : { node: run.node, masterHost: published.masterHost, position: published.position },
    );
  }
}

/**
 * Step 3, post-promote, every other instance: replicate from the new master at the coordinates
 * it published after applying everything and before accepting writes, or resync to the exact
 * position after this node's last transaction (follow.ts).
 */
async function notifyPostPromote(run: Run): Promise<void> {
  const promotee = run.ctx.notify!.promote[0]?.uname;
  // The election is over: its attributes go while this node repoints.
  const clearing = Promise.all([
    prefetch(run.cib.setPrivate(run.names.position, undefined)),
    run.params.replicationMode === "gtid"
      ? prefetch(run.cib.setPrivate(run.names.gtid, undefined))
      : undefined,
  ]);
  try {
    await repointToPromotee(run, promotee);
  } finally {
    await clearing;
  }
}

/** Waits for the promotee's published coordinates, then follows it. */
async function repointToPromotee(run: Run, promotee: string | undefined): Promise<void> {
  if (promotee === run.node) return await clearSteppedAside(run);
  if (promotee === undefined) return;
  if (serverPid(run.layout) === undefined) return;
  let failed = false;
  const info = await waitUntil(async () => {
    const published = await publishedMaster(run);
    if (published?.host === promotee) return published;
    if ((await run.cib.privateAll(run.names.refused)).has(promotee)) {
      failed = true;
      return null;
    }
    return undefined;
  }, {
    budget: run.budget.slice(STEPS.coordinates),
    intervalMs: 250,
    abandon: () => run.cib.unavailable,
  });
  if (failed) {
    run.log.info(`The promote of ${promotee} failed: the cluster re-plans`);
    return;
  }
  if (info === undefined || info === null) {
    run.log.warn(`${promotee} has not published its coordinates: monitor will repoint later`);
    return;
  }
  const r = await withClient(run, async (c) => {
    if (!(await c.readOnly())) {
      run.log.warn("This node is writable while another is promoted: not repointing");
      return;
    }
    await followPublishedMaster(run, c, info);
  });
  if (isClientFailure(r)) run.log.warn(`Repointing failed: ${r.error}`);
}
