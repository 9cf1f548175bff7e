/**
 * mysql_wire.ts: the packet functions on hand-built packets, and the client against a real
 * MariaDB server (socket and TCP logins, wrong password, value types, NULL, errors, timeouts,
 * too many connections, a server that goes away).
 */
import assert from "node:assert/strict";
import {
  authResponse,
  decodeRow,
  framePackets,
  MysqlError,
  parseErrPacket,
  parseHandshake,
  readLenencInt,
  WireConnection,
} from "../mysql_wire.ts";
import { classifyError, MysqlClient } from "../mysql.ts";
import { startMariadb } from "./mariadb_server.ts";

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
        const c = await wire();
        const [r] = await c.query("SELECT REPEAT('z', 20 * 1024 * 1024) AS v", 60_000);
        assert.equal((r.v as string).length, 20 * 1024 * 1024);
        const [e] = await c.query(`SELECT LENGTH('${"q".repeat(17 * 1024 * 1024)}') AS n`, 60_000);
        assert.equal(e.n, 17 * 1024 * 1024);
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
