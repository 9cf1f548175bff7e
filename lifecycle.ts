/**
 * The server's lifecycle, Stateful-like: validate-all, start, stop, monitor, demote. The role is
 * always read from the server (read_only, replica status), never remembered; monitor tells the
 * truth even when it surprises the cluster; the promotion score is set at every transition,
 * deleted on stop, restored by a probe. The failover protocol (notifications and promote) is
 * failover.ts; following a master is follow.ts.
 *
 * @module
 */

import {
  decodeNotPromotable,
  type NotPromotable,
  READABLE,
  type ReplInfo,
  SCORE,
} from "./attrs.ts";
import { describeFull, type DiskUsage, nearlyFullAt } from "./disk.ts";
import { durabilityOf } from "./durability.ts";
import { assessReplica, type Candidacy, nextReaderState, replicaCandidacy } from "./election.ts";
import {
  clearKeepOut,
  followPublishedMaster,
  keptOutCode,
  ownSitePublished,
  publishedMaster,
} from "./follow.ts";
import {
  afterDemote,
  boothProblems,
  forgetStaleMaster,
  shareWithOtherSite,
  siteRole,
} from "./geo.ts";
import {
  clearPromotedFailure,
  coldStartWaiting,
  decideAtStop,
  endRecovery,
  lastMasterCandidate,
  noteColdStart,
  recordPromotedFailure,
  returnAsLastMaster,
} from "./last_master.ts";
import {
  heartbeatRunning,
  readHeartbeatLag,
  startHeartbeat,
  stopHeartbeat,
  withHeartbeatLag,
} from "./heartbeat.ts";
import {
  connect,
  isClientFailure,
  NoLoginError,
  type Observation,
  observe,
  withClient,
} from "./local_server.ts";
import { classifyError, describeError, type MysqlClient } from "./mysql.ts";
import {
  cleanLeftovers,
  datadirInitialised,
  executableExists,
  initialiseDatadir,
  isMariadbServer,
  processAlive,
  serverPid,
  startServer,
  stopServer,
  systemIds,
  waitExit,
} from "./mysqld.ts";
import { OCF, type OcfCode } from "./ocf.ts";
import { hasHistoryMark } from "./resync_agent.ts";
import { encodeCoordinates } from "./position.ts";
import { PCMK_TOOLS_DIR } from "./cib.ts";
import type { Problem } from "./params.ts";
import {
  failWith,
  loadState,
  type LocalState,
  reportProblems,
  type Run,
  saveState,
  updateState,
} from "./run.ts";
import { removeEntry, writeExclusive } from "./safe_fs.ts";
import { backslashEscapesSessionSql, quoteString, testTableSql } from "./sql.ts";

/** SIGTERM grace of a wedged server's stop before SIGKILL. */
const WEDGED_TERM_GRACE_MS = 10_000;

/** Host checks of validate-all (binaries, files, tools): each with its OCF error kind. */
export function hostProblems(run: Run): Problem[] {
  const problems: Problem[] = [];
  const { layout, params } = run;
  if (!executableExists(layout.binary)) {
    problems.push({
      kind: "installed",
      message: params.binary === ""
        ? "No mariadbd or mysqld found on this host: set the binary parameter"
        : `Server binary ${layout.binary} is missing or not executable`,
    });
  } else if (/mysqld_safe$/.test(layout.binary)) {
    problems.push({
      kind: "configured",
      message: "binary must be the server itself, not mysqld_safe (its restart loop undoes kills)",
    });
  }
  if (params.binaryPrefix.length > 0 && !executableExists(params.binaryPrefix[0])) {
    problems.push({
      kind: "installed",
      message: `binary_prefix command ${params.binaryPrefix[0]} is missing or not executable`,
    });
  }
  try {
    Deno.statSync(params.config);
  } catch {
    problems.push({
      kind: "installed",
      message: `Configuration file ${params.config} does not exist`,
    });
  }
  if (params.postPromoteScript !== "" && !executableExists(params.postPromoteScript)) {
    problems.push({
      kind: "installed",
      message: `post_promote_script ${params.postPromoteScript} is missing or not executable`,
    });
  }
  if (run.ctx.promotable) {
    for (const tool of ["crm_attribute", "attrd_updater", "crm_node"]) {
      if (!executableExists(`${PCMK_TOOLS_DIR}/${tool}`)) {
        problems.push({
          kind: "installed",
          message: `Pacemaker tool ${PCMK_TOOLS_DIR}/${tool} is missing`,
        });
      }
    }
  }
  problems.push(...boothProblems(run));
  if (!params.enableCreation && !datadirInitialised(params.datadir)) {
    problems.push({
      kind: "installed",
      message: `Data directory ${params.datadir} holds no database and enable_creation is false`,
    });
  }
  return problems;
}

