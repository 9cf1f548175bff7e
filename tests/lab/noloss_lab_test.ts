/**
 * No acknowledged write left behind while a disk survives (issue 13), on the lab (3 nodes, real
 * Corosync + Pacemaker + MariaDB, fencing on, position mode, asynchronous replication), mysql_prm
 * and ocf:heartbeat:mysql side by side in the same run, each on a lab of its own.
 *
 * Every fault runs with a writer through the writer VIP; every acknowledged row is looked for on
 * the final master, and the table's checksum compared on every node. Where the fault needs
 * commits that no replica has, each replica's way to the master's port 3306 is reset first (a
 * REJECT with a TCP reset) and its IO thread restarted, so that it holds no connection that could
 * still receive; the writer then gets 20+ rows acknowledged and the test checks that no replica
 * holds them before the fault. The rule goes right after the fault: nothing sits in a send queue
 * (LAB.md's trap), and the old master's server, when back, can be reached.
 *
 * prm: kill -9 of the master's mysqld (restarted in place), a second kill within
 * crash_restart_window (failover; the new master receives the old one's commits first), the
 * whole cluster power-cut with the replicas booting first and the old master 30 s later, the same
 * with the old master back only after cold_start_timeout (kept out with one salvage file), semi-
 * sync falling back (191 with the reason, then 8), a full disk on a replica, then on the master.
 * heartbeat: the same kill -9, a full replica disk, the replica links reset, the same power cut.
 * The figures are printed as one table at the end (README: "No acknowledged write left behind").
 */
import assert from "node:assert/strict";
import {
  boot,
  bootNode,
  compareData,
  ContinuousWriter,
  crmMon,
  down,
  dump,
  exec,
  exitReasons,
  FAILOVER_TABLE,
  fillDisk,
  killMysqld,
  loadAgent,
  moreAcked,
  netnsName,
  nodeAddress,
  nodeRunning,
  onlineNodes,
  powerCut,
  promotedNode,
  replicaStatus,
  run,
  sql,
  sqlAt,
  unfillDisk,
  up,
  waitFor,
  waitWritable,
  WRITER_VIP,
} from "./lab.ts";
import { agentLines, checkSalvage, repair } from "./scenario.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
const RSC = "p_mysql";
const CLONE = "ms_mysql";
const COLD_START_TIMEOUT_S = 60;
/** The table every scenario writes (failover.ts's writer): its key column. */
const FAILOVER = { table: FAILOVER_TABLE, key: "seq" };
/** Rows each "only on the master" fault needs at least. */
const ONLY_ON_MASTER = 20;
/**
 * mysql_prm config's defaults: a failed master may be recovered where it is, and stickiness keeps
 * Pacemaker from re-placing the replicas' clone instances meanwhile (seen without it: both
 * replicas stopped and started again during an in-place recovery).
 */
const CLONE_META = {
  "migration-threshold": "3",
  "failure-timeout": "600s",
  "resource-stickiness": "100",
};

/** One line of the figures table. */
interface Figure {
  agent: string;
  scenario: string;
  acked: number;
  lost: number;
  writableMs?: number;
  note: string;
}
const figures: Figure[] = [];

