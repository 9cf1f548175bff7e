/**
 * One failover measurement on a lab: load an agent, converge, kill the master's mysqld, power-cut
 * the master node (fencing on), boot it back, while a writer writes rows through the writer VIP.
 * The benchmark (bench/failover_bench.ts) loops it, for the upstream agent and for ours; the demo
 * uses the same pieces ({@linkcode ContinuousWriter}, {@linkcode waitWritable},
 * {@linkcode failureDetectedAt}, {@linkcode electionLine}).
 *
 * @module
 */

import mysql from "mysql2/promise";
import { type AgentName, loadAgent, type LoadAgentOptions } from "./agent.ts";
import {
  compareData,
  crmMon,
  exitReasons,
  replicaStatus,
  resolveUser,
  sqlAt,
  waitFor,
} from "./cluster.ts";
import { boot, killMysqld } from "./faults.ts";
import { down, type Lab, up } from "./lifecycle.ts";
import { exec, nodeDir, nodeRunning, powerCut, WRITER_VIP } from "./nodes.ts";

/** Options of {@linkcode measureFailoverRun}. */
export interface FailoverRunOptions {
  /** Agent under test (default "heartbeat"). */
  agent?: AgentName;
  /**
   * Extra options for {@linkcode loadAgent} (params, monitor intervals, ...). The clone gets
   * migration-threshold=1 unless `cloneMeta` says otherwise.
   */
  load?: Omit<LoadAgentOptions, "agent">;
  /** Deadline of each phase in ms (default 120000). */
  phaseTimeoutMs?: number;
  /** Interval between writability probes in ms (default 100). */
  probeIntervalMs?: number;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
}

/** Figures of one run (ms) and what was seen. */
export interface FailoverRun {
  /** Agent loaded → 1 promoted, every other node replicating, writes through the VIP accepted. */
  convergeMs: number;
  /** SIGKILL of the master's mysqld → a write through the writer VIP accepted. */
  killToWritableMs: number;
  /** SIGKILL → the killed node's monitor reported the failure (its pacemaker.log); -1 if unseen. */
  killDetectedMs: number;
  /** SIGKILL → every other running node replicates (IO and SQL threads) from the new master. */
  killReplicasFollowMs: number;
  /** Node promoted after the kill. */
  masterAfterKill: string;
  /** The agent's "Election: ..." line on the new master after the kill ("" when none). */
  electionAfterKill: string;
  /** Writable → failure cleaned up (crm_resource --cleanup) → every other node replicating. */
  recoverAfterKillMs: number;
  /** Power cut of the master node → a write through the writer VIP accepted. */
  powerCutToWritableMs: number;
  /**
   * Power cut → the new master's node logged the cut node lost (corosync's detection, the same
   * for every agent); -1 if unseen.
   */
  powerCutLostMs: number;
  /** Power cut → every other running node replicates from the new master. */
  powerCutReplicasFollowMs: number;
  /** Node promoted after the power cut. */
  masterAfterPowerCut: string;
  /** The agent's "Election: ..." line on the new master after the power cut ("" when none). */
  electionAfterPowerCut: string;
  /**
   * Boot of the cut node (after its fencing completed) → it replicates again, cluster converged;
   * -1 when it was kept out instead (see `keptOut`).
   */
  rejoinMs: number;
  /**
   * The exit reason that kept the cut node out when it came back holding transactions the new
   * master never received (acknowledged writes an asynchronous power cut lost); "" when it
   * rejoined. Data checks then leave that node out.
   */
  keptOut: string;
  /** Masters in order: initial, after kill, after power cut. */
  masters: string[];
  /** Rows the writer (and the probes) got acknowledged through the writer VIP. */
  rowsAcknowledged: number;
  /** Rows present on the final master. */
  rowsOnMaster: number;
  /** Acknowledged rows missing on the final master (ids; empty when none was lost). */
  rowsLost: number[];
  /** True when test.failover has the same checksum on every node at the end. */
  dataEqual: boolean;
  /** Replication errors seen when a phase settled ("node: errno message"); empty when healthy. */
  replicationErrors: string[];
}

