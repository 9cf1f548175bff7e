/**
 * mysql_prm on the lab cluster (real Corosync + Pacemaker + MariaDB, fencing on): one lab
 * bring-up shared by the failover scenarios, run in order. Each fault scenario writes through
 * the writer VIP while the fault happens, then checks that every acknowledged row exists on the new
 * master and that all nodes hold identical data, or says exactly which acknowledged rows an
 * asynchronous crash lost.
 *
 * Needs the agent installed (`deno task build && deno task install`) and no other lab up.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import {
  boot,
  compareData,
  credentials,
  crmMon,
  down,
  exec,
  exhaustConnections,
  freezeMysqld,
  killMysqld,
  loadAgent,
  moreAcked,
  nodeAddress,
  powerCut,
  promotedNode,
  replicaStatus,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";
import { rejoinedOrKeptOut, repairKeptOut } from "./scenario.ts";

const TABLE = "test.acked";
const CLONE = "ms_mysql";
const RSC = "p_mysql";

/** A writer through the writer VIP: records which keys the server acknowledged. */
class Writer {
  acked: number[] = [];
  failures = 0;
  #next = 1;
  #stop = false;
  #done?: Promise<void>;
  #tag: string;

  constructor(tag: string, firstKey: number) {
    this.#tag = tag;
    this.#next = firstKey;
  }

