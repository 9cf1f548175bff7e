import assert from "node:assert/strict";
import {
  assessReplica,
  checkPromotee,
  nextReaderState,
  relayApplied,
  replicaCandidacy,
} from "../election.ts";
import { SCORE } from "../attrs.ts";
import type { ReplicaStatus } from "../sql.ts";

function status(over: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return {
    masterHost: "prm1",
    masterPort: 3306,
    ioRunning: "Yes",
    sqlRunning: true,
    lastIoErrno: 0,
    lastIoError: "",
    lastSqlErrno: 0,
    lastSqlError: "",
    secondsBehind: 0,
    masterLogFile: "mysql-bin.000002",
    readMasterLogPos: 500,
    relayMasterLogFile: "mysql-bin.000002",
    execMasterLogPos: 500,
    sqlState: "",
    gtidIoPos: "",
    relayLogFile: "relay-bin.000002",
    relayLogPos: 600,
    ...over,
  };
}

Deno.test("relayApplied compares executed and received positions", () => {
  assert.equal(relayApplied(status()), true);
  assert.equal(relayApplied(status({ execMasterLogPos: 400 })), false);
  assert.equal(
    relayApplied(status({ relayMasterLogFile: "mysql-bin.000001", execMasterLogPos: 900 })),
    false,
  );
});

Deno.test("relayApplied: a transaction cut short counts as the end only once nothing arrives", () => {
  const idle = "Slave has read all relay log; waiting for more updates";
  // The master died mid-transaction: its first events were received, its end never will be.
  const torn = { execMasterLogPos: 400, sqlState: idle };
  assert.equal(relayApplied(status({ ...torn, ioRunning: "Connecting" })), true);
  assert.equal(relayApplied(status({ ...torn, ioRunning: "No" })), true);
  // Still receiving: the SQL thread may not have woken up for events just written.
  assert.equal(relayApplied(status({ ...torn, ioRunning: "Yes" })), false);
  // A stopped SQL thread has applied nothing more, whatever its last state said.
  assert.equal(relayApplied(status({ ...torn, ioRunning: "No", sqlRunning: false })), false);
});

Deno.test("assessReplica: broken threads and lag remove eligibility; a lost master does not", () => {
  const opts = { maxLag: 60 };
  assert.deepEqual(
    [assessReplica(status(), opts).healthy, assessReplica(status(), opts).readable],
    [true, true],
  );
  const sqlBroken = assessReplica(
    status({ sqlRunning: false, lastSqlErrno: 1062, lastSqlError: "Duplicate" }),
    opts,
  );
  assert.equal(sqlBroken.healthy, false);
  assert.equal(sqlBroken.state, "sql-broken");
  assert.equal(assessReplica(status({ sqlRunning: false }), opts).healthy, false);
  const ioFatal = assessReplica(status({ ioRunning: "No", lastIoErrno: 1236 }), opts);
  assert.deepEqual([ioFatal.healthy, ioFatal.state], [false, "io-broken"]);
  const ioStopped = assessReplica(status({ ioRunning: "No" }), opts);
  assert.deepEqual([ioStopped.healthy, ioStopped.state], [false, "io-stopped"]);
  const connecting = assessReplica(
    status({ ioRunning: "Connecting", lastIoErrno: 2003, secondsBehind: null }),
    opts,
  );
  assert.deepEqual(
    [connecting.healthy, connecting.readable, connecting.state],
    [true, false, "master-unreachable"],
  );
  const lagging = assessReplica(status({ secondsBehind: 61 }), opts);
  assert.deepEqual(
    [lagging.healthy, lagging.readable, lagging.outdated, lagging.state],
    [false, false, true, "lagging"],
  );
  assert.equal(assessReplica(status({ secondsBehind: 60 }), opts).readable, true);
});

Deno.test("checkPromotee: the promotee must hold at least as much as every peer of its master", () => {
  const p = (node: string, file: string, pos: number, masterHost = "prm1") => ({
    node,
    masterHost,
    position: { file, pos },
  });
  const mine = p("prm2", "mysql-bin.000002", 500);
  assert.equal(checkPromotee({ self: "prm2", mine, peers: [] }).proceed, true);
  assert.equal(
    checkPromotee({ self: "prm2", mine, peers: [p("prm3", "mysql-bin.000002", 500)] }).proceed,
    true,
  );
  assert.equal(
    checkPromotee({ self: "prm2", mine, peers: [p("prm3", "mysql-bin.000002", 400)] }).proceed,
    true,
  );
  const worse = checkPromotee({
    self: "prm2",
    mine,
    peers: [p("prm3", "mysql-bin.000002", 600), p("prm4", "mysql-bin.000003", 4)],
  });
  assert.equal(worse.proceed, false);
  assert.equal(worse.better?.node, "prm4");
  // Peers of another master, or of the promotee itself, are not comparable.
  assert.equal(
    checkPromotee({ self: "prm2", mine, peers: [p("prm3", "mysql-bin.000009", 1, "prmX")] })
      .proceed,
    true,
  );
  assert.equal(
    checkPromotee({ self: "prm2", peers: [p("prm3", "mysql-bin.000009", 1, "prm2")] }).proceed,
    true,
  );
  // An idle promotee loses to a replica of a third node.
  const idle = checkPromotee({ self: "prm2", peers: [p("prm3", "mysql-bin.000001", 4)] });
  assert.equal(idle.proceed, false);
  assert.equal(checkPromotee({ self: "prm2", peers: [] }).proceed, true);
});

