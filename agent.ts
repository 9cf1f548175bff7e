/**
 * mysql_prm: the OCF resource agent for MySQL/MariaDB replication as a Pacemaker promotable clone
 * (and as a plain resource: one writable server). One function per action; every decision is a
 * call into a pure module (election.ts, sql.ts, params.ts) and every effect goes through mysql.ts,
 * mysqld.ts or cib.ts.
 *
 * Run as `mysql_prm ACTION` (installed) or `deno run -A agent.ts ACTION`.
 *
 * @module
 */

import { configMain } from "./config_gen.ts";
import { codeName, Logger, OCF, type OcfCode, type OcfContext, readContext } from "./ocf.ts";
import {
  type AgentParams,
  type Credentials,
  helpText,
  metadataXml,
  parseCredentialsFile,
  type Problem,
  resolveCredentials,
  resolveParams,
} from "./params.ts";
import { classifyError, describeError, type FailureKind, MysqlClient } from "./mysql.ts";
import {
  cleanLeftovers,
  datadirInitialised,
  executableExists,
  findServerBinary,
  initialiseDatadir,
  processAlive,
  readPidFile,
  type ServerLayout,
  serverPid,
  startServer,
  stopServer,
  waitExit,
} from "./mysqld.ts";
import { Cib, PCMK_TOOLS_DIR, type ReplInfo } from "./cib.ts";
import {
  assessReplica,
  checkPromotee,
  comparePositions,
  decodePeerPosition,
  encodePeerPosition,
  executedPosition,
  formatPosition,
  type LogPosition,
  nextReaderState,
  type PeerPosition,
  receivedPositionOf,
  relayApplied,
  SCORE,
} from "./election.ts";
import { quoteString, type ReplicaStatus, testTableSql } from "./sql.ts";
import {
  checkReturningNode,
  markHistoryStart,
  parseResumeOverride,
  readBlock,
  type ResyncOutcome,
  resyncReplica,
  writeBlock,
} from "./resync_agent.ts";
import {
  heartbeatRunning,
  readHeartbeatLag,
  startHeartbeat,
  stopHeartbeat,
  withHeartbeatLag,
} from "./heartbeat.ts";
import { statusMain } from "./status.ts";
import {
  gtidAttr,
  gtidElection,
  prepareGtidFollow,
  publishElectionGtid,
  publishGtidFork,
} from "./gtid_agent.ts";

/** The agent's version, shown in meta-data. */
export const VERSION = "0.1.0";

const USAGE =
  "Usage: mysql_prm {start|stop|monitor|promote|demote|notify|validate-all|meta-data|usage|--help}\n" +
  "       mysql_prm status [--json] [--help]\n" +
  "       mysql_prm config [FLAGS] [--help]";

/**
 * The notifications (`type-operation`) the agent acts on. It answers every other one with
 * success and nothing else, and so do the launchers, without starting Deno: a failover runs
 * several rounds of them on every node, and each round waits for the slowest node.
 */
export const NOTIFICATIONS_ACTED_ON: readonly string[] = ["pre-promote", "post-promote"];

/** Value published in pre-promote by a node that replicates from nobody. */
const IDLE_MARK = "idle";
/** Refused-promote mark of a promotee that stepped aside for a node holding more data. */
const STEPPED_ASIDE_MARK = "stepped-aside";

/** Everything one action works with (no globals). */
interface Run {
  ctx: OcfContext;
  params: AgentParams;
  creds: Credentials;
  layout: ServerLayout;
  log: Logger;
  cib: Cib;
  /** Absolute deadline of this action (Date.now() ms), with a margin. */
  deadline: number;
  /** This node's name. */
  node: string;
  /** Set when a promote stepped aside for a node holding more data (see actionPromote). */
  steppedAside?: boolean;
}

/** Per-resource state this node keeps between actions (tmpfs: gone after a power cut). */
interface LocalState {
  /** Reader hysteresis. */
  reader?: { readable: boolean; failures: number };
  /** Peers the promotee expects positions from (written in pre-promote). */
  expectedPeers?: string[];
  /** pid of a server being stopped asynchronously. */
  stoppingPid?: number;
}

function statePath(run: Run): string {
  return `${run.ctx.stateDir}/mysql_prm-${run.ctx.resource}.state.json`;
}

function loadState(run: Run): LocalState {
  try {
    return JSON.parse(Deno.readTextFileSync(statePath(run))) as LocalState;
  } catch {
    return {};
  }
}