  start(): void {
    this.#done = (async () => {
      while (!this.#stop) {
        const k = this.#next++;
        try {
          await sqlAt(WRITER_VIP, `INSERT INTO ${TABLE} (k, tag) VALUES (?, ?)`, {
            params: [k, this.#tag],
            timeoutMs: 2_000,
          });
          this.acked.push(k);
        } catch {
          this.failures++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  get nextKey(): number {
    return this.#next + 1;
  }
}

let nextKey = 1;

async function nodes(): Promise<string[]> {
  return (await crmMon()).nodes.filter((n) => n.online).map((n) => n.name).sort();
}

/** Options of {@linkcode converged}. */
interface ConvergedOptions {
  /** Nodes left out of the check (a node that is down). */
  exclude?: string[];
  /** A probe expected to fail often says nothing when it does (default: the lab's dump). */
  quiet?: boolean;
}

/** Waits until one node is promoted and writable and every other online node replicates from it. */
async function converged(timeoutMs: number, opts: ConvergedOptions = {}): Promise<string> {
  const exclude = opts.exclude ?? [];
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
    if (Number(ro.ro) !== 0) return null;
    for (const n of (await nodes()).filter((x) => x !== master && !exclude.includes(x))) {
      const s = await replicaStatus(n);
      if (s === null || s.Master_Host !== master) return null;
      if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, {
    timeoutMs,
    what: "1 promoted + every other node replicating from it",
    onTimeout: opts.quiet ? null : undefined,
  });
}

/** Time until a writable node other than `old` answers through the writer VIP. */
async function writableAgain(old: string | null, t0: number, timeoutMs = 90_000): Promise<number> {
  await waitFor(async () => {
    const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@global.read_only AS ro", {
      timeoutMs: 1_000,
    });
    return rows[0] && Number(rows[0].ro) === 0 && (old === null || rows[0].h !== old);
  }, { timeoutMs, what: "a writable master behind the writer VIP", intervalMs: 100 });
  return Date.now() - t0;
}

/** Waits until all nodes hold the same data (replication caught up), or reports the difference. */
async function checkData(
  master: string,
  writer: Writer,
  what: string,
  salvaged: number[] = [],
): Promise<void> {
  const all = await nodes();
  const rows = await sql(master, `SELECT k FROM ${TABLE}`);
  const have = new Set(rows.map((r) => Number(r.k)));
  const lost = writer.acked.filter((k) => !have.has(k));
  const cmp = await waitFor(async () => {
    const c = await compareData(all, [TABLE]);
    return c.equal ? c : null;
  }, { timeoutMs: 30_000, what: `identical ${TABLE} on ${all.join(", ")}` }).catch(async (err) => {
    const counts: string[] = [];
    for (const n of all) {
      const [c] = await sql(n, `SELECT COUNT(*) AS n, MAX(k) AS mx FROM ${TABLE}`);
      counts.push(`${n}: ${c.n} rows, max ${c.mx}`);
    }
    throw new Error(`${(err as Error).message}; ${counts.join("; ")}; lost acked: ${lost}`);
  });
  console.log(
    `  ${what}: ${writer.acked.length} rows acknowledged, ${writer.failures} writes refused, ` +
      `${lost.length} acknowledged rows lost${lost.length ? ` (${lost.join(",")})` : ""}; ` +
      `checksums equal on ${Object.keys(cmp.checksums).join(", ")}`,
  );
  // Rows an asynchronous power cut lost are acceptable only where the agent saved them (the
  // kept-out old master's salvage file) instead of silently dropping them.
  assert.deepEqual(
    lost.filter((k) => !salvaged.includes(k)),
    [],
    `acknowledged rows missing on the new master ${master}`,
  );
}

async function withWriter<T>(tag: string, fn: (w: Writer) => Promise<T>): Promise<[T, Writer]> {
  const w = new Writer(tag, nextKey);
  w.start();
  try {
    // Let some writes land before the fault.
    await moreAcked(w, 20, { what: "writes before the fault" });
    return [await fn(w), w];
  } finally {
    await w.stop();
    nextKey = w.nextKey + 1;
  }
}

async function score(node: string): Promise<string> {
  const r = await exec(node, ["crm_attribute", `--promotion=${RSC}`, "-G", "-q", "-N", node]);
  return r.code === 0 ? r.stdout.trim() : "none";
}

Deno.test({
  name:
    "mysql_prm on the lab: converge, failovers, rejoin, switchover, busy master, broken replica",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 3 });
  try {
    let master = "";
    await t.step("converge from nothing to 1 promoted + 2 replicating", async () => {
      const t0 = Date.now();
      await loadAgent({
        agent: "prm",
        readerVips: 2,
        // These scenarios measure failovers: a killed master fails over instead of restarting
        // in place (noloss_lab_test.ts measures that).
        params: {
          max_slave_lag: "15",
          reader_failcount: "1",
          unresponsive_timeout: "10",
          try_restart_crashed_master: "false",
        },
      });
      master = await converged(120_000);
      const convergedMs = Date.now() - t0;
      const vipMs = await writableAgain(null, t0);
      console.log(
        `  converged in ${convergedMs} ms, writer VIP writable after ${vipMs} ms ` +
          `(lab up in ${lab.bringUpMs} ms), master ${master}`,
      );
      await sqlAt(
        WRITER_VIP,
        `CREATE TABLE IF NOT EXISTS ${TABLE} (k INT PRIMARY KEY, tag VARCHAR(32), ` +
          `at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))`,
      );
      // Scores follow at the next monitor of each node (the replicas' first one after the repoint).
      await waitFor(async () => {
        for (const n of lab.nodes) {
          if ((await score(n)) !== (n === master ? "1000" : "100")) return null;
        }
        return true;
      }, { timeoutMs: 15_000, what: "promotion scores 1000 on the master, 100 on replicas" });
      for (const n of lab.nodes) console.log(`  ${n}: promotion score ${await score(n)}`);
    });

    await t.step("a probe restores a promotion score lost from the CIB", async () => {
      const replica = (await nodes()).find((n) => n !== master)!;
      await exec(replica, ["crm_attribute", `--promotion=${RSC}`, "-D", "-N", replica], {
        check: true,
      });
      assert.equal(await score(replica), "none");
      const t0 = Date.now();
      await exec(replica, ["crm_resource", "--refresh", "-r", CLONE, "-N", replica], {
        check: true,
      });
      await waitFor(async () => (await score(replica)) === "100", {
        timeoutMs: 30_000,
        what: `${replica}'s score back to 100 after a probe`,
      });
      console.log(`  ${replica}: score restored by the probe in ${Date.now() - t0} ms`);
      assert.equal(await promotedNode(RSC), master);
    });

    await t.step(
      "kill -9 of the master's mysqld: failover, old master rejoins as replica",
      async () => {
        const old = master;
        const [ms, w] = await withWriter("kill9", async () => {
          const t0 = Date.now();
          await killMysqld(old);
          return await writableAgain(null, t0);
        });
        master = await converged(120_000);
        console.log(`  writable again ${ms} ms after kill -9 of ${old}; master now ${master}`);
        await checkData(master, w, "kill -9");
      },
    );

    await t.step("power cut of the master node: failover; node boots and rejoins", async () => {
      const old = master;
      const [ms, w] = await withWriter("powercut", async () => {
        const t0 = Date.now();
        await powerCut(old);
        return await writableAgain(old, t0);
      });
      console.log(`  writable on another node ${ms} ms after the power cut of ${old}`);
      master = await converged(120_000, { exclude: [old] });
      const tb = Date.now();
      await boot(old);
      // It rejoins, or (asynchronous replication: a transaction it committed never left it) is
      // kept out with a salvage file, and a DBA repairs it as the README says.
      const reason = await rejoinedOrKeptOut(
        old,
        () => converged(1_000, { quiet: true }).then(() => true, () => false),
      );
      let salvaged: number[] = [];
      if (reason === "") {
        console.log(`  ${old} booted and replicating from ${master} after ${Date.now() - tb} ms`);
      } else {
        salvaged = (await repairKeptOut(old, reason, master)).keys;
        master = await converged(120_000);
        console.log(
          `  ${old} kept out after ${Date.now() - tb} ms: ${reason} (rows ${salvaged}); ` +
            "repaired as documented, replicating again",
        );
      }
      await checkData(master, w, "power cut of the master", salvaged);
    });

    await t.step("power cut of a replica: no failover; it comes back as a replica", async () => {
      const victim = (await nodes()).find((n) => n !== master)!;
      const [, w] = await withWriter("replicacut", async () => {
        await powerCut(victim);
        await waitFor(async () => !(await nodes()).includes(victim), {
          timeoutMs: 60_000,
          what: `${victim} offline`,
        });
        assert.equal(await promotedNode(RSC), master, "the master stays");
      });
      await boot(victim);
      const m = await converged(120_000);
      assert.equal(m, master);
      await checkData(master, w, "power cut of a replica");
    });

    await t.step("planned switchover with crm_resource --move and back", async () => {
      const old = master;
      const target = (await nodes()).find((n) => n !== master)!;
      const [ms, w] = await withWriter("switchover", async () => {
        const t0 = Date.now();
        await exec(old, ["crm_resource", "--move", "--promoted", "-r", CLONE, "-N", target], {
          check: true,
        });
        return await writableAgain(old, t0);
      });
      master = await converged(120_000);
      assert.equal(master, target);
      console.log(`  switched ${old} -> ${target} in ${ms} ms`);
      await checkData(master, w, "switchover");
      const [, w2] = await withWriter("switchback", async () => {
        await exec(old, ["crm_resource", "--clear", "-r", CLONE], { check: true });
        await exec(old, ["crm_resource", "--move", "--promoted", "-r", CLONE, "-N", old], {
          check: true,
        });
        await writableAgain(target, Date.now());
      });
      master = await converged(120_000);
      assert.equal(master, old);
      await exec(old, ["crm_resource", "--clear", "-r", CLONE], { check: true });
      await checkData(master, w2, "switch back");
    });

    await t.step("max_connections exhausted on the master: no failover", async () => {
      const held = await exhaustConnections(master);
      try {
        assert.equal(held.refusedWith.errno, 1040);
        // Three promoted monitors (2 s interval) must pass without a failover.
        const t0 = Date.now();
        await waitFor(() => Date.now() - t0 > 7_000 ? true : null, {
          timeoutMs: 10_000,
          what: "7 s of monitors",
        });
        const mon = await crmMon();
        assert.equal(await promotedNode(RSC), master);
        const failed = mon.resources.filter((r) => r.failed);
        assert.deepEqual(failed, [], "no failed resource");
      } finally {
        await held.release();
      }
    });

    await t.step(
      "frozen master (SIGSTOP): degraded, then failed after unresponsive_timeout, failover",
      async () => {
        const old = master;
        const t0 = { at: 0 };
        const [ms, w] = await withWriter("freeze", async () => {
          t0.at = Date.now();
          freezeMysqld(old);
          return await writableAgain(old, t0.at);
        });
        console.log(
          `  writable on another node ${ms} ms after ${old}'s mysqld froze ` +
            "(unresponsive_timeout 10 s, promoted monitor every 2 s)",
        );
        // The frozen server was killed by its stop (it cannot act on SIGTERM); its node starts
        // it again and it rejoins, or is kept out for writes it had acknowledged alone.
        master = await converged(120_000, { exclude: [old] });
        const reason = await rejoinedOrKeptOut(
          old,
          () => converged(1_000, { quiet: true }).then(() => true, () => false),
        );
        let salvaged: number[] = [];
        if (reason !== "") {
          salvaged = (await repairKeptOut(old, reason, master)).keys;
          master = await converged(120_000);
        }
        await checkData(master, w, "frozen master", salvaged);
        assert.ok(
          ms >= 10_000,
          `no failover before unresponsive_timeout (writable after ${ms} ms)`,
        );
      },
    );

    await t.step(
      "reader VIPs leave a replica lagging past max_slave_lag and come back",
      async () => {
        const lagger = (await nodes()).find((n) => n !== master)!;
        const readersOn = async (n: string) =>
          (await crmMon()).resources.filter((r) =>
            r.id.startsWith("vip_reader") && r.nodes.includes(n)
          )
            .map((r) => r.id);
        // Hold a write lock on the replica: its SQL thread blocks while the master keeps writing.
        const conn = await mysql.createConnection({
          host: nodeAddress(lagger),
          user: credentials().admin.user,
          password: credentials().admin.password,
        });
        const t0 = Date.now();
        try {
          await conn.query(`LOCK TABLES ${TABLE} WRITE`);
          const [, w] = await withWriter("lag", async () => {
            await waitFor(async () => (await readersOn(lagger)).length === 0 ? true : null, {
              timeoutMs: 60_000,
              what: `reader VIPs off ${lagger}`,
            });
            const s = await replicaStatus(lagger);
            console.log(
              `  reader VIPs left ${lagger} after ${Date.now() - t0} ms ` +
                `(Seconds_Behind_Master ${s?.Seconds_Behind_Master}, max_slave_lag 15)`,
            );
          });
          await conn.query("UNLOCK TABLES");
          const t1 = Date.now();
          await waitFor(async () => {
            const [a] = (await crmMon()).nodes.filter((n) => n.name === lagger);
            return a?.attributes.readable === "1" ? true : null;
          }, { timeoutMs: 60_000, what: `${lagger} readable again` });
          console.log(
            `  ${lagger} readable again ${Date.now() - t1} ms after the lock was released`,
          );
          assert.equal(await promotedNode(RSC), master, "lag causes no failover");
          await checkData(master, w, "lagging replica");
        } finally {
          await conn.end().catch(() => {});
        }
      },
    );

    await t.step("a replica with a broken SQL thread is never promoted", async () => {
      const [broken, healthy] = (await nodes()).filter((n) => n !== master);
      // A row only the replica has, then the same key on the master: duplicate key on the replica.
      await sql(broken, "SET GLOBAL read_only = OFF");
      await sql(broken, `INSERT INTO ${TABLE} (k, tag) VALUES (1000000, 'conflict')`);
      await sql(broken, "SET GLOBAL read_only = ON");
      await sqlAt(WRITER_VIP, `INSERT INTO ${TABLE} (k, tag) VALUES (1000000, 'master')`);
      await waitFor(async () => (await score(broken)) === "none", {
        timeoutMs: 30_000,
        what: `${broken} losing its promotion score`,
      });
      const old = master;
      const t0 = Date.now();
      await killMysqld(old);
      await writableAgain(old, t0);
      const now = await promotedNode(RSC);
      console.log(`  master killed: promoted ${now} (broken replica ${broken} skipped)`);
      assert.equal(now, healthy);
      // Repair the broken replica so that later checks can compare data.
      await sql(broken, `DELETE FROM ${TABLE} WHERE k = 1000000`).catch(() => {});
      await exec(broken, ["crm_resource", "--cleanup", "-r", CLONE]);
      master = healthy;
    });
  } finally {
    await down();
  }
});
