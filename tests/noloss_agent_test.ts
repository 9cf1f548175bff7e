/**
 * No acknowledged write left behind (issue 13), on the agent against real mariadbd with
 * Pacemaker's tools faked (fake_pacemaker.ts; the lab runs the real ones): a crashed master
 * restarted in place once per crash_restart_window, then failed over; the catch-up of a
 * promotee from an old master back read-only (its IO thread restarted out of its connect
 * retry); the cold-start wait; the disk-full guard; OCF_DEGRADED_PROMOTED while the latest
 * commits have no copy elsewhere. Asserted on codes, attributes, the state file and data.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { decodeCoordinates, encodeCoordinates } from "../position.ts";
import { decodePublishedPosition, encodePublishedPosition, IDLE_MARK, SCORE } from "../attrs.ts";
import {
  AgentSetup,
  assertCode,
  binlogPosition,
  describeRun,
  killAndWait,
  pointAt,
  replicaStatus,
  type SqlTarget,
  waitFor,
} from "./agent_harness.ts";
import { freePort, type MariadbServer, startMariadb } from "./mariadb_server.ts";

const PROMOTED_MONITOR = {
  OCF_RESKEY_CRM_meta_interval: "2000",
  OCF_RESKEY_CRM_meta_role: "Promoted",
};
const UNPROMOTED_MONITOR = {
  OCF_RESKEY_CRM_meta_interval: "3000",
  OCF_RESKEY_CRM_meta_role: "Unpromoted",
};

/** Where the server's last transaction (an Xid event) ends, by SHOW BINLOG EVENTS. */
async function lastCommitEnd(s: SqlTarget): Promise<{ file: string; pos: number }> {
  const logs = await s.query<{ Log_name: string }[]>("SHOW BINARY LOGS");
  for (const { Log_name: file } of [...logs].reverse()) {
    const events = await s.query<{ Event_type: string; End_log_pos: string }[]>(
      `SHOW BINLOG EVENTS IN '${file}'`,
    );
    const xid = events.filter((e) => e.Event_type === "Xid").at(-1);
    if (xid) return { file, pos: Number(xid.End_log_pos) };
  }
  throw new Error("No commit in the binary logs");
}

async function count(s: SqlTarget, table = "test.t"): Promise<number> {
  const [row] = await s.query<{ n: string | number }[]>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(row.n);
}

/** SIGKILL of the agent's server, as a crash or the OOM killer would. */
async function crash(s: AgentSetup): Promise<void> {
  const pid = s.serverPid();
  assert.ok(pid !== undefined, "a server runs");
  await killAndWait([pid]);
}

