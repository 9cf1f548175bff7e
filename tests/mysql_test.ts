/**
 * mysql.ts against real MariaDB servers (throwaway, tests/mariadb_server.ts): MysqlClient's typed
 * results (replica status through a whole replication set-up, binlog status with and without a
 * binary log, read_only, GTID state, sessions, semi-sync), errors classified by their number and
 * code and never by their text, and CHANGE MASTER on a server whose sql_mode has
 * NO_BACKSLASH_ESCAPES, with no piece of the password in any log line or exit reason.
 */
import assert from "node:assert/strict";
import { classifyError, describeError, MysqlClient, type MysqlClient as Client } from "../mysql.ts";
import { MysqlError, WireLimitError } from "../mysql_wire.ts";
import { Logger } from "../ocf.ts";
import { backslashEscapesSessionSql, changeSourceSql, type SourceTarget } from "../sql.ts";
import { type MariadbServer, startMariadbServers, stopAll } from "./mariadb_server.ts";
import { piecesOf } from "./secret_pieces.ts";

/** A password with a quote, then a tail that a syntax error quotes back. */
const PASSWORD = "Tr0ub4dor'and-SECRET-tail";
/** The same with a backslash and a double quote, whose quoting differs between the modes. */
const PASSWORD_BACKSLASH = `Tr0ub4dor'and\\-"SECRET"-tail`;

function connect(s: MariadbServer): Promise<Client> {
  return MysqlClient.connect({ socket: s.socket, user: "root", password: "" });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + 30_000;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what} (last error: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The error a promise rejects with (fails when it resolves). */
function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => assert.fail("expected a failure"), (e) => e);
}

/** Creates a replication login on the master (through mysql2's own escaping). */
async function replicationLogin(master: MariadbServer, user: string, password: string) {
  await master.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [user, password]);
  await master.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [user]);
}

/** Where a replica starts reading the master: its first binary log, from the start. */
function fromStart(master: MariadbServer, user: string, password: string): SourceTarget {
  return {
    host: "127.0.0.1",
    port: master.port,
    user,
    password,
    file: master.binlogFiles()[0].split("/").pop()!,
    pos: 4,
  };
}

/** Points the replica at the master, starts it and waits for its IO thread to log in. */
async function replicate(c: Client, target: SourceTarget): Promise<void> {
  await c.changeSource(target);
  await c.startReplica();
  await waitFor("the IO thread to connect", async () => {
    const s = await c.replicaStatus();
    if (s?.lastIoErrno) throw new Error(`IO error ${s.lastIoErrno}: ${s.lastIoError}`);
    return s?.ioRunning === "Yes" ? s : undefined;
  });
}