function saveState(run: Run, state: LocalState): void {
  try {
    Deno.mkdirSync(run.ctx.stateDir, { recursive: true });
    Deno.writeTextFileSync(statePath(run), JSON.stringify(state));
  } catch (err) {
    run.log.debug(`Cannot save state: ${(err as Error).message}`);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function posAttr(run: Run): string {
  return `prm-${run.ctx.resource}-pos`;
}

function finalAttr(run: Run): string {
  return `prm-${run.ctx.resource}-final`;
}

/** Private attribute a promotee sets when its promote failed, so peers stop waiting for it. */
function refusedAttr(run: Run): string {
  return `prm-${run.ctx.resource}-refused`;
}

// ---------------------------------------------------------------------------------------------
// Set-up and validation

function readCredentialsFile(
  path: string,
): { sections?: Record<string, Record<string, string>>; problem?: Problem } {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return { problem: { kind: "installed", message: `Credentials file ${path} does not exist` } };
  }
  if (((st.mode ?? 0) & 0o077) !== 0) {
    return {
      problem: {
        kind: "perm",
        message: `Credentials file ${path} has mode ${
          ((st.mode ?? 0) & 0o777).toString(8)
        }: it must be 0600 (no group or other access)`,
      },
    };
  }
  try {
    return { sections: parseCredentialsFile(Deno.readTextFileSync(path)) };
  } catch (err) {
    return {
      problem: {
        kind: "perm",
        message: `Credentials file ${path} is not readable: ${(err as Error).message}`,
      },
    };
  }
}

function problemCode(p: Problem): OcfCode {
  return p.kind === "perm"
    ? OCF.ERR_PERM
    : p.kind === "installed"
    ? OCF.ERR_INSTALLED
    : OCF.ERR_CONFIGURED;
}

/** Builds the run (params, credentials, layout) or returns the first problem. */
function setup(ctx: OcfContext, log: Logger): { run?: Run; problems: Problem[] } {
  const { params, problems } = resolveParams(ctx.params);
  log.secret(params.testPasswd);
  log.secret(params.replicationPasswd);
  let file: Record<string, Record<string, string>> | undefined;
  if (params.credentialsFile !== "") {
    const r = readCredentialsFile(params.credentialsFile);
    if (r.problem) problems.push(r.problem);
    file = r.sections;
    if (file !== undefined && !file.client?.user) {
      problems.push({
        kind: "configured",
        message: `Credentials file ${params.credentialsFile} has no [client] user`,
      });
    }
  }
  const creds = resolveCredentials(params, file);
  log.secret(creds.client.password);
  log.secret(creds.replication.password);
  if (ctx.promotable && creds.replication.user === "") {
    problems.push({
      kind: "configured",
      message:
        "A promotable clone needs a replication login: set replication_user or a [replication] section in credentials_file",
    });
  }
  const binary = params.binary !== "" ? params.binary : findServerBinary() ?? "/usr/sbin/mysqld";
  const layout: ServerLayout = {
    binary,
    prefix: params.binaryPrefix,
    config: params.config,
    datadir: params.datadir,
    user: params.user,
    group: params.group,
    log: params.log,
    pid: params.pid,
    socket: params.socket,
    extra: params.additionalParameters,
  };
  const cib = new Cib(ctx.resource, {
    log,
    cacheFile: `${ctx.stateDir}/mysql_prm-${ctx.resource}.cib.json`,
    refresh: ctx.intervalMs === 0,
  });
  const margin = Math.min(5_000, Math.floor(ctx.timeoutMs / 10));
  const run: Run = {
    ctx,
    params,
    creds,
    layout,
    log,
    cib,
    deadline: Date.now() + ctx.timeoutMs - margin,
    node: ctx.nodeName ?? Deno.hostname(),
  };
  return { run, problems };
}

/** Host checks of validate-all (binaries, files, tools): each with its OCF error kind. */
function hostProblems(run: Run): Problem[] {
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
  if (!params.enableCreation && !datadirInitialised(params.datadir)) {
    problems.push({
      kind: "installed",
      message: `Data directory ${params.datadir} holds no database and enable_creation is false`,
    });
  }
  return problems;
}

function failWith(run: { log: Logger }, code: OcfCode, message: string): OcfCode {
  run.log.error(message);
  run.log.exitReason(message);
  return code;
}

function reportProblems(log: Logger, problems: Problem[]): OcfCode {
  // Most severe first: a permission problem, then a missing piece, then a wrong value.
  const order: Problem["kind"][] = ["perm", "installed", "configured"];
  const sorted = [...problems].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const p of sorted) log.error(p.message);
  log.exitReason(sorted[0].message);
  return problemCode(sorted[0]);
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

async function connect(run: Run, timeoutMs = 5_000): Promise<MysqlClient> {
  return await MysqlClient.connect({
    socket: run.layout.socket,
    user: run.creds.client.user,
    password: run.creds.client.password,
    connectTimeoutMs: timeoutMs,
    queryTimeoutMs: Math.max(2_000, Math.min(10_000, run.deadline - Date.now())),
  });
}

/** What the agent can observe of the local server. */
type Observation =
  | { kind: "stopped"; detail: string }
  | { kind: "busy"; detail: string }
  | { kind: "failed"; detail: string }
  | { kind: "up"; client: MysqlClient; pid: number };

/**
 * Connects to the running server, retrying while it is busy (too many connections, lock waits,
 * slow queries) for up to half the remaining time: busy is alive, not dead.
 */
async function observe(run: Run): Promise<Observation> {
  const state = loadState(run);
  if (state.stoppingPid !== undefined && processAlive(state.stoppingPid, run.layout.binary)) {
    return {
      kind: "stopped",
      detail: `server pid ${state.stoppingPid} is shutting down (async_stop)`,
    };
  }
  const pid = serverPid(run.layout);
  if (pid === undefined) {
    const stale = readPidFile(run.layout.pid);
    return {
      kind: "stopped",
      detail: stale === undefined ? "no server process" : `pid file names dead process ${stale}`,
    };
  }
  const until = Date.now() + Math.max(1_000, Math.min(6_000, (run.deadline - Date.now()) / 2));
  let last: { kind: FailureKind; text: string } = { kind: "down", text: "" };
  for (let attempt = 1;; attempt++) {
    try {
      const client = await connect(run, Math.max(1_000, Math.min(5_000, until - Date.now())));
      return { kind: "up", client, pid };
    } catch (err) {
      last = { kind: classifyError(err), text: describeError(err) };
      run.log.warn(
        `Connection attempt ${attempt} to pid ${pid} failed (${last.kind}): ${last.text}`,
      );
      if (last.kind === "auth" || last.kind === "error") break;
      if (!processAlive(pid, run.layout.binary)) {
        return { kind: "stopped", detail: `server pid ${pid} exited` };
      }
      if (Date.now() + 500 >= until) break;
      await delay(Math.min(1_000, 200 * attempt));
    }
  }
  if (last.kind === "busy") return { kind: "busy", detail: last.text };
  return { kind: "failed", detail: `server pid ${pid} runs but refuses us: ${last.text}` };
}

/** Runs `fn` on a connection, closing it afterwards. */
async function withClient<T>(
  run: Run,
  fn: (c: MysqlClient) => Promise<T>,
): Promise<T | { error: string; kind: FailureKind }> {
  let client: MysqlClient;
  try {
    client = await connect(run);
  } catch (err) {
    return { error: describeError(err), kind: classifyError(err) };
  }
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Waits until the SQL thread applied what the IO thread received, or the deadline. */
async function waitRelayApplied(
  run: Run,
  client: MysqlClient,
  deadline: number,
  target?: LogPosition,
): Promise<ReplicaStatus | undefined> {
  let status = await client.replicaStatus();
  while (status !== undefined) {
    const exec = executedPosition(status);
    const reachedTarget = target === undefined || exec === undefined ||
      comparePositions(exec, target) >= 0;
    const stillReceiving = target !== undefined && !reachedTarget &&
      (status.ioRunning === "Yes");
    const applied = relayApplied(status) && !stillReceiving;
    if (applied || !status.sqlRunning || Date.now() >= deadline) {
      if (!applied) {
        run.log.warn(
          `Relay log not fully applied before the deadline: exec=${status.relayMasterLogFile}:${status.execMasterLogPos} read=${status.masterLogFile}:${status.readMasterLogPos}`,
        );
      }
      return status;
    }
    await delay(100);
    status = await client.replicaStatus();
  }
  return undefined;
}

/** Waits until the IO thread has received up to `target` (or stopped, or the deadline). */
async function waitReceived(
  run: Run,
  client: MysqlClient,
  deadline: number,
  target: LogPosition,
): Promise<ReplicaStatus> {
  let status = await client.replicaStatus();
  while (status !== undefined) {
    const got = receivedPositionOf(status);
    if (got !== undefined && comparePositions(got, target) >= 0) return status;
    if (status.ioRunning !== "Yes" || Date.now() >= deadline) {
      run.log.warn(
        `Received ${got ? formatPosition(got) : "nothing"} of ${
          formatPosition(target)
        } (io=${status.ioRunning})`,
      );
      return status;
    }
    await delay(50);
    const next = await client.replicaStatus();
    if (next === undefined) return status;
    status = next;
  }
  throw new Error("Replication was reset while waiting for the old master's last events");
}

async function replicateFrom(
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
    host: info.host,
    port: run.params.replicationPort,
    user: run.creds.replication.user,
    password: run.creds.replication.password,
    file: info.file,
    pos: info.pos,
    options: run.params.replicationOptions,
  });
  await client.startReplica();
  run.log.info(`Replicating from ${info.host} at ${info.file}:${info.pos} (published coordinates)`);
}

