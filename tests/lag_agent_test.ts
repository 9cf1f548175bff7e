/**
 * The agent's heartbeat hooks (heartbeat=true) against real servers, with Pacemaker's tools
 * replaced by the file-backed fakes of fake_pacemaker.ts (a one-node cluster): promote creates the
 * writer, the promoted monitor repairs it, demote disables it without binlogging; on a replica
 * whose master froze (IO thread connected, Seconds_Behind_Master 0), monitor keeps the replica
 * readable when lag comes from Seconds_Behind_Master and takes the reader attribute and the
 * promotion score away when it comes from the heartbeat.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { SCORE } from "../attrs.ts";
import { MysqlClient } from "../mysql.ts";
import { heartbeatLagSeconds, heartbeatReadSql, startHeartbeat } from "../heartbeat.ts";
import { type MariadbServer, startMariadb } from "./mariadb_server.ts";
import {
  AgentSetup,
  assertCode,
  binlogPosition,
  pointAt,
  replicaStatus,
  waitFor,
} from "./agent_harness.ts";

const EVENT_STATUS = "SELECT @@global.event_scheduler AS sch, (SELECT STATUS FROM " +
  "information_schema.EVENTS WHERE EVENT_NAME = 'heartbeat_prm_writer') AS st";
const PROMOTED = { OCF_RESKEY_CRM_meta_role: "Promoted", OCF_RESKEY_CRM_meta_interval: "2000" };
const UNPROMOTED = { OCF_RESKEY_CRM_meta_role: "Unpromoted", OCF_RESKEY_CRM_meta_interval: "3000" };

Deno.test({
  name:
    "agent heartbeat hooks: promote writes, monitor repairs, demote stops, replicas use the lag",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-lag-agent-",
    clone: true,
    pacemaker: { nodes: ["nodeA"] },
    myCnf: ["log_slave_updates = ON"],
    params: { heartbeat: "true", max_slave_lag: "3" },
    timeoutMs: 20_000,
  });
  let master: MariadbServer | undefined;
  try {
    await t.step("promote starts the writer; the promoted monitor repairs it", async () => {
      assertCode(await s.run("start"), OCF.SUCCESS);
      assertCode(await s.run("promote"), OCF.SUCCESS);
      assert.deepEqual(await s.query(EVENT_STATUS), [{ sch: "ON", st: "ENABLED" }]);
      await waitFor("a heartbeat row of server 11", async () => {
        const rows = await s.query("SELECT ts FROM percona.heartbeat WHERE server_id = 11");
        return rows.length === 1;
      }, { timeoutMs: 10_000 });
      await s.query("ALTER EVENT percona.heartbeat_prm_writer DISABLE");
      assertCode(await s.run("monitor", PROMOTED), OCF.RUNNING_PROMOTED);
      assert.deepEqual(await s.query(EVENT_STATUS), [{ sch: "ON", st: "ENABLED" }]);
    });

    await t.step("demote disables the writer and logs nothing to the binlog for it", async () => {
      assertCode(await s.run("demote"), OCF.SUCCESS);
      const before = await binlogPosition(s);
      assert.deepEqual(await s.query(EVENT_STATUS), [{ sch: "ON", st: "DISABLED" }]);
      // Longer than the writer's 1 s interval: a write would have happened by now.
      await new Promise((r) => setTimeout(r, 1_500));
      assert.deepEqual(await binlogPosition(s), before);
    });

    await t.step(
      "a replica of a frozen master: readable by SBM, not by the heartbeat",
      async () => {
        master = await startMariadb({ serverId: 21 });
        const mc = await MysqlClient.connect({ socket: master.socket, user: "root", password: "" });
        try {
          await startHeartbeat(mc, { table: "percona.heartbeat", intervalSeconds: 1 });
        } finally {
          await mc.close();
        }
        const login = s.replication!;
        await master.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [
          login.user,
          login.password,
        ]);
        await master.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [login.user]);
        const file = master.binlogFiles()[0].split("/").pop()!;
        await pointAt(s, { port: master.port, login, file, pos: 4 });
        const lag = async () => {
          const [row] = await s.query(heartbeatReadSql("percona.heartbeat", 21));
          return row ? heartbeatLagSeconds(String(row.ts), String(row.now)) ?? 99 : 99;
        };
        await waitFor("a fresh heartbeat from server 21", async () => (await lag()) < 2, {
          timeoutMs: 20_000,
        });
        assertCode(await s.run("monitor", UNPROMOTED), OCF.SUCCESS);
        assert.equal(s.readable(), "1");
        assert.equal(s.score(), SCORE.REPLICA);

        Deno.kill(master.pid, "SIGSTOP");
        try {
          await waitFor("heartbeat lag over 4 s", async () => (await lag()) > 4, {
            timeoutMs: 20_000,
          });
          const st = await replicaStatus(s);
          assert.equal(st.Slave_IO_Running, "Yes");
          assert.equal(Number(st.Seconds_Behind_Master), 0);
          let r = await s.run("monitor", { ...UNPROMOTED, OCF_RESKEY_heartbeat: "false" });
          assertCode(r, OCF.SUCCESS);
          assert.equal(s.readable(), "1", "Seconds_Behind_Master 0: readable");
          r = await s.run("monitor", UNPROMOTED);
          assertCode(r, OCF.SUCCESS);
          assert.equal(s.readable(), "0", "heartbeat lag > 3 s: not readable");
          assert.equal(s.score(), undefined, "and never promoted");
          console.log(
            `  frozen master: heartbeat lag ${(await lag()).toFixed(1)} s, Seconds_Behind_Master 0`,
          );
        } finally {
          Deno.kill(master.pid, "SIGCONT");
        }
        await waitFor("the lag back under 2 s", async () => (await lag()) < 2, {
          timeoutMs: 20_000,
        });
        assertCode(await s.run("monitor", UNPROMOTED), OCF.SUCCESS);
        assert.equal(s.readable(), "1");
        assert.equal(s.score(), SCORE.REPLICA);
      },
    );
  } finally {
    await master?.stop();
  }
});
