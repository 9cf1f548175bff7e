/**
 * The run of one action: everything an action works with, built once by {@link setup} (no
 * globals): the OCF context, the typed parameters, the logins, the server's layout, the Pacemaker
 * door (cib.ts), the names of every attribute (attrs.ts), the action's time budget (budget.ts)
 * and this node's name; plus the little state a node keeps between actions, and the one way an
 * action fails (an exit reason on every failing path).
 *
 * @module
 */

import { Booth } from "./booth.ts";
import { isTicketName } from "./booth_conf.ts";
import { Budget } from "./budget.ts";
import { Cib } from "./cib.ts";
import type { AttributeNames } from "./attrs.ts";
import { Logger, OCF, type OcfCode, type OcfContext } from "./ocf.ts";
import { type AgentParams, type Problem, resolveParams } from "./params.ts";
import {
  type Credentials,
  CredentialsFileError,
  MAX_CREDENTIALS_FILE_BYTES,
  parseCredentialsFile,
  resolveCredentials,
} from "./credentials.ts";
import { findServerBinary, type ServerLayout } from "./mysqld.ts";
import type { ColdStartWait, PromotedFailure, RecoveryDecision } from "./recovery.ts";
import { readBoundedFile, replaceFile, trustedDir, UnsafePathError } from "./safe_fs.ts";

/** Everything one action works with. */
export interface Run {
  /** What Pacemaker passed in. */
  ctx: OcfContext;
  /** Typed, defaulted parameters. */
  params: AgentParams;
  /**
   * The logins, or undefined when the configured ones cannot be used (a credentials file that is
   * missing, unsafe or unreadable): the agent then never logs in as anybody else.
   */
  creds?: Credentials;
  /** The server's binary, files and options. */
  layout: ServerLayout;
  /** Log lines to pacemaker-execd, with secrets redacted. */
  log: Logger;
  /** The one door to Pacemaker's tools. */
  cib: Cib;
  /** The booth ticket of a two-site cluster (booth.ts), undefined for one site. */
  booth?: Booth;
  /** The names this resource uses in the cluster. */
  names: AttributeNames;
  /** The action's one time budget. */
  budget: Budget;
  /** This node's name. */
  node: string;
  /** False when the state folder is not safe to write to: state is then neither read nor kept. */
  stateUsable: boolean;
}

/** What a node keeps between actions (in HA_RSCTMP, a tmpfs: gone after a power cut). */
export interface LocalState {
  /** Reader hysteresis. */
  reader?: { readable: boolean; failures: number };
  /** Peers the promotee expects positions from (written in pre-promote). */
  expectedPeers?: string[];
  /** Nodes the current transition demotes or starts (written in pre-promote). */
  finalHosts?: string[];
  /** When this node, as the promotee, got its pre-promote (Date.now() ms): the failover's start. */
  prePromoteAt?: number;
  /** pid of a server being stopped asynchronously. */
  stoppingPid?: number;
  /** A malformed `<rsc>_REPL_INFO` value already warned about (logged once, not per monitor). */
  malformedReplInfo?: string;
  /** Since when (Date.now() ms) the server has answered nothing: no handshake, no query. */
  unresponsiveSince?: number;
  /** A failure of this node's promoted instance, recorded by its monitor (recovery.ts). */
  promotedFailure?: PromotedFailure;
  /** What the stop after that failure decided, and when: start and monitors follow it. */
  recovery?: { decision: RecoveryDecision; at: number };
  /** When this node's crashed master was last restarted in place (crash_restart_window). */
  lastInPlaceAt?: number;
  /** A replica's wait for the last published master after a cold start (recovery.ts). */
  coldStart?: ColdStartWait;
  /** When this node's promote opened writes (its replicas get a grace to connect). */
  promotedAt?: number;
  /**
   * The promoted node's last read of its replicas' not-promotable reasons (a Pacemaker tool
   * call, made at most every REPLICA_REASONS_MAX_AGE_MS): when, and the raw values.
   */
  replicaReasons?: { at: number; values: string[] };
  /**
   * When this node's start found `<rsc>_REPL_INFO` naming it (the last master back read-only,
   * not a master demoted on purpose): until it is promoted or follows another.
   */
  lastMasterBack?: number;
  /** Two sites: the last `<rsc>_REPL_INFO` stored at the other site, whether it worked, when. */
  sharedWithOtherSite?: { value: string; ok: boolean; at: number };
}

/** The most a state file may hold: it is tiny, anything bigger was not written by the agent. */
const STATE_MAX = 64 * 1024;

/** Path of one of this resource's state files in the state folder. */
export function statePath(run: Pick<Run, "ctx">, what: string): string {
  return `${run.ctx.stateDir}/mysql_prm-${run.ctx.resource}.${what}`;
}

/** Reads this node's {@link LocalState} ({} when none, unreadable or unsafe). */
export function loadState(run: Run): LocalState {
  if (!run.stateUsable) return {};
  const read = readBoundedFile(statePath(run, "state.json"), STATE_MAX, { noFollow: true });
  if (!read.ok) return {};
  try {
    const parsed = JSON.parse(read.text);
    return parsed && typeof parsed === "object" ? parsed as LocalState : {};
  } catch {
    return {};
  }
}

/** Keeps this node's {@link LocalState} (replaced atomically). */
export function saveState(run: Run, state: LocalState): void {
  if (!run.stateUsable) return;
  try {
    replaceFile(statePath(run, "state.json"), JSON.stringify(state));
  } catch (err) {
    run.log.warn(`Cannot save state: ${(err as Error).message}`);
  }
}

