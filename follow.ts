/**
 * Following a master: how an unpromoted server comes to replicate from the published master, and
 * the one way a node is kept out when it must not.
 *
 * - Already a replica of that master: it keeps its own coordinates (never re-pointed to stale
 *   published ones).
 * - An operator set the resume override (`prm-<rsc>-resume`): it resumes there, unchecked, and
 *   its binary log history is marked anew (resync_agent.ts).
 * - GTID mode: it follows by GTID, unless it holds errant transactions.
 * - Position mode, a replica of another master or of nobody: resync_agent.ts finds the exact
 *   position after its last transaction in the new master's binary log; not found (or errant
 *   transactions) keeps it out.
 *
 * Kept out ({@link keepOut}): the reason is recorded in the state folder, the node loses its
 * promotion score and its reader attribute, and every monitor then fails with OCF_ERR_PERM
 * ({@link keptOutCode}): Pacemaker stops it and keeps it off this node until a person acts and
 * runs `crm_resource --cleanup` (a soft error would restart it in a loop).
 *
 * @module
 */

import { decodeResumeOverride, type NotPromotable, READABLE, type ReplInfo } from "./attrs.ts";
import type { ReplInfoRead } from "./cib.ts";
import { describeFull, nearlyFullAt } from "./disk.ts";
import { readPublished } from "./geo.ts";
import { prepareGtidFollow } from "./gtid_agent.ts";
import { describeError, type MysqlClient } from "./mysql.ts";
import { OCF, type OcfCode } from "./ocf.ts";
import { formatPosition } from "./position.ts";
import {
  checkReturningNode,
  markHistoryStart,
  readBlock,
  type RefusalCause,
  type ResyncOutcome,
  resyncReplica,
  writeBlock,
} from "./resync_agent.ts";
import { failWith, type Run, statePath, updateState } from "./run.ts";
import type { ReplicaStatus } from "./sql.ts";

function blockPath(run: Run): string {
  return statePath(run, "resync-block.json");
}

/**
 * The published master (`<rsc>_REPL_INFO`), validated: the cluster property, or with two sites
 * what this node's site follows (geo.ts: at a standby site, the ticket attribute the active site
 * stored here). The single place the agent reads the published master. A malformed value is
 * ignored: logged once (not at every monitor) and shown by `mysql_prm status`, which reads it too.
 */
export async function publishedMaster(run: Run): Promise<ReplInfo | undefined> {
  return validPublished(run, await readPublished(run));
}

/** This site's own `<rsc>_REPL_INFO` property, validated (the promoted node's own publication). */
export async function ownSitePublished(run: Run): Promise<ReplInfo | undefined> {
  return validPublished(run, await run.cib.readReplInfo());
}

function validPublished(run: Run, read: ReplInfoRead): ReplInfo | undefined {
  updateState(run, (state) => {
    if (read.state === "malformed") {
      if (state.malformedReplInfo === read.raw) return false;
      run.log.warn(
        `Ignoring malformed ${run.names.replInfo} value ${JSON.stringify(read.raw)}: ` +
          "it is not host|file|pos (mysql_prm status shows it)",
      );
      state.malformedReplInfo = read.raw;
      return true;
    }
    if (read.state === "unreachable" || state.malformedReplInfo === undefined) return false;
    delete state.malformedReplInfo;
  });
  return read.state === "set" ? read.info : undefined;
}

/** Why a node is kept out, as {@link keepOut} records it. */
export interface KeepOutReason {
  /** Why, as a value. */
  cause: RefusalCause;
  /** Short sentence: the exit reason crm_mon shows. */
  reason: string;
  /** What a person does about it, for the log. */
  remedy: string;
  /** The salvage file written, if any. */
  salvageFile?: string;
}

/**
 * Keeps this node out of the cluster until a person acts: records why (state folder), withdraws
 * its promotion score and reader attribute, and logs the reason with the remedy.
 */
export async function keepOut(run: Run, why: KeepOutReason): Promise<void> {
  if (run.stateUsable) {
    writeBlock(blockPath(run), {
      cause: why.cause,
      reason: why.reason,
      at: new Date().toISOString(),
      salvageFile: why.salvageFile,
    });
  }
  run.log.error(`${why.reason}. Kept out: ${why.remedy}, then run crm_resource --cleanup`);
  await withdraw(run, why.cause);
}