function seconds(ms: number | undefined): string {
  return ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`;
}

function printFigures(): void {
  console.log("\n  | agent | scenario | acked | lost | writable after | notes |");
  console.log("  | --- | --- | ---: | ---: | ---: | --- |");
  for (const f of figures) {
    console.log(
      `  | ${f.agent} | ${f.scenario} | ${f.acked} | ${f.lost} | ${
        seconds(f.writableMs)
      } | ${f.note} |`,
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Keys: the writer's from 1 up, probes from 1,000,000 up. */
let nextSeq = 1;
let probeSeq = 1_000_000;

/** What one scenario wrote: the writer's and the probes' acknowledged keys. */
class Load {
  readonly writer: ContinuousWriter;
  readonly probes: number[] = [];

  constructor() {
    this.writer = new ContinuousWriter({ firstSeq: nextSeq });
    this.writer.start();
  }

  /** Waits until a write through the writer VIP is acknowledged; returns when (Date.now()). */
  writable(what: string, timeoutMs = 180_000): Promise<number> {
    return waitWritable({
      timeoutMs,
      nextSeq: () => ++probeSeq,
      onAck: (s) => this.probes.push(s),
      what,
    });
  }

  /** Stops writing; returns every acknowledged key. */
  async stop(): Promise<number[]> {
    await this.writer.stop();
    nextSeq = this.writer.nextSeq + 1;
    return [...this.writer.acked.map((a) => a.seq), ...this.probes];
  }
}

async function keysOn(node: string): Promise<Set<number>> {
  const rows = await sql(node, `SELECT seq FROM ${FAILOVER_TABLE}`);
  return new Set(rows.map((r) => Number(r.seq)));
}

/** The promoted node once it is writable and each running node of `nodes` replicates from it. */
async function settled(nodes: string[], timeoutMs = 180_000): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
    if (Number(ro.ro) !== 0) return null;
    for (const n of nodes.filter((x) => x !== master && nodeRunning(x))) {
      const s = await replicaStatus(n);
      if (s === null || s.Master_Host !== master) return null;
      if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, { timeoutMs, what: "one writable master and every other node replicating from it" });
}

/** The acknowledged keys missing on `master`, once `nodes` hold identical data. */
async function dataCheck(master: string, acked: number[], nodes: string[]): Promise<number[]> {
  const have = await keysOn(master);
  await waitFor(async () => (await compareData(nodes, [FAILOVER_TABLE])).equal || null, {
    timeoutMs: 60_000,
    what: `identical ${FAILOVER_TABLE} on ${nodes.join(", ")}`,
  });
  return acked.filter((k) => !have.has(k));
}

function rejectRule(master: string): string[] {
  return [
    "OUTPUT",
    "-p",
    "tcp",
    "-d",
    nodeAddress(master),
    "--dport",
    "3306",
    "-j",
    "REJECT",
    "--reject-with",
    "tcp-reset",
  ];
}

/**
 * Makes the next commits exist on `master` only (see the file's comment); waits until `load` got
 * `count` rows acknowledged after that and checks that no replica holds any. Returns those keys.
 */
async function onlyOnMaster(
  master: string,
  replicas: string[],
  load: Load,
  count: number,
): Promise<number[]> {
  for (const r of replicas) {
    await exec(r, ["iptables", "-A", ...rejectRule(master)], { check: true });
    await sql(r, "STOP SLAVE IO_THREAD");
    await sql(r, "START SLAVE IO_THREAD");
  }
  await waitFor(async () => {
    for (const r of replicas) {
      if ((await replicaStatus(r))?.Slave_IO_Running === "Yes") return null;
    }
    return true;
  }, { timeoutMs: 30_000, what: "the replicas' links reset" });
  const from = load.writer.acked.length;
  await waitFor(() => load.writer.acked.length - from >= count || null, {
    timeoutMs: 60_000,
    what: `${count} rows acknowledged with the replicas cut off`,
  });
  const keys = load.writer.acked.slice(from).map((a) => a.seq);
  for (const r of replicas) {
    const have = await keysOn(r);
    assert.deepEqual(keys.filter((k) => have.has(k)), [], `${r} must not hold them yet`);
  }
  return keys;
}

/**
 * Lifts the rules of {@link onlyOnMaster}, in the nodes' network namespaces (they outlive a power
 * cut, so a node powered off keeps them until they are lifted).
 */
async function reconnect(master: string, replicas: string[]): Promise<void> {
  for (const r of replicas) {
    await run(["ip", "netns", "exec", netnsName(r), "iptables", "-D", ...rejectRule(master)]);
  }
}

/**
 * Restarts the replicas' IO threads (after {@link reconnect}, for an agent that leaves them in
 * their connect retry); a node that replicates from nobody is left as it is.
 */
async function restartIo(replicas: string[]): Promise<void> {
  for (const r of replicas) {
    if ((await replicaStatus(r).catch(() => null)) === null) continue;
    await sql(r, "STOP SLAVE IO_THREAD");
    await sql(r, "START SLAVE IO_THREAD");
  }
}

/** A node attribute crm_mon -A shows for `node`. */
async function nodeAttribute(node: string, name: string): Promise<string | undefined> {
  return (await crmMon()).nodes.find((n) => n.name === node)?.attributes[name];
}

/**
 * The last result Pacemaker records for `node`'s promoted recurring monitor (crm_mon's operation
 * history: it records a recurring result when it changes), with crm_mon's failure reason for it.
 */
async function promotedMonitor(node: string): Promise<{ rc: number; reason: string; raw: string }> {
  const r = await exec(node, ["crm_mon", "-1", "--include=operations", "--output-as=xml"], {
    timeoutMs: 15_000,
  });
  const ops = [...r.stdout.matchAll(/<operation_history [^>]*>/g)].map((m) => m[0])
    .filter((o) => /task="monitor"/.test(o) && /interval="2000ms"/.test(o));
  const raw = ops.at(-1) ?? "";
  const rc = Number(/ rc="(\d+)"/.exec(raw)?.[1] ?? -1);
  const reason = (await exitReasons(node)).find((x) => /Semi-sync/.test(x)) ?? "";
  return { rc, reason, raw };
}

async function cleanup(): Promise<void> {
  const viewer = (await crmMon()).nodes.find((n) => n.online)?.name;
  if (viewer) await exec(viewer, ["crm_resource", "--cleanup", "-r", CLONE], { timeoutMs: 30_000 });
}

async function createTable(): Promise<void> {
  await waitFor(async () => {
    await sqlAt(
      WRITER_VIP,
      `CREATE TABLE IF NOT EXISTS ${FAILOVER_TABLE} (seq INT PRIMARY KEY, ` +
        "src VARCHAR(8), at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
      { timeoutMs: 2_000 },
    );
    return true;
  }, { timeoutMs: 60_000, what: "the writer VIP answering", intervalMs: 200 });
}

/**
 * kill -9 of the master's mysqld with 20+ commits on no replica. Returns those keys, every key
 * acknowledged and the time from the kill to the first write acknowledged through the VIP.
 */
async function killWithTail(master: string, nodes: string[]) {
  const replicas = nodes.filter((n) => n !== master);
  const load = new Load();
  let writableMs: number | undefined;
  let only: number[] = [];
  try {
    only = await onlyOnMaster(master, replicas, load, ONLY_ON_MASTER);
    const k0 = Date.now();
    await killMysqld(master);
    await reconnect(master, replicas);
    writableMs = await load.writable("writes after the kill") - k0;
  } finally {
    await reconnect(master, replicas).catch(() => {});
  }
  return { only, acked: await load.stop(), writableMs };
}

/**
 * The whole cluster power-cut (the master last) while it holds 20+ commits no replica has; then
 * the replicas boot. Returns those keys and every key acknowledged before the cut.
 */
async function powerCutWithTail(master: string, nodes: string[]) {
  const replicas = nodes.filter((n) => n !== master);
  const load = new Load();
  const only = await onlyOnMaster(master, replicas, load, ONLY_ON_MASTER);
  for (const n of replicas) await powerCut(n);
  await powerCut(master);
  await reconnect(master, replicas);
  const acked = await load.stop();
  // Together: alone, the first could not reach quorum (boot() waits for a peer's view).
  await Promise.all(replicas.map((r) => bootNode(r)));
  await waitFor(async () => {
    const online = await onlineNodes(replicas[0]);
    return replicas.every((r) => online.includes(r)) || null;
  }, { timeoutMs: 120_000, what: `${replicas.join(", ")} online after the outage` });
  return { only, acked, replicas };
}

/** Set once a step failed: later steps would start from the cluster it left behind. */
let stepFailed = false;

/**
 * One scenario as a test step: a deadline well above its measured time (a hung call must not
 * hold the lab for the rest of the run), its error printed at once, and skipped once an earlier
 * step of the same lab failed (it would only add failures of its own).
 */
async function step(
  t: Deno.TestContext,
  name: string,
  fn: () => Promise<void>,
  timeoutMs = 360_000,
): Promise<void> {
  await t.step({
    name,
    ignore: stepFailed,
    fn: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`${name}: not done after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } catch (err) {
        stepFailed = true;
        console.error(`  step failed: ${name}: ${(err as Error).stack ?? err}`);
        await dump().catch(() => {});
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
  });
}