/** validate-all: every problem of the parameters, the credentials and the host. */
export function actionValidate(run: Run, problems: Problem[]): OcfCode {
  const all = [...problems, ...hostProblems(run)];
  if (all.length > 0) return reportProblems(run.log, all);
  run.log.debug("Configuration is valid");
  return OCF.SUCCESS;
}

/**
 * start: the server as `user`, always unpromoted (read-only, replication not auto-started), then
 * following the published master; succeeds once a monitor says it runs.
 */
export async function actionStart(run: Run): Promise<OcfCode> {
  const problems = hostProblems(run);
  if (problems.length > 0) return reportProblems(run.log, problems);
  const waited = await waitForAsyncStop(run);
  if (waited !== undefined) return waited;
  if (serverPid(run.layout) === undefined) {
    const started = await startProcess(run);
    if (started !== OCF.SUCCESS) {
      if (run.ctx.promotable) await run.cib.setPromotionScore(undefined);
      return started;
    }
  } else {
    run.log.info("Server already running: start is a no-op");
  }
  if (run.ctx.promotable) {
    await run.cib.setPrivate(run.names.position, undefined);
    // A start (after crm_resource --cleanup, for one) checks afresh whether this node may follow.
    clearKeepOut(run);
    await forgetStaleMaster(run);
    const info = await publishedMaster(run);
    const r = await withClient(run, async (c) => {
      if (!(await c.readOnly())) await c.setReadOnly(true);
      if (info === undefined) {
        run.log.info(`No master published (${run.names.replInfo} unset): idle replica`);
      } else if (info.host === run.node) {
        // The last master back read-only: it hands over or is promoted again (last_master.ts).
        await returnAsLastMaster(run, c);
      } else {
        endRecovery(run);
        // Two sites: booth's ticket, not the published master's presence, decides where the
        // master may be after an outage (and a standby site's master is never a member here).
        if (run.booth === undefined) await noteColdStart(run, info.host);
        await followPublishedMaster(run, c, info);
      }
      return true;
    });
    if (isClientFailure(r)) {
      return await failStart(run, `Cannot set up replication after start: ${r.error}`);
    }
  }
  const code = await actionMonitor(run);
  if (code === OCF.SUCCESS || code === OCF.RUNNING_PROMOTED || code === OCF.DEGRADED) {
    return OCF.SUCCESS;
  }
  if (run.ctx.promotable) await run.cib.setPromotionScore(undefined);
  return code === OCF.NOT_RUNNING
    ? failWith(run, OCF.ERR_GENERIC, "Server stopped right after start")
    : code;
}

/**
 * A start that fails leaves no promotion score behind (a stop that restarts a crashed master in
 * place left one): Pacemaker then places the promoted role elsewhere.
 */
async function failStart(run: Run, message: string): Promise<OcfCode> {
  if (run.ctx.promotable) await run.cib.setPromotionScore(undefined);
  return failWith(run, OCF.ERR_GENERIC, message);
}