/**
 * GTID mode: replicate from the master by GTID (no coordinates, no resync), unless this node
 * holds errant transactions: then it is blocked like a refused resync (not readable, never
 * promoted, monitor fails hard) until a person acts and runs crm_resource --cleanup.
 */
async function replicateByGtid(run: Run, client: MysqlClient, info: ReplInfo): Promise<void> {
  const follow = await prepareGtidFollow(client, run.cib, {
    resource: run.ctx.resource,
    master: info.host,
    node: run.node,
    log: run.log,
  });
  if (!follow.ok) {
    writeBlock(blockPath(run), {
      reason: follow.reason,
      at: new Date().toISOString(),
      salvageFile: follow.salvageFile,
    });
    run.log.error(
      `${follow.reason}. Kept out: remove or replay those transactions (mariadb-binlog on this ` +
        "node's binlog), or re-clone, then run crm_resource --cleanup",
    );
    await run.cib.setPromotionScore(undefined);
    await run.cib.setNodeAttribute(run.params.readerAttribute, "0");
    return;
  }
  await client.changeSource({
    host: info.host,
    port: run.params.replicationPort,
    user: run.creds.replication.user,
    password: run.creds.replication.password,
    gtid: true,
    options: run.params.replicationOptions,
  });
  await client.startReplica();
  run.log.info(`Replicating from ${info.host}: ${follow.detail}`);
}

/**
 * Makes an unpromoted server replicate from the published master: keeps its own coordinates when
 * it already replicates from that master (never re-pointing to stale coordinates), otherwise uses
 * the published ones.
 */