Deno.test("a crashed master is restarted in place once per window, then fails over handing over its commits", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nl-",
    clone: true,
    pacemaker: true,
    timeoutMs: 30_000,
  });
  const peer = (file: string, pos: number) =>
    encodePublishedPosition({ idle: false, masterHost: "nodeA", position: { file, pos } });

  await t.step("promoted, with 20 commits", async () => {
    assertCode(await s.run("start"), OCF.SUCCESS);
    assertCode(await s.run("promote"), OCF.SUCCESS);
    await s.query("CREATE DATABASE test");
    await s.query("CREATE TABLE test.t (k INT PRIMARY KEY)");
    for (let k = 1; k <= 20; k++) await s.query("INSERT INTO test.t VALUES (?)", [k]);
    assertCode(await s.run("monitor", PROMOTED_MONITOR), OCF.RUNNING_PROMOTED);
  });

  await t.step("kill -9: the promoted monitor reports not running and records it", async () => {
    await crash(s);
    assertCode(await s.run("monitor", PROMOTED_MONITOR), OCF.NOT_RUNNING);
    assert.equal(s.agentState().promotedFailure?.kind, "crashed");
    // A probe records nothing: it recovers nothing.
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
    assert.equal(s.agentState().promotedFailure?.kind, "crashed");
  });

  await t.step("demote is a no-op; the stop keeps the node first in line", async () => {
    assertCode(await s.run("demote"), OCF.SUCCESS);
    const r = await s.run("stop");
    assertCode(r, OCF.SUCCESS);
    assert.equal(s.score(), SCORE.LAST_MASTER, describeRun(r));
    const st = s.agentState();
    assert.equal(st.recovery?.decision, "in-place");
    assert.ok(st.lastInPlaceAt !== undefined && Date.now() - st.lastInPlaceAt < 60_000);
    assert.equal(st.promotedFailure, undefined, "consumed by the stop");
  });

  await t.step("start: back read-only, publishes where its commits end, stays first", async () => {
    const r = await s.run("start");
    assertCode(r, OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    assert.equal(await count(s), 20, "crash recovery kept every commit");
    const end = await lastCommitEnd(s);
    assert.deepEqual(decodeCoordinates(s.privateAttribute("final") ?? ""), {
      host: "nodeA",
      ...end,
    });
    assert.equal(s.score(), SCORE.LAST_MASTER, describeRun(r));
    assert.equal(s.cluster.nodeAttribute(s.names.notPromotable), undefined);
  });

  await t.step(
    "pre-promote: its last transaction's end is its position; a replica holding less does not win",
    async () => {
      const end = await lastCommitEnd(s);
      s.setPrivateAttribute("position", peer(end.file, end.pos - 100), "nodeB");
      const r = await s.run(
        "notify",
        s.notify("pre", "promote", {
          promote: ["nodeA"],
          active: ["nodeA", "nodeB"],
          unpromoted: ["nodeA", "nodeB"],
        }),
      );
      assertCode(r, OCF.SUCCESS);
      // In its own coordinates, and not the new binary log the restart opened: that one would
      // rank above any replica whatever they hold.
      assert.deepEqual(decodePublishedPosition(s.privateAttribute("position") ?? ""), {
        idle: false,
        masterHost: "nodeA",
        position: end,
      });
      assert.notDeepEqual(end, await binlogPosition(s));
      assert.equal(s.score(), SCORE.LAST_MASTER, "nobody holds more: the scores stay");
      assert.equal(s.score("nodeB"), undefined);
    },
  );

  await t.step(
    "a replica that received more than the restarted binary log holds wins",
    async () => {
      const end = await lastCommitEnd(s);
      s.setPrivateAttribute("position", peer(end.file, end.pos + 100), "nodeB");
      const r = await s.run(
        "notify",
        s.notify("pre", "promote", { promote: ["nodeA"], active: ["nodeA", "nodeB"] }),
      );
      assertCode(r, OCF.SUCCESS);
      assert.equal(s.score("nodeB"), SCORE.BETTER_PEER, describeRun(r));
      assert.equal(s.score(), SCORE.STEPPED_ASIDE);
      // Back as it was, for the in-place promote below.
      s.setScore(SCORE.LAST_MASTER);
      s.setScore(undefined, "nodeB");
      s.setPrivateAttribute("position", peer(end.file, end.pos - 100), "nodeB");
    },
  );

  await t.step("promote opens writes again; the recovery is over", async () => {
    const r = await s.run("promote");
    assertCode(r, OCF.SUCCESS);
    assert.equal(await s.readOnly(), 0);
    assert.equal(s.score(), SCORE.PROMOTED);
    assert.equal(decodeCoordinates(s.replInfo() ?? "")?.host, "nodeA");
    assert.equal(s.agentState().recovery, undefined);
    s.setPrivateAttribute("position", undefined, "nodeB");
  });

  await t.step("a second crash within crash_restart_window fails over", async () => {
    for (let k = 21; k <= 25; k++) await s.query("INSERT INTO test.t VALUES (?)", [k]);
    await crash(s);
    assertCode(await s.run("monitor", PROMOTED_MONITOR), OCF.NOT_RUNNING);
    assertCode(await s.run("demote"), OCF.SUCCESS);
    const stop = await s.run("stop");
    assertCode(stop, OCF.SUCCESS);
    assert.equal(s.score(), undefined, describeRun(stop));
    assert.equal(s.agentState().recovery?.decision, "failover");
    const start = await s.run("start");
    assertCode(start, OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    // Below every replica, and it says where its commits end for the new master to receive.
    assert.equal(s.score(), SCORE.IDLE, describeRun(start));
    assert.deepEqual(decodeCoordinates(s.privateAttribute("final") ?? ""), {
      host: "nodeA",
      ...(await lastCommitEnd(s)),
    });
    const pre = await s.run(
      "notify",
      s.notify("pre", "promote", { promote: ["nodeB"], active: ["nodeA", "nodeB"] }),
    );
    assertCode(pre, OCF.SUCCESS);
    assert.equal(s.privateAttribute("position"), IDLE_MARK, "not a candidate in the election");
  });

  await t.step("with try_restart_crashed_master=false the first crash fails over", async () => {
    s.writeAgentState({ promotedFailure: { kind: "crashed", at: Date.now() } });
    s.setReplInfo(encodeCoordinates({ host: "nodeA", ...(await binlogPosition(s)) }));
    const r = await s.run("stop", { OCF_RESKEY_try_restart_crashed_master: "false" });
    assertCode(r, OCF.SUCCESS);
    assert.equal(s.agentState().recovery?.decision, "failover");
    assert.equal(s.score(), undefined);
    // Another stop within the same recovery (Pacemaker re-placing clone instances before the
    // promote) keeps what the first one decided.
    s.writeAgentState({ recovery: { decision: "in-place", at: Date.now() - 5_000 } });
    assertCode(await s.run("stop"), OCF.SUCCESS);
    assert.equal(s.agentState().recovery?.decision, "in-place");
    assert.equal(s.score(), SCORE.LAST_MASTER);
    // A stop later on (standby, a move) ends it and deletes the score, as always.
    s.writeAgentState({ recovery: { decision: "in-place", at: Date.now() - 11 * 60_000 } });
    assertCode(await s.run("stop"), OCF.SUCCESS);
    assert.equal(s.agentState().recovery, undefined);
    assert.equal(s.score(), undefined);
  });
});