/** A start while an async stop still shuts the old process down waits for it (or fails). */
async function waitForAsyncStop(run: Run): Promise<OcfCode | undefined> {
  const pid = loadState(run).stoppingPid;
  if (pid === undefined) return undefined;
  if (processAlive(pid, run.layout.binary)) {
    run.log.info(`Waiting for server pid ${pid} to finish its shutdown (async_stop) first`);
  }
  // Leave the start itself a third of the time, at least 10 s when there is that much.
  const budget = run.budget.slice({ fraction: 2 / 3, reserveMs: 10_000, minMs: 1_000 });
  if (!(await waitExit(pid, budget.deadline, run.layout.binary))) {
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Previous server pid ${pid} is still shutting down; not starting a second one on ${run.params.datadir}`,
    );
  }
  updateState(run, (state) => {
    delete state.stoppingPid;
  });
  return undefined;
}

/** Starts the server process (initialising an empty datadir first when allowed). */
async function startProcess(run: Run): Promise<OcfCode> {
  const removed = cleanLeftovers(run.layout);
  if (removed.length) run.log.info(`Removed leftovers of a dead server: ${removed.join(", ")}`);
  const startArgs: string[] = [];
  let initFile: string | undefined;
  if (!datadirInitialised(run.params.datadir)) {
    // Most of the time, leaving the first start of the new server its share.
    const init = await initialiseDatadir(run.layout, run.budget.slice({ fraction: 0.6 }));
    if (!init.ok) {
      return failWith(run, OCF.ERR_GENERIC, `Datadir initialisation failed: ${init.output}`);
    }
    run.log.info(`Initialised ${run.params.datadir}`);
    initFile = writeInitFile(run);
    if (initFile) startArgs.push(`--init-file=${initFile}`);
  }
  const mariadb = await isMariadbServer(run.layout.binary, run.budget);
  startArgs.push(mariadb ? "--skip-slave-start" : "--skip-replica-start");
  // Semi-sync settings are not persistent: a restarted replica that keeps its coordinates must
  // still acknowledge (MySQL needs its plugin first: replicateFrom installs it).
  if (run.params.semiSync && mariadb) startArgs.push("--rpl-semi-sync-slave-enabled=ON");
  if (run.ctx.promotable) {
    // Always unpromoted: read-only from the first connection on.
    startArgs.push("--read-only");
    if (!mariadb) startArgs.push("--super-read-only");
  }
  const t0 = Date.now();
  try {
    const outcome = await startServer(run.layout, {
      startArgs,
      deadline: run.budget.slice({ reserveMs: 2_000 }).deadline,
      probe: async () => {
        try {
          const c = await connect(run, { connectMs: 1_000 });
          await c.close();
          return "up";
        } catch (err) {
          if (err instanceof NoLoginError) return "up";
          const kind = classifyError(err);
          return kind === "auth" || kind === "busy" ? "up" : "starting";
        }
      },
    });
    if (!outcome.ok) return failWith(run, OCF.ERR_GENERIC, outcome.reason ?? "Start failed");
    run.log.info(`Server pid ${outcome.pid} accepts connections after ${Date.now() - t0} ms`);
    return OCF.SUCCESS;
  } finally {
    // It holds passwords: gone as soon as the server has read it (or failed to start).
    if (initFile) removeEntry(initFile);
  }
}

/**
 * Writes a one-off --init-file creating the agent's logins in a fresh datadir (not binlogged, so
 * it never looks like a transaction of this node). The datadir belongs to the server's user, who
 * could have planted a link at that name: the file is created exclusively, never through a link,
 * and handed to the server's user through its descriptor (safe_fs.ts). Mode 0600.
 */
function writeInitFile(run: Run): string | undefined {
  if (run.creds === undefined) return undefined;
  const { client, replication } = run.creds;
  if (client.user === "" || client.user === "root") return undefined;
  const lines = [
    // The server runs this file in its global sql_mode: quoting below assumes backslash escapes.
    `${backslashEscapesSessionSql()};`,
    "SET sql_log_bin = 0;",
    `CREATE USER IF NOT EXISTS ${quoteString(client.user)}@'localhost' IDENTIFIED BY ${
      quoteString(client.password)
    };`,
    `GRANT ALL PRIVILEGES ON *.* TO ${quoteString(client.user)}@'localhost' WITH GRANT OPTION;`,
  ];
  if (replication.user !== "") {
    lines.push(
      `CREATE USER IF NOT EXISTS ${quoteString(replication.user)}@'%' IDENTIFIED BY ${
        quoteString(replication.password)
      };`,
      `GRANT REPLICATION SLAVE ON *.* TO ${quoteString(replication.user)}@'%';`,
    );
  }
  const path = `${run.params.datadir}/prm-init.sql`;
  const ids = systemIds(run.params.user, run.params.group);
  writeExclusive(path, lines.join("\n") + "\n", {
    mode: 0o600,
    // The server reads it after dropping root: it must belong to the server's user.
    owner: ids.uid !== undefined && Deno.uid() === 0 ? { uid: ids.uid, gid: ids.gid } : undefined,
  });
  return path;
}

/** stop: SIGTERM, SIGKILL near the deadline; fails (so the node is fenced) if it survives. */
export async function actionStop(run: Run): Promise<OcfCode> {
  const state = loadState(run);
  if (run.ctx.promotable) {
    // After a failure of this node's promoted instance the stop decides between an in-place
    // restart (a score left above every replica) and a failover (last_master.ts).
    const score = await decideAtStop(run, state, SCORE.LAST_MASTER);
    // Independent tool calls: together, since a stop lies on a failover's path.
    await Promise.all([
      run.cib.setPromotionScore(score),
      run.cib.setNodeAttribute(run.names.reader, undefined),
      run.cib.setNodeAttribute(run.names.notPromotable, undefined),
      run.cib.setPrivate(run.names.position, undefined),
    ]);
    saveState(run, state);
  }
  const wedged = state.unresponsiveSince !== undefined;
  const t0 = Date.now();
  const outcome = await stopServer(run.layout, {
    deadline: run.budget.deadline,
    // A server the monitors found answering nothing gets a short SIGTERM grace, then SIGKILL.
    termGraceMs: wedged ? WEDGED_TERM_GRACE_MS : undefined,
    untilUnreachable: run.params.asyncStop
      ? async () => {
        try {
          const c = await connect(run, { connectMs: 500 });
          await c.close();
          return false;
        } catch (err) {
          // Without a usable login a refused login still proves the server listens.
          return !(err instanceof NoLoginError) && classifyError(err) === "down";
        }
      }
      : undefined,
  });
  if (!outcome.ok) return failWith(run, OCF.ERR_GENERIC, outcome.reason ?? "Stop failed");
  const stillExiting = outcome.pid !== undefined && processAlive(outcome.pid, run.layout.binary);
  if (stillExiting) {
    run.log.info(`Server pid ${outcome.pid} no longer accepts connections (async_stop): returning`);
  }
  updateState(run, (state) => {
    if (stillExiting) state.stoppingPid = outcome.pid;
    else delete state.stoppingPid;
    delete state.reader;
    delete state.unresponsiveSince;
  });
  run.log.info(
    outcome.pid === undefined
      ? "Server was not running: stop is a no-op"
      : `Server pid ${outcome.pid} stopped in ${Date.now() - t0} ms${
        outcome.reason ? ` (${outcome.reason})` : ""
      }`,
  );
  return OCF.SUCCESS;
}

function degraded(run: Run): OcfCode {
  return run.ctx.role === "Promoted" ? OCF.DEGRADED_PROMOTED : OCF.DEGRADED;
}

/**
 * A server that did not answer at all (no handshake, no answer to a trivial query): degraded
 * while this lasts less than `unresponsive_timeout` across monitors, failed after. Busy servers
 * answer (too many connections, lock waits): those are degraded, never failed. A frozen one
 * answers nothing.
 */
async function unresponsive(run: Run, detail: string, silentSince: number): Promise<OcfCode> {
  if (run.ctx.promotable && run.ctx.role !== "Promoted") {
    // A server that answers nothing cannot take over: not a candidate until it answers again.
    await publishCandidacy(run, { notPromotable: "unresponsive" });
  }
  const limitMs = run.params.unresponsiveTimeout * 1000;
  const now = Date.now();
  let since = silentSince;
  updateState(run, (state) => {
    since = state.unresponsiveSince ?? silentSince;
    if (state.unresponsiveSince !== undefined) return false;
    state.unresponsiveSince = silentSince;
  });
  const forMs = now - since;
  if (forMs >= limitMs) {
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Server has not answered for ${Math.round(forMs / 1000)} s (unresponsive_timeout ${
        limitMs / 1000
      } s): ${detail}`,
    );
  }
  run.log.warn(
    `Server not answering for ${Math.round(forMs / 1000)} s (${detail}): degraded until ${
      limitMs / 1000
    } s, failed after`,
  );
  return degraded(run);
}

