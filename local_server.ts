/**
 * The local server as an action sees it: a connection with the configured login and the
 * action's deadline ({@link connect}, {@link withClient}), what can be observed of it
 * ({@link observe}: stopped, busy, failed or up), and the waits on its replication threads
 * ({@link waitRelayApplied}, {@link waitReceived}), each bounded by a budget.
 *
 * @module
 */

import { type Budget, delay, waitUntil } from "./budget.ts";
import { classifyError, describeError, type FailureKind, MysqlClient } from "./mysql.ts";
import { processAlive, readPidFile, serverPid } from "./mysqld.ts";
import { type BinlogPosition, comparePositions, formatPosition } from "./position.ts";
import { executedPosition, receivedPositionOf, relayApplied } from "./election.ts";
import type { ReplicaStatus } from "./sql.ts";
import { loadState, type Run } from "./run.ts";

/** Thrown when the configured login cannot be used: the agent never logs in as anybody else. */
export class NoLoginError extends Error {
  /** Makes the error. */
  constructor() {
    super("The configured login cannot be used (see the credentials file problem)");
    this.name = "NoLoginError";
  }
}

/** How long one connection attempt may take at most. */
const CONNECT_MAX_MS = 5_000;
/** How long one query may take at most, unless it asks for more (and the budget has it). */
const QUERY_MAX_MS = 10_000;

/** Connects to the local server with the run's login, within `budget` (default the action's). */
export async function connect(
  run: Run,
  options: { connectMs?: number; budget?: Budget } = {},
): Promise<MysqlClient> {
  if (run.creds === undefined) throw new NoLoginError();
  const budget = options.budget ?? run.budget;
  return await MysqlClient.connect({
    socket: run.layout.socket,
    user: run.creds.client.user,
    password: run.creds.client.password,
    connectTimeoutMs: Math.max(1, budget.cap(options.connectMs ?? CONNECT_MAX_MS)),
    queryTimeoutMs: QUERY_MAX_MS,
    deadline: run.budget.deadline,
  });
}

/** What the agent can observe of the local server. */
export type Observation =
  | { kind: "stopped"; detail: string }
  | {
    kind: "busy";
    detail: string;
    /** True when the server answered (an error packet); false when it said nothing in time. */
    answered: boolean;
    /** When the first attempt of this observation began (Date.now() ms). */
    since: number;
  }
  | { kind: "failed"; detail: string; failure: FailureKind }
  | { kind: "up"; client: MysqlClient; pid: number };

/**
 * Connects to the running server, retrying while it is busy (too many connections, lock waits,
 * slow queries) for up to half the remaining time, at most 6 s: busy is alive, not dead.
 */
export async function observe(run: Run): Promise<Observation> {
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
  const budget = run.budget.slice({ maxMs: 6_000, fraction: 0.5, minMs: 1_000 });
  const since = Date.now();
  let last: { kind: FailureKind; text: string; answered: boolean } = {
    kind: "down",
    text: "",
    answered: false,
  };
  for (let attempt = 1;; attempt++) {
    try {
      const client = await connect(run, { budget, connectMs: Math.max(1_000, budget.cap(5_000)) });
      return { kind: "up", client, pid };
    } catch (err) {
      if (err instanceof NoLoginError) {
        return { kind: "failed", detail: err.message, failure: "auth" };
      }
      last = {
        kind: classifyError(err),
        text: describeError(err),
        // An error packet is an answer (too many connections); a timeout is none.
        answered: (err as { errno?: number }).errno !== undefined,
      };
      run.log.warn(
        `Connection attempt ${attempt} to pid ${pid} failed (${last.kind}): ${last.text}`,
      );
      if (last.kind === "auth" || last.kind === "error") break;
      if (!processAlive(pid, run.layout.binary)) {
        return { kind: "stopped", detail: `server pid ${pid} exited` };
      }
      if (budget.remainingMs() < 500) break;
      await delay(Math.min(1_000, 200 * attempt), budget);
    }
  }
  if (last.kind === "busy") {
    return { kind: "busy", detail: last.text, answered: last.answered, since };
  }
  return {
    kind: "failed",
    detail: `server pid ${pid} runs but refuses us: ${last.text}`,
    failure: last.kind,
  };
}