/** The table every write of a run goes to. */
export const FAILOVER_TABLE = "test.failover";

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${FAILOVER_TABLE} (seq INT PRIMARY KEY, ` +
  "src VARCHAR(8), at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))";

/** Options of {@linkcode ContinuousWriter}. */
export interface WriterOptions {
  /** Address to write to (default the writer VIP). */
  host?: string;
  /** First key (default 1). */
  firstSeq?: number;
  /** Connect deadline in ms (default 500: a stale ARP entry of a moved VIP costs at most that). */
  connectTimeoutMs?: number;
  /** Per-statement deadline in ms (default 1500). */
  queryTimeoutMs?: number;
  /** Pause after a failed write in ms (default 50). */
  retryPauseMs?: number;
  /**
   * Pause after an acknowledged write in ms (default 20): about 50 rows/s, enough to see what a
   * failover loses without loading the 2-core machine the cluster runs on.
   */
  pauseMs?: number;
}

/**
 * Writes one row after the other into {@linkcode FAILOVER_TABLE} through the writer VIP as the
 * unprivileged account (so only a read-write master accepts it), on one connection that is
 * dropped and reopened after any error. Records when each row was acknowledged.
 */
export class ContinuousWriter {
  /** Acknowledged keys, when each write was sent and when acknowledged (Date.now()). */
  readonly acked: { seq: number; sent: number; at: number }[] = [];
  /** Writes that failed (refused, timed out, connection lost). */
  failures = 0;
  /** The last error text seen. */
  lastError = "";
  #opts: Required<WriterOptions>;
  #next: number;
  #stop = false;
  #done?: Promise<void>;
  #conn?: mysql.Connection;

  /** A writer (not started). */
  constructor(opts: WriterOptions = {}) {
    this.#opts = {
      host: opts.host ?? WRITER_VIP,
      firstSeq: opts.firstSeq ?? 1,
      connectTimeoutMs: opts.connectTimeoutMs ?? 500,
      queryTimeoutMs: opts.queryTimeoutMs ?? 1500,
      retryPauseMs: opts.retryPauseMs ?? 50,
      pauseMs: opts.pauseMs ?? 20,
    };
    this.#next = this.#opts.firstSeq;
  }

  /** Starts writing in the background. */
  start(): void {
    this.#done = this.#loop();
  }

  /** Stops after the write in flight; closes the connection. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
    this.#conn?.destroy();
    this.#conn = undefined;
  }

  /**
   * The first write sent at or after `t` (Date.now() ms) that was acknowledged, if any: one sent
   * before a fault may still be acknowledged just after it, by the old master.
   */
  firstAckAfter(t: number): { seq: number; sent: number; at: number } | undefined {
    return this.acked.find((a) => a.sent >= t);
  }

  /** The next key the writer will use. */
  get nextSeq(): number {
    return this.#next;
  }

  async #loop(): Promise<void> {
    const acct = resolveUser("app");
    while (!this.#stop) {
      const seq = this.#next++;
      const sent = Date.now();
      try {
        this.#conn ??= await mysql.createConnection({
          host: this.#opts.host,
          port: 3306,
          user: acct.user,
          password: acct.password,
          connectTimeout: this.#opts.connectTimeoutMs,
        });
        await this.#conn.query({
          sql: `INSERT INTO ${FAILOVER_TABLE} (seq, src) VALUES (?, 'writer')`,
          values: [seq],
          timeout: this.#opts.queryTimeoutMs,
        });
        this.acked.push({ seq, sent, at: Date.now() });
        if (this.#opts.pauseMs > 0) await new Promise((r) => setTimeout(r, this.#opts.pauseMs));
      } catch (e) {
        this.failures++;
        this.lastError = e instanceof Error ? e.message : String(e);
        this.#conn?.destroy();
        this.#conn = undefined;
        await new Promise((r) => setTimeout(r, this.#opts.retryPauseMs));
      }
    }
  }
}

/** Any lab writer, as {@linkcode moreAcked} sees it: its acknowledged writes, oldest first. */
export interface AckedWrites {
  readonly acked: readonly unknown[];
}

/** Options of {@linkcode moreAcked}. */
export interface MoreAckedOptions {
  /** Deadline in ms (default 20000). */
  timeoutMs?: number;
  /** What the wait is for, in its timeout error (default "N more acknowledged writes"). */
  what?: string;
}

/**
 * Waits until `writer` has `count` more acknowledged writes than when called: the proof a scenario
 * takes that the master accepts writes (before a fault, or after a switch).
 */
export async function moreAcked(
  writer: AckedWrites,
  count: number,
  opts: MoreAckedOptions = {},
): Promise<void> {
  const from = writer.acked.length;
  await waitFor(() => writer.acked.length >= from + count || null, {
    timeoutMs: opts.timeoutMs ?? 20_000,
    what: opts.what ?? `${count} more acknowledged writes`,
  });
}

/** Options of {@linkcode waitWritable}. */
export interface WritableOptions {
  /** Address (default the writer VIP). */
  host?: string;
  /** Deadline in ms. */
  timeoutMs: number;
  /** A new probe starts this often, whatever the ones in flight do (default 100). */
  intervalMs?: number;
  /** Key of each probe row: called once per probe (the rows go to {@linkcode FAILOVER_TABLE}). */
  nextSeq: () => number;
  /** Called with the key of each acknowledged probe row. */
  onAck?: (seq: number) => void;
  /** What is awaited, for the error message. */
  what: string;
}

/**
 * Waits until a write through `host` is acknowledged; returns when (Date.now()). Probes overlap
 * (one starts every interval, each with a 1 s deadline), so a probe stuck on a stale ARP entry
 * or a dead server does not delay the measurement.
 */
export function waitWritable(opts: WritableOptions): Promise<number> {
  const host = opts.host ?? WRITER_VIP;
  const end = Date.now() + opts.timeoutMs;
  return new Promise((resolve, reject) => {
    let done = false;
    let lastError = "";
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      f();
    };
    const probe = () => {
      if (done) return;
      if (Date.now() > end) {
        finish(() =>
          reject(
            new Error(
              `Timed out after ${opts.timeoutMs} ms waiting for ${opts.what} (${lastError})`,
            ),
          )
        );
        return;
      }
      const seq = opts.nextSeq();
      sqlAt(host, `INSERT INTO ${FAILOVER_TABLE} (seq, src) VALUES (?, 'probe')`, {
        user: "app",
        params: [seq],
        timeoutMs: 1000,
      }).then(() => {
        opts.onAck?.(seq);
        const at = Date.now();
        finish(() => resolve(at));
      }, (e) => {
        lastError = e instanceof Error ? e.message : String(e);
      });
    };
    const timer = setInterval(probe, opts.intervalMs ?? 100);
    probe();
  });
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Time (epoch ms) of a pacemaker.log line ("Nov 22 09:01:59.220 ..."), in the host's time zone. */
export function logLineTime(line: string, year = new Date().getFullYear()): number | undefined {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?/.exec(line);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1]);
  if (month < 0) return undefined;
  const ms = Number((m[6] ?? "0").padEnd(3, "0"));
  return new Date(year, month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), ms)
    .getTime();
}

function readTail(path: string, maxBytes: number): string {
  const f = Deno.openSync(path, { read: true });
  try {
    const size = f.statSync().size;
    const start = Math.max(0, size - maxBytes);
    f.seekSync(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let off = 0;
    while (off < buf.length) {
      const n = f.readSync(buf.subarray(off));
      if (n === null || n === 0) break;
      off += n;
    }
    const text = new TextDecoder().decode(buf.subarray(0, off));
    // Drop the partial first line of a tail.
    return start > 0 ? text.slice(text.indexOf("\n") + 1) : text;
  } finally {
    f.close();
  }
}

/**
 * Lines of a node's pacemaker.log logged at or after `since` (epoch ms), from the whole file or
 * its last `maxBytes`.
 */
export function pacemakerLogSince(node: string, since: number, maxBytes = Infinity): string[] {
  let text: string;
  try {
    text = readTail(`${nodeDir(node)}/log-pacemaker/pacemaker.log`, maxBytes);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const t = logLineTime(line);
    if (t !== undefined && t >= since) out.push(line);
  }
  return out;
}

/**
 * When (epoch ms) the node's recurring monitor of `rsc` reported it not running or failed, at or
 * after `since`; undefined when not logged (yet).
 */
export function failureDetectedAt(
  node: string,
  since: number,
  rsc = "p_mysql",
): number | undefined {
  const re = new RegExp(
    `Result of monitor operation for ${rsc} on ${node}: (not running|error|failed|Promoted \\(failed\\))`,
  );
  for (const line of pacemakerLogSince(node, since)) {
    if (re.test(line)) return logLineTime(line);
  }
  return undefined;
}

/**
 * When (epoch ms) `viewer` saw `lost` leave the cluster membership at or after `since` (the
 * power cut detected by corosync); undefined when not logged (yet).
 */
export function nodeLostAt(viewer: string, lost: string, since: number): number | undefined {
  const re = new RegExp(`Node ${lost} state is now lost`);
  for (const line of pacemakerLogSince(viewer, since)) {
    if (re.test(line)) return logLineTime(line);
  }
  return undefined;
}

/** When (epoch ms) `node` logged a successful promote of `rsc` at or after `since`. */
export function promotedAt(node: string, since: number, rsc = "p_mysql"): number | undefined {
  const re = new RegExp(`Result of promote operation for ${rsc} on ${node}: ok`);
  for (const line of pacemakerLogSince(node, since)) {
    if (re.test(line)) return logLineTime(line);
  }
  return undefined;
}

/**
 * Waits a uniformly random part of `intervalMs`. A fault injected right when convergence was seen
 * would fall at the same point of the monitor cycle every run (Pacemaker logs no line per
 * recurring monitor to align on); a random phase gives both agents the same expected detection
 * delay (half the promoted monitor interval), and the runs measure its spread honestly.
 */
export function randomPhase(intervalMs: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.floor(Math.random() * intervalMs)));
}

/** The agent's last "Election: ..." decision on `node` since `since` ("" when none). */
export function electionLine(node: string, since: number): string {
  let found = "";
  for (const line of pacemakerLogSince(node, since)) {
    const m = /\[promote\]: (Election: .*?)( \]|$)/.exec(line);
    if (m) found = m[1];
  }
  return found;
}

interface Converged {
  master: string;
  replicas: string[];
  /** Replicas whose SQL thread stopped on an error (the agent repointed them badly). */
  broken: string[];
}

/** Primitive id and clone id the run uses. */
const ID = "p_mysql";
const CLONE = "ms_mysql";

async function converged(nodes: string[]): Promise<Converged | null> {
  const mon = await crmMon();
  const inst = mon.resources.filter((r) => r.id === ID);
  const promoted = inst.filter((r) => r.role === "Promoted").flatMap((r) => r.nodes);
  const unpromoted = inst.filter((r) => r.role === "Unpromoted").flatMap((r) => r.nodes);
  const live = nodes.filter((n) => nodeRunning(n));
  if (promoted.length !== 1 || unpromoted.length !== live.length - 1) return null;
  const broken: string[] = [];
  for (const n of unpromoted) {
    const rs = await replicaStatus(n);
    if (!rs) return null;
    // A stopped SQL thread with an error does not heal by waiting: report it instead of hanging.
    if (Number(rs.Last_SQL_Errno ?? 0) !== 0 && rs.Slave_SQL_Running !== "Yes") {
      broken.push(`${n}: ${rs.Last_SQL_Errno} ${String(rs.Last_SQL_Error ?? "").slice(0, 160)}`);
      continue;
    }
    if (rs.Slave_IO_Running !== "Yes" || rs.Slave_SQL_Running !== "Yes") return null;
  }
  return { master: promoted[0], replicas: unpromoted, broken };
}

/**
 * The promoted node once every running node other than it and `exclude` replicates from it (IO
 * and SQL threads running), else null. Reads crm_mon for the promoted node.
 */
export async function replicasFollow(nodes: string[], exclude: string[] = []): Promise<
  string | null
> {
  const mon = await crmMon();
  const promoted = mon.resources.filter((r) => r.id === ID && r.role === "Promoted")
    .flatMap((r) => r.nodes);
  if (promoted.length !== 1) return null;
  const master = promoted[0];
  for (const n of nodes) {
    if (n === master || exclude.includes(n) || !nodeRunning(n)) continue;
    const rs = await replicaStatus(n);
    if (!rs || rs.Master_Host !== master) return null;
    if (rs.Slave_IO_Running !== "Yes" || rs.Slave_SQL_Running !== "Yes") return null;
  }
  return master;
}

/**
 * Measures one failover run on a freshly brought-up lab (nothing loaded yet). Leaves the agent
 * loaded; the caller tears the lab down. A phase counts as settled when one node is promoted and
 * every other running node is unpromoted and either replicating or stopped on an SQL error (listed
 * in `replicationErrors`, e.g. the upstream agent's duplicate-key after repointing).
 */
export async function measureFailoverRun(
  lab: Lab,
  opts: FailoverRunOptions = {},
): Promise<FailoverRun> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.phaseTimeoutMs ?? 120_000;
  const vip = opts.load?.writerVip ?? WRITER_VIP;
  // Probes take keys from 1,000,000 up, the writer from 1 up: they never collide.
  let probeSeq = 1_000_000;
  const probeAcked: number[] = [];
  const writable = (what: string) =>
    waitWritable({
      host: vip,
      timeoutMs,
      intervalMs: opts.probeIntervalMs,
      nextSeq: () => ++probeSeq,
      onAck: (s) => probeAcked.push(s),
      what,
    });
  const waitConverged = (what: string) =>
    waitFor(() => converged(lab.nodes), { timeoutMs, what, intervalMs: 250 });
  const waitFollow = (what: string, exclude: string[]) =>
    waitFor(() => replicasFollow(lab.nodes, exclude), { timeoutMs, what, intervalMs: 100 });

  const t0 = Date.now();
  // migration-threshold=1: a failed master moves to another node instead of restarting in place,
  // so that "kill → writable" measures a failover.
  const cloneMeta = { "migration-threshold": "1", ...(opts.load?.cloneMeta ?? {}) };
  await loadAgent({ ...(opts.load ?? {}), cloneMeta, agent: opts.agent ?? "heartbeat" });
  const first = await waitConverged("the clone converged");
  // The VIP starts after the promotion: retry until it answers.
  await waitFor(async () => {
    await sqlAt(vip, CREATE_TABLE, { timeoutMs: 2000 });
    return true;
  }, { timeoutMs, what: "the writer VIP answering", intervalMs: 100 });
  await writable("writes through the writer VIP");
  const convergeMs = Date.now() - t0;
  log(`converged in ${convergeMs} ms, master ${first.master}`);

  const writer = new ContinuousWriter({ host: vip });
  writer.start();
  try {
    const monitorMs = opts.load?.promotedMonitorMs ?? 2000;
    await randomPhase(monitorMs);
    const t1 = Date.now();
    await killMysqld(first.master);
    const w1 = await writable("a writable master after the mysqld kill");
    const killToWritableMs = w1 - t1;
    const master1 = await waitFollow("replicas following after the mysqld kill", [first.master]);
    const killReplicasFollowMs = Date.now() - t1;
    const detected = failureDetectedAt(first.master, t1 - 1000);
    const killDetectedMs = detected === undefined ? -1 : Math.max(0, detected - t1);
    const electionAfterKill = electionLine(master1, t1 - 1000);
    log(
      `kill → detected ${killDetectedMs} ms, → writable ${killToWritableMs} ms, → replicas ` +
        `follow ${killReplicasFollowMs} ms (master ${master1})`,
    );

    const t1b = Date.now();
    // As an operator would: clear the failure so that the killed node may run a replica again.
    const viewer = lab.nodes.find((n) => nodeRunning(n))!;
    await exec(viewer, ["crm_resource", "--cleanup", "-r", CLONE], { timeoutMs: 30_000 });
    const afterKill = await waitConverged("convergence after the mysqld kill");
    const recoverAfterKillMs = Date.now() - t1b;

    const cut = afterKill.master;
    // Corosync, not the monitor, finds a power cut; the random phase keeps the runs alike.
    await randomPhase(monitorMs);
    const t2 = Date.now();
    await powerCut(cut);
    const w2 = await writable("a writable master after the power cut");
    const powerCutToWritableMs = w2 - t2;
    const master2 = await waitFollow("replicas following after the power cut", [cut]);
    const lostAt = nodeLostAt(master2, cut, t2 - 1000);
    const powerCutLostMs = lostAt === undefined ? -1 : Math.max(0, lostAt - t2);
    const powerCutReplicasFollowMs = Date.now() - t2;
    const afterCut = await waitConverged("convergence after the power cut");
    const electionAfterPowerCut = electionLine(master2, t2 - 1000);
    log(
      `power cut ${cut} → writable ${powerCutToWritableMs} ms, → replicas follow ` +
        `${powerCutReplicasFollowMs} ms (master ${master2})`,
    );

    // The rejoin starts once fencing of the cut node is complete (boot waits for that first).
    await boot(cut, { waitOnline: false, timeoutMs });
    const t3 = Date.now();
    const fate = await waitFor(async () => {
      const c = await converged(lab.nodes);
      if (c && c.replicas.includes(cut)) return { rejoined: c, keptOut: "" };
      const reason = (await exitReasons(cut, { resource: ID })).find((r) => /errant/i.test(r));
      return reason ? { rejoined: null, keptOut: reason } : null;
    }, { timeoutMs, what: `${cut} replicating again after boot, or kept out`, intervalMs: 250 });
    const rejoinMs = fate.rejoined ? Date.now() - t3 : -1;
    const keptOut = fate.keptOut;
    log(keptOut ? `${cut} kept out: ${keptOut}` : `rejoin of ${cut}: ${rejoinMs} ms`);
    const members = keptOut ? lab.nodes.filter((n) => n !== cut) : lab.nodes;

    await writer.stop();
    const final = await waitFor(() => converged(members), {
      timeoutMs,
      what: "final convergence",
      intervalMs: 250,
    });
    const replicationErrors = [
      ...new Set(
        [first, afterKill, afterCut, fate.rejoined ?? final, final].flatMap((c) => c.broken),
      ),
    ];
    const rows = await sqlAt(vip, `SELECT seq FROM ${FAILOVER_TABLE}`);
    const present = new Set(rows.map((r) => Number(r.seq)));
    const acked = [...writer.acked.map((a) => a.seq), ...probeAcked];
    // Replicas may lag a moment behind the last write: compare once they caught up, or report.
    let dataEqual = false;
    try {
      await waitFor(
        async () => (await compareData(members, [FAILOVER_TABLE])).equal,
        { timeoutMs: 10_000, what: "equal data", onTimeout: null },
      );
      dataEqual = true;
    } catch {
      dataEqual = false;
    }
    return {
      convergeMs,
      killToWritableMs,
      killDetectedMs,
      killReplicasFollowMs,
      masterAfterKill: afterKill.master,
      electionAfterKill,
      recoverAfterKillMs,
      powerCutToWritableMs,
      powerCutLostMs,
      powerCutReplicasFollowMs,
      masterAfterPowerCut: afterCut.master,
      electionAfterPowerCut,
      rejoinMs,
      keptOut,
      masters: [first.master, afterKill.master, final.master],
      rowsAcknowledged: acked.length,
      rowsOnMaster: present.size,
      rowsLost: acked.filter((s) => !present.has(s)).sort((a, b) => a - b),
      dataEqual,
      replicationErrors,
    };
  } finally {
    await writer.stop();
  }
}

/** Options of {@linkcode measureFailoverOnFreshLab}. */
export interface FreshLabRunOptions extends FailoverRunOptions {
  /** Nodes of the lab (default 3). */
  nodes?: number;
  /** Wait this long for another lab on the machine to go down (default 0: refuse). */
  waitFreeMs?: number;
}

/** One run on its own lab: `up`, {@linkcode measureFailoverRun}, `down` (always). */
export async function measureFailoverOnFreshLab(
  opts: FreshLabRunOptions = {},
): Promise<FailoverRun & { bringUpMs: number }> {
  const lab = await up({ nodes: opts.nodes ?? 3, waitFreeMs: opts.waitFreeMs, log: opts.log });
  try {
    return { ...(await measureFailoverRun(lab, opts)), bringUpMs: lab.bringUpMs };
  } finally {
    await down({ log: opts.log });
  }
}
