/**
 * GTID mode and semi-sync against real MariaDB servers (throwaway, no lab): the election prefers
 * the replica that received more, a replica repoints to the new master by GTID and ends with its
 * data, an old master with errant transactions is refused, and semi-sync acknowledges through a
 * replica. Uses the agent's own modules (mysql.ts, gtid_agent.ts) on the servers' sockets.
 */
import assert from "node:assert/strict";
import { MysqlClient } from "../mysql.ts";
import {
  gtidElection,
  heldGtid,
  prepareGtidFollow,
  publishElectionGtid,
  publishGtidFork,
} from "../gtid_agent.ts";
import { type MariadbServer, startMariadb, stopAll } from "./mariadb_server.ts";
import { attributeNames } from "../attrs.ts";
import { Budget } from "../budget.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const PASSWORD = crypto.randomUUID();
const silent = { info: () => {}, warn: (m: string) => console.log(`  warn: ${m}`) };

/** In-memory private attributes: one store, one view per node. */
function attrs(store: Map<string, Map<string, string>>, node: string) {
  return {
    setPrivate(name: string, value: string | undefined): Promise<boolean> {
      const m = store.get(name) ?? new Map<string, string>();
      if (value === undefined) m.delete(node);
      else m.set(node, value);
      store.set(name, m);
      return Promise.resolve(true);
    },
    privateAll(name: string): Promise<Map<string, string>> {
      return Promise.resolve(new Map(store.get(name) ?? []));
    },
  };
}

function client(s: MariadbServer): Promise<MysqlClient> {
  return MysqlClient.connect({ socket: s.socket, user: "root", password: "" });
}