/**
 * A TCP relay from a port of its own to the old master's port: closing it drops the replica's
 * connection and refuses new ones (its IO thread then sleeps its connect retry), opening it
 * again on the same port lets the old master be reached.
 */
class Relay {
  #listener?: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  readonly port: number;
  readonly target: number;

  constructor(port: number, target: number) {
    this.port = port;
    this.target = target;
  }

  open(): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.#listener = listener;
    (async () => {
      for await (const conn of listener) {
        this.#conns.add(conn);
        Deno.connect({ hostname: "127.0.0.1", port: this.target }).then((up) => {
          this.#conns.add(up);
          conn.readable.pipeTo(up.writable).catch(() => {});
          up.readable.pipeTo(conn.writable).catch(() => {});
        }, () => conn.close());
      }
    })().catch(() => {});
  }

  close(): void {
    this.#listener?.close();
    this.#listener = undefined;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Closed by its peer already.
      }
    }
    this.#conns.clear();
  }
}

Deno.test("catch-up: before opening writes the promotee receives the old master's last commits", async () => {
  // The old master's node name is its address here, as the replica's Master_Host says.
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nlc-",
    clone: true,
    pacemaker: { nodes: ["nodeA", "nodeB", "127.0.0.1"] },
    timeoutMs: 60_000,
    params: { catchup_timeout: "30" },
  });
  let old: MariadbServer | undefined;
  let relay: Relay | undefined;
  try {
    old = await startMariadb({ serverId: 21, binlogFormat: "ROW" });
    const login = { user: "repl", password: old.replicationPassword };
    await old.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [login.user, login.password]);
    await old.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [login.user]);
    const from = await binlogPosition(old);
    await old.query("CREATE DATABASE test");
    await old.query("CREATE TABLE test.t (k INT PRIMARY KEY)");
    relay = new Relay(freePort(), old.port);
    relay.open();
    assertCode(await s.run("start"), OCF.SUCCESS);
    await old.query("INSERT INTO test.t VALUES (1), (2), (3)");
    await pointAt(s, { port: relay.port, login, ...from, connectRetry: 60 });
    await waitFor("the replica to apply the first rows", async () => await count(s) === 3);

    // The old master fails: its replica loses it, tries once at once, then sleeps 60 s.
    relay.close();
    await waitFor("the IO thread in its connect retry", async () => {
      const st = await replicaStatus(s);
      return st.Slave_IO_Running === "Connecting" && Number(st.Last_IO_Errno) !== 0;
    });
    // Commits the replica never received: they exist on the old master only.
    for (let k = 4; k <= 23; k++) await old.query("INSERT INTO test.t VALUES (?)", [k]);
    const end = await lastCommitEnd(old);
    assert.equal(await count(s), 3);
    // Its server is back (read-only, for this purpose): reachable again, and it publishes where
    // its commits end a moment into the notification, as a start in the same transition does.
    relay.open();
    const publishing = new Promise((r) => setTimeout(r, 1_500)).then(() =>
      s.setPrivateAttribute("final", encodeCoordinates({ host: "127.0.0.1", ...end }), "127.0.0.1")
    );
    const pre = await s.run(
      "notify",
      s.notify("pre", "promote", {
        promote: ["nodeA"],
        start: ["127.0.0.1"],
        active: ["nodeA"],
      }),
    );
    await publishing;
    assertCode(pre, OCF.SUCCESS);
    // It received everything (restarted out of its 60 s retry, well inside catchup_timeout).
    assert.deepEqual(decodePublishedPosition(s.privateAttribute("position") ?? ""), {
      idle: false,
      masterHost: "127.0.0.1",
      position: end,
    }, describeRun(pre));
    const promote = await s.run("promote");
    assertCode(promote, OCF.SUCCESS);
    assert.equal(await s.readOnly(), 0);
    assert.equal(await count(s), 23, "every commit of the old master, applied before writes");
    assert.deepEqual(await replicaStatus(s), {}, "replication reset");
  } finally {
    relay?.close();
    await old?.stop();
  }
});