/**
 * The not-promotable reason of a kept-out node: errant transactions, a refused resync, or (a
 * keep-out recorded without a cause, by an older agent) kept out.
 */
export function keptOutReason(cause: RefusalCause | undefined): NotPromotable {
  if (cause === undefined) return "kept-out";
  return cause === "errant" ? "errant-transactions" : "resync-refused";
}

/** Lifts a recorded keep-out (a start checks afresh whether the node may follow). */
export function clearKeepOut(run: Run): void {
  if (run.stateUsable) writeBlock(blockPath(run), undefined);
}

async function withdraw(run: Run, cause: RefusalCause | undefined): Promise<void> {
  await run.cib.setPromotionScore(undefined);
  await run.cib.setNodeAttribute(run.names.notPromotable, keptOutReason(cause));
  await run.cib.setNodeAttribute(run.names.reader, READABLE.no);
}

/**
 * For a monitor: a node kept out stays unpromotable and unreadable and fails with OCF_ERR_PERM
 * and the recorded reason; undefined when it is not kept out.
 */
export async function keptOutCode(run: Run): Promise<OcfCode | undefined> {
  const block = run.stateUsable ? readBlock(blockPath(run)) : undefined;
  if (block === undefined) return undefined;
  await withdraw(run, block.cause);
  return failWith(run, OCF.ERR_PERM, block.reason);
}

/** True when a keep-out is recorded for this node. */
export function isKeptOut(run: Run): boolean {
  return run.stateUsable && readBlock(blockPath(run)) !== undefined;
}

/**
 * Points replication at `info` and starts it. `newHistory` (the operator's override) starts
 * this node's binary log history anew first, so that what a person removed by hand never joins
 * its trailing transactions.
 */
export async function replicateFrom(
  run: Run,
  client: MysqlClient,
  info: ReplInfo,
  options: { newHistory?: boolean } = {},
): Promise<void> {
  await client.stopReplica();
  if (options.newHistory) {
    const mark = await markHistoryStart(client);
    if (mark !== undefined) run.log.info(`Own binary log history for resync starts at ${mark}`);
  }
  if (run.params.semiSync) {
    // Before START SLAVE: the replica side is read when the IO thread starts.
    await client.configureSemiSync("replica", run.params.semiSyncTimeoutMs);
  }
  if (run.params.replicationMode === "gtid") return await replicateByGtid(run, client, info);
  await client.changeSource({
    ...replicationLogin(run),
    host: info.host,
    port: run.params.replicationPort,
    file: info.file,
    pos: info.pos,
    options: run.params.replicationOptions,
  });
  await client.startReplica();
  run.log.info(`Replicating from ${info.host} at ${formatPosition(info)} (published coordinates)`);
}

function replicationLogin(run: Run): { user: string; password: string } {
  // setup() fails every action but stop without usable logins: this is a bug, not a state.
  if (run.creds === undefined) throw new Error("No usable replication login");
  return { user: run.creds.replication.user, password: run.creds.replication.password };
}

/**
 * GTID mode: replicate from the master by GTID (no coordinates, no resync), unless this node
 * holds errant transactions: then it is kept out.
 */
async function replicateByGtid(run: Run, client: MysqlClient, info: ReplInfo): Promise<void> {
  const follow = await prepareGtidFollow(client, run.cib, {
    names: run.names,
    budget: run.budget,
    master: info.host,
    node: run.node,
    log: run.log,
  });
  if (!follow.ok) {
    await keepOut(run, {
      cause: "errant",
      reason: follow.reason,
      remedy: "remove or replay those transactions (mariadb-binlog on this node's binlog), " +
        "or re-clone",
      salvageFile: follow.salvageFile,
    });
    return;
  }
  await client.changeSource({
    ...replicationLogin(run),
    host: info.host,
    port: run.params.replicationPort,
    gtid: true,
    options: run.params.replicationOptions,
  });
  await client.startReplica();
  run.log.info(`Replicating from ${info.host}: ${follow.detail}`);
}

/**
 * Makes an unpromoted server replicate from the published master (see the module comment for
 * the cases).
 */