function answered(run: Run): void {
  updateState(run, (state) => {
    if (state.unresponsiveSince === undefined) return false;
    run.log.info("Server answers again");
    delete state.unresponsiveSince;
  });
}

/**
 * monitor: the role from the server itself, scores and reader attribute kept current. A failure
 * of the promoted instance is recorded for the stop of Pacemaker's recovery (last_master.ts).
 */
export async function actionMonitor(run: Run): Promise<OcfCode> {
  const code = await monitorOnce(run);
  if (run.ctx.promotable && run.ctx.role === "Promoted" && run.ctx.intervalMs > 0) {
    if (code === OCF.NOT_RUNNING) recordPromotedFailure(run, "crashed");
    else if (code === OCF.RUNNING_PROMOTED || code === OCF.DEGRADED_PROMOTED) {
      clearPromotedFailure(run);
    } else if (code !== OCF.SUCCESS && code !== OCF.DEGRADED) {
      recordPromotedFailure(run, "failed");
    }
  }
  return code;
}

async function monitorOnce(run: Run): Promise<OcfCode> {
  const obs: Observation = await observe(run);
  if (obs.kind === "stopped") {
    run.log.debug(`Not running: ${obs.detail}`);
    // A recurring monitor reports the failure at once: the recovery's stop deletes the score, and
    // a failed instance is never promoted. A probe cleans up what a past life left.
    if (run.ctx.promotable && run.ctx.intervalMs === 0) {
      await run.cib.setPromotionScore(undefined);
    }
    return OCF.NOT_RUNNING;
  }
  if (obs.kind === "busy") {
    if (!obs.answered) return await unresponsive(run, obs.detail, obs.since);
    answered(run);
    run.log.warn(`Server alive but busy (${obs.detail}): reporting degraded, not failed`);
    return degraded(run);
  }
  if (obs.kind === "failed") return failWith(run, OCF.ERR_GENERIC, obs.detail);
  const client = obs.client;
  let trivialAnswered = false;
  const asked = Date.now();
  try {
    const readOnly = await client.readOnly();
    trivialAnswered = true;
    answered(run);
    if (run.ctx.checkLevel >= 10) {
      // A lock held on test_table must read as busy, not leave a query hanging on the server
      // (closing a connection with a query in flight waits for it): bound the lock wait.
      await client.query("SET SESSION lock_wait_timeout = 2");
      await client.query(testTableSql(run.params.testTable));
    }
    if (!run.ctx.promotable) {
      // A plain resource is one server: running is all Pacemaker asks about.
      run.log.debug(`Standalone server running, read_only=${readOnly}`);
      return OCF.SUCCESS;
    }
    return readOnly ? await monitorUnpromoted(run, client) : await monitorPromoted(run, client);
  } catch (err) {
    if (classifyError(err) === "busy") {
      if (!trivialAnswered && !hasServerAnswer(err)) {
        return await unresponsive(
          run,
          `a trivial query got no answer: ${describeError(err)}`,
          asked,
        );
      }
      run.log.warn(`Server alive but a check query is stuck (${describeError(err)}): degraded`);
      return degraded(run);
    }
    return failWith(run, OCF.ERR_GENERIC, `Monitor query failed: ${describeError(err)}`);
  } finally {
    await client.close();
    run.cib.save();
  }
}

