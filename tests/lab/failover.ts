/**
 * One failover measurement on a lab: load an agent, converge, kill the master's mysqld, power-cut
 * the master node (fencing on), boot it back. The benchmark (bench/failover_bench.ts) loops it, for
 * the upstream agent and for ours.
 *
 * @module
 */

import { type AgentName, loadAgent, type LoadAgentOptions } from "./agent.ts";
import { compareData, crmMon, replicaStatus, sqlAt, waitFor } from "./cluster.ts";
import { boot, killMysqld } from "./faults.ts";
import { down, type Lab, up } from "./lifecycle.ts";
import { exec, nodeRunning, powerCut, WRITER_VIP } from "./nodes.ts";

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
  /** Poll interval of the writability probe in ms (default 100). */
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
  /** Node promoted after the kill (may be the same node, restarted in place). */
  masterAfterKill: string;
  /** Writable → failure cleaned up (crm_resource --cleanup) → every other node replicating. */
  recoverAfterKillMs: number;
  /** Power cut of the master node → a write through the writer VIP accepted. */
  powerCutToWritableMs: number;
  /** Node promoted after the power cut. */
  masterAfterPowerCut: string;
  /** Boot of the cut node (after its fencing completed) → it replicates again, cluster converged. */
  rejoinMs: number;
  /** Masters in order: initial, after kill, after power cut. */
  masters: string[];
  /** Rows the probe wrote and that the final master holds / that were acknowledged. */
  rowsAcknowledged: number;
  /** Rows present on the final master. */
  rowsOnMaster: number;
  /** True when test.failover has the same checksum on every node at the end. */
  dataEqual: boolean;
  /** Replication errors seen when a phase settled ("node: errno message"); empty when healthy. */
  replicationErrors: string[];
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
  const interval = opts.probeIntervalMs ?? 100;
  const vip = opts.load?.writerVip ?? WRITER_VIP;
  let seq = 0;
  let acknowledged = 0;

  // A write through the VIP as the unprivileged account: only a read-write master accepts it.
  const probe = async (): Promise<boolean> => {
    const n = ++seq;
    await sqlAt(vip, "INSERT INTO test.failover (seq) VALUES (?)", {
      user: "app",
      params: [n],
      timeoutMs: 1000,
    });
    acknowledged++;
    return true;
  };
  const waitWritable = (what: string) => waitFor(probe, { timeoutMs, what, intervalMs: interval });
  const waitConverged = (what: string) =>
    waitFor(() => converged(lab.nodes), { timeoutMs, what, intervalMs: 250 });

  const t0 = performance.now();
  // migration-threshold=1: a failed master moves to another node instead of restarting in place,
  // so that "kill → writable" measures a failover.
  const cloneMeta = { "migration-threshold": "1", ...(opts.load?.cloneMeta ?? {}) };
  await loadAgent({ ...(opts.load ?? {}), cloneMeta, agent: opts.agent ?? "heartbeat" });
  const first = await waitConverged("the clone converged");
  // The VIP starts after the promotion: retry until it answers.
  await waitFor(async () => {
    await sqlAt(
      vip,
      "CREATE TABLE IF NOT EXISTS test.failover (id INT AUTO_INCREMENT PRIMARY KEY, seq INT, " +
        "at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
      { timeoutMs: 2000 },
    );
    return true;
  }, { timeoutMs, what: "the writer VIP answering", intervalMs: interval });
  await waitWritable("writes through the writer VIP");
  const convergeMs = Math.round(performance.now() - t0);
  log(`converged in ${convergeMs} ms, master ${first.master}`);

  const t1 = performance.now();
  await killMysqld(first.master);
  await waitWritable("a writable master after the mysqld kill");
  const killToWritableMs = Math.round(performance.now() - t1);
  const t1b = performance.now();
  // As an operator would: clear the failure so that the killed node may run a replica again.
  const viewer = lab.nodes.find((n) => nodeRunning(n))!;
  await exec(viewer, ["crm_resource", "--cleanup", "-r", CLONE], { timeoutMs: 30_000 });
  const afterKill = await waitConverged("convergence after the mysqld kill");
  const recoverAfterKillMs = Math.round(performance.now() - t1b);
  log(`kill → writable ${killToWritableMs} ms (master ${afterKill.master})`);

  const cut = afterKill.master;
  const t2 = performance.now();
  await powerCut(cut);
  await waitWritable("a writable master after the power cut");
  const powerCutToWritableMs = Math.round(performance.now() - t2);
  const afterCut = await waitConverged("convergence after the power cut");
  log(`power cut ${cut} → writable ${powerCutToWritableMs} ms (master ${afterCut.master})`);

  // The rejoin starts once fencing of the cut node is complete (boot waits for that first).
  await boot(cut, { waitOnline: false, timeoutMs });
  const t3 = performance.now();
  const rejoined = await waitFor(async () => {
    const c = await converged(lab.nodes);
    return c && c.replicas.includes(cut) ? c : null;
  }, { timeoutMs, what: `${cut} replicating again after boot`, intervalMs: 250 });
  const rejoinMs = Math.round(performance.now() - t3);
  log(`rejoin of ${cut}: ${rejoinMs} ms`);

  const final = await waitConverged("final convergence");
  const replicationErrors = [
    ...new Set([first, afterKill, afterCut, rejoined, final].flatMap((c) => c.broken)),
  ];
  const [row] = await sqlAt(vip, "SELECT COUNT(*) AS n FROM test.failover");
  // Replicas may lag a moment behind the last write: compare once they caught up, or report.
  let dataEqual = false;
  try {
    await waitFor(
      async () => (await compareData(lab.nodes, ["test.failover"])).equal,
      { timeoutMs: 10_000, what: "equal data", onTimeout: null },
    );
    dataEqual = true;
  } catch {
    dataEqual = false;
  }
  return {
    convergeMs,
    killToWritableMs,
    masterAfterKill: afterKill.master,
    recoverAfterKillMs,
    powerCutToWritableMs,
    masterAfterPowerCut: afterCut.master,
    rejoinMs,
    masters: [first.master, afterKill.master, final.master],
    rowsAcknowledged: acknowledged,
    rowsOnMaster: Number(row.n),
    dataEqual,
    replicationErrors,
  };
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