/** A failure to reach the server, as {@link withClient} returns it. */
export interface ClientFailure {
  /** Password-free description. */
  error: string;
  /** How to read it. */
  kind: FailureKind;
}

/** True for the failure value of {@link withClient}. */
export function isClientFailure(value: unknown): value is ClientFailure {
  return typeof value === "object" && value !== null && "error" in value && "kind" in value;
}

/** Runs `fn` on a connection, closing it afterwards; a failure to connect is returned. */
export async function withClient<T>(
  run: Run,
  fn: (c: MysqlClient) => Promise<T>,
): Promise<T | ClientFailure> {
  let client: MysqlClient;
  try {
    client = await connect(run);
  } catch (err) {
    if (err instanceof NoLoginError) return { error: err.message, kind: "auth" };
    return { error: describeError(err), kind: classifyError(err) };
  }
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/**
 * Waits until the SQL thread applied what the IO thread received (and, with `target`, until it
 * received and applied up to there), the SQL thread stopped, or the budget ends. Returns the last
 * status seen (undefined when the server replicates from nobody).
 */
export async function waitRelayApplied(
  run: Run,
  client: MysqlClient,
  options: { budget: Budget; target?: BinlogPosition },
): Promise<ReplicaStatus | undefined> {
  const { target } = options;
  let status = await client.replicaStatus();
  while (status !== undefined) {
    const exec = executedPosition(status);
    const reachedTarget = target === undefined || exec === undefined ||
      comparePositions(exec, target) >= 0;
    const stillReceiving = target !== undefined && !reachedTarget && status.ioRunning === "Yes";
    const applied = relayApplied(status) && !stillReceiving;
    if (applied || !status.sqlRunning || options.budget.expired()) {
      if (!applied) {
        run.log.warn(
          `Relay log not fully applied before the deadline: exec=${status.relayMasterLogFile}:${status.execMasterLogPos} read=${status.masterLogFile}:${status.readMasterLogPos}`,
        );
      }
      return status;
    }
    await delay(100, options.budget);
    status = await client.replicaStatus();
  }
  return undefined;
}

/** Options of {@link waitReceived}. */
export interface WaitReceivedOptions {
  /** Until when. */
  budget: Budget;
  /** The old master's position to receive up to (its coordinates). */
  target: BinlogPosition;
  /**
   * Restart an IO thread that is not connected, so that it connects at once instead of at its
   * next connect retry (the old master's server came back after a failure), and keep waiting
   * while it connects.
   */
  reconnect?: boolean;
}

function hasReceived(s: ReplicaStatus, target: BinlogPosition): boolean {
  const got = receivedPositionOf(s);
  return got !== undefined && comparePositions(got, target) >= 0;
}

/**
 * Waits until the IO thread has received up to `target` (or stopped, or the budget ends) and
 * returns the last status. Throws when replication was reset meanwhile.
 */
export async function waitReceived(
  run: Run,
  client: MysqlClient,
  options: WaitReceivedOptions,
): Promise<ReplicaStatus> {
  let last = await client.replicaStatus();
  if (last === undefined) {
    throw new Error("Replication was reset while waiting for the old master's last events");
  }
  const kick = options.reconnect === true && last.ioRunning !== "Yes" &&
    !hasReceived(last, options.target);
  if (kick) {
    run.log.info(
      `Restarting the IO thread (${last.ioRunning}, errno ${last.lastIoErrno}) to receive ` +
        `${last.masterHost}'s commits up to ${formatPosition(options.target)}`,
    );
    await client.reconnectReplicaIo();
  }
  const reached = await waitUntil(async () => {
    const s = await client.replicaStatus();
    if (s === undefined) return undefined;
    last = s;
    if (hasReceived(s, options.target)) return s;
    // A thread asked to reconnect may take a moment; one that dropped by itself has ended.
    const gone = kick ? s.ioRunning === "No" : s.ioRunning !== "Yes";
    return gone ? s : undefined;
  }, { budget: options.budget, intervalMs: 50 });
  const status = reached ?? last;
  const got = receivedPositionOf(status);
  if (got === undefined || comparePositions(got, options.target) < 0) {
    run.log.warn(
      `Received ${got ? formatPosition(got) : "nothing"} of ${
        formatPosition(options.target)
      } (io=${status.ioRunning})`,
    );
  }
  return status;
}