async function followPublishedMaster(run: Run, client: MysqlClient, info: ReplInfo): Promise<void> {
  if (info.host === run.node) {
    run.log.info(`${run.cib.replInfoName} names this node: waiting unpromoted for the cluster`);
    return;
  }
  // Read alongside the server (a tool call): on the failover path every step counts.
  const overrideValue = run.cib.nodeAttribute(resumeAttr(run)).catch(() => undefined);
  const status = await client.replicaStatus();
  if (status !== undefined && status.masterHost === info.host) {
    if (status.ioRunning !== "Yes" || !status.sqlRunning) await client.startReplica();
    run.log.info(
      `Already a replica of ${info.host}: keeping its own coordinates ${status.relayMasterLogFile}:${status.execMasterLogPos}`,
    );
    return;
  }
  const override = parseResumeOverride(await overrideValue);
  if (override !== undefined) {
    // A person decided where this node resumes (after a resync refusal): no check.
    await run.cib.setNodeAttribute(resumeAttr(run), undefined);
    writeBlock(blockPath(run), undefined);
    const target = "published" in override
      ? info
      : { host: info.host, file: override.file, pos: override.pos };
    run.log.warn(`Operator set ${resumeAttr(run)}: resuming at ${target.file}:${target.pos}`);
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

function resumeAttr(run: Run): string {
  return `prm-${run.ctx.resource}-resume`;
}

function blockPath(run: Run): string {
  return `${run.ctx.stateDir}/mysql_prm-${run.ctx.resource}.resync-block.json`;
}

/**
 * A node whose resync was refused stays unpromotable and unreadable and fails its monitor with
 * a hard error (OCF_ERR_PERM): Pacemaker then stops it and keeps it off this node until
 * `crm_resource --cleanup`, instead of restarting it in a loop as a soft error would.
 */
async function resyncBlocked(run: Run): Promise<OcfCode | undefined> {
  const block = readBlock(blockPath(run));
  if (block === undefined) return undefined;
  await run.cib.setPromotionScore(undefined);
  await run.cib.setNodeAttribute(run.params.readerAttribute, "0");
  return failWith(run, OCF.ERR_PERM, block.reason);
}

/**
 * Position mode, a node that followed another master (or nobody): find where it resumes in the
 * new master's binary log (resync_agent.ts) and replicate from exactly there, or block it.
 */
async function resyncTo(
  run: Run,
  client: MysqlClient,
  info: ReplInfo,
  status: ReplicaStatus | undefined,
): Promise<void> {
  const source = {
    host: info.host,
    port: run.params.replicationPort,
    user: run.creds.replication.user,
    password: run.creds.replication.password,
    newestFile: info.file,
  };
  const options = {
    log: run.log,
    deadline: run.deadline,
    node: run.node,
    resource: run.ctx.resource,
  };
  let outcome: ResyncOutcome;
  const t0 = Date.now();
  try {
    outcome = status !== undefined
      ? await resyncReplica(client, source, options)
      : await checkReturningNode(client, source, options);
  } catch (err) {
    run.log.warn(
      `Resync with ${info.host} not possible now (retrying later): ${describeError(err)}`,
    );
    return;
  }
  if (outcome.kind === "resume") {
    run.log.info(`Resync in ${Date.now() - t0} ms: ${outcome.detail}`);
    await replicateFrom(run, client, {
      host: info.host,
      file: outcome.file,
      pos: outcome.position,
    });
  } else if (outcome.kind === "nothing") {
    run.log.info(`Resync: ${outcome.detail}; using the published coordinates`);
    await replicateFrom(run, client, info);
  } else {
    if (status !== undefined) await client.stopReplica();
    writeBlock(blockPath(run), {
      reason: outcome.reason,
      at: new Date().toISOString(),
      salvageFile: outcome.salvageFile,
    });
    run.log.error(
      `${outcome.reason}: ${outcome.detail}. Kept out: fix the data, then set the node ` +
        `attribute ${resumeAttr(run)} (published or FILE:POS) or re-clone, and run ` +
        "crm_resource --cleanup",
    );
    await run.cib.setPromotionScore(undefined);
    await run.cib.setNodeAttribute(run.params.readerAttribute, "0");
  }
}

// ---------------------------------------------------------------------------------------------
// Actions

async function actionStart(run: Run): Promise<OcfCode> {
  const problems = hostProblems(run);
  if (problems.length > 0) return reportProblems(run.log, problems);
  const state = loadState(run);
  if (state.stoppingPid !== undefined) {
    const pid = state.stoppingPid;
    if (processAlive(pid, run.layout.binary)) {
      run.log.info(`Waiting for server pid ${pid} to finish its shutdown (async_stop) first`);
    }
    if (!(await waitExit(pid, run.deadline - 10_000, run.layout.binary))) {
      return failWith(
        run,
        OCF.ERR_GENERIC,
        `Previous server pid ${pid} is still shutting down; not starting a second one on ${run.params.datadir}`,
      );
    }
    delete state.stoppingPid;
    saveState(run, state);
  }
  if (serverPid(run.layout) === undefined) {
    const removed = cleanLeftovers(run.layout);
    if (removed.length) run.log.info(`Removed leftovers of a dead server: ${removed.join(", ")}`);
    const startArgs: string[] = [];
    let initFile: string | undefined;
    if (!datadirInitialised(run.params.datadir)) {
      const init = await initialiseDatadir(run.layout);
      if (!init.ok) {
        return failWith(run, OCF.ERR_GENERIC, `Datadir initialisation failed: ${init.output}`);
      }
      run.log.info(`Initialised ${run.params.datadir}`);
      initFile = writeInitFile(run);
      if (initFile) startArgs.push(`--init-file=${initFile}`);
    }
    const mariadb = /mariadb/i.test(run.layout.binary) ||
      (await isMariadbBinary(run.layout.binary));
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
    const outcome = await startServer(run.layout, {
      startArgs,
      deadline: run.deadline - 2_000,
      probe: async () => {
        try {
          const c = await connect(run, 1_000);
          await c.close();
          return "up";
        } catch (err) {
          const kind = classifyError(err);
          return kind === "auth" || kind === "busy" ? "up" : "starting";
        }
      },
    });
    if (initFile) {
      try {
        Deno.removeSync(initFile);
      } catch {
        // Already gone.
      }
    }
    if (!outcome.ok) return failWith(run, OCF.ERR_GENERIC, outcome.reason ?? "Start failed");
    run.log.info(`Server pid ${outcome.pid} accepts connections after ${Date.now() - t0} ms`);
  } else {
    run.log.info("Server already running: start is a no-op");
  }
  if (run.ctx.promotable) {
    await run.cib.setPrivate(posAttr(run), undefined);
    // A start (after crm_resource --cleanup, for one) checks afresh whether this node may follow.
    writeBlock(blockPath(run), undefined);
    const info = await run.cib.replInfo();
    const r = await withClient(run, async (c) => {
      if (!(await c.readOnly())) await c.setReadOnly(true);
      if (info !== undefined) await followPublishedMaster(run, c, info);
      else run.log.info(`No master published (${run.cib.replInfoName} unset): idle replica`);
      return true;
    });
    if (typeof r === "object") {
      return failWith(run, OCF.ERR_GENERIC, `Cannot set up replication after start: ${r.error}`);
    }
  }
  const code = await actionMonitor(run);
  if (code === OCF.SUCCESS || code === OCF.RUNNING_PROMOTED || code === OCF.DEGRADED) {
    return OCF.SUCCESS;
  }
  return code === OCF.NOT_RUNNING
    ? failWith(run, OCF.ERR_GENERIC, "Server stopped right after start")
    : code;
}

async function isMariadbBinary(binary: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(binary, { args: ["--version"], stdout: "piped" }).output();
    return /mariadb/i.test(new TextDecoder().decode(out.stdout));
  } catch {
    return false;
  }
}

/**
 * Writes a one-off --init-file creating the agent's logins in a fresh datadir (not binlogged, so
 * it never looks like a transaction of this node). Mode 0600, removed after the start.
 */
function writeInitFile(run: Run): string | undefined {
  const { client, replication } = run.creds;
  if (client.user === "" || client.user === "root") return undefined;
  const lines = [
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
  Deno.writeTextFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
  try {
    const uid = Number(
      Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
        l.startsWith(`${run.params.user}:`)
      )
        ?.split(":")[2],
    );
    if (Number.isInteger(uid) && Deno.uid() === 0) Deno.chownSync(path, uid, null);
  } catch {
    // The server may still read it as root before dropping privileges.
  }
  return path;
}

async function actionStop(run: Run): Promise<OcfCode> {
  if (run.ctx.promotable) {
    // Independent tool calls: together, since a stop lies on a failover's path.
    await Promise.all([
      run.cib.setPromotionScore(undefined),
      run.cib.setNodeAttribute(run.params.readerAttribute, undefined),
      run.cib.setPrivate(posAttr(run), undefined),
    ]);
  }
  const state = loadState(run);
  const t0 = Date.now();
  const outcome = await stopServer(run.layout, {
    deadline: run.deadline,
    untilUnreachable: run.params.asyncStop
      ? async () => {
        try {
          const c = await connect(run, 500);
          await c.close();
          return false;
        } catch (err) {
          return classifyError(err) === "down";
        }
      }
      : undefined,
  });
  if (!outcome.ok) return failWith(run, OCF.ERR_GENERIC, outcome.reason ?? "Stop failed");
  if (outcome.pid !== undefined && processAlive(outcome.pid, run.layout.binary)) {
    state.stoppingPid = outcome.pid;
    run.log.info(`Server pid ${outcome.pid} no longer accepts connections (async_stop): returning`);
  } else {
    delete state.stoppingPid;
  }
  delete state.reader;
  saveState(run, state);
  run.log.info(
    outcome.pid === undefined
      ? "Server was not running: stop is a no-op"
      : `Server pid ${outcome.pid} stopped in ${Date.now() - t0} ms${
        outcome.reason ? ` (${outcome.reason})` : ""
      }`,
  );
  return OCF.SUCCESS;
}

async function actionMonitor(run: Run): Promise<OcfCode> {
  const obs = await observe(run);
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
    const promoted = run.ctx.role === "Promoted";
    run.log.warn(`Server alive but busy (${obs.detail}): reporting degraded, not failed`);
    return promoted ? OCF.DEGRADED_PROMOTED : OCF.DEGRADED;
  }
  if (obs.kind === "failed") return failWith(run, OCF.ERR_GENERIC, obs.detail);
  const client = obs.client;
  try {
    const readOnly = await client.readOnly();
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
    const kind = classifyError(err);
    if (kind === "busy") {
      run.log.warn(`Server alive but a check query is stuck (${describeError(err)}): degraded`);
      return run.ctx.role === "Promoted" ? OCF.DEGRADED_PROMOTED : OCF.DEGRADED;
    }
    return failWith(run, OCF.ERR_GENERIC, `Monitor query failed: ${describeError(err)}`);
  } finally {
    await client.close();
    run.cib.save();
  }
}

