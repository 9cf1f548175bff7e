/**
 * Semi-synchronous replication on the lab (5 nodes, fencing on, GTID mode, a writer through the
 * writer VIP that records which commits were acknowledged): the master is power-cut during a
 * steady write load with semi_sync=true, then the same with semi_sync=false. With semi-sync, no
 * acknowledged row may be missing on the new master; without it, the number lost is reported.
 *
 * On this loopback lab a replica receives each event within microseconds, so the asynchronous
 * window is tiny and the plain test often loses nothing. Each mode therefore runs a second cut
 * with the window made visible: the replicas' share of the master's MySQL traffic is throttled to
 * 8 kbit/s (tc htb on the host side of their veth), as a slow or congested replica link would.
 * Asynchronous replication then acknowledges commits no replica has; semi-sync makes the commits
 * wait for a replica instead (fewer commits per second, none lost). The throttle lasts 2 s, far
 * below semi_sync_timeout (10 s), so semi-sync never falls back to asynchronous during the test.
 *
 * An old master that comes back holding binlogged but unacknowledged transactions (AFTER_SYNC
 * writes the binlog before it waits) is kept out as errant; one that holds nothing extra rejoins.
 */
import assert from "node:assert/strict";
import {
  down,
  dump,
  exec,
  loadAgent,
  powerCut,
  promotedNode,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

import {
  bootAndJudge,
  consistent,
  converged,
  liveNodes,
  lostAcked,
  RSC,
  TABLE,
  throttle,
  unthrottle,
  writableAgain,
  Writer,
} from "./scenario.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");

