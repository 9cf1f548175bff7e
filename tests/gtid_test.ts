import assert from "node:assert/strict";
import {
  checkPromoteeGtid,
  compareGtidText,
  compareMariadbGtidPos,
  compareMysqlGtidSets,
  decodeGtidFork,
  decodePeerGtid,
  encodeGtidFork,
  encodePeerGtid,
  errantGtidText,
  errantSinceFork,
  formatMariadbGtidPos,
  formatMysqlGtidSet,
  heldGtidText,
  isErrantGtid,
  mergeMariadbGtidPos,
  parseMariadbGtidPos,
  parseMysqlGtidSet,
  subtractMysqlGtidSet,
} from "../gtid.ts";

function pos(text: string) {
  const p = parseMariadbGtidPos(text);
  assert.ok(p, `parses ${text}`);
  return p;
}

function set(text: string) {
  const s = parseMysqlGtidSet(text);
  assert.ok(s, `parses ${text}`);
  return s;
}

Deno.test("MariaDB GTID lists parse, format and reject garbage", () => {
  assert.equal(pos("").size, 0);
  assert.equal(formatMariadbGtidPos(pos(" 1-2-7, 0-1-100 ")), "0-1-100,1-2-7");
  assert.equal(pos("0-1-18446744073709551615").get(0)!.seq, 18446744073709551615n);
  for (
    const bad of ["0-1", "0-1-x", "0-1-1,0-2-2", "0-1-1;", "a-b-c", "0-1-18446744073709551616"]
  ) {
    assert.equal(parseMariadbGtidPos(bad), undefined, bad);
  }
});

Deno.test("MariaDB positions compare ahead, behind, equal, diverged, multi-domain", () => {
  assert.equal(compareMariadbGtidPos(pos("0-1-100"), pos("0-1-100")), "equal");
  assert.equal(compareMariadbGtidPos(pos("0-1-101"), pos("0-1-100")), "ahead");
  assert.equal(compareMariadbGtidPos(pos("0-1-99"), pos("0-1-100")), "behind");
  // Same sequence number from two servers: the histories forked.
  assert.equal(compareMariadbGtidPos(pos("0-2-100"), pos("0-1-100")), "diverged");
  // Multi-domain: ahead in one, equal in the other.
  assert.equal(compareMariadbGtidPos(pos("0-1-10,1-1-5"), pos("0-1-10,1-1-4")), "ahead");
  // A domain only one side has counts as sequence 0 on the other.
  assert.equal(compareMariadbGtidPos(pos("0-1-10,2-3-1"), pos("0-1-10")), "ahead");
  assert.equal(compareMariadbGtidPos(pos("0-1-10"), pos("0-1-10,2-3-1")), "behind");
  // Ahead in one domain, behind in another.
  assert.equal(compareMariadbGtidPos(pos("0-1-11,1-1-4"), pos("0-1-10,1-1-5")), "diverged");
  assert.equal(compareMariadbGtidPos(pos(""), pos("")), "equal");
});

Deno.test("MariaDB errant GTIDs of a returning old master", () => {
  // The new master took over at 0-1-100 and wrote 0-2-101..0-2-150.
  const fork = "0-1-100";
  assert.equal(errantGtidText("0-1-100", fork, "mariadb"), "");
  assert.equal(errantGtidText("0-1-90", fork, "mariadb"), "");
  // The old master committed 0-1-101..105 that nobody received.
  assert.equal(errantGtidText("0-1-105", fork, "mariadb"), "0-1-105");
  assert.equal(errantGtidText("0-1-105", "0-2-150", "mariadb"), "");
  assert.equal(errantGtidText("0-3-100", fork, "mariadb"), "0-3-100");
  assert.equal(errantGtidText("0-1-100,5-1-1", fork, "mariadb"), "5-1-1");
  assert.equal(errantGtidText("0-1-x", fork, "mariadb"), undefined);
});

Deno.test("mergeMariadbGtidPos keeps the later GTID per domain", () => {
  const merged = mergeMariadbGtidPos(pos("0-1-100,1-1-3"), pos("0-2-120,2-5-9"));
  assert.equal(formatMariadbGtidPos(merged), "0-2-120,1-1-3,2-5-9");
});

