import assert from "node:assert/strict";
import {
  binlogSequence,
  comparePositions,
  decodeCoordinates,
  encodeCoordinates,
  formatPosition,
  isBinlogName,
  isValidHost,
  parsePosition,
  previousBinlogName,
} from "../position.ts";

Deno.test("one binlog name rule: plain base names with a numeric extension, never an option", () => {
  for (const good of ["mysql-bin.000010", "relay-bin.000001", "host-1.relay_log.1", "_b.000001"]) {
    assert.ok(isBinlogName(good), good);
  }
  for (
    const bad of [
      "",
      "-hevil.000001",
      ".hidden.000001",
      "../mysql-bin.000001",
      "a/b.000001",
      "mysql-bin",
      "mysql-bin.",
      "f'x.000001",
      "a b.000001",
      "x".repeat(250) + ".000001",
      "a..b.000001",
      42,
      undefined,
    ]
  ) {
    assert.equal(isBinlogName(bad), false, String(bad));
  }
});

Deno.test("hosts: names and addresses, never a leading dash or a separator", () => {
  for (const good of ["prm1", "db-1.example.com", "10.213.7.11", "fe80::1", "a"]) {
    assert.ok(isValidHost(good), good);
  }
  for (const bad of ["", "-h", "a|b", "a b", "a;b", "host-", "x".repeat(300)]) {
    assert.equal(isValidHost(bad), false, bad);
  }
});

Deno.test("positions order by the file's numeric extension, then the offset", () => {
  assert.equal(binlogSequence("mysql-bin.000010"), 10);
  assert.equal(binlogSequence("nosuffix"), -1);
  const a = { file: "mysql-bin.000009", pos: 99999 };
  const b = { file: "mysql-bin.000010", pos: 4 };
  assert.ok(comparePositions(a, b) < 0);
  assert.ok(comparePositions(b, a) > 0);
  assert.equal(comparePositions(b, { ...b }), 0);
  assert.ok(comparePositions(a, { ...a, pos: 100000 }) < 0);
  assert.ok(
    comparePositions({ file: "mysql-bin.999999", pos: 5 }, { file: "mysql-bin.1000000", pos: 4 }) <
      0,
  );
});

Deno.test("previous binlog names keep the extension's width and stop at the first", () => {
  assert.equal(previousBinlogName("mysql-bin.000010"), "mysql-bin.000009");
  assert.equal(previousBinlogName("mysql-bin.001000"), "mysql-bin.000999");
  assert.equal(previousBinlogName("mysql-bin.000001"), undefined);
  assert.throws(() => previousBinlogName("-x.000002"), TypeError);
});

Deno.test("file:pos parses only valid names and positions", () => {
  assert.deepEqual(parsePosition(" mysql-bin.000002:385 "), { file: "mysql-bin.000002", pos: 385 });
  assert.equal(formatPosition({ file: "mysql-bin.000002", pos: 385 }), "mysql-bin.000002:385");
  for (
    const bad of ["", "mysql-bin.000002", "mysql-bin.000002:3", "-h.000001:5", "a:b:5", "f.1:x"]
  ) {
    assert.equal(parsePosition(bad), undefined, bad);
  }
});

Deno.test("host|file|pos round-trips and refuses anything else", () => {
  const c = { host: "10.213.7.11", file: "mysql-bin.000002", pos: 385 };
  assert.equal(encodeCoordinates(c), "10.213.7.11|mysql-bin.000002|385");
  assert.deepEqual(decodeCoordinates(encodeCoordinates(c)), c);
  assert.throws(() => encodeCoordinates({ ...c, host: "a|b" }), TypeError);
  assert.throws(() => encodeCoordinates({ ...c, file: "../f.1" }), TypeError);
  assert.throws(() => encodeCoordinates({ ...c, pos: 3 }), TypeError);
  for (
    const bad of [
      "",
      "prm1|f",
      "prm1|mysql-bin.000001|x",
      "pr m1|mysql-bin.000001|5",
      "prm1|../f.000001|5",
      "prm1|f'x.000001|5",
      "a|b.000001|5|2",
      "-h|mysql-bin.000001|5",
      "db1|-hevil.000001|4",
      "prm1|mysql-bin.000001|-4",
      "prm1|mysql-bin.000001|" + "9".repeat(20),
      "x".repeat(1000),
    ]
  ) {
    assert.equal(decodeCoordinates(bad), undefined, bad);
  }
});