/**
 * Brings a lab up, loads `agent` (with `params`), waits for a writable master and the table, runs
 * the steps, and always takes the lab down (printing the time it took and the figures so far).
 */
async function onLab(
  agent: "prm" | "heartbeat",
  params: Record<string, string>,
  steps: (nodes: string[], master: string) => Promise<void>,
): Promise<void> {
  const t0 = Date.now();
  stepFailed = false;
  const lab = await up({ nodes: 3, waitFreeMs: LAB_WAIT_MS });
  try {
    await loadAgent({ agent, params, cloneMeta: CLONE_META });
    const master = await settled(lab.nodes);
    await createTable();
    await steps(lab.nodes, master);
  } catch (err) {
    await dump().catch(() => {});
    throw err;
  } finally {
    await down();
    console.log(`  ${agent} part: ${seconds(Date.now() - t0)}`);
    printFigures();
  }
}

Deno.test({
  name: "prm: no acknowledged write left behind (crash, crash loop, cold start, semi-sync, disk)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await onLab("prm", { cold_start_timeout: String(COLD_START_TIMEOUT_S) }, async (nodes, first) => {
    let master = first;
    await step(t, "kill -9 with 20+ commits on no replica: restarted in place", async () => {
      const r = await killWithTail(master, nodes);
      const now = await settled(nodes);
      assert.equal(now, master, "the same node is promoted again");
      const lost = await dataCheck(now, r.acked, nodes);
      assert.deepEqual(lost, []);
      figures.push({
        agent: "prm",
        scenario: "kill -9, 20+ commits on no replica",
        acked: r.acked.length,
        lost: lost.length,
        writableMs: r.writableMs,
        note: `${r.only.length} rows only on ${master}: restarted in place (crash recovery ` +
          "included), replicas kept their coordinates",
      });
    });

    await step(t, "a second kill within crash_restart_window: failover with catch-up", async () => {
      const old = master;
      const r = await killWithTail(old, nodes);
      master = await settled(nodes);
      assert.notEqual(master, old, "a crash loop fails over");
      const lost = await dataCheck(master, r.acked, nodes);
      assert.deepEqual(lost, [], "the new master received the old one's commits first");
      const errant = (await exitReasons(old)).find((x) => /^Errant/.test(x));
      assert.equal(errant, undefined, `${old} holds nothing the new master lacks`);
      figures.push({
        agent: "prm",
        scenario: "second kill -9 within crash_restart_window",
        acked: r.acked.length,
        lost: lost.length,
        writableMs: r.writableMs,
        note: `${r.only.length} rows only on ${old}: failover to ${master} after it received ` +
          `them from ${old}'s server back read-only; ${old} rejoined as a replica`,
      });
      await cleanup();
    });

    await step(t, "cold start: replicas back first, the old master 30 s later", async () => {
      const old = master;
      const { only, acked, replicas } = await powerCutWithTail(old, nodes);
      const b0 = Date.now();
      let seenWait = false;
      while (Date.now() - b0 < 30_000) {
        assert.equal(await promotedNode(RSC), null, "no stale master while the old one is away");
        for (const n of replicas) {
          seenWait ||= (await nodeAttribute(n, `prm-${RSC}-not-promotable`)) === "cold-start-wait";
        }
        await sleep(1_000);
      }
      assert.ok(seenWait, "crm_mon -A shows the reason cold-start-wait");
      const status = await exec(replicas[0], ["mysql_prm", "status", "--json"], {
        timeoutMs: 60_000,
      });
      assert.match(status.stdout, /cold-start-wait/, "mysql_prm status shows the wait");
      const load = new Load();
      await boot(old);
      const o0 = Date.now();
      const writableMs = await load.writable("writes after the old master's return") - o0;
      const acked2 = await load.stop();
      master = await settled(nodes);
      assert.equal(master, old, "the old master, holding the most, is promoted");
      const lost = await dataCheck(master, [...acked, ...acked2], nodes);
      assert.deepEqual(lost, []);
      figures.push({
        agent: "prm",
        scenario: "power cut of all, replicas back first, old master 30 s later",
        acked: acked.length + acked2.length,
        lost: lost.length,
        writableMs,
        note: `${only.length} rows only on ${old}; no master for 30 s (cold-start-wait in ` +
          `crm_mon -A), then ${old} promoted; time from its boot`,
      });
    });

    await step(t, "cold start: the old master back only after cold_start_timeout", async () => {
      const old = master;
      const { only, acked, replicas } = await powerCutWithTail(old, nodes);
      const b0 = Date.now();
      const load = new Load();
      const writableMs = await load.writable("a master after cold_start_timeout", 300_000) - b0;
      assert.ok(writableMs >= (COLD_START_TIMEOUT_S - 5) * 1000, "not before the timeout");
      master = await settled(replicas);
      const have = await keysOn(master);
      assert.deepEqual(only.filter((k) => have.has(k)), [], "the tail only the old master had");
      const lostKeys = acked.filter((k) => !have.has(k));
      // The old master returns: kept out, what only it had in one salvage file.
      await boot(old);
      const reason = await waitFor(
        async () => (await exitReasons(old)).find((x) => /^Errant transactions/.test(x)),
        { timeoutMs: 120_000, what: `${old} kept out with a salvage file` },
      );
      const salvage = await checkSalvage(old, /saved in (\S+)/.exec(reason)![1], master, FAILOVER);
      assert.deepEqual(
        [...salvage.keys].sort((a, b) => a - b),
        [...lostKeys].sort((a, b) => a - b),
        "the salvage file holds exactly the acknowledged rows the new master lacks",
      );
      // The lab's nodes share the host's /var/lib/prm: only the files of this return count.
      const since = Math.floor(b0 / 1000);
      const files = (await exec(old, [
        "find",
        "/var/lib/prm",
        "-name",
        `salvage-${RSC}-${old}-*.txt`,
        "-newermt",
        `@${since}`,
      ])).stdout.trim().split("\n").filter((l) => l !== "");
      assert.equal(files.length, 1, `one salvage file for one return: ${files.join(" ")}`);
      const acked2 = await load.stop();
      figures.push({
        agent: "prm",
        scenario: "power cut of all, old master back after cold_start_timeout",
        acked: acked.length + acked2.length,
        lost: lostKeys.length,
        writableMs,
        note: `${master} promoted ${COLD_START_TIMEOUT_S} s (cold_start_timeout) after the ` +
          `replicas' boot; the ${lostKeys.length} rows only ${old} had are in its one ` +
          "salvage file, kept out",
      });
      await repair(old, salvage.keys, salvage.resume, FAILOVER);
      await settled(nodes);
    });

    await step(t, "semi-sync falls back to asynchronous: 191 with the reason, then 8", async () => {
      for (const [name, value] of [["semi_sync_timeout", "2000"], ["semi_sync", "true"]]) {
        await exec(master, [
          "crm_resource",
          "-r",
          RSC,
          "--set-parameter",
          name,
          "--parameter-value",
          value,
        ], { check: true });
      }
      // Reloaded without a restart (reload-agent): the replica side takes effect when the IO
      // thread starts, so the replicas' threads are restarted once the setting is in.
      await waitFor(async () => {
        const m = await promotedNode(RSC);
        if (m === null) return null;
        const [v] = await sql(m, "SELECT @@global.rpl_semi_sync_master_enabled AS e");
        if (Number(v.e) !== 1) return null;
        const replicas = nodes.filter((n) => n !== m);
        for (const r of replicas) {
          const [e] = await sql(r, "SELECT @@global.rpl_semi_sync_slave_enabled AS e");
          if (Number(e.e) !== 1) return null;
        }
        await restartIo(replicas);
        return true;
      }, { timeoutMs: 180_000, what: "semi-sync enabled on every node" });
      await waitFor(async () => {
        const m = await promotedNode(RSC);
        if (m === null) return null;
        const [s] = await sql(m, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'");
        return Number(s?.Value) >= 2 || null;
      }, { timeoutMs: 60_000, what: "both replicas connected with semi-sync" });
      master = await settled(nodes);
      const replicas = nodes.filter((n) => n !== master);
      const load = new Load();
      let degradedMs = 0;
      let reason = "";
      try {
        await onlyOnMaster(master, replicas, load, 3);
        const c0 = Date.now();
        let seen = "";
        reason = (await waitFor(async () => {
          const m = await promotedMonitor(master);
          seen = m.raw;
          return m.rc === 191 && m.reason !== "" ? m : null;
        }, {
          timeoutMs: 60_000,
          what: "the promoted monitor returning 191",
          onTimeout: () => console.log(`  last seen: ${seen}`),
        })).reason;
        degradedMs = Date.now() - c0;
        // crm_mon lists it with the reason, and so does the status view.
        const mon = (await exec(master, ["crm_mon", "-1"])).stdout;
        console.log(mon.split("\n").filter((l) => /degraded/.test(l)).join("\n"));
        assert.match(mon, /promoted \(degraded\)/);
        const status = await exec(master, ["mysql_prm", "status", "--json"], {
          timeoutMs: 60_000,
        });
        assert.match(status.stdout, /Semi-sync fell back/, "mysql_prm status shows the reason");
      } finally {
        await reconnect(master, replicas);
      }
      await restartIo(replicas);
      const r0 = Date.now();
      let last = "";
      await waitFor(async () => {
        const m = await promotedMonitor(master);
        last = m.raw;
        return m.rc === 8 || null;
      }, {
        timeoutMs: 60_000,
        what: "the promoted monitor back to 8",
        onTimeout: () => console.log(`  last seen: ${last}`),
      });
      const backMs = Date.now() - r0;
      const acked = await load.stop();
      const lost = await dataCheck(await settled(nodes), acked, nodes);
      assert.deepEqual(lost, []);
      assert.match(reason, /Semi-sync fell back to asynchronous/);
      figures.push({
        agent: "prm",
        scenario: "semi-sync falls back (every replica link reset)",
        acked: acked.length,
        lost: lost.length,
        note: `monitor 191 ${seconds(degradedMs)} after the links went ("${reason}"); 8 again ` +
          `${seconds(backMs)} after they returned`,
      });
    });

    await step(t, "a full disk on a replica: never promoted, not readable", async () => {
      const replica = nodes.find((n) => n !== master)!;
      await fillDisk(replica);
      try {
        await waitFor(
          async () => (await nodeAttribute(replica, `prm-${RSC}-not-promotable`)) === "disk-full",
          { timeoutMs: 30_000, what: `${replica} not promotable (disk-full)` },
        );
        assert.equal(await nodeAttribute(replica, `master-${RSC}`), undefined, "no score");
        assert.equal(await nodeAttribute(replica, "readable"), "0");
      } finally {
        await unfillDisk(replica);
      }
      await waitFor(
        async () => (await nodeAttribute(replica, `prm-${RSC}-not-promotable`)) === undefined,
        { timeoutMs: 30_000, what: `${replica} a candidate again` },
      );
      figures.push({
        agent: "prm",
        scenario: "full disk on a replica",
        acked: 0,
        lost: 0,
        note: `${replica}: reason disk-full, no promotion score, readable=0; back once freed`,
      });
    });

    await step(
      t,
      "a full disk on the master: failover to a replica holding every commit",
      async () => {
        const old = master;
        const load = new Load();
        let writableMs = 0;
        let reason = "";
        try {
          await moreAcked(load.writer, 20, { timeoutMs: 30_000, what: "writes before the fault" });
          const f0 = Date.now();
          await fillDisk(old);
          // crm_mon shows a node's last failure only, and the old master's next one (kept out
          // when the full disk tore its binary log) can replace it within a second (seen): the
          // monitor's own lines in the node's pacemaker.log hold the same exit reason for good.
          const diskFull = async () =>
            (await exitReasons(old)).find((x) => /^Disk full/.test(x)) ??
              agentLines(old, /Disk full: /).map((l) => /Disk full: [^\]]*/.exec(l)![0].trim())[0];
          const [at, shown] = await Promise.all([
            load.writable("writes after the master's disk filled"),
            waitFor(diskFull, {
              timeoutMs: 60_000,
              what: "the exit reason naming the full disk",
              intervalMs: 100,
            }),
          ]);
          writableMs = at - f0;
          reason = shown;
        } finally {
          await unfillDisk(old);
        }
        const acked = await load.stop();
        // Not crm_mon's promoted node right now: the failed old master may still be listed as
        // promoted beside the new one (null then).
        const others = nodes.filter((n) => n !== old);
        master = await settled(others);
        assert.notEqual(master, old);
        const lost = await dataCheck(master, acked, others);
        assert.deepEqual(lost, []);
        // The old master: rejoins once cleaned up, or (its binary log torn by the failed writes)
        // is kept out with the reason.
        await cleanup();
        const fate = await waitFor(async () => {
          const kept = (await exitReasons(old)).find((x) => /^Resync refused/.test(x));
          if (kept) return kept;
          const s = await replicaStatus(old).catch(() => null);
          return s?.Master_Host === master && s.Slave_SQL_Running === "Yes" ? "rejoined" : null;
        }, { timeoutMs: 120_000, what: `${old} rejoined or kept out` });
        figures.push({
          agent: "prm",
          scenario: "full disk on the master (lab fill-disk: 100%)",
          acked: acked.length,
          lost: lost.length,
          writableMs,
          note: `${old} -> ${master}, exit reason "${reason}"; ${old} afterwards: ${fate}`,
        });
      },
    );
  });
});

