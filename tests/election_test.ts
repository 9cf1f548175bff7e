import assert from "node:assert/strict";
import {
  assessReplica,
  binlogIndex,
  checkPromotee,
  comparePositions,
  decodePeerPosition,
  encodePeerPosition,
  nextReaderState,
  relayApplied,
} from "../election.ts";
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
    ...over,
  };
}

Deno.test("positions compare by the file's numeric suffix, then the offset", () => {
  assert.equal(binlogIndex("mysql-bin.000010"), 10);
  assert.equal(binlogIndex("nosuffix"), -1);
  const a = { file: "mysql-bin.000009", pos: 99999 };
  const b = { file: "mysql-bin.000010", pos: 4 };
  assert.ok(comparePositions(a, b) < 0);
  assert.ok(comparePositions(b, a) > 0);
  assert.equal(comparePositions(b, { ...b }), 0);
  assert.ok(
    comparePositions({ file: "mysql-bin.999999", pos: 5 }, { file: "mysql-bin.1000000", pos: 4 }) <
      0,
  );
});

Deno.test("relayApplied compares executed and received positions", () => {
  assert.equal(relayApplied(status()), true);
  assert.equal(relayApplied(status({ execMasterLogPos: 400 })), false);
  assert.equal(
    relayApplied(status({ relayMasterLogFile: "mysql-bin.000001", execMasterLogPos: 900 })),
    false,
  );
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
  assert.match(sqlBroken.reason, /SQL thread broken.*1062/);
  assert.equal(assessReplica(status({ sqlRunning: false }), opts).healthy, false);
  const ioFatal = assessReplica(status({ ioRunning: "No", lastIoErrno: 1236 }), opts);
  assert.equal(ioFatal.healthy, false);
  assert.equal(assessReplica(status({ ioRunning: "No" }), opts).healthy, false);
  const connecting = assessReplica(
    status({ ioRunning: "Connecting", lastIoErrno: 2003, secondsBehind: null }),
    opts,
  );
  assert.deepEqual([connecting.healthy, connecting.readable], [true, false]);
  const lagging = assessReplica(status({ secondsBehind: 61 }), opts);
  assert.deepEqual([lagging.healthy, lagging.readable, lagging.outdated], [false, false, true]);
  assert.match(lagging.reason, /lag=61s\/max 60s/);
  assert.equal(assessReplica(status({ secondsBehind: 60 }), opts).readable, true);
});

Deno.test("peer positions round-trip and reject malformed values", () => {
  const v = encodePeerPosition("prm1", { file: "mysql-bin.000003", pos: 77 });
  assert.equal(v, "prm1|mysql-bin.000003|77");
  assert.deepEqual(decodePeerPosition("prm2", v), {
    node: "prm2",
    masterHost: "prm1",
    position: { file: "mysql-bin.000003", pos: 77 },
  });
  for (const bad of ["", "idle", "prm1|f|x", "prm1|a b|3", "p;rm|f.1|3", "prm1|f.1|3|4"]) {
    assert.equal(decodePeerPosition("n", bad), undefined, bad);
  }
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
  assert.match(worse.reason, /prm4 holds more of prm1/);
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