const U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2 = "4ee11fa4-71ca-11e1-9e33-c80aa9429562";

Deno.test("MySQL GTID sets parse, normalise and subtract", () => {
  assert.equal(formatMysqlGtidSet(set(`${U1}:1-5:6-9:12,\n${U2}:3`)), `${U1}:1-9:12,${U2}:3`);
  assert.equal(formatMysqlGtidSet(set(`${U1.toUpperCase()}:1-3`)), `${U1}:1-3`);
  assert.equal(formatMysqlGtidSet(set(`${U1}:tag_a:1-3`)), `${U1}:tag_a:1-3`);
  assert.equal(set("").size, 0);
  for (const bad of ["nonsense:1", `${U1}:0`, `${U1}:5-3`, `${U1}:1-x`]) {
    assert.equal(parseMysqlGtidSet(bad), undefined, bad);
  }
  assert.equal(
    formatMysqlGtidSet(subtractMysqlGtidSet(set(`${U1}:1-20,${U2}:1-5`), set(`${U1}:5-10`))),
    `${U1}:1-4:11-20,${U2}:1-5`,
  );
});

Deno.test("MySQL GTID sets compare like GTID_SUBSET", () => {
  assert.equal(compareMysqlGtidSets(set(`${U1}:1-10`), set(`${U1}:1-10`)), "equal");
  assert.equal(compareMysqlGtidSets(set(`${U1}:1-11`), set(`${U1}:1-10`)), "ahead");
  assert.equal(compareMysqlGtidSets(set(`${U1}:1-9`), set(`${U1}:1-10`)), "behind");
  assert.equal(compareMysqlGtidSets(set(`${U1}:1-10,${U2}:1`), set(`${U1}:1-11`)), "diverged");
  assert.equal(errantGtidText(`${U1}:1-10,${U2}:1-2`, `${U1}:1-12`, "mysql"), `${U2}:1-2`);
  assert.equal(compareGtidText(`${U1}:1-3`, "x", "mysql"), undefined);
});

Deno.test("published GTID values round-trip and reject injection", () => {
  const v = encodePeerGtid("prm1", "0-1-100,1-1-5");
  assert.deepEqual(decodePeerGtid("prm2", v), {
    node: "prm2",
    masterHost: "prm1",
    gtid: "0-1-100,1-1-5",
  });
  assert.deepEqual(decodePeerGtid("prm2", "prm1|")?.gtid, "");
  assert.equal(decodePeerGtid("prm2", "prm1|0-1-1'; DROP"), undefined);
  assert.equal(decodePeerGtid("prm2", "prm1"), undefined);
});

Deno.test("GTID election: the most advanced replica wins, diverged peers are reported", () => {
  const mine = { node: "a", masterHost: "m", gtid: "0-1-100" };
  const ok = checkPromoteeGtid({
    self: "a",
    mine,
    peers: [{ node: "b", masterHost: "m", gtid: "0-1-90" }, {
      node: "c",
      masterHost: "m",
      gtid: "0-1-100",
    }],
    flavour: "mariadb",
  });
  assert.equal(ok.proceed, true, ok.reason);
  const lose = checkPromoteeGtid({
    self: "a",
    mine,
    peers: [
      { node: "b", masterHost: "m", gtid: "0-1-103" },
      { node: "c", masterHost: "m", gtid: "0-1-105" },
      { node: "d", masterHost: "other", gtid: "0-9-900" },
    ],
    flavour: "mariadb",
  });
  assert.equal(lose.proceed, false);
  assert.equal(lose.better?.node, "c");
  const fork = checkPromoteeGtid({
    self: "a",
    mine,
    peers: [{ node: "b", masterHost: "m", gtid: "0-2-100" }],
    flavour: "mariadb",
  });
  assert.equal(fork.proceed, true);
  assert.deepEqual(fork.diverged.map((p) => p.node), ["b"]);
  // Peers that replicated from the promotee hold nothing it lacks.
  assert.equal(
    checkPromoteeGtid({
      self: "a",
      mine,
      peers: [{ node: "b", masterHost: "a", gtid: "0-1-500" }],
      flavour: "mariadb",
    }).proceed,
    true,
  );
  const idle = checkPromoteeGtid({
    self: "a",
    peers: [{ node: "b", masterHost: "m", gtid: "0-1-5" }],
    flavour: "mariadb",
  });
  assert.equal(idle.proceed, false);
  assert.equal(idle.better?.node, "b");
  const mysqlLose = checkPromoteeGtid({
    self: "a",
    mine: { node: "a", masterHost: "m", gtid: `${U1}:1-10` },
    peers: [{ node: "b", masterHost: "m", gtid: `${U1}:1-12` }],
    flavour: "mysql",
  });
  assert.equal(mysqlLose.better?.node, "b");
});