async function monitorPromoted(run: Run, client: MysqlClient): Promise<OcfCode> {
  // This node's own last publication spares a CIB read per monitor; probes read the CIB.
  const info = run.cib.cachedReplInfo()?.host === run.node
    ? run.cib.cachedReplInfo()
    : await run.cib.replInfo();
  if (info === undefined || info.host !== run.node) {
    // Promoted without our promote (probe after a restart, or the CIB lost the property).
    const binlog = await client.binlogStatus();
    if (binlog !== undefined && !run.cib.unavailable) {
      run.log.info(
        `Writable and ${run.cib.replInfoName} names ${
          info?.host ?? "nobody"
        }: publishing ${binlog.file}:${binlog.pos}`,
      );
      await run.cib.setReplInfo({ host: run.node, file: binlog.file, pos: binlog.pos });
    }
  }
  if (run.params.heartbeat) await heartbeatHook(run, client, "check");
  await run.cib.setPromotionScore(SCORE.PROMOTED);
  await run.cib.setNodeAttribute(run.params.readerAttribute, "1");
  return OCF.RUNNING_PROMOTED;
}

async function monitorUnpromoted(run: Run, client: MysqlClient): Promise<OcfCode> {
  const blocked = await resyncBlocked(run);
  if (blocked !== undefined) return blocked;
  let status = await client.replicaStatus();
  const state = loadState(run);
  if (status === undefined || status.ioRunning !== "Yes") {
    const info = await run.cib.replInfo();
    if (info !== undefined && info.host !== run.node && info.host !== status?.masterHost) {
      // A missed notification (or a node down during the switch) still follows an old master.
      await followPublishedMaster(run, client, info);
      status = await client.replicaStatus();
      const nowBlocked = await resyncBlocked(run);
      if (nowBlocked !== undefined) return nowBlocked;
    }
  }
  let score: number | undefined;
  let readableNow: boolean;
  let code: OcfCode = OCF.SUCCESS;
  if (status === undefined) {
    run.log.debug("Idle: read-only, replicating from nobody");
    score = SCORE.IDLE;
    readableNow = false;
  } else {
    if (run.params.heartbeat) {
      const hb = await readHeartbeatLag(client, run.params.heartbeatTable);
      if (hb.lag === undefined) run.log.debug(`Heartbeat lag unknown: ${hb.problem}`);
      status = withHeartbeatLag(status, hb.lag);
    }
    const health = assessReplica(status, { maxLag: run.params.maxSlaveLag });
    score = health.healthy ? SCORE.REPLICA : undefined;
    readableNow = health.readable;
    if (!health.healthy || !health.readable) {
      run.log.info(`Replica of ${status.masterHost}: ${health.reason}`);
    } else run.log.debug(`Replica of ${status.masterHost}: ${health.reason}`);
    if (health.outdated && run.params.evictOutdatedSlaves) {
      score = undefined;
      code = failWith(run, OCF.ERR_GENERIC, `Evicting outdated replica: ${health.reason}`);
    }
  }
  const reader = nextReaderState(
    state.reader ?? { readable: false, failures: 0 },
    readableNow,
    run.params.readerFailcount,
  );
  if (JSON.stringify(reader) !== JSON.stringify(state.reader)) {
    state.reader = reader;
    saveState(run, state);
  }
  await run.cib.setPromotionScore(score);
  await run.cib.setNodeAttribute(run.params.readerAttribute, reader.readable ? "1" : "0");
  return code;
}

/**
 * The heartbeat writer (heartbeat.ts): started by promote, checked (and restarted) by the
 * promoted monitor, disabled by demote. A failure is logged, never fatal: lag figures then fall
 * back to Seconds_Behind_Master on the replicas.
 */
