/**
 * Helpers shared by the lab's crash scenarios: a writer through the writer VIP that records the
 * acknowledged keys, convergence by GTID, throttling a replica's share of the master's traffic,
 * the fate of a returning old master, standby, and the agent's lines in a node's log.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  boot,
  compareData,
  crmMon,
  exec,
  exitReasons,
  mysqldPids,
  nodeAddress,
  nodeDir,
  promotedNode,
  replicaStatus,
  run,
  sql,
  sqlAt,
  startMysqld,
  stopMysqld,
  vethName,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

/** The table the writer fills. */
export const TABLE = "test.acked";
/** The resource under test. */
export const RSC = "p_mysql";

/**
 * A writer through the writer VIP (or whatever address `target` names at each write: with two
 * sites, the active site's writer VIP) that records the acknowledged keys (and when).
 */
export class Writer {
  acked: number[] = [];
  /** When each key of {@link acked} was acknowledged (Date.now() ms), in the same order. */
  ackedAt: number[] = [];
  failures = 0;
  #next: number;
  #stop = false;
  #done?: Promise<void>;
  #target: () => string;
  #pauseMs: number;

  /** `pauseMs` between two writes paces the writer (0: as fast as the master acknowledges). */
  constructor(firstKey: number, target: () => string = () => WRITER_VIP, pauseMs = 0) {
    this.#next = firstKey;
    this.#target = target;
    this.#pauseMs = pauseMs;
  }

  start(): this {
    this.#done = (async () => {
      while (!this.#stop) {
        const k = this.#next++;
        try {
          await sqlAt(this.#target(), `INSERT INTO ${TABLE} (k) VALUES (?)`, {
            params: [k],
            timeoutMs: 2_000,
          });
          this.acked.push(k);
          this.ackedAt.push(Date.now());
          if (this.#pauseMs > 0) await new Promise((r) => setTimeout(r, this.#pauseMs));
        } catch {
          this.failures++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    return this;
  }

  async stop(): Promise<number> {
    this.#stop = true;
    await this.#done;
    return this.#next + 1;
  }

  /** The longest time between two acknowledged writes around and after `since`, in ms. */
  longestGap(since: number): number {
    let gap = 0;
    for (let i = 1; i < this.ackedAt.length; i++) {
      if (this.ackedAt[i] < since) continue;
      gap = Math.max(gap, this.ackedAt[i] - this.ackedAt[i - 1]);
    }
    return gap;
  }
}

export async function liveNodes(exclude: string[] = []): Promise<string[]> {
  return (await crmMon()).nodes.filter((n) => n.online && !exclude.includes(n.name))
    .map((n) => n.name).sort();
}

/** One writable promoted node and every node of `replicas` replicating from it by GTID. */
export async function converged(replicas: string[], timeoutMs = 120_000): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
    if (Number(ro.ro) !== 0) return null;
    for (const n of replicas.filter((x) => x !== master)) {
      const s = await replicaStatus(n);
      if (s === null || s.Master_Host !== master || s.Using_Gtid !== "Slave_Pos") return null;
      if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, { timeoutMs, what: `a master and ${replicas.join(", ")} replicating from it by GTID` });
}

export async function writableAgain(old: string, t0: number): Promise<number> {
  await waitFor(async () => {
    const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@global.read_only AS ro", {
      timeoutMs: 1_000,
    });
    return rows[0] && Number(rows[0].ro) === 0 && rows[0].h !== old;
  }, { timeoutMs: 120_000, what: "a writable master behind the writer VIP", intervalMs: 100 });
  return Date.now() - t0;
}

/** Waits until `nodes` hold identical data; returns the time it took. */
export async function consistent(nodes: string[], t0: number): Promise<number> {
  await waitFor(async () => (await compareData(nodes, [TABLE])).equal ? true : null, {
    timeoutMs: 60_000,
    what: `identical ${TABLE} on ${nodes.join(", ")}`,
  });
  return Date.now() - t0;
}