Deno.test("reader hysteresis needs reader_failcount failures in a row", () => {
  let s = { readable: true, failures: 0 };
  s = nextReaderState(s, false, 3);
  assert.deepEqual(s, { readable: true, failures: 1 });
  s = nextReaderState(s, false, 3);
  assert.equal(s.readable, true);
  s = nextReaderState(s, false, 3);
  assert.deepEqual(s, { readable: false, failures: 3 });
  s = nextReaderState(s, true, 3);
  assert.deepEqual(s, { readable: true, failures: 0 });
  assert.equal(nextReaderState({ readable: true, failures: 0 }, false, 1).readable, false);
});

Deno.test("candidacy: a score for healthy and idle nodes, a typed reason for the others", () => {
  const opts = { maxLag: 60 };
  assert.deepEqual(replicaCandidacy({}), { score: SCORE.IDLE });
  assert.deepEqual(replicaCandidacy({ health: assessReplica(status(), opts) }), {
    score: SCORE.REPLICA,
  });
  assert.deepEqual(
    replicaCandidacy({ health: assessReplica(status(), opts), repaired: true }),
    { score: SCORE.REPAIRED_REPLICA },
  );
  const unreachable = assessReplica(status({ ioRunning: "Connecting", lastIoErrno: 2003 }), opts);
  assert.deepEqual(replicaCandidacy({ health: unreachable }), { score: SCORE.REPLICA });
  for (
    const [over, reason] of [
      [{ sqlRunning: false, lastSqlErrno: 1062 }, "sql-broken"],
      [{ ioRunning: "No", lastIoErrno: 1236 }, "io-broken"],
      [{ ioRunning: "No" }, "io-stopped"],
      [{ secondsBehind: 61 }, "lagging"],
    ] as const
  ) {
    assert.deepEqual(
      replicaCandidacy({ health: assessReplica(status(over), opts) }),
      { notPromotable: reason },
    );
  }
  assert.deepEqual(
    replicaCandidacy({ health: assessReplica(status(), opts), withheld: "disk-full" }),
    { notPromotable: "disk-full" },
  );
});

Deno.test("candidacy: the last master back read-only goes before its replicas, unless withheld", () => {
  assert.deepEqual(replicaCandidacy({ lastMaster: true }), { score: SCORE.LAST_MASTER });
  assert.ok(SCORE.LAST_MASTER > SCORE.REPLICA && SCORE.LAST_MASTER < SCORE.BETTER_PEER);
  assert.ok(SCORE.LAST_MASTER < SCORE.PROMOTED);
  assert.deepEqual(replicaCandidacy({ lastMaster: true, withheld: "disk-full" }), {
    notPromotable: "disk-full",
  });
  // Replicas waiting for it after a cold start say why.
  assert.deepEqual(
    replicaCandidacy({
      health: assessReplica(status({ ioRunning: "Connecting", lastIoErrno: 2003 }), {
        maxLag: 60,
      }),
      withheld: "cold-start-wait",
    }),
    { notPromotable: "cold-start-wait" },
  );
});

Deno.test("checkPromotee: the last master compares its binary log end with its replicas", () => {
  const at = (pos: number, file = "mysql-bin.000003") => ({ file, pos });
  const peer = (node: string, pos: number) => ({ node, masterHost: "prm1", position: at(pos) });
  // Back after a crash: its binary log holds what its replicas received, and more.
  const mine = { node: "prm1", masterHost: "prm1", position: at(9000) };
  const ok = checkPromotee({ self: "prm1", mine, peers: [peer("prm2", 8000), peer("prm3", 9000)] });
  assert.equal(ok.proceed, true, ok.reason);
  // A replica received more than the binary log kept (a tail the crash lost): it wins.
  const lost = checkPromotee({ self: "prm1", mine, peers: [peer("prm2", 9500)] });
  assert.equal(lost.proceed, false);
  assert.equal(lost.better?.node, "prm2");
  // A replica promotee facing the last master's own publication loses to it.
  const replica = { node: "prm2", masterHost: "prm1", position: at(8000) };
  const aside = checkPromotee({
    self: "prm2",
    mine: replica,
    peers: [{ node: "prm1", masterHost: "prm1", position: at(9000) }],
  });
  assert.equal(aside.better?.node, "prm1");
});