Deno.test("cold start: a replica withholds its score while the last master runs no instance", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nlcs-",
    clone: true,
    pacemaker: true,
    timeoutMs: 30_000,
    params: { cold_start_timeout: "4" },
  });
  const names = s.names;
  const reason = () => s.cluster.nodeAttribute(names.notPromotable);

  await t.step("a brand-new cluster never waits", async () => {
    assertCode(await s.run("start"), OCF.SUCCESS);
    assert.equal(s.score(), SCORE.IDLE);
    assert.equal(s.agentState().coldStart, undefined);
    assertCode(await s.run("stop"), OCF.SUCCESS);
  });

  await t.step("the published master runs no instance: cold-start-wait", async () => {
    s.setReplInfo("nodeB|mysql-bin.000001|4");
    const r = await s.run("start");
    assertCode(r, OCF.SUCCESS);
    assert.equal(s.score(), undefined, describeRun(r));
    assert.equal(reason(), "cold-start-wait");
    assert.equal(s.agentState().coldStart?.master, "nodeB");
    assertCode(await s.run("monitor", UNPROMOTED_MONITOR), OCF.SUCCESS);
    assert.equal(reason(), "cold-start-wait");
  });

  await t.step("the master is back: the wait ends", async () => {
    s.setScore(SCORE.LAST_MASTER, "nodeB");
    const r = await s.run("monitor", UNPROMOTED_MONITOR);
    assertCode(r, OCF.SUCCESS);
    assert.equal(reason(), undefined, describeRun(r));
    assert.ok((s.score() ?? 0) > 0, describeRun(r));
    assert.equal(s.agentState().coldStart, undefined);
  });

  await t.step("the master never returns: the wait ends at cold_start_timeout", async () => {
    assertCode(await s.run("stop"), OCF.SUCCESS);
    s.setScore(undefined, "nodeB");
    const t0 = Date.now();
    assertCode(await s.run("start"), OCF.SUCCESS);
    assert.equal(reason(), "cold-start-wait");
    await waitFor("the cold start wait to end", async () => {
      const r = await s.run("monitor", UNPROMOTED_MONITOR);
      assertCode(r, OCF.SUCCESS);
      return reason() === undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(Date.now() - t0 >= 4_000, "not before cold_start_timeout");
    assert.ok((s.score() ?? 0) > 0);
  });
});