Deno.test({
  name: "MysqlClient against real MariaDB: typed results, errors by code, NO_BACKSLASH_ESCAPES",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const [master, replica, nolog, strictReplica] = await startMariadbServers([
      { serverId: 81 },
      { serverId: 82 },
      { serverId: 83, logBin: false },
      { serverId: 84, extraArgs: ["--sql-mode=NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES"] },
    ]);
    const clients: Client[] = [];
    const open = async (s: MariadbServer) => {
      const c = await connect(s);
      clients.push(c);
      return c;
    };
    try {
      await replicationLogin(master, "repl", PASSWORD);
      await replicationLogin(master, "repl_bs", PASSWORD_BACKSLASH);
      await master.query("CREATE DATABASE test");
      await master.query("CREATE TABLE test.t (id INT PRIMARY KEY, v VARCHAR(20))");
      const m = await open(master);
      const r = await open(replica);

      await t.step("flavour, identity, binlog status with and without a binary log", async () => {
        assert.equal(m.flavour.kind, "mariadb");
        assert.ok(m.flavour.major >= 10, JSON.stringify(m.flavour));
        assert.equal(await m.serverIdentity(), "81");
        const before = await m.binlogStatus();
        assert.ok(before !== undefined);
        assert.match(before.file, /^mysql-bin\.\d{6}$/);
        await master.query("INSERT INTO test.t VALUES (1, 'a')");
        const after = (await m.binlogStatus())!;
        assert.equal(after.file, before.file);
        assert.ok(after.pos > before.pos, `${before.pos} -> ${after.pos}`);
        assert.match(after.gtid, /^0-81-\d+$/);
        assert.notEqual(after.gtid, before.gtid);
        const n = await open(nolog);
        assert.equal(await n.binlogStatus(), undefined);
      });

      await t.step("replica status: none, then running and caught up, then stopped", async () => {
        assert.equal(await r.replicaStatus(), undefined);
        await replicate(r, fromStart(master, "repl", PASSWORD));
        const target = (await m.binlogStatus())!;
        const s = await waitFor("the replica to catch up", async () => {
          const s = await r.replicaStatus();
          return s && s.execMasterLogPos === target.pos && s.sqlRunning ? s : undefined;
        });
        assert.equal(s.masterHost, "127.0.0.1");
        assert.equal(s.masterPort, master.port);
        assert.equal(s.ioRunning, "Yes");
        assert.equal(s.lastIoErrno, 0);
        assert.equal(s.lastSqlErrno, 0);
        assert.equal(s.masterLogFile, target.file);
        assert.equal(s.relayMasterLogFile, target.file);
        assert.equal(s.readMasterLogPos, target.pos);
        assert.equal(s.secondsBehind, 0);
        assert.equal(
          (await replica.query<{ v: string }[]>("SELECT v FROM test.t WHERE id = 1"))[0].v,
          "a",
        );
        await r.stopReplica();
        const stopped = (await r.replicaStatus())!;
        assert.equal(stopped.ioRunning, "No");
        assert.equal(stopped.sqlRunning, false);
        assert.equal(stopped.secondsBehind, null);
        const gtid = await r.gtidState();
        assert.equal(gtid.slavePos, target.gtid);
        assert.equal(gtid.strict, false);
        await r.setGtidSlavePos("0-81-1");
        assert.equal((await r.gtidState()).slavePos, "0-81-1");
        await r.resetReplica();
        assert.equal(await r.replicaStatus(), undefined);
      });

      await t.step("read_only on and off", async () => {
        assert.equal(await m.readOnly(), false);
        await m.setReadOnly(true);
        assert.equal(await m.readOnly(), true);
        await m.setReadOnly(false);
        assert.equal(await m.readOnly(), false);
      });

      await t.step("sessions, kill, semi-sync", async () => {
        const other = await open(master);
        const [{ id }] = await other.query("SELECT CONNECTION_ID() AS id");
        const sessions = await m.clientSessions();
        assert.ok(sessions.some((s) => s.id === id), JSON.stringify(sessions));
        const [{ me }] = await m.query("SELECT CONNECTION_ID() AS me");
        assert.ok(!sessions.some((s) => s.id === me));
        await m.kill(id as number);
        await m.kill(id as number); // unknown thread now: ignored
        const e = await rejection(other.query("SELECT 1"));
        assert.ok(e instanceof MysqlError);
        await m.configureSemiSync("source", 1500);
        assert.equal((await m.semiSyncStatus()).Rpl_semi_sync_master_status, "ON");
        await m.configureSemiSync(undefined, 1500);
        assert.equal((await m.semiSyncStatus()).Rpl_semi_sync_master_status, "OFF");
      });

      await t.step("errors are classified by number and code, never by text", async () => {
        const missing = await rejection(
          MysqlClient.connect({ socket: `${master.dir}/none.sock`, user: "root", password: "" }),
        );
        assert.equal((missing as MysqlError).code, "ENOENT");
        assert.equal(classifyError(missing), "down");
        const denied = await rejection(
          MysqlClient.connect({ socket: master.socket, user: "repl", password: "wrong" }),
        );
        assert.equal((denied as MysqlError).errno, 1045);
        assert.equal(classifyError(denied), "auth");
        const syntax = await rejection(m.query("SELEC 1"));
        assert.equal((syntax as MysqlError).errno, 1064);
        assert.equal(classifyError(syntax), "error");
        // A row lock held by another session: lock wait timeout, busy.
        const holder = await open(master);
        await holder.query("BEGIN");
        await holder.query("SELECT * FROM test.t WHERE id = 1 FOR UPDATE");
        await m.query("SET SESSION innodb_lock_wait_timeout = 1");
        const lock = await rejection(m.query("UPDATE test.t SET v = 'b' WHERE id = 1"));
        assert.equal((lock as MysqlError).errno, 1205);
        assert.equal(classifyError(lock), "busy");
        await holder.query("ROLLBACK");
        // The server's text says nothing: an error that reads like a lost socket is an SQL
        // error, and one that reads like nothing is busy when its number says so.
        const lookalike = await rejection(
          m.query(
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'connect ENOENT: No such file, ECONNREFUSED'",
          ),
        );
        assert.equal((lookalike as MysqlError).errno, 1644);
        assert.equal(classifyError(lookalike), "error");
        const numbered = await rejection(
          m.query("SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1205, MESSAGE_TEXT = 'plain words'"),
        );
        assert.equal(classifyError(numbered), "busy");
        assert.equal(
          classifyError(new MysqlError("Connection lost", { code: "ECONNREFUSED" })),
          "down",
        );
        // The limits of mysql_wire.ts reach through MysqlClient's options.
        const small = await MysqlClient.connect({
          socket: master.socket,
          user: "root",
          password: "",
          limits: { maxPacketBytes: 4096 },
        });
        const big = await rejection(small.query("SELECT REPEAT('x', 10000) AS v"));
        assert.ok(big instanceof WireLimitError, String(big));
        assert.equal(classifyError(big), "error");
        await small.close();
      });

      await t.step(
        "NO_BACKSLASH_ESCAPES: CHANGE MASTER quotes for the session's mode",
        async () => {
          const q = await open(strictReplica);
          assert.deepEqual(await q.query("SELECT @@SESSION.sql_mode AS m"), [{
            m: "NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES",
          }]);
          // Logging in proves the password arrived whole, in both modes.
          await replicate(q, fromStart(master, "repl", PASSWORD));
          await q.stopReplica();
          await replicate(q, fromStart(master, "repl_bs", PASSWORD_BACKSLASH));
          await q.stopReplica();
          await q.resetReplica();
          await replicate(r, fromStart(master, "repl_bs", PASSWORD_BACKSLASH));
          await r.stopReplica();
          await r.resetReplica();
          // For SQL written ahead of time (an --init-file): backslash escapes back, the rest kept.
          await q.query(backslashEscapesSessionSql());
          assert.deepEqual(
            await q.query(String.raw`SELECT @@SESSION.sql_mode AS m, 'a\'b' AS v`),
            [{ m: "STRICT_TRANS_TABLES", v: "a'b" }],
          );
        },
      );

      await t.step("no piece of the password in a log line, exit reason or error", async () => {
        const q = await open(strictReplica);
        const lines: string[] = [];
        const log = new Logger("mysql_prm(p)[start]", { sink: (l) => lines.push(l) });
        log.secret(PASSWORD);
        // Forced: the statement quoted as if backslashes escaped (what the agent did before),
        // which this server's mode reads as the end of the literal.
        const target = fromStart(master, "repl", PASSWORD);
        const syntax = await rejection(q.query(changeSourceSql(q.flavour, target)));
        assert.equal((syntax as MysqlError).errno, 1064);
        const raw = (syntax as MysqlError).message;
        assert.ok(piecesOf(PASSWORD).some((p) => raw.includes(p)), `the server quoted: ${raw}`);
        log.error(`Cannot point replication at the master: ${describeError(syntax)}`);
        log.exitReason(`Cannot point replication at the master: ${describeError(syntax)}`);
        const clean = (texts: string[], secret: string) => {
          for (const text of texts) {
            for (const piece of piecesOf(secret)) {
              assert.ok(!text.includes(piece), `"${piece}" in: ${text}`);
            }
          }
        };
        clean(lines, PASSWORD);
        // A password past MASTER_PASSWORD's 96 characters: the server quotes its first 64, and
        // changeSource's own error has none of it.
        const long = PASSWORD.repeat(5);
        log.secret(long);
        const tooLong = await rejection(q.changeSource({ ...target, password: long }));
        assert.equal((tooLong as MysqlError).errno, 1470);
        clean([(tooLong as Error).message], long);
        log.error(`Cannot point replication at the master: ${describeError(tooLong)}`);
        log.exitReason(`Cannot point replication at the master: ${describeError(tooLong)}`);
        clean(lines, long);
        assert.equal(lines.filter((l) => l.startsWith("ocf-exit-reason:")).length, 2);
      });
    } finally {
      for (const c of clients) await c.close();
      await stopAll([master, replica, nolog, strictReplica]);
    }
  },
});