async function follow(c: MysqlClient, master: MariadbServer): Promise<void> {
  await c.changeSource({
    host: "127.0.0.1",
    port: master.port,
    user: "repl",
    password: PASSWORD,
    gtid: true,
  });
  await c.startReplica();
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + 20_000;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Rows of test.t; -1 while the replica has not applied its creation yet (ER_NO_SUCH_TABLE). */
async function count(s: MariadbServer): Promise<number> {
  try {
    const rows = await s.query<{ n: number }[]>("SELECT COUNT(*) AS n FROM test.t");
    return Number(rows[0].n);
  } catch (err) {
    if ((err as { errno?: number }).errno === 1146) return -1;
    throw err;
  }
}

Deno.test({
  name: "GTID mode on real MariaDB: election, repoint by GTID, errant old master, semi-sync",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const servers: MariadbServer[] = [];
  const clients: MysqlClient[] = [];
  const salvageDir = `${trustedTempDir("gtid-salvage-")}/salvage`;
  try {
    for (const id of [1, 2, 3]) {
      servers.push(
        await startMariadb({
          serverId: id,
          logSlaveUpdates: true,
          binlogFormat: "ROW",
          extraArgs: ["--gtid-strict-mode=ON"],
        }),
      );
    }
    const [a, b, c] = servers;
    for (const s of servers) {
      await s.query(
        "SET sql_log_bin = 0; CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY ?; " +
          "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'; SET sql_log_bin = 1",
        [PASSWORD],
      );
      clients.push(await client(s));
    }
    const [ca, cb, cc] = clients;
    const store = new Map<string, Map<string, string>>();
    await a.query("CREATE DATABASE test; CREATE TABLE test.t (k INT PRIMARY KEY)");
    for (const [cx, node] of [[cb, "b"], [cc, "c"]] as const) {
      const r = await prepareGtidFollow(cx, attrs(store, node), {
        names: attributeNames("r"),
        budget: Budget.ofMs(60_000),
        master: "a",
        node,
        log: silent,
      });
      assert.equal(r.ok, true);
      await follow(cx, a);
    }
    for (let k = 1; k <= 50; k++) await a.query("INSERT INTO test.t VALUES (?)", [k]);
    await waitFor("c at 50 rows", async () => (await count(c)) === 50 ? true : undefined);
    await cc.query("STOP SLAVE IO_THREAD");
    for (let k = 51; k <= 70; k++) await a.query("INSERT INTO test.t VALUES (?)", [k]);
    await waitFor("b at 70 rows", async () => (await count(b)) === 70 ? true : undefined);
    await cb.query("STOP SLAVE IO_THREAD");
    // Written on a after both replicas stopped receiving: errant once b takes over.
    for (let k = 71; k <= 75; k++) await a.query("INSERT INTO test.t VALUES (?)", [k]);

    // Election: c (50) loses to b (70).
    await publishElectionGtid(cb, attrs(store, "b"), { names: attributeNames("r"), log: silent });
    await publishElectionGtid(cc, attrs(store, "c"), { names: attributeNames("r"), log: silent });
    const heldB = await heldGtid(cb, await cb.replicaStatus());
    const heldC = await heldGtid(cc, await cc.replicaStatus());
    console.log(`  held: b ${heldB?.gtid}, c ${heldC?.gtid}`);
    const fromC = await gtidElection(cc, attrs(store, "c"), {
      names: attributeNames("r"),
      self: "c",
      expected: ["b"],
      budget: Budget.ofMs(1_000),
    });
    assert.equal(fromC.proceed, false, fromC.reason);
    assert.equal(fromC.better?.node, "b");
    const fromB = await gtidElection(cb, attrs(store, "b"), {
      names: attributeNames("r"),
      self: "b",
      expected: ["c"],
      budget: Budget.ofMs(1_000),
    });
    assert.equal(fromB.proceed, true, fromB.reason);

    // Promote b: fork point, semi-sync source.
    await cb.stopReplica();
    await cb.resetReplica();
    await publishGtidFork(cb, attrs(store, "b"), { names: attributeNames("r"), log: silent });
    await cb.configureSemiSync("source", 5_000);
    await cb.setReadOnly(false);
    for (let k = 1001; k <= 1010; k++) await b.query("INSERT INTO test.t VALUES (?)", [k]);

    // c repoints by GTID and receives exactly what it lacked (51..70 and b's own writes).
    await cc.stopReplica();
    await cc.configureSemiSync("replica", 5_000);
    const rc = await prepareGtidFollow(cc, attrs(store, "c"), {
      names: attributeNames("r"),
      budget: Budget.ofMs(60_000),
      master: "b",
      node: "x",
      log: silent,
      salvageDir,
    });
    assert.equal(rc.ok, true, rc.ok ? "" : rc.reason);
    await follow(cc, b);
    await waitFor("c at 80 rows", async () => (await count(c)) === 80 ? true : undefined);
    const [sumB] = await b.query<{ s: number }[]>("SELECT SUM(k) AS s FROM test.t");
    const [sumC] = await c.query<{ s: number }[]>("SELECT SUM(k) AS s FROM test.t");
    assert.equal(Number(sumC.s), Number(sumB.s));

    // Semi-sync: c acknowledges b's commits.
    await waitFor("a semi-sync client on b", async () => {
      const st = await cb.semiSyncStatus();
      return st.Rpl_semi_sync_master_clients === "1" && st.Rpl_semi_sync_master_status === "ON"
        ? true
        : undefined;
    });
    const before = Number((await cb.semiSyncStatus()).Rpl_semi_sync_master_yes_tx);
    await b.query("INSERT INTO test.t VALUES (2000)");
    const after = await cb.semiSyncStatus();
    assert.equal(Number(after.Rpl_semi_sync_master_yes_tx), before + 1);
    const [wp] = await b.query<{ w: string }[]>(
      "SELECT @@global.rpl_semi_sync_master_wait_point AS w",
    );
    assert.equal(wp.w, "AFTER_SYNC");

    // The old master a holds 0-1-71..75 that b never received: refused.
    await ca.setReadOnly(true);
    const ra = await prepareGtidFollow(ca, attrs(store, "a"), {
      names: attributeNames("r"),
      budget: Budget.ofMs(60_000),
      master: "b",
      node: "x",
      log: silent,
      salvageDir,
    });
    assert.equal(ra.ok, false);
    if (!ra.ok) {
      console.log(`  old master refused: ${ra.reason}`);
      // CREATE DATABASE, CREATE TABLE, then rows 1..75: the last errant one is 0-1-77.
      assert.equal(ra.errant, "0-1-77");
      // The salvage file lists the 5 errant transactions with their SQL.
      assert.ok(ra.salvageFile, "salvage file written");
      const text = Deno.readTextFileSync(ra.salvageFile!);
      const lines = text.split("\n").filter((l) => l.startsWith("errant "));
      assert.deepEqual(lines.map((l) => l.split(" ")[6]), [
        "0-1-73",
        "0-1-74",
        "0-1-75",
        "0-1-76",
        "0-1-77",
      ]);
      for (const k of [71, 72, 73, 74, 75]) assert.match(text, new RegExp(`@1=${k}\\b`));
    }
    // A node that already follows b (its binlog holds b's own GTIDs 0-2-...) is no errant node.
    const rcAgain = await prepareGtidFollow(cc, attrs(store, "c"), {
      names: attributeNames("r"),
      budget: Budget.ofMs(60_000),
      master: "b",
      node: "x",
      log: silent,
      salvageDir,
    });
    assert.equal(rcAgain.ok, true);
  } finally {
    for (const c of clients) await c.close();
    await stopAll(servers);
    Deno.removeSync(salvageDir.slice(0, salvageDir.lastIndexOf("/")), { recursive: true });
  }
});