/** True when the error is the server's own answer (an error packet), not a timeout. */
function hasServerAnswer(err: unknown): boolean {
  return (err as { errno?: number }).errno !== undefined;
}

/** The datadir's filesystem use when it reaches disk_full_threshold (disk.ts), else undefined. */
function datadirFull(run: Run): DiskUsage | undefined {
  return nearlyFullAt(run.params.datadir, run.params.diskFullThreshold);
}

/**
 * The promoted node's monitor: publish its coordinates when the CIB lost them, keep the score,
 * and say when its latest commits have no copy elsewhere (OCF_DEGRADED_PROMOTED). A nearly full
 * datadir fails it instead: Pacemaker's recovery demotes it (the demote publishes where writes
 * stopped, its score drops to a replica's least) and the stop withdraws the score (recovery.ts),
 * so a replica that received everything is promoted.
 */
export async function monitorPromoted(run: Run, client: MysqlClient): Promise<OcfCode> {
  const full = datadirFull(run);
  if (full !== undefined) {
    recordPromotedFailure(run, "disk-full");
    // The reason only, not the score: a score withdrawn here makes Pacemaker demote at once and
    // cancel (SIGKILL) this very monitor before it reports the failure and its exit reason
    // (seen in the lab: 20 ms after the score went).
    await run.cib.setNodeAttribute(run.names.notPromotable, "disk-full");
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Disk full: ${
        describeFull(full, run.params.diskFullThreshold)
      }; handing over to a replica that received every commit`,
    );
  }
  // This node's own last publication spares a CIB read per monitor; probes read the CIB.
  let info = run.cib.cachedReplInfo()?.host === run.node
    ? run.cib.cachedReplInfo()
    : await ownSitePublished(run);
  if (info === undefined || info.host !== run.node) {
    // Promoted without our promote (probe after a restart, or the CIB lost the property).
    const binlog = await client.binlogStatus();
    if (binlog !== undefined && !run.cib.unavailable) {
      run.log.info(
        `Writable and ${run.names.replInfo} names ${
          info?.host ?? "nobody"
        }: publishing ${binlog.file}:${binlog.pos}`,
      );
      const mine = { host: run.node, file: binlog.file, pos: binlog.pos };
      if (await run.cib.setReplInfo(mine)) info = mine;
    }
  }
  if (info?.host === run.node) await shareWithOtherSite(run, info);
  if (run.params.heartbeat) await heartbeatHook(run, client, "check");
  await publishCandidacy(run, { score: SCORE.PROMOTED });
  await run.cib.setNodeAttribute(run.names.reader, READABLE.yes);
  return await durabilityCode(run, client);
}

/**
 * How long a new master gives its replicas to connect before "no replica connected" counts: they
 * are repointed in post-promote, after the promote (lab: within 1 s).
 */
const REPLICA_CONNECT_GRACE_MS = 30_000;

/**
 * How long the promoted monitor reuses its replicas' published reasons. Reading them is a
 * Pacemaker tool call, which at every monitor cost the promoted monitor about 10 ms of CPU
 * (`deno task bench:monitor`: 56 ms against 43 for an unpromoted one); a lagging replica set is
 * then reported within this time, and lag builds up over longer spans anyway.
 */
const REPLICA_REASONS_MAX_AGE_MS = 30_000;

/** Only the replicas know their lag: their published not-promotable reasons, raw. */
async function replicaReasons(run: Run): Promise<string[]> {
  const cached = loadState(run).replicaReasons;
  const now = Date.now();
  if (
    cached !== undefined && now - cached.at >= 0 && now - cached.at < REPLICA_REASONS_MAX_AGE_MS
  ) {
    return cached.values;
  }
  // One tool call for all nodes.
  const all = await run.cib.nodeAttributeAll(run.names.notPromotable);
  const values = [...all].filter(([node]) => node !== run.node).map(([, v]) => v);
  updateState(run, (fresh) => {
    fresh.replicaReasons = { at: now, values };
  });
  return values;
}

/**
 * OCF_RUNNING_PROMOTED, or OCF_DEGRADED_PROMOTED with an exit reason while the latest commits
 * have no copy on a replica (durability.ts): semi-sync fell back to asynchronous, no replica is
 * connected, or every connected replica lags past max_slave_lag.
 */
async function durabilityCode(run: Run, client: MysqlClient): Promise<OcfCode> {
  const semiSyncStatus = run.params.semiSync ? await client.semiSyncStatus() : undefined;
  const connected = await client.connectedReplicas();
  const promotedAt = loadState(run).promotedAt;
  const young = promotedAt !== undefined && Date.now() - promotedAt < REPLICA_CONNECT_GRACE_MS;
  const input = {
    semiSync: run.params.semiSync,
    semiSyncStatus,
    connectedReplicas: connected,
    // A clone of one runs no replica; a new master's replicas are still being repointed.
    expectReplicas: (run.ctx.cloneMax ?? 2) > 1 && !young,
    replicaReasons: [] as (NotPromotable | undefined)[],
    maxLagSeconds: run.params.maxSlaveLag,
  };
  let verdict = durabilityOf(input);
  if (verdict.risk === undefined && connected > 0) {
    input.replicaReasons = (await replicaReasons(run)).map(decodeNotPromotable);
    verdict = durabilityOf(input);
  }
  if (verdict.risk === undefined) return OCF.RUNNING_PROMOTED;
  run.log.warn(`Degraded (${verdict.risk}): ${verdict.reason}`);
  run.log.exitReason(verdict.reason);
  return OCF.DEGRADED_PROMOTED;
}

async function monitorUnpromoted(run: Run, client: MysqlClient): Promise<OcfCode> {
  const blocked = await keptOutCode(run);
  if (blocked !== undefined) return blocked;
  let status = await client.replicaStatus();
  const state = loadState(run);
  // The published master, read at most once and only when needed (a tool call).
  let published: Promise<ReplInfo | undefined> | undefined;
  const master = () => published ??= publishedMaster(run);
  let staleMaster = false;
  // At a standby site the master may change under a running IO thread (a switchover leaves the
  // old master up, read-only): the followed master is checked at every monitor there.
  if (
    status === undefined || status.ioRunning !== "Yes" || (await siteRole(run)) === "standby"
  ) {
    const info = await master();
    if (info !== undefined && info.host !== run.node && info.host !== status?.masterHost) {
      const leftAlone = await run.cib.unmanagedReason(run.node);
      if (leftAlone !== undefined) {
        // Maintenance: a person may be working on replication; the first monitor after it
        // repoints (CTS MaintenanceMode: nothing restarted or repointed while it is on).
        run.log.info(`Not following ${info.host} now (${leftAlone}): Pacemaker leaves us alone`);
      } else {
        // A missed notification (or a node down during the switch) still follows an old master.
        endRecovery(run);
        await followPublishedMaster(run, client, info);
        status = await client.replicaStatus();
        const nowBlocked = await keptOutCode(run);
        if (nowBlocked !== undefined) return nowBlocked;
      }
      // Still the replica of another master: its coordinates say nothing in the new master's.
      staleMaster = status !== undefined && status.masterHost !== info.host;
    }
  }
  const withheld = await withheldReason(run, state, master);
  let candidacy: Candidacy;
  let readableNow: boolean;
  let code: OcfCode = OCF.SUCCESS;
  if (status === undefined) {
    // The published master back read-only holds at least what its replicas received, unless
    // it failed over (then it hands its last commits over and follows the new master).
    const lastMaster = (await master())?.host === run.node && lastMasterCandidate(state);
    run.log.debug(
      lastMaster ? "Last master back read-only, replicating from nobody" : "Idle: read-only",
    );
    candidacy = replicaCandidacy({ withheld, lastMaster });
    readableNow = false;
  } else {
    if (run.params.heartbeat) {
      const hb = await readHeartbeatLag(client, run.params.heartbeatTable);
      if (hb.lag === undefined) run.log.debug(`Heartbeat lag unknown: ${hb.problem}`);
      status = withHeartbeatLag(status, hb.lag);
    }
    const health = assessReplica(status, { maxLag: run.params.maxSlaveLag });
    candidacy = replicaCandidacy({
      health,
      repaired: hasHistoryMark(run.params.datadir),
      withheld: withheld ?? (staleMaster ? "stale-master" : undefined),
    });
    readableNow = health.readable && withheld !== "disk-full";
    if (!health.healthy || !health.readable) {
      run.log.info(`Replica of ${status.masterHost}: ${health.reason}`);
    } else run.log.debug(`Replica of ${status.masterHost}: ${health.reason}`);
    if (health.outdated && run.params.evictOutdatedSlaves) {
      code = failWith(run, OCF.ERR_GENERIC, `Evicting outdated replica: ${health.reason}`);
    }
  }
  let reader = { readable: false, failures: 0 };
  updateState(run, (fresh) => {
    // Read afresh: the steps above keep their own records in the same file.
    reader = nextReaderState(
      fresh.reader ?? { readable: false, failures: 0 },
      readableNow,
      run.params.readerFailcount,
    );
    if (JSON.stringify(reader) === JSON.stringify(fresh.reader)) return false;
    fresh.reader = reader;
  });
  await publishCandidacy(run, candidacy);
  await run.cib.setNodeAttribute(run.names.reader, reader.readable ? READABLE.yes : READABLE.no);
  return code;
}

/**
 * Why an unpromoted node withholds its candidacy whatever its replication says: its datadir's
 * filesystem is nearly full (never promoted, never read from), or it waits for the last master
 * after a cold start (last_master.ts).
 */
async function withheldReason(
  run: Run,
  state: LocalState,
  master: () => Promise<ReplInfo | undefined>,
): Promise<NotPromotable | undefined> {
  const full = datadirFull(run);
  if (full !== undefined) {
    run.log.warn(
      `Not a promotion candidate, not readable: ${
        describeFull(full, run.params.diskFullThreshold)
      }`,
    );
  }
  // Checked even on a full disk, so that the wait ends on time.
  const waiting = state.coldStart !== undefined && await coldStartWaiting(run, await master());
  if (full !== undefined) return "disk-full";
  return waiting ? "cold-start-wait" : undefined;
}

/**
 * Writes a node's candidacy: its promotion score and, when it is not a candidate, why (the
 * `prm-<rsc>-not-promotable` node attribute, which crm_mon -A and mysql_prm status show).
 */
export async function publishCandidacy(run: Run, candidacy: Candidacy): Promise<void> {
  await run.cib.setPromotionScore(candidacy.score);
  await run.cib.setNodeAttribute(run.names.notPromotable, candidacy.notPromotable);
}

/**
 * The heartbeat writer (heartbeat.ts): started by promote, checked (and restarted) by the
 * promoted monitor, disabled by demote. A failure is logged, never fatal: lag figures then fall
 * back to Seconds_Behind_Master on the replicas.
 */
export async function heartbeatHook(
  run: Run,
  client: MysqlClient,
  what: "start" | "check" | "stop",
): Promise<void> {
  const table = run.params.heartbeatTable;
  try {
    if (what === "stop") return await stopHeartbeat(client, table);
    if (what === "check" && await heartbeatRunning(client, table)) return;
    await startHeartbeat(client, { table, intervalSeconds: run.params.heartbeatInterval });
    run.log.info(`Heartbeat writer on ${table} every ${run.params.heartbeatInterval} s`);
  } catch (err) {
    run.log.warn(`Heartbeat writer (${what}) failed: ${describeError(err)}`);
  }
}

/**
 * demote: read-only without hanging on long transactions (blocking sessions are killed within
 * the budget); publishes where it stopped writing, so a switchover loses nothing.
 */
export async function actionDemote(run: Run): Promise<OcfCode> {
  const since = loadState(run).unresponsiveSince;
  if (since !== undefined && Date.now() - since >= run.params.unresponsiveTimeout * 1000) {
    // Its monitor failed it for answering nothing: trying again only delays the stop that
    // kills it (a frozen server cannot be made read-only, and must never be called demoted).
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Cannot demote: the server has answered nothing for ${
        Math.round((Date.now() - since) / 1000)
      } s`,
    );
  }
  const obs = await observe(run);
  if (obs.kind === "stopped") {
    // After a crash Pacemaker demotes before it stops: "not promoted" is already true, and a
    // failure here would only abort the transition and count a failure against the node.
    run.log.info(`Demote of a stopped server is a no-op: ${obs.detail}`);
    return OCF.SUCCESS;
  }
  if (obs.kind !== "up") return failWith(run, OCF.ERR_GENERIC, `Cannot demote: ${obs.detail}`);
  const client = obs.client;
  try {
    if (await client.readOnly()) {
      run.log.info("Already read-only: demote is a no-op");
      return OCF.SUCCESS;
    }
    await setReadOnlyKillingBlockers(run, client);
    if (run.params.heartbeat) await heartbeatHook(run, client, "stop");
    if (run.ctx.promotable) {
      const binlog = await client.binlogStatus();
      const final = binlog === undefined
        ? undefined
        : { host: run.node, file: binlog.file, pos: binlog.pos };
      if (final !== undefined) {
        // Replicas wait for this position in pre-promote, so a switchover loses nothing.
        await run.cib.setPrivate(run.names.final, encodeCoordinates(final));
        run.log.info(`Demoted: read-only at ${final.file}:${final.pos}`);
      }
      // Two sites: the other site's promotee waits for it too.
      await afterDemote(run, final);
      await run.cib.setPromotionScore(SCORE.IDLE);
      run.cib.save();
    } else {
      run.log.info("Standalone server made read-only");
    }
    return OCF.SUCCESS;
  } catch (err) {
    return failWith(run, OCF.ERR_GENERIC, `Demote failed: ${describeError(err)}`);
  } finally {
    await client.close();
  }
}

/**
 * read_only needs the global read lock, which waits for running writes. Try with a short lock
 * wait; then kill client sessions (not replication or system threads) and try again, within the
 * action's budget.
 */
async function setReadOnlyKillingBlockers(run: Run, client: MysqlClient): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await client.setReadOnly(true, 3);
      return;
    } catch (err) {
      if (classifyError(err) !== "busy" || run.budget.remainingMs() < 5_000) throw err;
      const sessions = await client.clientSessions();
      const victims = sessions.filter((s) => s.command !== "Sleep" || s.time > 0);
      run.log.warn(
        `read_only blocked (attempt ${attempt}: ${
          describeError(err)
        }): killing ${victims.length} sessions ${
          victims.map((s) => `${s.id}/${s.user}/${s.command}/${s.time}s`).join(" ")
        }`,
      );
      for (const s of victims) await client.kill(s.id);
    }
  }
}