/**
 * Changes this node's {@link LocalState} in one step: reads it, lets `change` edit it, keeps it
 * unless `change` returns false. Never hold a LocalState across an await and save it later: a
 * step in between may have changed the file (a lost update).
 */
export function updateState(run: Run, change: (state: LocalState) => boolean | void): void {
  const state = loadState(run);
  if (change(state) !== false) saveState(run, state);
}

/** Logs `message` as an error, writes it as the exit reason and returns `code`. */
export function failWith(run: { log: Logger }, code: OcfCode, message: string): OcfCode {
  run.log.error(message);
  run.log.exitReason(message);
  return code;
}

function problemCode(p: Problem): OcfCode {
  return p.kind === "perm"
    ? OCF.ERR_PERM
    : p.kind === "installed"
    ? OCF.ERR_INSTALLED
    : OCF.ERR_CONFIGURED;
}

/** Logs every problem and fails with the most severe one's code and message. */
export function reportProblems(log: Logger, problems: Problem[]): OcfCode {
  // Most severe first: a permission problem, then a missing piece, then a wrong value.
  const order: Problem["kind"][] = ["perm", "installed", "configured"];
  const sorted = [...problems].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const p of sorted) log.error(p.message);
  log.exitReason(sorted[0].message);
  return problemCode(sorted[0]);
}

/**
 * Reads the credentials file: it must be a regular file owned by root (or the running user)
 * with no group or other access, at most {@link CREDENTIALS_MAX} bytes.
 */
function readCredentialsFile(
  path: string,
): { sections?: Record<string, Record<string, string>>; problem?: Problem } {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return { problem: { kind: "installed", message: `Credentials file ${path} does not exist` } };
  }
  const mode = (st.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    return {
      problem: {
        kind: "perm",
        message: `Credentials file ${path} has mode ${
          mode.toString(8)
        }: it must be 0600 (no group or other access)`,
      },
    };
  }
  const me = Deno.uid() ?? 0;
  if (st.uid !== 0 && st.uid !== me) {
    return {
      problem: {
        kind: "perm",
        message: `Credentials file ${path} is owned by uid ${st.uid}: it must belong to root`,
      },
    };
  }
  const read = readBoundedFile(path, MAX_CREDENTIALS_FILE_BYTES);
  if (!read.ok) {
    return {
      problem: {
        kind: read.why === "too-large" ? "configured" : "perm",
        message: `Credentials file ${path} is not readable (${read.why})`,
      },
    };
  }
  try {
    // The bytes, not decoded text: the parser refuses a BOM and invalid UTF-8, as it should.
    return { sections: parseCredentialsFile(read.bytes) };
  } catch (err) {
    if (!(err instanceof CredentialsFileError)) throw err;
    return { problem: { kind: err.kind, message: `Credentials file ${path}: ${err.message}` } };
  }
}

/** Checks the state folder: an unsafe one is a permission problem (see safe_fs.ts). */
function stateDirProblem(dir: string): Problem | undefined {
  try {
    try {
      Deno.lstatSync(dir);
    } catch {
      // Pacemaker creates HA_RSCTMP; outside it the agent makes its own, root-owned and private.
      Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
    }
    trustedDir(dir);
    return undefined;
  } catch (err) {
    const why = err instanceof UnsafePathError ? err.message : (err as Error).message;
    return {
      kind: "perm",
      message: `State folder ${dir} (HA_RSCTMP) is not safe for root: ${why}`,
    };
  }
}

/** Builds the run (params, credentials, layout, budget) and lists every problem found. */
export function setup(ctx: OcfContext, log: Logger): { run: Run; problems: Problem[] } {
  const { params, problems } = resolveParams(ctx.params);
  log.secret(params.testPasswd);
  log.secret(params.replicationPasswd);
  let file: Record<string, Record<string, string>> | undefined;
  let credsUsable = true;
  if (params.credentialsFile !== "") {
    const r = readCredentialsFile(params.credentialsFile);
    if (r.problem) {
      problems.push(r.problem);
      credsUsable = false;
    }
    file = r.sections;
    if (file !== undefined && !file.client?.user) {
      problems.push({
        kind: "configured",
        message: `Credentials file ${params.credentialsFile} has no [client] user`,
      });
      credsUsable = false;
    }
  }
  const creds = credsUsable ? resolveCredentials(params, file) : undefined;
  log.secret(creds?.client.password);
  log.secret(creds?.replication.password);
  if (ctx.promotable && creds !== undefined && creds.replication.user === "") {
    problems.push({
      kind: "configured",
      message:
        "A promotable clone needs a replication login: set replication_user or a [replication] section in credentials_file",
    });
  }
  const stateProblem = stateDirProblem(ctx.stateDir);
  if (stateProblem !== undefined) problems.push(stateProblem);
  const budget = Budget.forOperation(ctx.timeoutMs);
  const cib = new Cib(ctx.resource, {
    log,
    budget,
    readerAttribute: params.readerAttribute,
    cacheFile: stateProblem === undefined
      ? `${ctx.stateDir}/mysql_prm-${ctx.resource}.cib.json`
      : undefined,
    refresh: ctx.intervalMs === 0,
  });
  const layout: ServerLayout = {
    binary: params.binary !== "" ? params.binary : findServerBinary() ?? "/usr/sbin/mysqld",
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
  const run: Run = {
    ctx,
    params,
    creds,
    layout,
    log,
    cib,
    // An invalid name is among the problems already: every action but stop fails on them.
    booth: !isTicketName(params.boothTicket) ? undefined : new Booth(params.boothTicket, {
      config: params.boothConfig,
      log,
      budget,
    }),
    names: cib.names,
    budget,
    node: ctx.nodeName ?? Deno.hostname(),
    stateUsable: stateProblem === undefined,
  };
  return { run, problems };
}
