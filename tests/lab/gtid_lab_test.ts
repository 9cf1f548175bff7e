/**
 * GTID mode on the lab (4 nodes, fencing on, replication_mode=gtid with gtid_strict_mode=ON, a
 * writer through the writer VIP during each fault):
 * 1. replicas at different positions (one throttled behind, one down in standby during the
 *    switch), power cut of the master: the most advanced replica is promoted, the others repoint
 *    by GTID and end with the new master's data; the standby one rejoins later; the old master
 *    boots and either rejoins (it held nothing extra) or is kept out (errant GTIDs): both are
 *    checked against what the writer saw acknowledged.
 * 2. a replica 100,000 transactions behind (its IO thread stopped while the master writes them),
 *    master power-cut: a current replica is promoted, the lagging one catches up by GTID.
 * 3. an old master with errant transactions (every replica throttled while it keeps writing): kept
 *    out with an exit reason naming the errant GTIDs, never readable.
 * 4. an old master without errant transactions (writer paused until the replicas caught up, so
 *    that it holds nothing extra; writes resume during the failover): rejoins by itself.
 *
 * Replicas are slowed with a tc htb class on the host side of their veth matching the master's
 * MySQL traffic (sport 3306), so their IO thread stays connected (healthy, promotable) while
 * receiving less than the master wrote. The class is deleted right after the power cut, which
 * drops what it still queued: what was in flight is lost, as in a real power cut.
 */