export async function lostAcked(master: string, w: Writer): Promise<number[]> {
  const have = new Set((await sql(master, `SELECT k FROM ${TABLE}`)).map((r) => Number(r.k)));
  return w.acked.filter((k) => !have.has(k));
}

/** Slows what `node` receives from `from`'s MySQL (the replication stream) to `kbit`. */
export async function throttle(node: string, from: string, kbit: number): Promise<void> {
  const dev = vethName(node);
  await run(["tc", "qdisc", "del", "dev", dev, "root"]);
  for (
    const argv of [
      ["qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"],
      ["class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "1gbit"],
      ["class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", `${kbit}kbit`],
      [
        "filter",
        "add",
        "dev",
        dev,
        "parent",
        "1:",
        "protocol",
        "ip",
        "prio",
        "1",
        "u32",
        "match",
        "ip",
        "src",
        `${nodeAddress(from)}/32`,
        "match",
        "ip",
        "sport",
        "3306",
        "0xffff",
        "flowid",
        "1:20",
      ],
    ]
  ) {
    const r = await run(["tc", ...argv]);
    if (r.code !== 0) throw new Error(`tc ${argv.join(" ")}: ${r.stderr}`);
  }
}

export async function unthrottle(nodes: string[]): Promise<void> {
  for (const n of nodes) await run(["tc", "qdisc", "del", "dev", vethName(n), "root"]);
}

/**
 * Boots a power-cut old master and waits for its fate: rejoined (replicating from `master` by
 * GTID) or kept out (an exit reason naming errant GTIDs).
 */
export async function bootAndJudge(
  old: string,
  master: string,
): Promise<{ rejoined: boolean; reason: string; ms: number }> {
  const t0 = Date.now();
  await boot(old);
  return await waitFor(async () => {
    const reasons = (await exitReasons(old, { resource: RSC })).filter((r) =>
      /errant GTIDs/.test(r)
    );
    if (reasons.length) return { rejoined: false, reason: reasons[0], ms: Date.now() - t0 };
    const s = await replicaStatus(old).catch(() => null);
    if (
      s !== null && s.Master_Host === master && s.Using_Gtid === "Slave_Pos" &&
      s.Slave_IO_Running === "Yes" && s.Slave_SQL_Running === "Yes"
    ) return { rejoined: true, reason: "", ms: Date.now() - t0 };
    return null;
  }, { timeoutMs: 120_000, what: `${old} rejoined or kept out` });
}

/** The agent's lines in `node`'s pacemaker.log that match `pattern`. */
export function agentLines(node: string, pattern: RegExp): string[] {
  try {
    return Deno.readTextFileSync(`${nodeDir(node)}/log-pacemaker/pacemaker.log`).split("\n")
      .filter((l) => /mysql_prm/.test(l) && pattern.test(l));
  } catch {
    return [];
  }
}

/** Puts `node` in standby (Pacemaker moves every resource off it) or back. */
export async function standby(node: string, on: boolean): Promise<void> {
  await exec(node, [
    "crm_attribute",
    "--node",
    node,
    "--name",
    "standby",
    "--update",
    on ? "on" : "off",
  ], { check: true });
}

/** Where the rows a scenario checks live: a table whose first column is the integer key. */
export interface KeyedTable {
  /** `db.table`. Default {@link TABLE}. */
  table: string;
  /** The key column. Default `k`. */
  key: string;
}

const ACKED: KeyedTable = { table: TABLE, key: "k" };

/** The decoded inserts of `t` in a salvage file (mariadb-binlog -v): their keys (column 1). */
function insertedKeys(text: string, t: KeyedTable): number[] {
  const [db, table] = t.table.split(".");
  const re = new RegExp(
    `### INSERT INTO \`${db}\`\\.\`${table}\`\\n### SET\\n###\\s+@1=(-?\\d+)`,
    "g",
  );
  return [...text.matchAll(re)].map((m) => Number(m[1]));
}

/**
 * Checks a salvage file on `node`: mode 0600, one `errant` line per transaction, each a row of
 * test.acked that the master does not have. Returns the keys and the new master's position of
 * the last common transaction.
 */
export async function checkSalvage(
  node: string,
  file: string,
  master: string,
  t: KeyedTable = ACKED,
) {
  const mode = await exec(node, ["stat", "-c", "%a", file], { check: true });
  assert.equal(mode.stdout.trim(), "600", `${file} mode`);
  const text = (await exec(node, ["cat", file], { check: true })).stdout;
  const errant = text.split("\n").filter((l) => l.startsWith("errant "));
  const keys = insertedKeys(text, t);
  assert.equal(keys.length, errant.length, `every errant transaction is one row:\n${text}`);
  assert.ok(errant.length > 0, text);
  for (const k of keys) {
    const rows = await sql(master, `SELECT ${t.key} FROM ${t.table} WHERE ${t.key} = ?`, {
      params: [k],
    });
    assert.equal(rows.length, 0, `salvaged row ${k} exists on the new master ${master}`);
  }
  const at = /\(new master ([A-Za-z0-9_.-]+):(\d+)\)/.exec(text);
  assert.ok(at, `the salvage file names the new master's position:\n${text.slice(0, 1500)}`);
  return { keys, text, resume: `${at[1]}:${at[2]}` };
}

/** The errant-transactions exit reason crm_mon shows for `node`, if any. */
export async function errantReason(node: string, viewer?: string): Promise<string | undefined> {
  return (await exitReasons(node, { resource: RSC, viewer })).find((x) =>
    /^Errant transactions/.test(x)
  );
}

/**
 * Waits until a booted old master either replicates again by itself (`rejoined` says so) or is
 * kept out for errant transactions (a transaction it committed and never sent before a power
 * cut). Returns the exit reason, or "" when it rejoined.
 */
export async function rejoinedOrKeptOut(
  old: string,
  rejoined: () => Promise<boolean>,
  options: { viewer?: () => string | undefined; onTimeout?: () => Promise<void> } = {},
): Promise<string> {
  const fate = await waitFor(async () => {
    const reason = await errantReason(old, options.viewer?.());
    if (reason) return { reason };
    return (await rejoined()) ? { reason: "" } : null;
  }, { timeoutMs: 120_000, what: `${old} rejoined or kept out`, onTimeout: options.onTimeout });
  return fate.reason;
}

/**
 * A node kept out with `reason`: checks the salvage file the reason names against `master`, then
 * repairs the node the documented way. Returns what {@link checkSalvage} found.
 */
export async function repairKeptOut(old: string, reason: string, master: string) {
  const file = /saved in (\S+)/.exec(reason)?.[1];
  assert.ok(file, reason);
  const salvage = await checkSalvage(old, file, master);
  await repair(old, salvage.keys, salvage.resume);
  return salvage;
}

/**
 * What a DBA does with a kept-out old master (README): save/discard the salvaged rows (here:
 * delete them, unlogged, on a server started by hand), tell the agent where it resumes, clean up.
 */
export async function repair(
  node: string,
  keys: number[],
  resume: string,
  t: KeyedTable = ACKED,
): Promise<void> {
  // Pacemaker stops the instance after the hard failure; the DBA works once it is down.
  await waitFor(() => mysqldPids(node).length === 0 || null, {
    timeoutMs: 60_000,
    what: `Pacemaker to stop the kept-out instance on ${node}`,
  });
  await startMysqld(node);
  try {
    await exec(node, [
      "mariadb",
      "-e",
      `SET sql_log_bin = 0; DELETE FROM ${t.table} WHERE ${t.key} IN (${
        keys.map(Number).join(",")
      })`,
    ], { check: true });
  } finally {
    await stopMysqld(node);
  }
  await exec(node, [
    "crm_attribute",
    "-N",
    node,
    "-l",
    "reboot",
    "-n",
    `prm-${RSC}-resume`,
    "-v",
    resume,
  ], {
    check: true,
  });
  // By the primitive: the clone's name differs between loadAgent and mysql_prm config.
  await exec(node, ["crm_resource", "--cleanup", "-r", RSC, "-N", node], { check: true });
}