export async function followPublishedMaster(
  run: Run,
  client: MysqlClient,
  info: ReplInfo,
): Promise<void> {
  if (info.host === run.node) {
    run.log.info(`${run.names.replInfo} names this node: waiting unpromoted for the cluster`);
    return;
  }
  // A full datadir: CHANGE MASTER writes master.info and would wait for free space in the
  // server forever (seen in the lab: every later SHOW SLAVE STATUS queued behind it, so every
  // monitor hung for its whole query timeout). The node is no candidate and serves no reads
  // meanwhile (lifecycle.ts); the first monitor after room is made follows.
  const full = nearlyFullAt(run.params.datadir, run.params.diskFullThreshold);
  if (full !== undefined) {
    run.log.warn(
      `Not following ${info.host} now: ${describeFull(full, run.params.diskFullThreshold)}`,
    );
    return;
  }
  // Read alongside the server (a tool call): on the failover path every step counts.
  const overrideValue = run.cib.nodeAttribute(run.names.resume).catch(() => undefined);
  const status = await client.replicaStatus();
  if (status !== undefined && status.masterHost === info.host) {
    // Its master came back (restarted in place, or after an outage): an IO thread waiting in its
    // connect retry (60 s by default) connects at once.
    if (status.ioRunning === "Connecting") await client.reconnectReplicaIo();
    else if (status.ioRunning !== "Yes" || !status.sqlRunning) await client.startReplica();
    run.log.info(
      `Already a replica of ${info.host}: keeping its own coordinates ${status.relayMasterLogFile}:${status.execMasterLogPos}`,
    );
    return;
  }
  const override = decodeResumeOverride(await overrideValue);
  if (override !== undefined) {
    // A person decided where this node resumes (after a refusal): no check.
    await run.cib.setNodeAttribute(run.names.resume, undefined);
    clearKeepOut(run);
    const target = override.published ? info : { host: info.host, ...override.position };
    run.log.warn(`Operator set ${run.names.resume}: resuming at ${formatPosition(target)}`);
    // What the person removed by hand is still in the binary logs written so far.
    await replicateFrom(run, client, target, { newHistory: true });
    return;
  }
  if (run.params.replicationMode === "gtid") {
    await replicateFrom(run, client, info);
    return;
  }
  await resyncTo(run, client, info, status);
}

/**
 * Position mode, a node that followed another master (or nobody): find where it resumes in the
 * new master's binary log (resync_agent.ts) and replicate from exactly there, or keep it out.
 */
async function resyncTo(
  run: Run,
  client: MysqlClient,
  info: ReplInfo,
  status: ReplicaStatus | undefined,
): Promise<void> {
  const source = {
    ...replicationLogin(run),
    host: info.host,
    port: run.params.replicationPort,
    newestFile: info.file,
  };
  const options = {
    log: run.log,
    budget: run.budget,
    node: run.node,
    resource: run.names.resource,
  };
  let outcome: ResyncOutcome;
  const t0 = Date.now();
  try {
    outcome = status !== undefined
      ? await resyncReplica(client, source, options)
      : await checkReturningNode(client, source, options);
    if (outcome.kind === "refused" && outcome.cause === "not-found") {
      // A replica whose last transactions the new master never received holds more than it: a
      // replica of an old master that was cut off with it (the old site of a site failover, or
      // a replica down during a failover within a site). Its own binary log (log_slave_updates)
      // says which transactions those are, as for a returning old master: found there, it
      // resumes; not found after a transaction both share, they are errant and go to a salvage
      // file; sharing none (the new master purged that history), it stays a not-found refusal.
      run.log.warn(`${outcome.reason}: checking its own binary log as a returning node's`);
      outcome = await checkReturningNode(client, source, { ...options, requireCommonPoint: true });
    }
  } catch (err) {
    run.log.warn(
      `Resync with ${info.host} not possible now (retrying later): ${describeError(err)}`,
    );
    return;
  }
  if (outcome.kind === "resume") {
    run.log.info(`Resync in ${Date.now() - t0} ms: ${outcome.detail}`);
    await replicateFrom(run, client, { host: info.host, file: outcome.file, pos: outcome.pos });
  } else if (outcome.kind === "nothing") {
    run.log.info(`Resync: ${outcome.detail}; using the published coordinates`);
    await replicateFrom(run, client, info);
  } else {
    if (status !== undefined) await client.stopReplica();
    run.log.error(`${outcome.reason}: ${outcome.detail}`);
    await keepOut(run, {
      cause: outcome.cause,
      reason: outcome.reason,
      remedy: `fix the data, then set the node attribute ${run.names.resume} (published or ` +
        "FILE:POS) or re-clone",
      salvageFile: outcome.salvageFile,
    });
  }
}
