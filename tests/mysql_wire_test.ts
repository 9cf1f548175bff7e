/**
 * mysql_wire.ts: the packet functions on hand-built packets, the limits on what a hostile server
 * can make it hold (a fake server on loopback), and the client against a real MariaDB server
 * (socket and TCP logins, wrong password, value types, NULL, errors, timeouts, too many
 * connections, a server that goes away). tests/mysql_wire_fuzz_test.ts fuzzes the parsing.
 */
import assert from "node:assert/strict";
import {
  authResponse,
  decodeRow,
  DEFAULT_WIRE_LIMITS,
  framePackets,
  MysqlError,
  parseErrPacket,
  parseHandshake,
  readLenencInt,
  WireConnection,
  WireLimitError,
} from "../mysql_wire.ts";
import { classifyError, MysqlClient } from "../mysql.ts";
import { startMariadb } from "./mariadb_server.ts";
import {
  column,
  eof,
  err as errPayload,
  FakeMysqlServer,
  type FakePart,
  greeting,
  lenenc,
  login,
  ok,
  packet,
  resultSet,
  row,
  STATUS,
} from "./fake_mysql_server.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("length-encoded integers of every width, and the NULL marker", () => {
  assert.deepEqual(readLenencInt(new Uint8Array([0xfa]), 0), [250, 1]);
  assert.deepEqual(readLenencInt(new Uint8Array([0xfb]), 0), [null, 1]);
  assert.deepEqual(readLenencInt(new Uint8Array([0xfc, 0x34, 0x12]), 0), [0x1234, 3]);
  assert.deepEqual(readLenencInt(new Uint8Array([0xfd, 1, 2, 3]), 0), [0x030201, 4]);
  assert.deepEqual(
    readLenencInt(new Uint8Array([0xfe, 1, 0, 0, 0, 1, 0, 0, 0]), 0),
    [2 ** 32 + 1, 9],
  );
  assert.throws(() => readLenencInt(new Uint8Array([0xfc, 1]), 0), MysqlError);
  assert.throws(() => readLenencInt(new Uint8Array([0xff]), 0), MysqlError);
});

Deno.test("framing splits at 2^24-1 bytes with increasing sequence ids", () => {
  const small = framePackets(new Uint8Array([3, 65]), 0);
  assert.equal(hex(small), "0200000003" + "41");
  const big = framePackets(new Uint8Array(0xffffff + 2), 5);
  assert.equal(big.length, 0xffffff + 2 + 8);
  assert.deepEqual([...big.subarray(0, 4)], [0xff, 0xff, 0xff, 5]);
  assert.deepEqual([...big.subarray(0xffffff + 4, 0xffffff + 8)], [2, 0, 0, 6]);
});

Deno.test("an error packet with and without SQLSTATE", () => {
  const enc = new TextEncoder();
  const withState = new Uint8Array([0xff, 0x15, 0x04, ...enc.encode("#28000Access denied")]);
  const e = parseErrPacket(withState);
  assert.equal(e.errno, 1045);
  assert.equal(e.code, "ER_ACCESS_DENIED_ERROR");
  assert.equal(e.sqlState, "28000");
  assert.equal(e.message, "Access denied");
  // Too many connections arrives before the handshake, without the marker.
  const early = parseErrPacket(new Uint8Array([0xff, 0x10, 0x04, ...enc.encode("Too many")]));
  assert.equal(early.errno, 1040);
  assert.equal(early.message, "Too many");
  assert.equal(classifyError(early), "busy");
  assert.throws(() => parseHandshake(new Uint8Array([0xff, 0x10, 0x04, 0x41])), /A/);
});

Deno.test("mysql_native_password and caching_sha2_password responses (known vectors)", async () => {
  const scramble = new TextEncoder().encode("0123456789abcdefghij");
  // SHA1("pw") XOR SHA1(scramble + SHA1(SHA1("pw"))), computed independently with openssl.
  const native = await authResponse("mysql_native_password", "pw", scramble);
  assert.equal(native!.length, 20);
  const sha2 = await authResponse("caching_sha2_password", "pw", scramble);
  assert.equal(sha2!.length, 32);
  assert.deepEqual(await authResponse("mysql_native_password", "", scramble), new Uint8Array(0));
  assert.equal(await authResponse("ed25519", "pw", scramble), undefined);
  const expected = await opensslNative("pw", scramble);
  assert.equal(hex(native!), expected);
});