Deno.test("disk-full guard: a full replica is never promoted nor read; a full master hands over", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nld-",
    clone: true,
    pacemaker: true,
    timeoutMs: 30_000,
  });
  // This host's filesystem is more than 1% used: threshold 1 makes it "full", 0 turns it off.
  const full = { OCF_RESKEY_disk_full_threshold: "1" };

  await t.step(
    "an unpromoted node on a full disk: no score, reason disk-full, not readable",
    async () => {
      assertCode(await s.run("start"), OCF.SUCCESS);
      assert.equal(s.score(), SCORE.IDLE);
      const r = await s.run("monitor", { ...UNPROMOTED_MONITOR, ...full });
      assertCode(r, OCF.SUCCESS);
      assert.equal(s.score(), undefined, describeRun(r));
      assert.equal(s.cluster.nodeAttribute(s.names.notPromotable), "disk-full");
      assert.equal(s.readable(), "0");
      assertCode(await s.run("monitor", UNPROMOTED_MONITOR), OCF.SUCCESS);
      assert.equal(s.score(), SCORE.IDLE, "back once there is room");
    },
  );

  await t.step(
    "the promoted node on a full disk fails its monitor; demote and stop withdraw its score",
    async () => {
      assertCode(await s.run("promote"), OCF.SUCCESS);
      const r = await s.run("monitor", { ...PROMOTED_MONITOR, ...full });
      assertCode(r, OCF.ERR_GENERIC);
      assert.match(r.exitReason ?? "", /Disk full: datadir filesystem \d+% full/);
      // The score stays until the demote: withdrawn by the monitor, it would make Pacemaker
      // cancel this monitor before it reports.
      assert.equal(s.score(), SCORE.PROMOTED);
      assert.equal(s.cluster.nodeAttribute(s.names.notPromotable), "disk-full");
      assert.equal(s.agentState().promotedFailure?.kind, "disk-full");
      // Pacemaker demotes it: the demote publishes where writes stopped, for the promotee, and
      // leaves it below every healthy replica.
      assertCode(await s.run("demote", full), OCF.SUCCESS);
      assert.equal(decodeCoordinates(s.privateAttribute("final") ?? "")?.host, "nodeA");
      assert.ok((s.score() ?? 0) < SCORE.REPLICA, `score after the demote: ${s.score()}`);
      assertCode(await s.run("stop", full), OCF.SUCCESS);
      assert.equal(s.agentState().recovery?.decision, "failover", "never restarted in place");
      assert.equal(s.score(), undefined);
    },
  );
});

