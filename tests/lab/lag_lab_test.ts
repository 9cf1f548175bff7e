/**
 * Precise lag on the lab (heartbeat=true): a replica's replication is stalled twice, first by
 * starving its IO thread at the master's port (traffic from port 3306 to that replica throttled to
 * 8 bit/s with tc on the master's eth0: the connection stays up, nothing arrives), then by a table
 * lock on the replica that blocks its SQL thread. Each time: Seconds_Behind_Master is printed next
 * to our heartbeat lag (the IO stall must read 0 or NULL), `pt-heartbeat --check` run inside the
 * replica agrees with our figure within a second, the replica loses its promotion score and the
 * reader VIPs leave it; then it comes back.
 *
 * Needs the agent installed (`deno task build && deno task install`).
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import {
  credentials,
  crmMon,
  down,
  dump,
  exec,
  loadAgent,
  nodeAddress,
  promotedNode,
  replicaStatus,
  sql,
  up,
  waitFor,
} from "./lab.ts";
import { heartbeatLagSeconds, heartbeatReadSql } from "../../heartbeat.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
const RSC = "p_mysql";
const MAX_LAG = 5;

async function online(): Promise<string[]> {
  return (await crmMon()).nodes.filter((n) => n.online).map((n) => n.name).sort();
}

async function converged(timeoutMs: number): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    for (const n of (await online()).filter((x) => x !== master)) {
      const s = await replicaStatus(n);
      if (s?.Master_Host !== master || s.Slave_IO_Running !== "Yes") return null;
      if (s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, { timeoutMs, what: "1 promoted + every other node replicating" });
}

/** Our heartbeat lag on a replica, computed as the agent does (same SQL, same arithmetic). */
async function ourLag(node: string, masterId: number): Promise<number | undefined> {
  const [row] = await sql(node, heartbeatReadSql("percona.heartbeat", masterId), {
    timeoutMs: 3_000,
  });
  return row ? heartbeatLagSeconds(String(row.ts), String(row.now)) : undefined;
}

/** pt-heartbeat --check inside the node, UTC, its 0.5 s default skew reduced to 1 ms (added back). */
async function ptHeartbeat(node: string, masterId: number): Promise<number> {
  const r = await exec(node, [
    "pt-heartbeat",
    "--check",
    "--utc",
    "--skew",
    "0.001",
    "-D",
    "percona",
    "--table",
    "heartbeat",
    "--master-server-id",
    String(masterId),
    "F=/etc/mysql/prm.cnf,S=/run/mysqld/mysqld.sock",
  ], { timeoutMs: 20_000 });
  const text = r.stdout.trim();
  if (r.code !== 0 || !/^\d+(\.\d+)?$/.test(text)) {
    throw new Error(`pt-heartbeat on ${node} failed (${r.code}): ${text} ${r.stderr.trim()}`);
  }
  return Number(text) + 0.001;
}

async function readersOn(node: string): Promise<string[]> {
  return (await crmMon()).resources.filter((r) =>
    r.id.startsWith("vip_reader") && r.nodes.includes(node)
  ).map((r) => r.id);
}

async function score(node: string): Promise<string> {
  const r = await exec(node, ["crm_attribute", `--promotion=${RSC}`, "-G", "-q", "-N", node]);
  return r.code === 0 ? r.stdout.trim() : "none";
}

async function readable(node: string): Promise<string | undefined> {
  return (await crmMon()).nodes.find((n) => n.name === node)?.attributes.readable;
}

interface StallFigures {
  what: string;
  node: string;
  heartbeatLag: number;
  heartbeatLagAfter: number;
  ptHeartbeat: number;
  secondsBehindMaster: unknown;
  ioRunning: unknown;
  vipLeftMs: number;
  scoreWhileLagging: string;
  backMs: number;
}

/**
 * On a replica holding a reader VIP: holds a stall until the heartbeat lag passes max_slave_lag
 * and the reader VIPs left the replica, measures, releases, and waits until it is readable again.
 */