import assert from "node:assert/strict";
import {
  compareData,
  crmMon,
  down,
  dump,
  loadAgent,
  moreAcked,
  powerCut,
  promotedNode,
  replicaStatus,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

import {
  agentLines,
  bootAndJudge,
  consistent,
  converged,
  liveNodes,
  lostAcked,
  RSC,
  standby,
  TABLE,
  throttle,
  unthrottle,
  writableAgain,
  Writer,
} from "./scenario.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
/** The sequence number of domain 0 a replica received (Gtid_IO_Pos), or -1. */
async function receivedSeq(node: string): Promise<number> {
  const s = await replicaStatus(node);
  const m = /(?:^|,)0-\d+-(\d+)/.exec(String(s?.Gtid_IO_Pos ?? ""));
  return m ? Number(m[1]) : -1;
}

Deno.test({
  name: "GTID mode on the lab: election, repoint by GTID, replica down, errant old master",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 4, waitFreeMs: LAB_WAIT_MS });
  let nextKey = 1;
  const out = new Set<string>();
  try {
    await loadAgent({
      agent: "prm",
      params: { replication_mode: "gtid", additional_parameters: "--gtid-strict-mode=ON" },
    });
    let master = await converged(lab.nodes);
    await sqlAt(WRITER_VIP, `CREATE TABLE IF NOT EXISTS ${TABLE} (k INT PRIMARY KEY)`);
    console.log(`  converged in GTID mode, master ${master}`);

    await t.step("replicas at different positions, one down: power cut of the master", async () => {
      const old = master;
      const [slow, down1, fast] = lab.nodes.filter((n) => n !== old);
      const w = new Writer(nextKey).start();
      let writableMs = 0;
      let t0 = 0;
      try {
        await moreAcked(w, 20);
        await throttle(slow, old, 16);
        await standby(down1, true);
        await waitFor(async () => (await receivedSeq(fast)) - (await receivedSeq(slow)) > 30, {
          timeoutMs: 30_000,
          what: `${slow} behind ${fast}`,
        });
        console.log(
          `  before the cut: ${fast} received seq ${await receivedSeq(
            fast,
          )}, ${slow} ${await receivedSeq(
            slow,
          )}, ${down1} in standby`,
        );
        t0 = Date.now();
        await powerCut(old);
        // What the throttle still queues was in flight at the cut: a real power cut loses it, and
        // delivered late it would let the slow replica catch up before the election.
        await unthrottle([slow]);
        writableMs = await writableAgain(old, t0);
      } finally {
        await unthrottle([slow]);
        nextKey = await w.stop();
      }
      master = await converged([slow, fast]);
      assert.equal(master, fast, `the most advanced replica ${fast} is promoted`);
      const consistentMs = await consistent([slow, fast], t0);
      const lost = await lostAcked(master, w);
      console.log(
        `  power cut of ${old}: writable on ${master} after ${writableMs} ms, ${slow} consistent ` +
          `after ${consistentMs} ms; ${w.acked.length} acked, ${lost.length} acked rows lost (async)`,
      );
      const tr = Date.now();
      await standby(down1, false);
      await converged([slow, fast, down1]);
      const rejoinMs = await consistent([slow, fast, down1], tr);
      console.log(`  ${down1} (down during the switch) rejoined by GTID in ${rejoinMs} ms`);
      const fate = await bootAndJudge(old, master);
      if (fate.rejoined) {
        await consistent([slow, fast, down1, old], Date.now());
        console.log(`  old master ${old} held nothing extra: rejoined in ${fate.ms} ms`);
      } else {
        out.add(old);
        console.log(`  old master ${old} kept out after ${fate.ms} ms: ${fate.reason}`);
      }
      // Acknowledged rows the new master lacks were on the old master only: it must be kept out.
      if (lost.length > 0) assert.equal(fate.rejoined, false, "an old master with lost rows");
    });

    await t.step("a replica 100,000 transactions behind: master power-cut", async () => {
      const old = master;
      const [x, ...current] = await liveNodes([...out, old]);
      await sqlAt(WRITER_VIP, "CREATE TABLE test.bulk (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
      await sqlAt(
        WRITER_VIP,
        "CREATE PROCEDURE test.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; " +
          "WHILE i < n DO INSERT INTO test.bulk (v) VALUES (i); SET i = i + 1; END WHILE; END",
      );
      await consistent([old, x, ...current], Date.now());
      await sql(x, "STOP SLAVE IO_THREAD");
      const g0 = Date.now();
      await sqlAt(WRITER_VIP, "CALL test.fill(100000)", { timeoutMs: 300_000 });
      const genMs = Date.now() - g0;
      await consistent([old, ...current], Date.now());
      const [pos] = await sql(old, "SELECT @@global.gtid_binlog_pos AS p");
      const top = Number(/(?:^|,)0-\d+-(\d+)/.exec(String(pos.p))?.[1] ?? -1);
      const behind = top - (await receivedSeq(x));
      assert.ok(behind >= 100_000, `${x} is ${behind} transactions behind`);
      const t0 = Date.now();
      await powerCut(old);
      const w = new Writer(nextKey).start();
      let writableMs = 0;
      try {
        writableMs = await writableAgain(old, t0);
        await moreAcked(w, 20);
      } finally {
        nextKey = await w.stop();
      }
      master = await converged([x, ...current]);
      assert.notEqual(master, x, "the lagging replica is not promoted");
      await waitFor(async () => {
        const have = await compareData([master, x], ["test.bulk", TABLE]);
        return have.equal ? true : null;
      }, { timeoutMs: 120_000, what: `${x} caught up with ${master}` });
      const consistentMs = Date.now() - t0;
      assert.deepEqual(await lostAcked(master, w), []);
      console.log(
        `  100,000 transactions written in ${genMs} ms while ${x} received nothing ` +
          `(${behind} GTIDs behind ${old}); power cut of ${old}: writable on ${master} after ` +
          `${writableMs} ms; ${x} caught up by GTID, consistent ${consistentMs} ms after the cut`,
      );
      const fate = await bootAndJudge(old, master);
      if (!fate.rejoined) out.add(old);
      console.log(
        `  old master ${old}: ${fate.rejoined ? "rejoined" : `kept out: ${fate.reason}`}`,
      );
    });

    await t.step("old master with errant transactions: kept out, not readable", async () => {
      const old = master;
      const replicas = await liveNodes([...out, old]);
      const w = new Writer(nextKey).start();
      let writableMs = 0;
      try {
        await moreAcked(w, 20);
        for (const r of replicas) await throttle(r, old, 8);
        await moreAcked(w, 30, {
          what: "30 writes the replicas cannot keep up with",
        });
        const t0 = Date.now();
        await powerCut(old);
        // Drop what was in flight at the cut (see the first step).
        await unthrottle(replicas);
        writableMs = await writableAgain(old, t0);
      } finally {
        await unthrottle(replicas);
        nextKey = await w.stop();
      }
      master = await converged(replicas);
      const lost = await lostAcked(master, w);
      const fate = await bootAndJudge(old, master);
      console.log(
        `  power cut of ${old} while its replicas lagged: writable on ${master} after ` +
          `${writableMs} ms, ${lost.length} acked rows only on ${old}; kept out after ${fate.ms} ms: ` +
          fate.reason,
      );
      assert.ok(lost.length > 0, "the throttle left acknowledged rows on the old master only");
      assert.equal(fate.rejoined, false, "kept out");
      out.add(old);
      const attrs = (await crmMon()).nodes.find((n) => n.name === old)?.attributes ?? {};
      assert.notEqual(attrs.readable, "1", `${old} is not readable`);
      assert.ok(!(await promotedNode(RSC) === old));
      for (const l of agentLines(old, /errant GTIDs/).slice(-1)) {
        console.log(`    ${l.slice(0, 300)}`);
      }
      await consistent(replicas, Date.now());
    });

    await t.step("old master without errant transactions: rejoins by itself", async () => {
      const old = master;
      const replicas = await liveNodes([...out, old]);
      // Pause writes until every replica holds all of them: the old master then holds nothing
      // extra. The writer resumes at the power cut, during the failover.
      await consistent([old, ...replicas], Date.now());
      const t0 = Date.now();
      await powerCut(old);
      const w = new Writer(nextKey).start();
      let writableMs = 0;
      try {
        writableMs = await writableAgain(old, t0);
        await moreAcked(w, 20);
      } finally {
        nextKey = await w.stop();
      }
      master = await converged(replicas);
      const fate = await bootAndJudge(old, master);
      assert.equal(fate.rejoined, true, `${old} rejoins: ${fate.reason}`);
      const consistentMs = await consistent([old, ...replicas], t0);
      assert.deepEqual(await lostAcked(master, w), []);
      console.log(
        `  power cut of ${old} (nothing extra): writable on ${master} after ${writableMs} ms; ` +
          `${old} rejoined in ${fate.ms} ms; all consistent ${consistentMs} ms after the cut`,
      );
    });
  } catch (err) {
    await dump().catch(() => {});
    throw err;
  } finally {
    await down();
  }
});
