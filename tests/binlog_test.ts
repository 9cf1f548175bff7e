// Unit tests of binlog.ts: real third-party fixtures, synthetic binlogs, bad input.
import assert from "node:assert/strict";
import { crc32, deflateSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { createHash } from "node:crypto";
import {
  BinlogError,
  type BinlogTransaction,
  type ReadEnd,
  type ReadOptions,
  readTransactions,
  tailTransactions,
  tailWithEnd,
} from "../binlog.ts";
import {
  DROP_BEFORE_BEGIN,
  DROP_BEFORE_GTID,
  END,
  groupStep,
  IN_TRANSACTION,
  OPEN,
  ORPHAN_COMMIT,
} from "../binlog_group.ts";
import {
  QK_BEGIN,
  QK_END,
  QK_OTHER,
  QK_START_TRX,
  QK_XA_END_TRX,
  QK_XA_OTHER,
  QK_XA_START,
} from "../binlog_events.ts";
import {
  ROLE_COMMIT,
  ROLE_CONTENT,
  ROLE_GTID,
  ROLE_OTHER,
  ROLE_QUERY,
} from "../binlog_hash_plan.ts";
import { runKilledAfter } from "./binlog_run.ts";

const FIXTURES_DIR = new URL("./fixtures/mysql", import.meta.url).pathname;

function fixturePath(name: string): string {
  return `${FIXTURES_DIR}/${name}`;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function md5Of(parts: Uint8Array[]): string {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

interface EventOpts {
  ts?: number;
  flags?: number;
  logPos?: number;
  serverId?: number;
}

const enc = new TextEncoder();

function le(n: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) out.push(Math.floor(n / 2 ** (8 * i)) & 255);
  return out;
}

/** Writes binlog events (format v4) the way MariaDB/MySQL lay them out, with or without CRC32. */
class BinlogBuilder {
  static SID_BYTES = [
    0x3e,
    0x11,
    0xfa,
    0x47,
    0x71,
    0xca,
    0x11,
    0xe1,
    0x9e,
    0x33,
    0xc8,
    0x0a,
    0xa9,
    0x42,
    0x95,
    0x62,
  ];
  static SID = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
  private parts: Uint8Array[] = [new Uint8Array([0xfe, 0x62, 0x69, 0x6e])];
  pos = 4;
  checksum: boolean;
  padding: number;
  fdeSize = 0;
  lastEventPos = 0;
  lastBodies = new Map<number, Uint8Array>();

  constructor(opts: { checksum: boolean; fdeFlags?: number; padding?: number }) {
    this.checksum = opts.checksum;
    this.padding = opts.padding ?? 0;
    this.fde({ checksum: opts.checksum, flags: opts.fdeFlags ?? 0 });
    this.fdeSize = this.pos - 4;
  }

  fde(opts: { checksum: boolean; flags?: number }): void {
    const version = new Uint8Array(50);
    version.set(enc.encode("10.11.19-MariaDB-log"));
    const ph = new Uint8Array(171);
    const set = (t: number, v: number) => (ph[t - 1] = v);
    set(2, 13);
    set(19, 8);
    for (const t of [23, 24, 25]) set(t, 8);
    for (const t of [30, 31, 32]) set(t, 10);
    set(162, 19);
    const body = concat([
      new Uint8Array([4, 0]),
      version,
      new Uint8Array([0, 0, 0, 0, 19]),
      ph,
      new Uint8Array([opts.checksum ? 1 : 0]),
    ]);
    // The FDE always carries the algorithm byte and a 4-byte checksum field.
    this.checksum = true;
    this.event(15, body, { flags: opts.flags ?? 0 });
    if (!opts.checksum) {
      // Zero the CRC bytes as a server with binlog_checksum=NONE leaves them.
      const last = this.parts[this.parts.length - 1];
      last.fill(0, last.length - 4);
    }
    this.checksum = opts.checksum;
  }

  event(type: number, body: Uint8Array, opts: EventOpts = {}): void {
    const size = 19 + body.length + (this.checksum ? 4 : 0);
    const ev = new Uint8Array(size);
    const dv = new DataView(ev.buffer);
    dv.setUint32(0, opts.ts ?? 1000, true);
    ev[4] = type;
    dv.setUint32(5, opts.serverId ?? 1, true);
    dv.setUint32(9, size, true);
    dv.setUint32(13, opts.logPos ?? this.pos + size, true);
    dv.setUint16(17, opts.flags ?? 0, true);
    ev.set(body, 19);
    if (this.checksum) dv.setUint32(size - 4, crc32(ev.subarray(0, size - 4)) >>> 0, true);
    this.parts.push(ev);
    this.lastEventPos = this.pos;
    this.pos += size;
    this.lastBodies.set(type, body);
  }

  raw(type: number, body: Uint8Array, opts: EventOpts = {}): void {
    this.event(type, body, opts);
  }

  query(db: string, sql: string, opts: EventOpts & { execTime?: number } = {}): void {
    const status = new Uint8Array(3 + this.padding).fill(7);
    const d = enc.encode(db);
    const body = concat([
      new Uint8Array([
        ...le(10 + this.padding, 4),
        ...le(opts.execTime ?? 0, 4),
        d.length,
        0,
        0,
        ...le(status.length, 2),
      ]),
      status,
      d,
      new Uint8Array([0]),
      enc.encode(sql),
    ]);
    this.event(2, body, opts);
  }

  tableMap(tableId: number, opts: EventOpts & { optional?: number[] } = {}): void {
    const body = new Uint8Array([
      ...le(tableId, 6),
      1,
      0,
      1,
      ...enc.encode("d"),
      0,
      1,
      ...enc.encode("t"),
      0,
      1,
      3,
      0,
      0,
      ...(opts.optional ?? []),
    ]);
    this.event(19, body, opts);
  }

  rows(
    type: number,
    tableId: number,
    data: number[],
    opts: EventOpts & { extra?: number[] } = {},
  ): void {
    const v2 = type >= 30 && type <= 32;
    const extra = opts.extra ?? [];
    const body = new Uint8Array([
      ...le(tableId, 6),
      1,
      0,
      ...(v2 ? [...le(2 + extra.length, 2), ...extra] : []),
      1,
      1,
      ...data,
    ]);
    this.event(type, body, opts);
  }

  xid(xid: number, opts: EventOpts = {}): void {
    this.event(16, new Uint8Array(le(xid, 8)), opts);
  }

  mariaGtid(seq: number, domain: number, flags2: number, opts: EventOpts = {}): void {
    this.event(
      162,
      new Uint8Array([...le(seq, 8), ...le(domain, 4), flags2, 0, 0, 0, 0, 0, 0]),
      opts,
    );
  }

  mysqlGtid(gno: number, opts: EventOpts = {}): void {
    const body = new Uint8Array([
      1,
      ...BinlogBuilder.SID_BYTES,
      ...le(gno, 8),
      2,
      ...le(gno - 1, 8),
      ...le(gno, 8),
    ]);
    this.event(33, body, opts);
  }

  xaPrepare(opts: EventOpts = {}): void {
    this.event(38, new Uint8Array([0, ...le(1, 4), ...le(1, 4), ...le(0, 4), 0x31]), opts);
  }

  rotate(opts: EventOpts = {}): void {
    this.event(4, new Uint8Array([...le(4, 8), ...enc.encode("bin.000002")]), opts);
  }

  bytes(): Uint8Array {
    return concat(this.parts);
  }
}

async function readAll(
  files: string[] | Uint8Array,
  options: ReadOptions = {},
): Promise<{ txs: BinlogTransaction[]; warnings: string[] }> {
  const warnings: string[] = [];
  const opts = { ...options, onWarning: (m: string) => warnings.push(m) };
  const txs: BinlogTransaction[] = [];
  if (files instanceof Uint8Array) {
    const bytes = files;
    const chunks = (async function* () {
      yield bytes;
    })();
    for await (const t of readTransactions({ name: "mem", chunks }, opts)) txs.push(t);
  } else {
    for await (const t of readTransactions(files, opts)) txs.push(t);
  }
  return { txs, warnings };
}

async function expectError(
  files: string[] | Uint8Array,
  kind: string,
  offset?: number,
  options: ReadOptions = {},
): Promise<BinlogError> {
  try {
    await readAll(files, options);
  } catch (e) {
    assert.ok(e instanceof BinlogError, `expected BinlogError, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    if (offset !== undefined) assert.equal(e.offset, offset, e.message);
    return e;
  }
  assert.fail(`expected a ${kind} error`);
}

const EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e";

Deno.test("every fixture is read or refused cleanly", async () => {
  let read = 0;
  for (const entry of Deno.readDirSync(FIXTURES_DIR)) {
    if (entry.name.startsWith("LICENSE") || entry.name.endsWith(".md")) continue;
    const path = `${FIXTURES_DIR}/${entry.name}`;
    try {
      const { txs } = await readAll([path]);
      for (const t of txs) {
        assert.match(t.md5, /^[0-9a-f]{32}$/);
        assert.ok(t.endOffset > t.start, `${entry.name}: ${JSON.stringify(t)}`);
      }
      read++;
    } catch (e) {
      assert.ok(e instanceof BinlogError, `${entry.name}: ${e}`);
    }
  }
  assert.ok(read >= 25, `only ${read} fixtures read`);
});

// Expected end positions come from `mysqlbinlog FILE` (end_log_pos of the XID/COMMIT/DDL events).
Deno.test("MySQL 8.0 fixture with GTIDs: groups, end positions, gtids", async () => {
  const { txs } = await readAll([fixturePath("binlog-invisible-columns.000001")]);
  assert.deepEqual(txs.map((t) => t.end), [491, 787, 1120, 1438, 1787]);
  // SID at offset 156+19+1 is 97c7af02 4c50 11ec acd8 681842034964, gno 1..5.
  assert.deepEqual(
    txs.map((t) => t.gtid),
    [1, 2, 3, 4, 5].map((n) => `97c7af02-4c50-11ec-acd8-681842034964:${n}`),
  );
  assert.equal(txs[0].start, 156);
  assert.equal(txs[0].timestamp, 1637666960);
});

Deno.test("MariaDB fixture: GTID domain-server-seq, XID ends", async () => {
  const { txs } = await readAll([fixturePath("mariadb-bin.000001")]);
  assert.deepEqual(txs.map((t) => [t.gtid, t.end]), [["0-1-1", 702], ["0-1-2", 1074]]);
});

Deno.test("MySQL 9.6 tagged GTID", async () => {
  const { txs } = await readAll([fixturePath("binlog_transaction_with_GTID_TAG.000001")]);
  assert.equal(txs.length, 1);
  // Decoded by hand from the serialization-format varints of the GTID_TAGGED event at 245.
  assert.equal(txs[0].gtid, "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3");
  assert.equal(txs[0].end, 541);
});

Deno.test("anonymous GTIDs carry no gtid; DDL and XID groups", async () => {
  const { txs } = await readAll([fixturePath("binlog_transaction_with_anonymous_GTID.000001")]);
  assert.deepEqual(txs.map((t) => [t.start, t.end, t.gtid]), [[153, 316, undefined], [
    316,
    590,
    undefined,
  ]]);
});

Deno.test("MySQL 5.7 without GTIDs: DDL, then BEGIN ... COMMIT (MyISAM)", async () => {
  const { txs } = await readAll([fixturePath("bug32407.001")]);
  assert.deepEqual(txs.map((t) => [t.start, t.end]), [[120, 233], [233, 468]]);
});

Deno.test("relay log with two FDEs and artificial rotates: master coordinates", async () => {
  const { txs } = await readAll([fixturePath("rpl_unfiltered_hidden_gcol.000001")]);
  // mysqlbinlog: Query end_log_pos 358, Query 554, Xid 837 (master positions).
  assert.deepEqual(txs.map((t) => t.end), [358, 554, 837]);
  assert.deepEqual(txs.map((t) => t.endOffset), [574, 770, 1053]);
});

Deno.test("corrupt relay log is refused at the offset mysqlbinlog stops at", async () => {
  await expectError([fixturePath("corrupt-relay-bin.000624")], "corrupt", 91204);
});

Deno.test("truncated PREVIOUS_GTIDS: partial event warning, no transaction", async () => {
  const { txs, warnings } = await readAll([fixturePath("binlog_truncated_prev_gtid_event.000001")]);
  assert.equal(txs.length, 0);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /offset 120: partial event of 9 bytes at end of file left out/);
});

Deno.test("TRANSACTION_PAYLOAD hashes like the same events uncompressed", async () => {
  const path = fixturePath("transaction_compression.000001");
  const orig = Deno.readFileSync(path);
  const { txs } = await readAll([path]);
  assert.equal(txs.length, 1);
  assert.deepEqual([txs[0].start, txs[0].end], [197, 431]);
  // Payload event at 274 (size 157): 10 bytes of header fields, then 124 bytes of zstd data.
  assert.equal(orig[274 + 4], 40);
  const inner = new Uint8Array(zstdDecompressSync(orig.subarray(274 + 19 + 10, 274 + 19 + 134)));
  // Rebuild the file with the inner events written plainly (each given a CRC32, as the server
  // would), followed by the original trailing ROTATE.
  const parts: Uint8Array[] = [orig.subarray(0, 274)];
  let pos = 274;
  for (let q = 0; q < inner.length;) {
    const size = new DataView(inner.buffer, inner.byteOffset + q).getUint32(9, true);
    const ev = new Uint8Array(size + 4);
    ev.set(inner.subarray(q, q + size));
    const dv = new DataView(ev.buffer);
    dv.setUint32(9, size + 4, true);
    dv.setUint32(13, pos + size + 4, true);
    dv.setUint32(size, crc32(ev.subarray(0, size)) >>> 0, true);
    parts.push(ev);
    pos += size + 4;
    q += size;
  }
  const plain = concat(parts);
  const { txs: plainTxs } = await readAll(plain);
  assert.equal(plainTxs.length, 1);
  assert.equal(plainTxs[0].md5, txs[0].md5);
  assert.notEqual(txs[0].md5, EMPTY_MD5);
  assert.equal(plainTxs[0].end, pos);
});

Deno.test("chunked stream, files and tiny chunks give the same transactions", async () => {
  const path = fixturePath("vector.binlog");
  const bytes = Deno.readFileSync(path);
  const { txs } = await readAll([path]);
  const chunks = (async function* () {
    for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
  })();
  const got: BinlogTransaction[] = [];
  for await (const t of readTransactions({ name: path, chunks })) got.push(t);
  assert.deepEqual(got, txs);
  // mysqlbinlog: 7 DDL queries (356 ... 2303) and 3 XID-ended groups (1432, 2884, 3443).
  assert.equal(txs.length, 10);
  assert.deepEqual(txs.filter((t) => [1432, 2884, 3443].includes(t.end)).length, 3);
});

// ---------------------------------------------------------------------------------------------
// Synthetic binlogs

Deno.test("grouping: XID, COMMIT, ROLLBACK, DDL, XA, standalone GTID", async () => {
  const b = new BinlogBuilder({ checksum: true });
  b.mariaGtid(1, 0, 0); // transactional group
  b.tableMap(70);
  b.rows(23, 70, [1, 2, 3]);
  b.xid(100);
  const e1 = b.pos;
  b.mariaGtid(2, 0, 1); // standalone: the next QUERY ends it
  b.query("d", "CREATE TABLE t (a INT)");
  const e2 = b.pos;
  b.query("d", "BEGIN"); // old style, no GTID
  b.query("d", "INSERT INTO m VALUES (1)");
  b.query("d", "COMMIT");
  const e3 = b.pos;
  b.query("d", "BEGIN");
  b.query("d", "INSERT INTO m VALUES (2)");
  b.query("d", "ROLLBACK");
  const e4 = b.pos;
  b.mysqlGtid(7);
  b.query("", "XA START X'31',X'',1");
  b.tableMap(70);
  b.rows(30, 70, [4]);
  b.query("", "XA END X'31',X'',1");
  b.xaPrepare();
  const e5 = b.pos;
  b.mysqlGtid(8);
  b.query("", "XA COMMIT X'31',X'',1");
  const e6 = b.pos;
  b.mysqlGtid(9);
  b.query("d", "DROP TABLE x");
  const e7 = b.pos;
  b.mysqlGtid(10);
  b.query("d", "BEGIN");
  b.query("d", "COMMIT"); // empty transaction
  const e8 = b.pos;
  b.rotate();
  const { txs, warnings } = await readAll(b.bytes());
  assert.deepEqual(warnings, []);
  assert.deepEqual(txs.map((t) => t.end), [e1, e2, e3, e4, e5, e6, e7, e8]);
  assert.deepEqual(txs.map((t) => t.gtid), [
    "0-1-1",
    "0-1-2",
    undefined,
    undefined,
    `${BinlogBuilder.SID}:7`,
    `${BinlogBuilder.SID}:8`,
    `${BinlogBuilder.SID}:9`,
    `${BinlogBuilder.SID}:10`,
  ]);
  assert.equal(txs[7].md5, EMPTY_MD5);
  assert.deepEqual(new Set(txs.map((t) => t.md5)).size, 8);
});

Deno.test("hash ignores table id, XID, exec_time, log_pos, CRC presence and ROWS version", async () => {
  const build = (checksum: boolean, tableId: number, xid: number, exec: number, v: 23 | 30) => {
    const b = new BinlogBuilder({ checksum, padding: tableId % 7 });
    b.mariaGtid(5, 0, 0);
    b.query("db", "INSERT INTO t VALUES (1)", { execTime: exec });
    b.tableMap(tableId);
    b.rows(v, tableId, [9, 8, 7], { extra: v === 30 ? [1, 2, 3, 4] : [] });
    b.xid(xid);
    return b.bytes();
  };
  const a = (await readAll(build(true, 70, 1, 0, 23))).txs;
  const c = (await readAll(build(false, 4242, 77, 9, 30))).txs;
  assert.equal(a.length, 1);
  assert.equal(c.length, 1);
  assert.equal(a[0].md5, c[0].md5);
  assert.notEqual(a[0].end, c[0].end);
});

Deno.test("TABLE_MAP optional metadata (binlog_row_metadata=FULL) is not hashed", async () => {
  const build = (optional: number[]) => {
    const b = new BinlogBuilder({ checksum: true });
    b.query("d", "BEGIN");
    b.tableMap(70, { optional });
    b.rows(23, 70, [1]);
    b.xid(1);
    return b.bytes();
  };
  const plain = (await readAll(build([]))).txs[0].md5;
  assert.equal((await readAll(build([4, 3, 1, 0x61, 0x62]))).txs[0].md5, plain);
});

Deno.test("MySQL CREATE TABLE ... SELECT (START TRANSACTION) is one transaction", async () => {
  const b = new BinlogBuilder({ checksum: true });
  b.mysqlGtid(3);
  b.query("d", "CREATE TABLE t2 (a INT) START TRANSACTION");
  b.tableMap(70);
  b.rows(30, 70, [1]);
  b.xid(9);
  const { txs } = await readAll(b.bytes());
  assert.deepEqual(txs.map((t) => [t.start, t.end]), [[4 + b.fdeSize, b.pos]]);
});

Deno.test("different row data, statement, timestamp or db give different hashes", async () => {
  const build = (row: number, sql: string, ts: number, db: string) => {
    const b = new BinlogBuilder({ checksum: true });
    b.query(db, "BEGIN");
    b.query(db, sql);
    b.tableMap(70, { ts });
    b.rows(23, 70, [row], { ts });
    b.xid(1);
    return b.bytes();
  };
  const base = (await readAll(build(1, "SET @a=1", 1000, "d"))).txs[0].md5;
  for (const variant of [build(2, "SET @a=1", 1000, "d"), build(1, "SET @a=2", 1000, "d")]) {
    assert.notEqual((await readAll(variant)).txs[0].md5, base);
  }
  assert.notEqual((await readAll(build(1, "SET @a=1", 1001, "d"))).txs[0].md5, base);
  assert.notEqual((await readAll(build(1, "SET @a=1", 1000, "e"))).txs[0].md5, base);
});

Deno.test("the MD5 is the documented byte sequence, for any transaction size", async () => {
  const sizes = [...Array(160).keys(), 16_300, 16_330, 16_340, 16_350, 20_000, 200_000];
  for (const n of sizes) {
    const b = new BinlogBuilder({ checksum: true });
    b.query("d", "BEGIN", { ts: 5 });
    b.tableMap(70, { ts: 6 });
    b.rows(23, 70, Array.from({ length: n }, (_, i) => (i * 31 + n) & 255), { ts: 7 });
    b.xid(1);
    const { txs } = await readAll(b.bytes());
    // type | ts | len | body: TABLE_MAP body after table id; ROWS: flags + body after flags.
    const tm = b.lastBodies.get(19)!;
    const rows = b.lastBodies.get(23)!;
    const le4 = (x: number) => [x & 255, (x >> 8) & 255, (x >> 16) & 255, x >>> 24];
    const expected = md5Of([
      new Uint8Array([19, ...le4(6), ...le4(tm.length - 6)]),
      tm.subarray(6),
      new Uint8Array([30, ...le4(7), ...le4(rows.length - 6)]),
      rows.subarray(6),
    ]);
    assert.equal(txs[0].md5, expected, `row data of ${n} bytes`);
  }
});

Deno.test("relay log: own FDE, artificial rotate, master FDE, checksum change mid-file", async () => {
  const b = new BinlogBuilder({ checksum: true, fdeFlags: 0x40 });
  b.rotate({ flags: 0x20, logPos: 0 });
  b.fde({ checksum: false }); // the master's FDE: master without checksums
  b.query("d", "BEGIN", { logPos: 1000 });
  b.tableMap(70, { logPos: 1100 });
  b.rows(23, 70, [1], { logPos: 1200 });
  b.xid(3, { logPos: 1300 });
  b.query("", "own event", { flags: 0x40 }); // relay-log event: not part of any transaction
  b.fde({ checksum: true }); // master restarted with checksums
  b.query("d", "CREATE TABLE a (b INT)", { logPos: 200 });
  const { txs, warnings } = await readAll(b.bytes());
  assert.deepEqual(warnings, []);
  assert.deepEqual(txs.map((t) => t.end), [1300, 200]);
  // A CRC error after the second FDE is detected, so checksums are verified there.
  const bad = b.bytes();
  bad[bad.length - 1] ^= 0xff;
  await expectError(bad, "corrupt", b.lastEventPos);
});

Deno.test("a relay log rotated inside a transaction continues it; a binlog does not", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const whole = new BinlogBuilder({ checksum: true, fdeFlags: 0x40 });
    whole.fde({ checksum: true });
    whole.mariaGtid(9, 0, 0, { logPos: 500 });
    whole.tableMap(70, { logPos: 600 });
    whole.rows(23, 70, [1, 2], { logPos: 700 });
    whole.xid(4, { logPos: 800 });
    const one = (await readAll(whole.bytes())).txs;
    assert.equal(one.length, 1);
    for (const relay of [true, false]) {
      const a = new BinlogBuilder({ checksum: true, fdeFlags: relay ? 0x40 : 0 });
      a.fde({ checksum: true });
      const start = a.pos;
      a.mariaGtid(9, 0, 0, { logPos: 500 });
      a.tableMap(70, { logPos: 600 });
      const b = new BinlogBuilder({ checksum: true, fdeFlags: relay ? 0x40 : 0 });
      b.rotate({ flags: 0x20, logPos: 0 });
      b.fde({ checksum: true });
      b.rows(23, 70, [1, 2], { logPos: 700 });
      b.xid(4, { logPos: 800 });
      Deno.writeFileSync(`${dir}/r.1`, a.bytes());
      Deno.writeFileSync(`${dir}/r.2`, b.bytes());
      const { txs, warnings } = await readAll([`${dir}/r.1`, `${dir}/r.2`]);
      // The open transaction moves from one file's read buffer to the next one's.
      const threaded = await readAll([`${dir}/r.1`, `${dir}/r.2`], { workers: 1 });
      assert.deepEqual(threaded, { txs, warnings });
      if (relay) {
        assert.deepEqual(warnings, []);
        assert.equal(txs.length, 1);
        assert.equal(txs[0].md5, one[0].md5);
        assert.deepEqual(
          [txs[0].startFile, txs[0].start, txs[0].file, txs[0].end, txs[0].gtid],
          [`${dir}/r.1`, start, `${dir}/r.2`, 800, "0-1-9"],
        );
        assert.deepEqual(await tailTransactions([`${dir}/r.1`, `${dir}/r.2`], 1), txs);
      } else {
        assert.ok(warnings.some((w) => w.includes(`${dir}/r.1: offset ${start}: partial`)));
        assert.ok(txs.every((t) => t.md5 !== one[0].md5));
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a BEGIN inside an uncommitted transaction drops it with a warning", async () => {
  const b = new BinlogBuilder({ checksum: false });
  b.query("d", "BEGIN");
  b.query("d", "INSERT INTO t VALUES (1)");
  const second = b.pos;
  b.query("d", "BEGIN");
  b.query("d", "INSERT INTO t VALUES (2)");
  b.query("d", "COMMIT");
  const { txs, warnings } = await readAll(b.bytes());
  assert.deepEqual(txs.map((t) => t.start), [second]);
  assert.equal(warnings.length, 1);
});

Deno.test("a new GTID before a commit drops the open group with a warning", async () => {
  const b = new BinlogBuilder({ checksum: false });
  b.mariaGtid(1, 0, 0);
  b.tableMap(70);
  b.mariaGtid(2, 0, 1);
  b.query("d", "DROP TABLE t");
  const { txs, warnings } = await readAll(b.bytes());
  assert.deepEqual(txs.map((t) => t.gtid), ["0-1-2"]);
  assert.equal(warnings.length, 1);
});

Deno.test("events larger than the read buffer are streamed, checksummed and hashed", async () => {
  const mk = (checksum: boolean) => {
    const b = new BinlogBuilder({ checksum });
    b.query("d", "BEGIN");
    b.tableMap(70);
    const big = Array.from({ length: 400_000 }, (_, i) => (i * 7) & 255);
    b.rows(23, 70, big);
    b.query("d", "INSERT INTO t VALUES ('" + "x".repeat(300_000) + "')");
    b.xid(1);
    return b.bytes();
  };
  const small = await readAll(mk(true), { bufferSize: 150_000 });
  const large = await readAll(mk(true));
  const noCrc = await readAll(mk(false), { bufferSize: 150_000 });
  assert.equal(small.txs.length, 1);
  assert.deepEqual(small.txs, large.txs);
  assert.equal(noCrc.txs[0].md5, large.txs[0].md5);
  const bad = mk(true);
  bad[200_000] ^= 1;
  await expectError(bad, "corrupt", undefined, { bufferSize: 150_000 });
});

Deno.test("start position: boundary required, FDE still applied", async () => {
  const path = fixturePath("mariadb-bin.000001");
  const all = (await readAll([path])).txs;
  const from330 = (await readAll([path], { startPosition: 330 })).txs;
  assert.deepEqual(from330, all);
  const from702 = (await readAll([path], { startPosition: 702 })).txs;
  assert.deepEqual(from702, all.slice(1));
  await expectError([path], "usage", 331, { startPosition: 331 });
  await expectError([path], "usage", undefined, { startPosition: 5000 });
});

Deno.test("tail returns the last n transactions across files", async () => {
  const files = [fixturePath("vector.binlog"), fixturePath("mariadb-bin.000001")];
  const all = (await readAll(files)).txs;
  for (const n of [1, 3, 9, 10, 50]) {
    assert.deepEqual(await tailTransactions(files, n), all.slice(-n));
  }
  assert.deepEqual(await tailTransactions(files, 0), []);
});

// ---------------------------------------------------------------------------------------------
// Bad input

Deno.test("bad input: empty, wrong magic, random bytes, bad sizes", async () => {
  await expectError(new Uint8Array(0), "not_binlog", 0);
  await expectError(new TextEncoder().encode("hello world, not a binlog"), "not_binlog", 0);
  const rnd = new Uint8Array(4096);
  let x = 12345;
  for (let i = 0; i < rnd.length; i++) rnd[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  await expectError(rnd, "not_binlog", 0);
  const withMagic = rnd.slice();
  withMagic.set([0xfe, 0x62, 0x69, 0x6e]);
  try {
    await readAll(withMagic);
  } catch (e) {
    assert.ok(e instanceof BinlogError);
  }
  const b = new BinlogBuilder({ checksum: true });
  b.query("d", "BEGIN");
  const at = b.pos;
  b.xid(1);
  const small = b.bytes();
  new DataView(small.buffer).setUint32(at + 9, 12, true);
  await expectError(small, "corrupt", at);
  // An event size past the end that its log_pos contradicts is corrupt, in any file; a file
  // that really ends inside the event (a torn tail) is a partial transaction in the last file
  // and corrupt in an earlier one.
  const past = b.bytes();
  new DataView(past.buffer).setUint32(at + 9, 5000, true);
  await expectError(past, "corrupt", at);
  const torn = b.bytes().subarray(0, b.pos - 3);
  const { txs, warnings } = await readAll(torn);
  assert.equal(txs.length, 0);
  assert.match(warnings[0], /partial transaction of \d+ bytes at end of file left out/);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/a`, torn);
    Deno.writeFileSync(`${dir}/b`, b.bytes());
    await expectError([`${dir}/a`, `${dir}/b`], "corrupt", at);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bad input: directory, missing file", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const e = await expectError([dir], "io");
    assert.match(e.message, /is a directory/);
    const m = await expectError([`${dir}/missing.000001`], "io");
    assert.match(m.message, /no such file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("encrypted binlog is refused as unsupported", async () => {
  const b = new BinlogBuilder({ checksum: true });
  b.raw(164, new Uint8Array([1, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  b.query("d", "BEGIN");
  await expectError(b.bytes(), "unsupported", 4 + b.fdeSize);
});

Deno.test("truncation at every offset of small fixtures", async () => {
  for (const name of ["mariadb-bin.000001", "transaction_compression.000001", "bug32407.001"]) {
    const bytes = Deno.readFileSync(fixturePath(name));
    const full = (await readAll(bytes)).txs;
    for (let n = 0; n <= bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      try {
        const { txs } = await readAll(cut);
        // Complete transactions are exactly those that end within the cut.
        const expected = full.filter((t) => t.endOffset <= n);
        assert.deepEqual(txs.map((t) => t.md5), expected.map((t) => t.md5), `${name} cut ${n}`);
      } catch (e) {
        assert.ok(e instanceof BinlogError, `${name} cut at ${n}: ${e}`);
        assert.ok(n < 4, `${name} cut at ${n}: ${e}`); // only a cut magic number is an error
      }
    }
  }
});

/** Transactions read until the end or an error, and that error's message. */
async function readUntilError(
  files: string[] | Uint8Array,
  options: ReadOptions,
): Promise<{ txs: BinlogTransaction[]; error: string }> {
  const txs: BinlogTransaction[] = [];
  const opts = { ...options, onWarning: () => {} };
  const source = files instanceof Uint8Array
    ? {
      name: "mem",
      chunks: (async function* () {
        yield files;
      })(),
    }
    : files;
  try {
    for await (const t of readTransactions(source, opts)) txs.push(t);
  } catch (e) {
    assert.ok(e instanceof BinlogError, String(e));
    return { txs, error: e.message };
  }
  return { txs, error: "" };
}

Deno.test("hashing workers give the same transactions and errors as the main thread", async () => {
  let compared = 0;
  for (const entry of Deno.readDirSync(FIXTURES_DIR)) {
    if (entry.name.startsWith("LICENSE") || entry.name.endsWith(".md")) continue;
    const path = `${FIXTURES_DIR}/${entry.name}`;
    const alone = await readUntilError([path], { workers: 0 });
    for (const workers of [1, 2]) {
      // A small read buffer: many buffer changes while batches still refer to older buffers.
      const opts = { workers, bufferSize: 150_000 };
      assert.deepEqual(await readUntilError([path], opts), alone, `${entry.name}, ${workers}`);
    }
    compared++;
  }
  assert.ok(compared >= 25);
});

/** A binlog of transactions of varied sizes, with the MD5 each must have, computed here. */
function variedBinlog(checksum: boolean): {
  bytes: Uint8Array;
  md5s: string[];
  rowsPos: number[];
} {
  const b = new BinlogBuilder({ checksum });
  const md5s: string[] = [];
  const rowsPos: number[] = [];
  const le4 = (x: number) => [x & 255, (x >> 8) & 255, (x >> 16) & 255, x >>> 24];
  // Small ones, ones around the batch limits (128 KiB of work, 512 KiB per transaction) and one
  // with more events than a batch has spans (16384).
  const shapes: Array<[number, number]> = [];
  for (let i = 0; i < 400; i++) shapes.push([1 + (i % 5), 40 + ((i * 37) % 900)]);
  shapes.push([2, 70_000], [3, 60_000], [1, 600_000], [9, 60_000], [20_000, 3], [1, 10]);
  for (let i = 0; i < 300; i++) shapes.push([1 + (i % 3), 100 + i]);
  let k = 0;
  for (const [events, size] of shapes) {
    const parts: Uint8Array[] = [];
    b.query("d", "BEGIN", { ts: 5 });
    b.tableMap(70, { ts: 6 });
    const tm = b.lastBodies.get(19)!;
    parts.push(new Uint8Array([19, ...le4(6), ...le4(tm.length - 6)]), tm.subarray(6));
    for (let e = 0; e < events; e++) {
      b.rows(23, 70, Array.from({ length: size }, (_, i) => (i * 31 + k++) & 255), { ts: 7 });
      rowsPos.push(b.lastEventPos);
      const rows = b.lastBodies.get(23)!;
      parts.push(new Uint8Array([30, ...le4(7), ...le4(rows.length - 6)]), rows.subarray(6));
    }
    b.xid(1);
    md5s.push(md5Of(parts));
  }
  return { bytes: b.bytes(), md5s, rowsPos };
}

Deno.test("batched hashing: transactions of any size and span count, with workers", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    for (const checksum of [true, false]) {
      const { bytes, md5s } = variedBinlog(checksum);
      const path = `${dir}/varied.${checksum}`;
      Deno.writeFileSync(path, bytes);
      for (const workers of [0, 1, 2]) {
        for (const bufferSize of [150_000, 4 * 1024 * 1024]) {
          const { txs, error } = await readUntilError([path], { workers, bufferSize });
          assert.equal(error, "");
          assert.deepEqual(txs.map((t) => t.md5), md5s, `${checksum} ${workers} ${bufferSize}`);
        }
      }
      const stream = await readUntilError(bytes, {});
      assert.deepEqual(stream.txs.map((t) => t.md5), md5s);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a bad checksum: the error names its event, transactions before it come first", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const { bytes, rowsPos } = variedBinlog(true);
    const path = `${dir}/clean`;
    Deno.writeFileSync(path, bytes);
    const clean = (await readUntilError([path], { workers: 0 })).txs;
    for (const at of [rowsPos[5], rowsPos[700], rowsPos[rowsPos.length - 3]]) {
      const bad = bytes.slice();
      bad[at + 40] ^= 0x10;
      Deno.writeFileSync(`${dir}/bad`, bad);
      const before = clean.filter((t) => t.endOffset <= at).map((t) => [t.end, t.md5]);
      for (const workers of [0, 1]) {
        for (const bufferSize of [150_000, 4 * 1024 * 1024]) {
          const r = await readUntilError([`${dir}/bad`], { workers, bufferSize });
          assert.match(r.error, new RegExp(`: offset ${at}: bad CRC32 checksum`));
          assert.deepEqual(r.txs.map((t) => [t.end, t.md5]), before, `${at} ${workers}`);
        }
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The grouping rule on its own (binlog_group.ts)

Deno.test("grouping rule: what each event does to the open group", () => {
  const none = null;
  const open = { inTrx: false, standalone: false };
  const inTrx = { inTrx: true, standalone: false };
  const standalone = { inTrx: false, standalone: true };
  const cases: Array<[string, typeof open | null, number, number, number]> = [
    ["GTID, nothing open", none, ROLE_GTID, 0, OPEN],
    ["GTID, a group open", inTrx, ROLE_GTID, 0, DROP_BEFORE_GTID | OPEN],
    ["BEGIN, nothing open", none, ROLE_QUERY, QK_BEGIN, OPEN | IN_TRANSACTION],
    ["BEGIN after a GTID", open, ROLE_QUERY, QK_BEGIN, IN_TRANSACTION],
    ["BEGIN inside BEGIN", inTrx, ROLE_QUERY, QK_BEGIN, DROP_BEFORE_BEGIN | OPEN | IN_TRANSACTION],
    ["COMMIT", inTrx, ROLE_QUERY, QK_END, END],
    ["COMMIT, nothing open", none, ROLE_QUERY, QK_END, 0],
    ["DDL, nothing open", none, ROLE_QUERY, QK_OTHER, OPEN | END],
    ["DDL after a GTID", open, ROLE_QUERY, QK_OTHER, END],
    ["statement inside BEGIN", inTrx, ROLE_QUERY, QK_OTHER, 0],
    ["the query after a standalone GTID", standalone, ROLE_QUERY, QK_OTHER, END],
    ["XA START", open, ROLE_QUERY, QK_XA_START, IN_TRANSACTION],
    ["XA END", inTrx, ROLE_QUERY, QK_XA_OTHER, 0],
    ["XA COMMIT", open, ROLE_QUERY, QK_XA_END_TRX, END],
    ["CREATE ... START TRANSACTION", open, ROLE_QUERY, QK_START_TRX, IN_TRANSACTION],
    ["rows, nothing open", none, ROLE_CONTENT, 0, OPEN],
    ["rows inside BEGIN", inTrx, ROLE_CONTENT, 0, 0],
    ["XID", inTrx, ROLE_COMMIT, 0, END],
    ["XID, nothing open", none, ROLE_COMMIT, 0, ORPHAN_COMMIT],
    ["ANNOTATE_ROWS", inTrx, ROLE_OTHER, 0, 0],
  ];
  for (const [name, g, role, query, expected] of cases) {
    assert.equal(groupStep(g, role, query), expected, name);
  }
});

// ---------------------------------------------------------------------------------------------
// Torn tails, corrupt sizes, and what a read says it left out

Deno.test("an event size past the end that its log_pos contradicts is corrupt, not a torn tail", async () => {
  const bytes = Deno.readFileSync(fixturePath("mariadb-bin.000001"));
  // The GTID_LIST event at 256 (29 bytes, log_pos 285) given a 1,000,000-byte size: it used to
  // be a partial event at the end (exit 0), leaving out both transactions after it.
  const bad = bytes.slice();
  new DataView(bad.buffer).setUint32(256 + 9, 1_000_000, true);
  const e = await expectError(bad, "corrupt", 256);
  assert.match(e.message, /event size 1000000 points \d+ bytes past the end of the file/);
  // The same in the middle of a transaction (the TABLE_MAP at 848): the first one is reported.
  const mid = bytes.slice();
  new DataView(mid.buffer).setUint32(848 + 9, 5000, true);
  const r = await readUntilError(mid, {});
  assert.deepEqual(r.txs.map((t) => t.end), [702]);
  assert.match(r.error, /offset 848: event size 5000 points/);
  // A file that does end inside that event is a torn tail: a warning, nothing else lost.
  for (let cut = 257; cut < 285; cut++) {
    const { txs, warnings } = await readAll(bytes.subarray(0, cut));
    assert.deepEqual(txs, [], `cut at ${cut}`);
    assert.equal(warnings.length, 1, `cut at ${cut}`);
    assert.match(warnings[0], /offset 256: partial event of \d+ bytes at end of file left out/);
  }
});

Deno.test("every event of every fixture, cut short, is a torn tail", async () => {
  let cuts = 0;
  for (const entry of Deno.readDirSync(FIXTURES_DIR)) {
    if (entry.name.startsWith("LICENSE") || entry.name.endsWith(".md")) continue;
    const bytes = Deno.readFileSync(`${FIXTURES_DIR}/${entry.name}`);
    const full = await readUntilError(bytes, { verifyChecksums: false });
    // Up to where the file reads cleanly (a corrupt fixture: up to its corruption).
    const limit = full.error === "" ? bytes.length : Number(/offset (\d+)/.exec(full.error)![1]);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    for (let p = 4; p + 19 <= limit;) {
      const size = dv.getUint32(p + 9, true);
      if (size < 19 || p + size > limit) break;
      if (size > 19) {
        // Cut after the header and after all but one byte: the file ends inside the event.
        for (const cut of [p + 19, p + size - 1]) {
          const r = await readUntilError(bytes.subarray(0, cut), { verifyChecksums: false });
          assert.equal(r.error, "", `${entry.name} cut at ${cut} (event at ${p})`);
          const expected = full.txs.filter((t) => t.endOffset <= p).map((t) => t.end);
          assert.deepEqual(r.txs.map((t) => t.end), expected, `${entry.name} cut at ${cut}`);
          cuts++;
        }
      }
      p += size;
    }
  }
  assert.ok(cuts > 2000, `${cuts} cuts`);
});

/** The transactions and the end of a read of files. */
async function readWithEnd(
  files: string[],
): Promise<{ txs: BinlogTransaction[]; end: ReadEnd; warnings: string[] }> {
  const warnings: string[] = [];
  const read = readTransactions(files, { onWarning: (m) => warnings.push(m) });
  const txs: BinlogTransaction[] = [];
  let r = await read.next();
  for (; !r.done; r = await read.next()) txs.push(r.value);
  return { txs, end: r.value, warnings };
}

Deno.test("a read says where its complete part ends and what it left out", async () => {
  const bytes = Deno.readFileSync(fixturePath("mariadb-bin.000001"));
  const dir = Deno.makeTempDirSync();
  try {
    const f = `${dir}/mariadb-bin.000001`;
    const at = (cut: number) => {
      Deno.writeFileSync(f, bytes.subarray(0, cut));
      return readWithEnd([f]);
    };
    // Transactions: 330..702 and 702..1074; events at 702 (GTID), 744, 848, 984 (ROWS), 1043.
    const whole = await at(1074);
    assert.deepEqual(whole.end, {
      file: f,
      size: 1074,
      complete: { file: f, offset: 1074 },
      eventsEnd: 1074,
      lastTransactionEnd: 1074,
      tornBytes: 0,
      openTransaction: null,
      leftOutBytes: 0,
    });
    // Torn inside the second transaction's ROWS event.
    assert.deepEqual((await at(1000)).end, {
      file: f,
      size: 1000,
      complete: { file: f, offset: 702 },
      eventsEnd: 984,
      lastTransactionEnd: 702,
      tornBytes: 16,
      openTransaction: { file: f, start: 702 },
      leftOutBytes: 298,
    });
    // At an event boundary inside the transaction: nothing torn, the transaction left out.
    const boundary = await at(984);
    assert.equal(boundary.end.tornBytes, 0);
    assert.equal(boundary.end.leftOutBytes, 282);
    assert.deepEqual(boundary.end.complete, { file: f, offset: 702 });
    // Torn inside the GTID event that would open it: no transaction open yet.
    const gtid = await at(720);
    assert.deepEqual(
      [gtid.end.complete, gtid.end.tornBytes, gtid.end.openTransaction, gtid.end.leftOutBytes],
      [{ file: f, offset: 702 }, 18, null, 18],
    );
    // tailWithEnd says the same as a full read.
    Deno.writeFileSync(f, bytes.subarray(0, 1000));
    const tail = await tailWithEnd([f], 1);
    assert.deepEqual(tail.end, (await readWithEnd([f])).end);
    assert.deepEqual(tail.transactions.map((t) => t.end), [702]);
    assert.deepEqual((await tailWithEnd([f], 0)).end, tail.end);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a relay log transaction left open across files: where it began, all its bytes", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const a = new BinlogBuilder({ checksum: true, fdeFlags: 0x40 });
    a.fde({ checksum: true });
    a.query("d", "CREATE TABLE t (a INT)", { logPos: 300 });
    const done = a.pos;
    const start = a.pos;
    a.mariaGtid(9, 0, 0, { logPos: 500 });
    a.tableMap(70, { logPos: 600 });
    const b = new BinlogBuilder({ checksum: true, fdeFlags: 0x40 });
    b.rotate({ flags: 0x20, logPos: 0 });
    b.fde({ checksum: true });
    b.rows(23, 70, [1, 2], { logPos: 700 });
    const [fa, fb] = [`${dir}/relay.000001`, `${dir}/relay.000002`];
    Deno.writeFileSync(fa, a.bytes());
    Deno.writeFileSync(fb, b.bytes());
    const { txs, end, warnings } = await readWithEnd([fa, fb]);
    assert.deepEqual(txs.map((t) => t.endOffset), [done]);
    assert.deepEqual(end.complete, { file: fa, offset: start });
    assert.deepEqual(end.openTransaction, { file: fa, start });
    assert.equal(end.lastTransactionEnd, -1);
    assert.equal(end.leftOutBytes, a.pos - start + b.pos);
    assert.deepEqual(warnings, [
      `${fa}: offset ${start}: partial transaction of ${
        a.pos - start + b.pos
      } bytes at end of file left out`,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a relay-log index naming a FIFO: the read refuses it instead of waiting", async () => {
  // The parser reads no index files; the agent reads the relay-log index and gives the paths
  // to tailTransactions (resync_agent.ts). The same here, in a child process that is killed if
  // it waits on the FIFO (a FIFO without a writer blocks whoever opens it).
  const dir = Deno.makeTempDirSync();
  try {
    Deno.copyFileSync(fixturePath("mariadb-bin.000001"), `${dir}/relay-bin.000001`);
    const mkfifo = await new Deno.Command("mkfifo", { args: [`${dir}/relay-bin.000002`] }).output();
    assert.ok(mkfifo.success, "mkfifo");
    Deno.writeTextFileSync(`${dir}/relay-bin.index`, "./relay-bin.000001\n./relay-bin.000002\n");
    const binlog = new URL("../binlog.ts", import.meta.url).href;
    const code = `
      import { BinlogError, tailTransactions, readTransactions } from ${JSON.stringify(binlog)};
      const dir = ${JSON.stringify(dir)};
      const files = Deno.readTextFileSync(dir + "/relay-bin.index").split("\\n")
        .filter((l) => l !== "").map((l) => dir + "/" + l.replace(/^\\.\\//, ""));
      for (const read of [() => tailTransactions(files, 5), () => Array.fromAsync(readTransactions(files))]) {
        try {
          await read();
          console.log("read");
        } catch (e) {
          console.log(e instanceof BinlogError ? e.kind + " " + e.message : "other " + e);
        }
      }`;
    const r = await runKilledAfter(Deno.execPath(), ["eval", "--ext=ts", code], 20_000);
    assert.equal(r.signal, null, `killed: it waited on the FIFO (${r.stderr})`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2, r.stdout);
    for (const l of lines) {
      assert.equal(l, `io ${dir}/relay-bin.000002: cannot read: not a regular file (a FIFO)`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Limits on what untrusted input can make the parser hold (binlog_limits.ts)

/** A MariaDB compressed block: header byte, the announced length (4 bytes), zlib data. */
function mariadbBlock(announced: number, data: Uint8Array): Uint8Array {
  return concat([
    new Uint8Array([0x84, announced >>> 24, (announced >>> 16) & 255, (announced >>> 8) & 255]),
    new Uint8Array([announced & 255]),
    data,
  ]);
}

/** A QUERY_COMPRESSED (165) event body: post-header, no status variables, db "d", the block. */
function compressedQuery(block: Uint8Array): Uint8Array {
  return concat([
    new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
    enc.encode("d"),
    new Uint8Array([0]),
    block,
  ]);
}

Deno.test("limits: an event size over 1 GiB is corrupt", async () => {
  const b = new BinlogBuilder({ checksum: true });
  const at = b.pos;
  b.query("d", "BEGIN");
  const bytes = b.bytes();
  new DataView(bytes.buffer).setUint32(at + 9, 0x40000000 + 0x10001, true);
  const e = await expectError(bytes, "corrupt", at);
  assert.match(e.message, /larger than any server writes/);
});

Deno.test("limits: a compressed event over 96 MiB is refused before it is read", async () => {
  const b = new BinlogBuilder({ checksum: true });
  const at = b.pos;
  b.raw(165, compressedQuery(mariadbBlock(10, deflateSync(enc.encode("INSERT 1")))));
  const bytes = b.bytes();
  new DataView(bytes.buffer).setUint32(at + 9, 100 * 1024 * 1024, true);
  const e = await expectError(bytes, "unsupported", at);
  assert.match(e.message, /compressed event of 104857600 bytes exceeds the memory limit/);
});

Deno.test("limits: MariaDB compressed data announcing over 96 MiB, or inflating past what it announces", async () => {
  const over = new BinlogBuilder({ checksum: true });
  const at = over.pos;
  over.raw(165, compressedQuery(mariadbBlock(200 * 1024 * 1024, deflateSync(enc.encode("X")))));
  const e = await expectError(over.bytes(), "unsupported", at);
  assert.match(e.message, /compressed event of 209715200 bytes exceeds the 100663296 limit/);
  // A zlib bomb: 10 MB of statement in 10 kB, announced as 1,000 bytes. Inflating stops there.
  const bomb = new BinlogBuilder({ checksum: true });
  bomb.raw(165, compressedQuery(mariadbBlock(1000, deflateSync(new Uint8Array(10_000_000)))));
  const z = await expectError(bomb.bytes(), "corrupt", at);
  assert.match(z.message, /zlib data inflates to more than the 1000 bytes announced/);
  // Announced and real sizes agree: read (and hashed as the plain statement).
  const ok = new BinlogBuilder({ checksum: true });
  ok.raw(165, compressedQuery(mariadbBlock(8, deflateSync(enc.encode("DROP t 1")))));
  assert.equal((await readAll(ok.bytes())).txs.length, 1);
});

/** A TRANSACTION_PAYLOAD (40) body: payload size, compression zstd, uncompressed size, data. */
function zstdPayload(announced: number, data: Uint8Array): Uint8Array {
  // MySQL's length-encoded integers.
  const packed = (v: number) =>
    v < 251 ? [v] : v < 2 ** 24 ? [253, ...le(v, 3)] : [254, ...le(v, 8)];
  const field = (type: number, v: number) => {
    const p = packed(v);
    return [type, p.length, ...p];
  };
  return concat([
    new Uint8Array([...field(1, data.length), ...field(2, 0), ...field(3, announced), 0]),
    data,
  ]);
}

Deno.test("limits: a zstd payload announcing over 96 MiB, or decompressing past what it announces", async () => {
  // Inner events: one QUERY (DDL) as MySQL writes it inside the payload (no CRC).
  const inner = new BinlogBuilder({ checksum: false });
  inner.query("d", "CREATE TABLE t (a INT)");
  const events = inner.bytes().subarray(4 + inner.fdeSize);
  const huge = new BinlogBuilder({ checksum: true });
  const at = huge.pos;
  huge.raw(40, zstdPayload(200 * 1024 * 1024, zstdCompressSync(events)));
  const e = await expectError(huge.bytes(), "unsupported", at);
  assert.match(e.message, /compressed transaction of 209715200 bytes is too large/);
  // A zstd bomb: 20 MB of zeros announced as 100 bytes. Decompressing stops there.
  const bomb = new BinlogBuilder({ checksum: true });
  bomb.raw(40, zstdPayload(100, zstdCompressSync(new Uint8Array(20_000_000))));
  const z = await expectError(bomb.bytes(), "corrupt", at);
  assert.match(z.message, /zstd payload decompresses to more than the 100 bytes announced/);
  // Announced and real sizes agree: the DDL inside is one transaction.
  const ok = new BinlogBuilder({ checksum: true });
  ok.raw(40, zstdPayload(events.length, zstdCompressSync(events)));
  assert.equal((await readAll(ok.bytes())).txs.length, 1);
});