/** Semi-sync state of the master: enabled, active, connected semi-sync replicas, wait point. */
async function semiSyncState(master: string): Promise<Record<string, string>> {
  const [v] = await sql(
    master,
    "SELECT @@global.rpl_semi_sync_master_enabled AS enabled, " +
      "@@global.rpl_semi_sync_master_wait_point AS wait_point, " +
      "@@global.rpl_semi_sync_master_timeout AS timeout",
  );
  const status = await sql(master, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'");
  const out: Record<string, string> = {
    enabled: String(v.enabled),
    wait_point: String(v.wait_point),
    timeout: String(v.timeout),
  };
  for (const r of status) {
    out[String(r.Variable_name).replace(/^Rpl_semi_sync_master_/, "")] = String(r.Value);
  }
  return out;
}

interface CutResult {
  semiSync: boolean;
  throttled: boolean;
  acked: number;
  rate: number;
  lost: number[];
  writableMs: number;
  consistentMs: number;
  oldMaster: string;
  rejoined: boolean;
}

/**
 * One power cut of the master under a steady write load (optionally with the replicas' stream
 * throttled for the last 2 s), the failover, and the old master's return.
 */
async function cutUnderLoad(
  master: string,
  out: Set<string>,
  options: { semiSync: boolean; throttled: boolean; firstKey: number },
): Promise<{ result: CutResult; master: string; nextKey: number }> {
  const old = master;
  const replicas = await liveNodes([...out, old]);
  const w = new Writer(options.firstKey).start();
  let writableMs = 0;
  let t0 = 0;
  let nextKey = options.firstKey;
  let rate = 0;
  try {
    const ts = Date.now();
    await waitFor(() => Date.now() - ts >= 3_000 ? true : null, {
      timeoutMs: 5_000,
      what: "3 s of steady writes",
    });
    rate = Math.round(w.acked.length / ((Date.now() - ts) / 1000));
    if (options.throttled) {
      for (const r of replicas) await throttle(r, old, 8);
      const tt = Date.now();
      await waitFor(() => Date.now() - tt >= 2_000 ? true : null, {
        timeoutMs: 5_000,
        what: "2 s of throttled replication",
      });
    }
    t0 = Date.now();
    await powerCut(old);
    writableMs = await writableAgain(old, t0);
  } finally {
    await unthrottle(replicas);
    nextKey = await w.stop();
  }
  const now = await converged(replicas);
  const lost = await lostAcked(now, w);
  const consistentMs = await consistent(replicas, t0);
  const fate = await bootAndJudge(old, now);
  if (fate.rejoined) await consistent([...replicas, old], Date.now());
  else out.add(old);
  const result: CutResult = {
    semiSync: options.semiSync,
    throttled: options.throttled,
    acked: w.acked.length,
    rate,
    lost,
    writableMs,
    consistentMs,
    oldMaster: old,
    rejoined: fate.rejoined,
  };
  console.log(
    `  semi_sync=${options.semiSync}${options.throttled ? " + 2 s throttled replicas" : ""}: ` +
      `${w.acked.length} acked (${rate}/s before the fault), ${lost.length} acked rows lost` +
      `${
        lost.length ? ` (${lost.slice(0, 10).join(",")}${lost.length > 10 ? ",..." : ""})` : ""
      }; ` +
      `writable on ${now} after ${writableMs} ms, replicas consistent after ${consistentMs} ms; ` +
      `old master ${old} ${
        fate.rejoined ? "rejoined" : `kept out (${fate.reason})`
      } in ${fate.ms} ms`,
  );
  return { result, master: now, nextKey };
}

Deno.test({
  name: "semi-sync on the lab: no acknowledged commit lost with it; losses without it reported",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 5, waitFreeMs: LAB_WAIT_MS });
  let nextKey = 1;
  const out = new Set<string>();
  const results: CutResult[] = [];
  try {
    await loadAgent({
      agent: "prm",
      params: {
        replication_mode: "gtid",
        semi_sync: "true",
        additional_parameters: "--gtid-strict-mode=ON",
      },
    });
    let master = await converged(lab.nodes);
    await sqlAt(WRITER_VIP, `CREATE TABLE IF NOT EXISTS ${TABLE} (k INT PRIMARY KEY)`);
    for (const semiSync of [true, false]) {
      await t.step(`semi_sync=${semiSync}: power cuts under a steady write load`, async () => {
        if (!semiSync) {
          await exec(master, [
            "crm_resource",
            "-r",
            RSC,
            "--set-parameter",
            "semi_sync",
            "--parameter-value",
            "false",
          ], { check: true });
          // semi_sync is reloadable: reload-agent turns it off on every node, and each replica
          // reconnects its IO thread so that it no longer registers as a semi-sync client.
          await waitFor(async () => {
            const m = await promotedNode(RSC);
            if (m === null) return null;
            const s = await semiSyncState(m).catch(() => null);
            return s !== null && s.clients === "0" ? true : null;
          }, { timeoutMs: 120_000, what: "no semi-sync replica after semi_sync=false" });
          master = await converged(await liveNodes([...out]));
          // The restarted master keeps semi-sync enabled in its running server only if nobody
          // turned it off: the agent leaves it untouched, but no replica acknowledges anymore.
        }
        const st = await waitFor(async () => {
          const s = await semiSyncState(master);
          if (!semiSync) return s;
          return s.enabled === "1" && s.status === "ON" && Number(s.clients) >= 1 ? s : null;
        }, { timeoutMs: 30_000, what: `semi-sync ${semiSync ? "active" : "state"} on ${master}` });
        console.log(`  ${master} semi-sync state: ${JSON.stringify(st)}`);
        if (semiSync) assert.equal(st.wait_point, "AFTER_SYNC");
        for (const throttled of [false, true]) {
          const r = await cutUnderLoad(master, out, { semiSync, throttled, firstKey: nextKey });
          master = r.master;
          nextKey = r.nextKey;
          results.push(r.result);
          if (semiSync) {
            assert.deepEqual(r.result.lost, [], "no acknowledged row lost with semi-sync");
          }
        }
      });
    }
    const off = results.filter((r) => !r.semiSync);
    console.log(
      "  summary: " +
        results.map((r) =>
          `semi_sync=${r.semiSync}${r.throttled ? "+throttle" : ""}: ${r.lost.length}/${r.acked} ` +
          `acked lost, ${r.rate} commits/s, writable ${r.writableMs} ms`
        ).join("; "),
    );
    // The throttled asynchronous cut must show the window the test exists to detect.
    assert.ok(off.some((r) => r.throttled && r.lost.length > 0), "async + throttle loses rows");
  } catch (err) {
    await dump().catch(() => {});
    throw err;
  } finally {
    await down();
  }
});