async function stall(
  what: string,
  replicas: string[],
  masterId: number,
  hold: (lagger: string) => Promise<void>,
  release: (lagger: string) => Promise<void>,
): Promise<StallFigures> {
  // Two reader VIPs spread over three nodes: at least one replica holds one.
  const lagger = await waitFor(async () => {
    for (const n of replicas) if ((await readersOn(n)).length > 0) return n;
    return null;
  }, { timeoutMs: 30_000, what: `a replica holding a reader VIP (${what})` });
  const t0 = Date.now();
  let released = false;
  await hold(lagger);
  try {
    await waitFor(async () => ((await ourLag(lagger, masterId)) ?? 0) > MAX_LAG + 3, {
      timeoutMs: 60_000,
      what: `heartbeat lag on ${lagger} over ${MAX_LAG + 3} s (${what})`,
    });
    const status = await replicaStatus(lagger);
    const before = (await ourLag(lagger, masterId))!;
    const pt = await ptHeartbeat(lagger, masterId);
    const after = (await ourLag(lagger, masterId))!;
    // The figure grows by a second per second: pt-heartbeat ran between our two readings (it
    // checks at its next whole-second boundary, so up to a second after it starts).
    assert.ok(
      pt >= before - 1 && pt <= after + 1,
      `pt-heartbeat ${pt} s vs ours ${before.toFixed(3)}..${after.toFixed(3)} s`,
    );
    await waitFor(async () => (await readersOn(lagger)).length === 0, {
      timeoutMs: 60_000,
      what: `reader VIPs off ${lagger} (${what})`,
    });
    const vipLeftMs = Date.now() - t0;
    const scoreWhileLagging = await score(lagger);
    await release(lagger);
    released = true;
    const t1 = Date.now();
    await waitFor(async () => (await readable(lagger)) === "1", {
      timeoutMs: 90_000,
      what: `${lagger} readable again after ${what}`,
    });
    return {
      what,
      node: lagger,
      heartbeatLag: Math.round(before * 1000) / 1000,
      heartbeatLagAfter: Math.round(after * 1000) / 1000,
      ptHeartbeat: Math.round(pt * 1000) / 1000,
      secondsBehindMaster: status?.Seconds_Behind_Master,
      ioRunning: status?.Slave_IO_Running,
      vipLeftMs,
      scoreWhileLagging,
      backMs: Date.now() - t1,
    };
  } finally {
    if (!released) await release(lagger).catch(() => {});
  }
}

Deno.test({
  name:
    "heartbeat lag on the lab: IO stall and SQL lock seen, pt-heartbeat agrees, reader VIP leaves",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 3, waitFreeMs: LAB_WAIT_MS });
  try {
    await loadAgent({
      agent: "prm",
      readerVips: 2,
      params: {
        heartbeat: "true",
        heartbeat_interval: "1",
        max_slave_lag: String(MAX_LAG),
        reader_failcount: "1",
      },
    });
    const master = await converged(120_000);
    const [idRow] = await sql(master, "SELECT @@server_id AS id");
    const masterId = Number(idRow.id);
    const replicas = lab.nodes.filter((n) => n !== master);
    await waitFor(async () => {
      for (const n of replicas) {
        const lag = await ourLag(n, masterId);
        if (lag === undefined || lag > 2) return null;
        if ((await readable(n)) !== "1") return null;
      }
      return true;
    }, { timeoutMs: 60_000, what: "fresh heartbeats and readable replicas" });
    const figures: StallFigures[] = [];

    await t.step("IO thread starved at the master's port", async () => {
      const f = await stall("IO stall", replicas, masterId, async (lagger) => {
        const dst = nodeAddress(lagger);
        const r = await exec(
          master,
          "tc qdisc add dev eth0 root handle 1: htb default 1 && " +
            "tc class add dev eth0 parent 1: classid 1:1 htb rate 10gbit && " +
            "tc class add dev eth0 parent 1: classid 1:10 htb rate 8bit ceil 8bit && " +
            "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 " +
            `match ip sport 3306 0xffff match ip dst ${dst}/32 flowid 1:10`,
        );
        assert.equal(r.code, 0, `tc on ${master}: ${r.stderr}`);
      }, async () => {
        await exec(master, "tc qdisc del dev eth0 root");
      });
      console.log(`  ${JSON.stringify(f)}`);
      figures.push(f);
      const sbm = f.secondsBehindMaster;
      assert.ok(sbm === null || Number(sbm) === 0, `Seconds_Behind_Master ${sbm} during the stall`);
    });

    await t.step("SQL thread blocked by a table lock on the replica", async () => {
      let conn: mysql.Connection | undefined;
      const f = await stall("SQL lock", replicas, masterId, async (lagger) => {
        conn = await mysql.createConnection({
          host: nodeAddress(lagger),
          user: credentials().admin.user,
          password: credentials().admin.password,
        });
        // A READ lock: the SQL thread cannot write the heartbeat table, readers still can.
        await conn.query("LOCK TABLES percona.heartbeat READ");
      }, async () => {
        await conn?.query("UNLOCK TABLES").catch(() => {});
        await conn?.end().catch(() => {});
      });
      console.log(`  ${JSON.stringify(f)}`);
      figures.push(f);
    });

    assert.equal(await promotedNode(RSC), master, "lag causes no failover");
    console.log("lag figures:");
    for (const f of figures) {
      console.log(
        `  ${f.what} on ${f.node}: heartbeat lag ${f.heartbeatLag} s before and ` +
          `${f.heartbeatLagAfter} s after pt-heartbeat, which said ${f.ptHeartbeat} s; ` +
          `Seconds_Behind_Master ${f.secondsBehindMaster} (io=${f.ioRunning}), reader VIPs ` +
          `left after ${f.vipLeftMs} ms, score while lagging ${f.scoreWhileLagging}, ` +
          `readable again ${f.backMs} ms after release`,
      );
    }
  } catch (e) {
    await dump();
    throw e;
  } finally {
    await down();
  }
});