Deno.test({
  name: "ocf:heartbeat:mysql in the same run: the same faults",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  nextSeq = 1;
  await onLab("heartbeat", {}, async (nodes, first) => {
    let master = first;
    /** A kill as prm's, and where it leaves the data. */
    const kill = async (scenario: string) => {
      const old = master;
      const r = await killWithTail(old, nodes);
      master = await waitFor(() => promotedNode(RSC), { timeoutMs: 60_000, what: "a master" });
      const have = await keysOn(master);
      const lost = r.acked.filter((k) => !have.has(k));
      // Replicas left in their connect retry get a nudge: the data, not the timing, is compared.
      await restartIo(nodes.filter((n) => n !== master && nodeRunning(n)));
      const equal = await waitFor(
        async () => (await compareData(nodes, [FAILOVER_TABLE])).equal || null,
        { timeoutMs: 30_000, what: "equal checksums", onTimeout: null },
      ).catch(() => false);
      figures.push({
        agent: "heartbeat",
        scenario,
        acked: r.acked.length,
        lost: lost.length,
        writableMs: r.writableMs,
        note: `${r.only.length} rows only on ${old}; ${
          master === old ? "restarted in place" : `${master} promoted`
        }; checksums ${equal ? "equal" : "differ 30 s later"}`,
      });
      await cleanup();
      master = await settled(nodes).catch(async () => (await promotedNode(RSC)) ?? master);
    };

    await step(t, "kill -9 with 20+ commits on no replica", async () => {
      await kill("kill -9, 20+ commits on no replica");
    });

    await step(t, "the same with migration-threshold=1 (a failover)", async () => {
      const threshold = (value: string) =>
        exec(master, [
          "crm_resource",
          "-r",
          CLONE,
          "--meta",
          "-p",
          "migration-threshold",
          "-v",
          value,
        ], {
          check: true,
        });
      await threshold("1");
      await kill("kill -9 with migration-threshold=1, 20+ commits on no replica");
      await threshold(CLONE_META["migration-threshold"]);
    });

    await step(t, "a full disk on a replica", async () => {
      const replica = nodes.find((n) => n !== master)!;
      await fillDisk(replica);
      try {
        // Three of its monitor intervals: what it shows then is what it shows.
        await sleep(9_000);
        figures.push({
          agent: "heartbeat",
          scenario: "full disk on a replica",
          acked: 0,
          lost: 0,
          note: `${replica}: promotion score ${
            await nodeAttribute(replica, `master-${RSC}`) ?? "none"
          }, readable ${await nodeAttribute(replica, "readable") ?? "unset"}`,
        });
      } finally {
        await unfillDisk(replica);
      }
    });

    await step(t, "every replica link reset: what the master's monitor says", async () => {
      const replicas = nodes.filter((n) => n !== master && nodeRunning(n));
      const load = new Load();
      try {
        await onlyOnMaster(master, replicas, load, 3);
        await sleep(9_000);
        const m = await promotedMonitor(master);
        figures.push({
          agent: "heartbeat",
          scenario: "every replica link reset (asynchronous)",
          acked: 0,
          lost: 0,
          note: `promoted monitor rc ${m?.rc ?? "?"}: no degraded result`,
        });
      } finally {
        await reconnect(master, replicas);
        await load.stop();
      }
      await restartIo(replicas);
    });

    await step(t, "cold start: replicas back first, the old master 30 s later", async () => {
      const old = master;
      const { only, acked } = await powerCutWithTail(old, nodes);
      const b0 = Date.now();
      const load = new Load();
      const writableMs = await load.writable("writes with the replicas back", 120_000)
        .then((at) => at - b0, () => undefined);
      const stale = await promotedNode(RSC);
      await sleep(Math.max(0, 30_000 - (Date.now() - b0)));
      await boot(old);
      await sleep(15_000);
      const acked2 = await load.stop();
      const now = await promotedNode(RSC) ?? stale;
      const have = now ? await keysOn(now) : new Set<number>();
      const lost = [...acked, ...acked2].filter((k) => !have.has(k));
      const equal = (await compareData(nodes, [FAILOVER_TABLE]).catch(() => null))?.equal;
      figures.push({
        agent: "heartbeat",
        scenario: "power cut of all, replicas back first, old master 30 s later",
        acked: acked.length + acked2.length,
        lost: lost.length,
        writableMs,
        note: `${only.length} rows only on ${old}; ${stale ?? "nobody"} promoted while it ` +
          `was away (time from the replicas' boot); checksums ${equal ? "equal" : "differ"} ` +
          "after its return",
      });
    });

    await step(t, "a full disk on the master", async () => {
      const old = (await promotedNode(RSC)) ?? master;
      const load = new Load();
      let writableMs: number | undefined;
      let now: string | null = null;
      try {
        await moreAcked(load.writer, 20, { timeoutMs: 30_000, what: "writes before the fault" });
        const f0 = Date.now();
        await fillDisk(old);
        // As long as prm needed, and more: does another node take the writes?
        writableMs = await waitFor(async () => {
          now = await promotedNode(RSC);
          if (now === null || now === old) return null;
          return await load.writable("writes on another node", 2_000).then((at) => at - f0);
        }, { timeoutMs: 30_000, what: "another master", onTimeout: null }).catch(() => undefined);
      } finally {
        await unfillDisk(old);
      }
      const acked = await load.stop();
      figures.push({
        agent: "heartbeat",
        scenario: "full disk on the master (lab fill-disk: 100%)",
        acked: acked.length,
        lost: 0,
        writableMs,
        note: writableMs === undefined
          ? `${old} stayed the master for 30 s: no failover, writes stalled or failed`
          : `${old} -> ${now}`,
      });
    });
  });
});