Deno.test("errantSinceFork: an old master's writes after the fork are errant, the new master's not", () => {
  // prm1 (server 1) wrote up to 0-1-105; prm2 (server 2) took over at 0-1-100.
  const fork = { server: "2", pos: "0-1-100" };
  assert.equal(errantSinceFork("0-1-105", fork, "mariadb"), "0-1-105");
  assert.equal(errantSinceFork("0-1-100", fork, "mariadb"), "");
  assert.equal(errantSinceFork("0-1-80", fork, "mariadb"), "");
  // A replica that already followed the new master: its writes are the master's own.
  assert.equal(errantSinceFork("0-2-150", fork, "mariadb"), "");
  // Same sequence number as the fork but another server: a fork of its own.
  assert.equal(errantSinceFork("0-3-100", fork, "mariadb"), "0-3-100");
  // A domain the fork never saw, written by someone else.
  assert.equal(errantSinceFork("0-1-100,7-1-3", fork, "mariadb"), "7-1-3");
  assert.equal(errantSinceFork("0-1-100,7-2-3", fork, "mariadb"), "");
  assert.equal(errantSinceFork("garbage", fork, "mariadb"), undefined);
  const mfork = { server: U2, pos: `${U1}:1-100` };
  assert.equal(errantSinceFork(`${U1}:1-105`, mfork, "mysql"), `${U1}:101-105`);
  assert.equal(errantSinceFork(`${U1}:1-100,${U2}:1-50`, mfork, "mysql"), "");
  assert.deepEqual(decodeGtidFork(encodeGtidFork(mfork)), mfork);
  assert.deepEqual(decodeGtidFork("2|0-1-100"), fork);
  assert.equal(decodeGtidFork("2|0-1-100'"), undefined);
});

Deno.test("heldGtidText merges received and applied positions", () => {
  assert.equal(heldGtidText("0-1-120", "0-1-100,1-1-4", "mariadb"), "0-1-120,1-1-4");
  assert.equal(heldGtidText("", "0-1-100", "mariadb"), "0-1-100");
  assert.equal(heldGtidText(`${U1}:50-60`, `${U1}:1-49`, "mysql"), `${U1}:1-60`);
  assert.equal(heldGtidText("x", "", "mariadb"), undefined);
});

Deno.test("isErrantGtid judges one transaction against a fork point", () => {
  const fork = { server: "2", pos: "0-1-100" };
  assert.equal(isErrantGtid("0-1-99", fork, "mariadb"), false);
  assert.equal(isErrantGtid("0-1-100", fork, "mariadb"), false);
  assert.equal(isErrantGtid("0-1-101", fork, "mariadb"), true);
  assert.equal(isErrantGtid("0-2-101", fork, "mariadb"), false);
  assert.equal(isErrantGtid("0-1-1,0-2-2", fork, "mariadb"), undefined);
  const mfork = { server: U2, pos: `${U1}:1-100` };
  assert.equal(isErrantGtid(`${U1}:100`, mfork, "mysql"), false);
  assert.equal(isErrantGtid(`${U1}:101`, mfork, "mysql"), true);
  assert.equal(isErrantGtid(`${U2}:7`, mfork, "mysql"), false);
  assert.equal(isErrantGtid("nonsense", mfork, "mysql"), undefined);
});