/** The native scramble through openssl (independent of Web Crypto). */
async function opensslNative(password: string, scramble: Uint8Array): Promise<string> {
  const sha1 = async (data: Uint8Array) => {
    const p = new Deno.Command("openssl", {
      args: ["sha1", "-binary"],
      stdin: "piped",
      stdout: "piped",
    })
      .spawn();
    const w = p.stdin.getWriter();
    await w.write(data);
    await w.close();
    return new Uint8Array((await p.output()).stdout);
  };
  const h1 = await sha1(new TextEncoder().encode(password));
  const h2 = await sha1(h1);
  const h3 = await sha1(new Uint8Array([...scramble, ...h2]));
  return hex(h1.map((b, i) => b ^ h3[i]));
}

Deno.test("a row decodes numbers, big numbers, decimals, strings and NULL", () => {
  const enc = new TextEncoder();
  const lenenc = (s: string) => [enc.encode(s).length, ...enc.encode(s)];
  const cols = [
    { name: "i", type: 3, flags: 0 },
    { name: "big", type: 8, flags: 0 },
    { name: "safe", type: 8, flags: 0 },
    { name: "d", type: 0xf6, flags: 0 },
    { name: "s", type: 0xfd, flags: 0 },
    { name: "n", type: 0xfd, flags: 0 },
    { name: "f", type: 5, flags: 0 },
  ];
  const row = decodeRow(
    new Uint8Array([
      ...lenenc("-7"),
      ...lenenc("18446744073709551615"),
      ...lenenc("4294967296"),
      ...lenenc("1.50"),
      ...lenenc("héllo"),
      0xfb,
      ...lenenc("2.5"),
    ].flat()),
    cols,
  );
  assert.deepEqual(row, {
    i: -7,
    big: "18446744073709551615",
    safe: 4294967296,
    d: "1.50",
    s: "héllo",
    n: null,
    f: 2.5,
  });
});