Deno.test("OCF_DEGRADED_PROMOTED while the latest commits have no copy on a replica", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nlg-",
    clone: true,
    pacemaker: true,
    timeoutMs: 30_000,
    params: { semi_sync: "true", semi_sync_timeout: "500" },
  });
  const monitor = { ...PROMOTED_MONITOR, OCF_RESKEY_CRM_meta_clone_max: "3" };
  let replica: MariadbServer | undefined;
  const semiSync = async () => {
    const [row] = await s.query<{ Value: string }[]>(
      "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'",
    );
    return row?.Value;
  };
  try {
    await t.step("a new master gives its replicas time to connect", async () => {
      assertCode(await s.run("start"), OCF.SUCCESS);
      assertCode(await s.run("promote"), OCF.SUCCESS);
      assertCode(await s.run("monitor", monitor), OCF.RUNNING_PROMOTED);
    });

    await t.step("no replica connected: 191 with the reason", async () => {
      const st = s.agentState();
      s.writeAgentState({ ...st, promotedAt: Date.now() - 120_000 });
      const r = await s.run("monitor", monitor);
      assertCode(r, OCF.DEGRADED_PROMOTED);
      assert.match(r.exitReason ?? "", /No replica is connected/);
      // A clone of one has no replica to wait for.
      assertCode(
        await s.run("monitor", { ...monitor, OCF_RESKEY_CRM_meta_clone_max: "1" }),
        OCF.RUNNING_PROMOTED,
      );
    });

    await t.step("a semi-sync replica connected: 8", async () => {
      replica = await startMariadb({
        serverId: 31,
        extraArgs: ["--rpl-semi-sync-slave-enabled=ON"],
      });
      await s.query("CREATE DATABASE test");
      await s.query("CREATE TABLE test.t (k INT PRIMARY KEY)");
      await pointAt(replica, {
        port: s.port,
        login: s.replication!,
        file: "mysql-bin.000001",
        pos: 4,
      });
      await waitFor("semi-sync on with the replica", async () => {
        await s.query("INSERT INTO test.t SELECT COALESCE(MAX(k), 0) + 1 FROM test.t");
        return await semiSync() === "ON" && await count(replica!) === await count(s);
      });
      assertCode(await s.run("monitor", monitor), OCF.RUNNING_PROMOTED);
    });

    await t.step("every replica lagging past max_slave_lag: 191", async () => {
      /** Ages the monitor's copy of the replicas' reasons past its 30 s. */
      const expireReasons = () => {
        const state = s.agentState();
        assert.ok(state.replicaReasons !== undefined, "the promoted monitor keeps what it read");
        s.writeAgentState({ ...state, replicaReasons: { ...state.replicaReasons, at: 0 } });
      };
      s.cluster.setNodeAttribute(s.names.notPromotable, "lagging", "nodeB");
      // Within 30 s of its last read the monitor reuses it (a tool call saved per monitor).
      assertCode(await s.run("monitor", monitor), OCF.RUNNING_PROMOTED);
      expireReasons();
      const r = await s.run("monitor", monitor);
      assertCode(r, OCF.DEGRADED_PROMOTED);
      assert.match(r.exitReason ?? "", /Every replica lags past max_slave_lag/);
      s.cluster.setNodeAttribute(s.names.notPromotable, undefined, "nodeB");
      expireReasons();
      assertCode(await s.run("monitor", monitor), OCF.RUNNING_PROMOTED);
    });

    await t.step(
      "semi-sync falls back to asynchronous: 191, and 8 when the replica returns",
      async () => {
        await replica!.query("STOP SLAVE IO_THREAD");
        // The commit waits semi_sync_timeout (500 ms) for an acknowledgement, then falls back.
        await s.query("INSERT INTO test.t SELECT MAX(k) + 1 FROM test.t");
        assert.equal(await semiSync(), "OFF");
        const r = await s.run("monitor", monitor);
        assertCode(r, OCF.DEGRADED_PROMOTED);
        assert.match(r.exitReason ?? "", /Semi-sync fell back to asynchronous/);
        await replica!.query("START SLAVE IO_THREAD");
        await waitFor("semi-sync back on", async () => {
          await s.query("INSERT INTO test.t SELECT MAX(k) + 1 FROM test.t");
          return await semiSync() === "ON";
        });
        assertCode(await s.run("monitor", monitor), OCF.RUNNING_PROMOTED);
      },
    );
  } finally {
    await replica?.stop();
  }
});

Deno.test("a master demoted on purpose (a switchover) is no last-master candidate", async () => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-nls-",
    clone: true,
    pacemaker: true,
    timeoutMs: 30_000,
  });
  assertCode(await s.run("start"), OCF.SUCCESS);
  assertCode(await s.run("promote"), OCF.SUCCESS);
  await s.query("CREATE DATABASE test");
  assertCode(await s.run("demote"), OCF.SUCCESS);
  assert.equal(decodeCoordinates(s.replInfo() ?? "")?.host, "nodeA", "still the published one");
  // Until the new master's promote publishes itself, the demoted one stays below every replica.
  assertCode(await s.run("monitor", UNPROMOTED_MONITOR), OCF.SUCCESS);
  assert.equal(s.score(), SCORE.IDLE);
  const pre = await s.run(
    "notify",
    s.notify("pre", "promote", { promote: ["nodeB"], active: ["nodeA", "nodeB"] }),
  );
  assertCode(pre, OCF.SUCCESS);
  assert.equal(s.privateAttribute("position"), IDLE_MARK);
});