async function heartbeatHook(
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
 * Pacemaker sends the post-promote notifications even when the promote failed (for one, when a
 * peer held more data and the scores were moved): the peers wait there for the promotee's
 * coordinates. A failed promote says so at once, so that they do not wait in vain and the
 * cluster re-plans without delay.
 */
async function actionPromote(run: Run): Promise<OcfCode> {
  // Cleared while the promote runs: peers read it only after the promote returned.
  const clearing = run.ctx.promotable
    ? run.cib.setPrivate(refusedAttr(run), undefined)
    : Promise.resolve(true);
  const code = await promote(run);
  await clearing;
  if (code !== OCF.SUCCESS && run.ctx.promotable) {
    // Stepping aside fails the promote on purpose (so that Pacemaker re-plans): the new master
    // clears that failure (clearSteppedAside), other failures stay for a person to see.
    const mark = run.steppedAside ? STEPPED_ASIDE_MARK : String(code);
    await run.cib.setPrivate(refusedAttr(run), mark).catch(() => false);
  }
  return code;
}

async function promote(run: Run): Promise<OcfCode> {
  // Tool calls started while connecting to the server: both answers are needed below.
  const finals = run.ctx.promotable ? prefetch(run.cib.privateAll(finalAttr(run))) : undefined;
  const positions = run.ctx.promotable ? prefetch(run.cib.privateAll(posAttr(run))) : undefined;
  const obs = await observe(run);
  if (obs.kind !== "up") {
    return failWith(run, OCF.ERR_GENERIC, `Cannot promote: ${obs.detail}`);
  }
  const client = obs.client;
  try {
    if (!(await client.readOnly())) {
      run.log.info("Already writable: promote is a no-op");
      if (run.ctx.promotable) await monitorPromoted(run, client);
      return OCF.SUCCESS;
    }
    if (!run.ctx.promotable) {
      await client.setReadOnly(false);
      run.log.info("Standalone server made writable");
      return OCF.SUCCESS;
    }
    // Let the SQL thread apply everything received; if the old master published its final
    // position when it was demoted (switchover), wait until that is applied too.
    let status = await client.replicaStatus();
    const final = status ? await finalPositionOf(run, status.masterHost, finals) : undefined;
    if (status !== undefined && final !== undefined) {
      status = await waitReceived(
        run,
        client,
        Date.now() + Math.min(10_000, (run.deadline - Date.now()) / 4),
        final,
      );
    }
    if (status !== undefined) {
      const health = assessReplica(status, { maxLag: Number.MAX_SAFE_INTEGER });
      if (!health.healthy && !/IO thread/.test(health.reason)) {
        await run.cib.setPromotionScore(undefined);
        return failWith(
          run,
          OCF.ERR_GENERIC,
          `Refusing to promote a broken replica: ${health.reason}`,
        );
      }
    }
    const received = status ? receivedPositionOf(status) : undefined;
    const mine = status && received
      ? { node: run.node, masterHost: status.masterHost, position: received }
      : undefined;
    const peers = await peerPositions(run, positions);
    const check = checkPromotee({ self: run.node, mine, peers });
    run.log.info(`Election: ${check.reason}`);
    if (!check.proceed && check.better !== undefined) {
      await moveScoresTo(run, check.better.node);
      run.steppedAside = true;
      return failWith(
        run,
        OCF.ERR_GENERIC,
        `Not promoting: ${check.better.node} holds more data; scores moved so the cluster re-plans`,
      );
    }
    if (run.params.replicationMode === "gtid") {
      const g = await gtidElection(client, run.cib, {
        resource: run.ctx.resource,
        self: run.node,
        expected: (loadState(run).expectedPeers ?? []).filter((n) => n !== run.node),
        until: Date.now() + Math.min(5_000, (run.deadline - Date.now()) / 8),
      });
      run.log.info(`GTID election: ${g.reason}`);
      if (!g.proceed && g.better !== undefined) {
        await moveScoresTo(run, g.better.node);
        run.steppedAside = true;
        return failWith(
          run,
          OCF.ERR_GENERIC,
          `Not promoting: ${g.better.node} holds more GTIDs; scores moved so the cluster re-plans`,
        );
      }
    }
    if (status !== undefined) {
      // Everything received must be applied before this node accepts writes.
      const applied = await waitRelayApplied(run, client, run.deadline - 5_000);
      if (applied !== undefined && applied.sqlRunning && !relayApplied(applied)) {
        return failWith(
          run,
          OCF.ERR_GENERIC,
          `Relay log not applied within the promote timeout: executed ${applied.relayMasterLogFile}:${applied.execMasterLogPos} of ${applied.masterLogFile}:${applied.readMasterLogPos}`,
        );
      }
    }
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
    // Publish the coordinates taken after everything was applied and before any write. The
    // replicas read them in post-promote, after this action: the tool call runs meanwhile.
    const publishing = prefetch(
      run.cib.setReplInfo({ host: run.node, file: binlog.file, pos: binlog.pos }),
    );
    if (run.params.replicationMode === "gtid") {
      await publishGtidFork(client, run.cib, { resource: run.ctx.resource, log: run.log });
    }
    // Semi-sync as the source before the first write, so that no write escapes it.
    if (run.params.semiSync) {
      await client.configureSemiSync("source", run.params.semiSyncTimeoutMs);
    }
    await client.setReadOnly(false);
    run.log.info(`Promoted: writable at ${binlog.file}:${binlog.pos}`);
    // With semi-sync, the writer's first statements may wait semi_sync_timeout for a replica that
    // is not repointed yet: the first promoted monitor starts it instead, off the failover path.
    if (run.params.heartbeat && !run.params.semiSync) await heartbeatHook(run, client, "start");
    // Writable already: these three are bookkeeping, done together (each a tool call).
    await Promise.all([
      publishing,
      run.cib.setPromotionScore(SCORE.PROMOTED),
      run.cib.setNodeAttribute(run.params.readerAttribute, "1"),
      run.cib.setPrivate(posAttr(run), undefined),
    ]);
    run.cib.save();
    await runPostPromoteScript(run);
    return OCF.SUCCESS;
  } catch (err) {
    return failWith(run, OCF.ERR_GENERIC, `Promote failed: ${describeError(err)}`);
  } finally {
    await client.close();
  }
}

/**
 * A tool call started early, awaited later: its failure must not become an unhandled rejection
 * (which would end the action) while it waits.
 */
function prefetch<T>(p: Promise<T>): Promise<T | undefined> {
  // Where it is awaited, a failed call is a missing value, as when the tool answers nothing.
  return p.catch(() => undefined);
}

/** Puts `better` ahead of this node in the promotion scores, so that Pacemaker promotes it. */
async function moveScoresTo(run: Run, better: string): Promise<void> {
  await run.cib.setPromotionScore(SCORE.REPLICA + 50, better);
  await run.cib.setPromotionScore(1);
  run.cib.save();
}

/**
 * pre-promote, on the promotee: promote's comparison with the peers' positions, made before
 * Pacemaker starts the promote. When a peer holds more, moving the scores now changes the CIB,
 * which aborts the transition before the promote: the cluster re-plans on the better node with
 * no failed action here (a failed promote counts toward migration-threshold and can keep this
 * node's replica stopped). The promote checks again, for when it starts anyway.
 */
async function electBeforePromote(run: Run, mine: PeerPosition | undefined): Promise<void> {
  const check = checkPromotee({ self: run.node, mine, peers: await peerPositions(run) });
  if (check.proceed || check.better === undefined) return;
  run.log.info(`Election before the promote: ${check.reason}; moving the scores to re-plan`);
  await moveScoresTo(run, check.better.node);
  // Until the CIB holds the new score: the abort it causes must reach the controller before
  // the result of this notification does.
  const until = Math.min(Date.now() + 3_000, run.deadline);
  while (Date.now() < until && !run.cib.unavailable) {
    if ((await run.cib.promotionScore(check.better.node)) === SCORE.REPLICA + 50) return;
    await delay(50);
  }
}

/**
 * post-promote, on the new master: a node whose promote stepped aside for this one failed it on
 * purpose; that failure counts toward migration-threshold and may keep its replica stopped, so
 * it is cleaned up here and the node comes back as a replica of this one.
 */
async function clearSteppedAside(run: Run): Promise<void> {
  const refused = await run.cib.privateAll(refusedAttr(run));
  for (const [node, mark] of refused) {
    if (node === run.node || mark !== STEPPED_ASIDE_MARK) continue;
    const cleaned = await run.cib.cleanupFailures(node);
    await run.cib.setPrivate(refusedAttr(run), undefined, node);
    run.log.info(
      `${node} stepped aside for this node: its failed promote ${
        cleaned ? "is cleaned up" : "could not be cleaned up"
      }, so that it comes back as a replica`,
    );
  }
}

/** The final position an old master published when demoted, if it is `host`. */
async function finalPositionOf(
  run: Run,
  host: string,
  prefetched?: Promise<Map<string, string> | undefined>,
): Promise<LogPosition | undefined> {
  const values = (await prefetched) ?? await run.cib.privateAll(finalAttr(run));
  const raw = values.get(host);
  const p = raw === undefined ? undefined : decodePeerPosition(host, raw);
  if (p !== undefined) {
    run.log.info(`Old master ${host} stopped writing at ${formatPosition(p.position)}`);
  }
  return p?.position;
}

/** Peer positions published in pre-promote, waiting briefly for the expected peers. */
async function peerPositions(
  run: Run,
  prefetched?: Promise<Map<string, string> | undefined>,
): Promise<PeerPosition[]> {
  const expected = (loadState(run).expectedPeers ?? []).filter((n) => n !== run.node);
  const until = Date.now() + Math.min(10_000, (run.deadline - Date.now()) / 4);
  let values = (await prefetched) ?? await run.cib.privateAll(posAttr(run));
  while (expected.some((n) => !values.has(n)) && Date.now() < until && !run.cib.unavailable) {
    await delay(200);
    values = await run.cib.privateAll(posAttr(run));
  }
  const missing = expected.filter((n) => !values.has(n));
  if (missing.length) {
    run.log.warn(
      `No position published by ${missing.join(", ")} (seen: ${
        [...values].map(([n, v]) => `${n}=${v || "-"}`).join(" ") || "nothing"
      }): going on without`,
    );
  }
  const peers: PeerPosition[] = [];
  for (const [node, value] of values) {
    if (node === run.node || value === IDLE_MARK) continue;
    const p = decodePeerPosition(node, value);
    if (p === undefined) run.log.warn(`Ignoring malformed position from ${node}`);
    else peers.push(p);
  }
  return peers;
}

async function runPostPromoteScript(run: Run): Promise<void> {
  if (run.params.postPromoteScript === "") return;
  try {
    const out = await new Deno.Command(run.params.postPromoteScript, {
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    if (out.success) run.log.info("post_promote_script succeeded");
    else run.log.warn(`post_promote_script exited ${out.code}: ${text}`);
  } catch (err) {
    run.log.warn(`post_promote_script failed: ${(err as Error).message}`);
  }
}

async function actionDemote(run: Run): Promise<OcfCode> {
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
      if (binlog !== undefined) {
        // Replicas wait for this position in pre-promote, so a switchover loses nothing.
        await run.cib.setPrivate(
          finalAttr(run),
          encodePeerPosition(run.node, { file: binlog.file, pos: binlog.pos }),
        );
        run.log.info(`Demoted: read-only at ${binlog.file}:${binlog.pos}`);
      }
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
 * action's deadline.
 */
async function setReadOnlyKillingBlockers(run: Run, client: MysqlClient): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await client.setReadOnly(true, 3);
      return;
    } catch (err) {
      if (classifyError(err) !== "busy" || Date.now() + 5_000 > run.deadline) throw err;
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

async function actionNotify(run: Run): Promise<OcfCode> {
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
    else if (what === "post-promote") {
      // The demoted master's final position must outlive post-demote: pre-promote and promote
      // wait for it. Once a new master is up it has served its purpose.
      const clearing = prefetch(run.cib.setPrivate(finalAttr(run), undefined));
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
 * pre-promote, every active instance: finish applying what was received, then publish the
 * executed position (old master's coordinates) for the promotee to compare.
 */
async function notifyPrePromote(run: Run): Promise<void> {
  const n = run.ctx.notify!;
  const promotee = n.promote[0]?.uname;
  if (promotee === run.node) {
    const stopping = new Set(n.stop.map((e) => e.uname));
    const peers = new Set(
      [...n.active, ...n.unpromoted, ...n.promoted, ...n.demote].map((e) => e.uname),
    );
    const state = loadState(run);
    state.expectedPeers = [...peers].filter((u) => u !== run.node && !stopping.has(u) && u !== "");
    saveState(run, state);
  }
  const finals = prefetch(run.cib.privateAll(finalAttr(run)));
  const value = await withClient(run, async (c) => {
    const before = await c.replicaStatus();
    if (before === undefined) return IDLE_MARK;
    // Switchover: the demoted master published where it stopped; let the IO thread get there.
    const final = await finalPositionOf(run, before.masterHost, finals);
    const status = final === undefined ? before : await waitReceived(
      run,
      c,
      Date.now() + Math.min(10_000, (run.deadline - Date.now()) / 2),
      final,
    );
    const received = receivedPositionOf(status);
    if (received === undefined) return IDLE_MARK;
    // What this node holds (received, applied or not): the promotee applies its relay log before
    // opening writes, so a peer whose SQL thread is slow or blocked does not delay the failover.
    run.log.info(
      `Position for the election: ${status.masterHost} received ${
        formatPosition(received)
      }, executed ${status.relayMasterLogFile}:${status.execMasterLogPos}`,
    );
    return encodePeerPosition(status.masterHost, received);
  });
  if (run.params.replicationMode === "gtid") {
    // Before the position: the promotee waits for the position, then finds the GTID too.
    const g = await withClient(
      run,
      (c) => publishElectionGtid(c, run.cib, { resource: run.ctx.resource, log: run.log }),
    );
    if (typeof g === "object") run.log.warn(`Cannot publish the GTID position: ${g.error}`);
  }
  if (typeof value === "object") {
    run.log.warn(`Cannot read this node's position: ${value.error}`);
    return;
  }
  await run.cib.setPrivate(posAttr(run), value);
  if (promotee === run.node) {
    await electBeforePromote(
      run,
      value === IDLE_MARK ? undefined : decodePeerPosition(run.node, value),
    );
  }
}

/**
 * post-promote, every other instance: replicate from the new master at the coordinates it
 * published after applying everything and before accepting writes. A replica that held less than
 * the promotee misses the difference: issue 5's resync closes that gap.
 */
async function notifyPostPromote(run: Run): Promise<void> {
  const promotee = run.ctx.notify!.promote[0]?.uname;
  // The election is over: its attributes go while this node repoints.
  const clearing = Promise.all([
    prefetch(run.cib.setPrivate(posAttr(run), undefined)),
    run.params.replicationMode === "gtid"
      ? prefetch(run.cib.setPrivate(gtidAttr(run.ctx.resource), undefined))
      : undefined,
  ]);
  try {
    await repointToPromotee(run, promotee);
  } finally {
    await clearing;
  }
}

/** Waits for the promotee's published coordinates, then replicates from it (or resyncs). */
async function repointToPromotee(run: Run, promotee: string | undefined): Promise<void> {
  if (promotee === run.node) return await clearSteppedAside(run);
  if (promotee === undefined) return;
  if (serverPid(run.layout) === undefined) return;
  let info = await run.cib.replInfo();
  const until = Date.now() + Math.min(10_000, (run.deadline - Date.now()) / 2);
  while (
    (info === undefined || info.host !== promotee) && Date.now() < until && !run.cib.unavailable
  ) {
    if ((await run.cib.privateAll(refusedAttr(run))).has(promotee)) {
      run.log.info(`The promote of ${promotee} failed: the cluster re-plans`);
      return;
    }
    await delay(250);
    info = await run.cib.replInfo();
  }
  if (info === undefined || info.host !== promotee) {
    run.log.warn(`${promotee} has not published its coordinates: monitor will repoint later`);
    return;
  }
  const published = info;
  const r = await withClient(run, async (c) => {
    if (!(await c.readOnly())) {
      run.log.warn("This node is writable while another is promoted: not repointing");
      return;
    }
    await followPublishedMaster(run, c, published);
  });
  if (typeof r === "object" && r !== null) run.log.warn(`Repointing failed: ${r.error}`);
}

function actionValidate(run: Run, problems: Problem[]): OcfCode {
  const all = [...problems, ...hostProblems(run)];
  if (all.length > 0) return reportProblems(run.log, all);
  run.log.debug("Configuration is valid");
  return OCF.SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/** Runs one action and returns its OCF exit code. */
export async function main(args: string[], env = Deno.env.toObject()): Promise<number> {
  const action = args[0] ?? env.__OCF_ACTION ?? "";
  switch (action) {
    case "meta-data":
      console.log(metadataXml(VERSION));
      return OCF.SUCCESS;
    case "--help":
    case "-h":
    case "help":
      console.log(helpText());
      return OCF.SUCCESS;
    case "usage":
      console.log(USAGE);
      return OCF.SUCCESS;
    case "config":
      return configMain(args.slice(1));
    case "status":
      return await statusMain(args.slice(1));
  }
  const ctx = readContext(env, { action });
  const log = new Logger(`mysql_prm(${ctx.resource})[${action}]`, { debug: ctx.debug });
  const { run, problems } = setup(ctx, log);
  if (run === undefined) return reportProblems(log, problems);
  if (action === "validate-all") return actionValidate(run, problems);
  const known = ["start", "stop", "monitor", "promote", "demote", "notify"];
  if (!known.includes(action)) {
    console.error(USAGE);
    return OCF.ERR_UNIMPLEMENTED;
  }
  // Wrong values make every action fail alike (monitor must still tell a stopped server apart).
  if (problems.length > 0 && action !== "stop" && action !== "monitor" && action !== "notify") {
    return reportProblems(log, problems);
  }
  const t0 = Date.now();
  let code: OcfCode;
  try {
    switch (action) {
      case "start":
        code = await actionStart(run);
        break;
      case "stop":
        code = await actionStop(run);
        break;
      case "monitor":
        code = problems.some((p) => p.kind === "configured") && serverPid(run.layout) === undefined
          ? OCF.NOT_RUNNING
          : await actionMonitor(run);
        break;
      case "promote":
        code = await actionPromote(run);
        break;
      case "demote":
        code = await actionDemote(run);
        break;
      default:
        code = await actionNotify(run);
    }
  } catch (err) {
    code = action === "notify"
      ? OCF.SUCCESS
      : failWith(run, OCF.ERR_GENERIC, `Unexpected error: ${describeError(err)}`);
  }
  run.cib.save();
  const level = action === "monitor" && (code === OCF.SUCCESS || code === OCF.RUNNING_PROMOTED)
    ? "debug"
    : "info";
  log[level](`${action} -> ${codeName(code)} in ${Date.now() - t0} ms`);
  return code;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