Deno.test({
  name:
    "against a real MariaDB: logins, types, errors, timeouts, too many connections, a killed session",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const server = await startMariadb({ serverId: 71 });
    const password = "sécret pw";
    /** The test account over the socket. */
    const wire = () => WireConnection.connect({ socket: server.socket, user: "wire", password });
    try {
      await server.query("CREATE USER 'wire'@'localhost' IDENTIFIED BY ?", [password]);
      await server.query("CREATE USER 'wire'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await server.query("CREATE USER 'nopw'@'localhost'");
      await server.query("GRANT ALL ON *.* TO 'wire'@'localhost', 'wire'@'127.0.0.1'");

      await t.step("socket login with a password, value types and NULL", async () => {
        const c = await wire();
        const [r] = await c.query(
          "SELECT 1 AS one, CAST(18446744073709551615 AS UNSIGNED) AS big, 1.50 AS d, " +
            "'x' AS s, NULL AS n, @@global.server_id AS id, REPEAT('y', 70000) AS long_text",
        );
        assert.equal(r.one, 1);
        assert.equal(r.big, "18446744073709551615");
        assert.equal(r.d, "1.50");
        assert.equal(r.s, "x");
        assert.equal(r.n, null);
        assert.equal(r.id, 71);
        assert.equal((r.long_text as string).length, 70000);
        assert.deepEqual(await c.query("SET @a = 1"), []);
        assert.deepEqual(await c.query("SELECT 1 FROM DUAL WHERE 0"), []);
        // Statements on one connection queue up in call order.
        const both = await Promise.all([c.query("SELECT 2 AS v"), c.query("SELECT 3 AS v")]);
        assert.deepEqual(both, [[{ v: 2 }], [{ v: 3 }]]);
        await c.close();
        assert.equal(c.closed, true);
      });

      await t.step("a 20 MB value crosses the 16 MB packet limit", async () => {
        const c = await WireConnection.connect({
          socket: server.socket,
          user: "wire",
          password,
          limits: { maxPacketBytes: 32 * 1024 * 1024 },
        });
        const [r] = await c.query("SELECT REPEAT('z', 20 * 1024 * 1024) AS v", 60_000);
        assert.equal((r.v as string).length, 20 * 1024 * 1024);
        const [e] = await c.query(`SELECT LENGTH('${"q".repeat(17 * 1024 * 1024)}') AS n`, 60_000);
        assert.equal(e.n, 17 * 1024 * 1024);
        await c.close();
      });

      await t.step("the default packet limit refuses that value and closes", async () => {
        const c = await wire();
        const e = await c.query("SELECT REPEAT('z', 20 * 1024 * 1024) AS v", 60_000)
          .then(() => undefined, (x) => x);
        assert.ok(e instanceof WireLimitError, String(e));
        assert.equal(e.limit, "maxPacketBytes");
        assert.equal(e.max, 16 * 1024 * 1024);
        assert.equal(classifyError(e), "error");
        assert.equal(c.closed, true);
      });

      await t.step("NO_BACKSLASH_ESCAPES is read from the status flags, no query", async () => {
        const c = await wire();
        assert.equal(c.noBackslashEscapes, false);
        await c.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
        assert.equal(c.noBackslashEscapes, true);
        // A backslash is an ordinary character now.
        assert.deepEqual(await c.query(String.raw`SELECT 'a\b' AS v`), [{ v: String.raw`a\b` }]);
        await c.query("SET SESSION sql_mode = ''");
        assert.equal(c.noBackslashEscapes, false);
        await c.close();
      });

      await t.step("TCP login, and an account without password", async () => {
        const c = await WireConnection.connect({
          host: "127.0.0.1",
          port: server.port,
          user: "wire",
          password,
        });
        assert.equal((await c.query("SELECT CURRENT_USER() AS u"))[0].u, "wire@127.0.0.1");
        await c.close();
        const n = await WireConnection.connect({
          socket: server.socket,
          user: "nopw",
          password: "",
        });
        assert.equal((await n.query("SELECT 5 AS v"))[0].v, 5);
        await n.close();
      });

      await t.step(
        "a wrong password is an auth error, and the password is in no message",
        async () => {
          const err = await WireConnection.connect({
            socket: server.socket,
            user: "wire",
            password: "wrong-pass-xyz",
          }).then(() => undefined, (e) => e);
          assert.ok(err instanceof MysqlError);
          assert.equal(err.errno, 1045);
          assert.equal(classifyError(err), "auth");
          assert.ok(!err.message.includes("wrong-pass-xyz"));
        },
      );

      await t.step("a missing socket and a refused port are down", async () => {
        const missing = await WireConnection.connect({
          socket: `${server.dir}/nope.sock`,
          user: "wire",
          password: "",
        }).then(() => undefined, (e) => e);
        assert.equal(missing.code, "ENOENT");
        assert.equal(classifyError(missing), "down");
        const refused = await WireConnection.connect({
          host: "127.0.0.1",
          port: 1,
          user: "wire",
          password: "",
        }).then(() => undefined, (e) => e);
        assert.equal(refused.code, "ECONNREFUSED");
        assert.equal(classifyError(refused), "down");
      });

      await t.step("an SQL error keeps the connection usable", async () => {
        const c = await MysqlClient.connect({
          socket: server.socket,
          user: "wire",
          password,
        });
        const err = await c.query("SELECT * FROM mysql.no_such_table").then(
          () => undefined,
          (e) => e,
        );
        assert.equal(err.errno, 1146);
        assert.equal(classifyError(err), "error");
        assert.equal((await c.query("SELECT 7 AS v"))[0].v, 7);
        await c.close();
      });

      await t.step("a query past its timeout is busy and destroys the connection", async () => {
        const c = await wire();
        const err = await c.query("SELECT SLEEP(5)", 300).then(() => undefined, (e) => e);
        assert.equal(err.code, "PROTOCOL_SEQUENCE_TIMEOUT");
        assert.equal(classifyError(err), "busy");
        assert.equal(c.closed, true);
        const again = await c.query("SELECT 1").then(() => undefined, (e) => e);
        assert.equal(again.code, "PROTOCOL_CONNECTION_CLOSED");
      });

      await t.step("too many connections is busy", async () => {
        await server.query("SET GLOBAL max_connections = 10");
        const held: WireConnection[] = [];
        try {
          let err: unknown;
          // 10 is MariaDB's minimum; the root connection of the test holds one.
          for (let i = 0; i < 15 && err === undefined; i++) {
            try {
              held.push(
                await WireConnection.connect({ socket: server.socket, user: "nopw", password: "" }),
              );
            } catch (e) {
              err = e;
            }
          }
          assert.ok(err instanceof MysqlError, "the server refused a connection");
          assert.equal(err.errno, 1040);
          assert.equal(classifyError(err), "busy");
        } finally {
          for (const c of held) await c.close();
          await server.query("SET GLOBAL max_connections = 151");
        }
      });

      await t.step("a killed session fails its next statement", async () => {
        const c = await wire();
        await server.query(`KILL ${c.handshake.connectionId}`);
        const err = await c.query("SELECT 1").then(() => undefined, (e) => e);
        assert.ok(err instanceof MysqlError);
        assert.ok(["down", "error"].includes(classifyError(err)), `${err.code} ${err.errno}`);
        assert.equal((await server.query<{ v: number }[]>("SELECT 1 AS v"))[0].v, 1);
      });
    } finally {
      await server.stop();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// What a hostile server can make the client hold (a fake server on loopback)

const MiB = 1024 * 1024;

/** A part that streams `pieces` packets of 2^24-1 bytes, each chained to the next. */
function chainedPackets(pieces: number, seq = 1): FakePart {
  return async (send) => {
    const body = new Uint8Array(0xffffff + 4);
    body.set([0xff, 0xff, 0xff]);
    for (let k = 0; k < pieces; k++) {
      body[3] = (seq + k) & 255;
      await send(body);
    }
  };
}

/** Runs `fn` against a fake server playing `script`; returns its result and the bytes sent. */
async function withFake<T>(
  script: () => FakePart[],
  fn: (port: number) => Promise<T>,
): Promise<{ result: T; written: number }> {
  const server = new FakeMysqlServer(script);
  try {
    const result = await fn(server.port);
    return { result, written: server.written };
  } finally {
    await server.close();
  }
}

const connectTo = (port: number, limits?: Partial<typeof DEFAULT_WIRE_LIMITS>) =>
  WireConnection.connect({
    host: "127.0.0.1",
    port,
    user: "u",
    password: "p",
    connectTimeoutMs: 60_000,
    limits,
  });

/** The error `promise` rejects with (fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("expected a failure"), (e) => e);
}

Deno.test({
  name: "a query's reply of chained 16 MiB packets stops at maxPacketBytes, unread",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // 256 MiB announced; the client must stop after the first 16 MiB piece.
    const { result: e, written } = await withFake(
      () => [...login(), chainedPackets(16)],
      async (port) => {
        const c = await connectTo(port);
        const e = await rejection(c.query("SELECT 1", 60_000));
        assert.equal(c.closed, true);
        return e;
      },
    );
    assert.ok(e instanceof WireLimitError, String(e));
    assert.equal(e.limit, "maxPacketBytes");
    assert.equal(e.code, "PROTOCOL_LIMIT_EXCEEDED");
    // What was sent before the client closed: its 16 MiB plus what the socket buffers held.
    assert.ok(written < 64 * MiB, `the server got ${written} bytes out`);
  },
});

Deno.test({
  name: "a greeting of chained 16 MiB packets stops at maxLoginBytes, unread",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { result: e, written } = await withFake(
      () => [chainedPackets(16, 0)],
      (port) => rejection(connectTo(port)),
    );
    assert.ok(e instanceof WireLimitError, String(e));
    assert.equal(e.limit, "maxLoginBytes");
    assert.ok(written < 48 * MiB, `the server got ${written} bytes out`);
  },
});

Deno.test({
  name: "result sets past maxColumns, maxValues and maxResultBytes are refused",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A column count of 2^40: nothing is allocated for it.
    const columns = await withFake(
      () => [...login(), packet(1, lenenc(2 ** 40))],
      async (port) => rejection((await connectTo(port)).query("SELECT 1")),
    );
    assert.ok(columns.result instanceof WireLimitError, String(columns.result));
    assert.equal(columns.result.limit, "maxColumns");

    // Endless one-column rows: the rows stop at maxValues.
    const values = await withFake(
      () => [
        ...login(),
        packet(1, lenenc(1)),
        packet(2, column("v")),
        packet(3, eof()),
        async (send) => {
          const r = packet(4, row(["x"]));
          const block = new Uint8Array(r.length * 4096);
          for (let k = 0; k < 4096; k++) block.set(r, k * r.length);
          for (let k = 0; k < 1000; k++) await send(block);
        },
      ],
      async (port) => rejection((await connectTo(port, { maxValues: 50_000 })).query("SELECT 1")),
    );
    assert.ok(values.result instanceof WireLimitError, String(values.result));
    assert.equal(values.result.limit, "maxValues");
    assert.ok(values.written < 32 * MiB, `the server got ${values.written} bytes out`);

    // Endless result sets, each saying another follows: dropped, yet counted.
    const results = await withFake(
      () => [
        ...login(),
        async (send) => {
          const set = resultSet(["v"], [["y".repeat(1000)]], STATUS.MORE_RESULTS);
          for (let k = 0; k < 100_000; k++) for (const p of set) await send(p);
        },
      ],
      async (port) =>
        rejection((await connectTo(port, { maxResultBytes: 4 * MiB })).query("SELECT 1")),
    );
    assert.ok(results.result instanceof WireLimitError, String(results.result));
    assert.equal(results.result.limit, "maxResultBytes");
    assert.ok(results.written < 32 * MiB, `the server got ${results.written} bytes out`);
  },
});

Deno.test({
  name: "greeting strings, auth switch data and error messages are bounded",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const version = await withFake(
      () => [packet(0, greeting({ version: "1".repeat(60_000) }))],
      (port) => rejection(connectTo(port)),
    );
    assert.ok(version.result instanceof MysqlError);
    assert.equal(version.result.code, "PROTOCOL_MALFORMED");

    // An auth switch whose data would outgrow the login budget.
    const enc = new TextEncoder();
    const authSwitch = await withFake(
      () => [
        packet(0, greeting()),
        packet(2, [0xfe, ...enc.encode("mysql_native_password"), 0, ...new Uint8Array(100_000)]),
      ],
      (port) => rejection(connectTo(port)),
    );
    assert.ok(authSwitch.result instanceof WireLimitError, String(authSwitch.result));
    assert.equal(authSwitch.result.limit, "maxLoginBytes");

    // A 1 MB error message reaches the caller (and its logs) cut to 512 bytes.
    const long = await withFake(
      () => [...login(), packet(1, errPayload(1064, "x".repeat(1_000_000)))],
      async (port) => rejection((await connectTo(port)).query("SELECT 1")),
    );
    assert.ok(long.result instanceof MysqlError);
    assert.equal(long.result.errno, 1064);
    assert.ok(long.result.message.length <= 513, `${long.result.message.length} characters`);
  },
});

Deno.test({
  name: "the status flags of the greeting, OK and EOF packets say NO_BACKSLASH_ESCAPES",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nbe = STATUS.AUTOCOMMIT | STATUS.NO_BACKSLASH_ESCAPES;
    const seen = await withFake(
      () => [
        ...login({ status: nbe }),
        packet(1, ok(STATUS.AUTOCOMMIT)),
        ...resultSet(["v"], [["1"]], nbe),
      ],
      async (port) => {
        const c = await connectTo(port);
        const flags = [c.noBackslashEscapes];
        await c.query("SET SESSION sql_mode = ''");
        flags.push(c.noBackslashEscapes);
        await c.query("SELECT 1");
        flags.push(c.noBackslashEscapes);
        c.destroy();
        return flags;
      },
    );
    assert.deepEqual(seen.result, [true, false, true]);
  },
});
