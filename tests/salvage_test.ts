/**
 * salvage.ts on a real MariaDB binary log: which of a node's transactions are errant (after the
 * last one the new master holds, confirmed by its history), the salvage file written for a
 * person (positions checked against the server's own SHOW BINLOG EVENTS, MD5s, decoded SQL of
 * the errant transactions only, one range per file, mode 0600 in a 0700 folder, never written
 * through a link), and the new master's binary logs read over the replication protocol.
 */
import assert from "node:assert/strict";
import { type BinlogTransaction, readTransactions } from "../binlog.ts";
import {
  analyseErrant,
  type ErrantAnalysis,
  fetchMasterTransactions,
  writeSalvage,
} from "../salvage.ts";
import type { MasterTransaction } from "../resync.ts";
import { type MariadbServer, startMariadb } from "./mariadb_server.ts";
import { Budget } from "../budget.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const LOGIN = { user: "repl", password: `${crypto.randomUUID()}'"` };

/** Transactions of the server's binary logs by SHOW BINLOG EVENTS: from a GTID event to the next. */
async function serverView(
  s: MariadbServer,
): Promise<{ file: string; start: number; end: number }[]> {
  const out: { file: string; start: number; end: number }[] = [];
  for (const path of s.binlogFiles()) {
    const file = path.split("/").pop()!;
    const events = await s.query<{ Pos: string; Event_type: string; End_log_pos: string }[]>(
      `SHOW BINLOG EVENTS IN '${file}'`,
    );
    for (const e of events) {
      if (e.Event_type === "Gtid") {
        out.push({ file: path, start: Number(e.Pos), end: Number(e.End_log_pos) });
      } else if (out.length && out[out.length - 1].file === path && e.Event_type !== "Rotate") {
        out[out.length - 1].end = Number(e.End_log_pos);
      }
    }
  }
  return out;
}

function asMaster(txs: BinlogTransaction[]): MasterTransaction[] {
  return txs.map((t) => ({
    file: t.file.split("/").pop()!,
    end: t.end,
    md5: t.md5,
    timestamp: t.timestamp,
  }));
}

async function transactionsOf(s: MariadbServer): Promise<BinlogTransaction[]> {
  const txs: BinlogTransaction[] = [];
  for await (const t of readTransactions(s.binlogFiles())) txs.push(t);
  return txs;
}

Deno.test({
  name: "errant transactions of a real binlog: analysis, salvage file, the master's logs",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const server = await startMariadb({ serverId: 1, binlogFormat: "ROW" });
  // The agent's folders must be root's (safe_fs.ts): salvage and work folders go below this one.
  const dir = trustedTempDir("prm-salvage-");
  try {
    await server.query(
      "SET sql_log_bin = 0; CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?; " +
        "GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'; SET sql_log_bin = 1",
      [LOGIN.user, LOGIN.password, LOGIN.user],
    );
    // History shared with the new master: 2 DDL, 3 inserts.
    await server.query("CREATE DATABASE d");
    await server.query("CREATE TABLE d.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
    for (const [id, v] of [[1, 10], [2, 20], [3, 30]]) {
      await server.query("INSERT INTO d.t VALUES (?, ?)", [id, v]);
    }
    // Then three errant ones, across a binlog rotation.
    await server.query("INSERT INTO d.t VALUES (4, 1001)");
    await server.query("FLUSH BINARY LOGS");
    await server.query("UPDATE d.t SET v = 1002 WHERE id = 1");
    await server.query("DELETE FROM d.t WHERE id = 2");
    const own = await transactionsOf(server);
    const shared = own.slice(0, 5);
    const errant = own.slice(5);
    const files = server.binlogFiles();

    await t.step("the transactions read are the server's, at its positions", async () => {
      assert.equal(own.length, 8);
      assert.deepEqual(
        own.map((x) => ({ file: x.file, start: x.start, end: x.end })),
        await serverView(server),
      );
      for (const x of own) {
        assert.match(x.md5, /^[0-9a-f]{32}$/);
        assert.match(x.gtid ?? "", /^0-1-\d+$/);
        assert.equal(x.serverId, 1);
      }
      assert.equal(new Set(own.map((x) => x.md5)).size, own.length, "distinct transactions");
      assert.deepEqual(errant.map((x) => x.file), [files[0], files[1], files[1]]);
    });

    let analysis: ErrantAnalysis;
    await t.step(
      "analysis: errant after the last shared transaction, proven by history",
      async () => {
        analysis = await analyseErrant(own, asMaster(shared), {
          fromHistoryStart: true,
          historyComplete: true,
        });
        assert.equal(analysis.certain, true, analysis.note);
        assert.equal(analysis.lastCommon, shared[4]);
        assert.deepEqual(analysis.masterPosition, {
          file: files[0].split("/").pop(),
          pos: shared[4].end,
        });
        assert.deepEqual(analysis.errant, errant);
        // The new master went on with transactions of its own: still the same split.
        const more = [...asMaster(shared), {
          file: "mysql-bin.000002",
          end: 9_999,
          md5: "f".repeat(32),
        }];
        const again = await analyseErrant(own, more, {
          fromHistoryStart: true,
          historyComplete: true,
        });
        assert.deepEqual(again.errant, errant);
      },
    );

    await t.step("the salvage file: header, one line per errant transaction, its SQL", async () => {
      const now = new Date("2026-01-02T03:04:05.678Z");
      const salvageDir = `${dir}/salvage`;
      const options = {
        dir: salvageDir,
        node: "node/A",
        resource: "p_mysql",
        master: "nodeB (newest binlog mysql-bin.000002)",
        lookup: "not-found: test",
        now,
        budget: Budget.ofMs(60_000),
      };
      const path = await writeSalvage(analysis, options);
      assert.equal(path, `${salvageDir}/salvage-p_mysql-node_A-2026-01-02T03-04-05-678Z.txt`);
      assert.equal(Deno.statSync(salvageDir).mode! & 0o777, 0o700);
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
      const text = Deno.readTextFileSync(path);
      const lines = text.split("\n");
      assert.ok(lines.includes("# errant transactions: 3"), text);
      assert.ok(lines.includes(`# new master: ${options.master}`));
      const common = shared[4];
      assert.ok(
        lines.includes(
          `# last common transaction: ${common.file}:${common.end} md5 ${common.md5} ` +
            `(new master ${files[0].split("/").pop()}:${common.end})`,
        ),
        text,
      );
      const rows = lines.filter((l) => l.startsWith("errant ")).map((l) => l.split(" "));
      assert.deepEqual(
        rows,
        errant.map((x, k) => [
          "errant",
          String(k + 1),
          x.file,
          String(x.start),
          String(x.end),
          x.md5,
          x.gtid!,
          new Date(x.timestamp * 1000).toISOString(),
          "1",
        ]),
      );
      // One decoded range per file, from the first errant start to the last errant end in it.
      assert.deepEqual(lines.filter((l) => l.startsWith("# --- ")), [
        `# --- ${files[0]} ${errant[0].start}..${errant[0].endOffset}`,
        `# --- ${files[1]} ${errant[1].start}..${errant[2].endOffset}`,
      ]);
      for (
        const block of [
          ["INSERT INTO `d`.`t`", "SET", "  @1=4", "  @2=1001"],
          ["UPDATE `d`.`t`", "WHERE", "  @1=1", "  @2=10", "SET", "  @1=1", "  @2=1002"],
          ["DELETE FROM `d`.`t`", "WHERE", "  @1=2", "  @2=20"],
        ]
      ) {
        const decoded = block.map((l) => `### ${l}`).join("\n");
        assert.ok(text.includes(decoded), `${decoded}\nnot in\n${text}`);
      }
      // Nothing of the shared history: the rows of the first three inserts are not there.
      assert.doesNotMatch(text, /@2=30\b/);
      assert.doesNotMatch(text, /CREATE TABLE/);
      // One file per errant episode: a later check of the same return (another start attempt)
      // finds the same last errant transaction and reuses the file.
      const last = errant[2];
      assert.ok(
        lines.includes(
          `# episode: ${last.file.split("/").pop()}:${last.end}:${last.md5} ` +
            "(one file per episode: a later check of the same return reuses it)",
        ),
        text,
      );
      const later = { ...options, now: new Date(now.getTime() + 60_000) };
      assert.equal(await writeSalvage(analysis, later), path);
      const written = [...Deno.readDirSync(salvageDir)].map((e) => e.name).sort();
      assert.deepEqual(written, [
        "salvage-p_mysql-node_A-2026-01-02T03-04-05-678Z.txt",
        "salvage-p_mysql-node_A.episode",
      ]);
      // A new episode (more transactions since) gets a file of its own.
      const more = { ...analysis, errant: errant.slice(0, 2) };
      const other = await writeSalvage(more, later);
      assert.notEqual(other, path);
      Deno.removeSync(other);
      // Written afresh, never through a link someone planted at its name.
      const victim = `${dir}/victim`;
      Deno.writeTextFileSync(victim, "untouched");
      Deno.removeSync(path);
      Deno.symlinkSync(victim, path);
      assert.equal(await writeSalvage(analysis, options), path);
      assert.equal(Deno.readTextFileSync(victim), "untouched");
      assert.ok(Deno.lstatSync(path).isFile);
      assert.equal(Deno.readTextFileSync(path), text);
    });

    await t.step("no shared transaction: everything is listed as a lower bound", async () => {
      const none = await analyseErrant(own, [{ file: "x.000001", end: 4, md5: "0".repeat(32) }], {
        fromHistoryStart: true,
        historyComplete: true,
      });
      assert.equal(none.certain, false);
      assert.equal(none.lastCommon, undefined);
      assert.deepEqual(none.errant, own);
      const path = await writeSalvage(none, {
        dir: `${dir}/salvage`,
        node: "A",
        resource: "r",
        master: "B",
        lookup: "test",
        // The decode fails: the file still lists every transaction.
        binlogTool: "/nonexistent/mariadb-binlog",
        budget: Budget.ofMs(60_000),
      });
      const lines = Deno.readTextFileSync(path).split("\n");
      assert.ok(lines.includes("# last common transaction: not found in the tail examined"));
      assert.ok(lines.includes("# errant transactions: 8 (at least; divergence point not proven)"));
      assert.equal(lines.filter((l) => l.startsWith("errant ")).length, 8);
      assert.equal(
        lines.filter((l) => /^-- \/nonexistent\/mariadb-binlog failed \(127\)/.test(l)).length,
        2,
      );
    });

    await t.step("the new master's binary logs over the replication protocol", async () => {
      const newestFile = files[1].split("/").pop()!;
      const source = { host: "127.0.0.1", port: server.port, ...LOGIN, newestFile };
      const options = { budget: Budget.ofMs(60_000), workDir: dir };
      const all = await fetchMasterTransactions(source, options);
      assert.deepEqual(all.transactions, asMaster(own));
      assert.equal(all.reachedStart, true);
      assert.deepEqual(all.files, [newestFile, files[0].split("/").pop()]);
      // Bounded: by a number of files, or by age (a file that starts long before the node's
      // oldest transaction ends the reading).
      const one = await fetchMasterTransactions(source, { ...options, maxFiles: 1 });
      assert.deepEqual(one.transactions, asMaster(own.slice(5 + 1)));
      assert.equal(one.reachedStart, false);
      const recent = await fetchMasterTransactions(source, {
        ...options,
        oldestTimestamp: own[own.length - 1].timestamp + 3_600,
      });
      assert.deepEqual(recent.files, [newestFile]);
      await assert.rejects(
        fetchMasterTransactions({ ...source, newestFile: "../etc" }, options),
        TypeError,
      );
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
