/**
 * GTID positions (pure): parsing and comparing MariaDB GTID lists (`domain-server-seq,...`, one
 * GTID per replication domain) and MySQL GTID sets (`uuid:1-5:7,uuid2:1-3`), the GTID election
 * check, and errant-transaction detection for a node that comes back.
 *
 * MariaDB keeps only the last GTID per domain, so "contains" is judged per domain by sequence
 * number: inside one domain a replication stream is linear, and the same sequence number written
 * by two different servers means the histories forked. MySQL sets are exact (interval sets).
 *
 * @module
 */

/** One MariaDB GTID. */
export interface MariadbGtid {
  /** Replication domain id. */
  domain: number;
  /** server_id that wrote the transaction. */
  server: number;
  /** Sequence number inside the domain. */
  seq: bigint;
}

/** A MariaDB GTID position: the last GTID of each domain, keyed by domain. */
export type MariadbGtidPos = Map<number, MariadbGtid>;

/** How position a relates to position b. */
export type GtidOrder = "equal" | "ahead" | "behind" | "diverged";

const U32 = 4_294_967_295;

/**
 * Parses a MariaDB GTID list such as `0-1-100,1-2-7` (gtid_slave_pos, gtid_binlog_pos,
 * Gtid_IO_Pos). Empty text is the empty position. Returns undefined when malformed or when a
 * domain appears twice.
 */
export function parseMariadbGtidPos(text: string): MariadbGtidPos | undefined {
  const pos: MariadbGtidPos = new Map();
  const trimmed = text.trim();
  if (trimmed === "") return pos;
  for (const raw of trimmed.split(",")) {
    const m = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/.exec(raw.trim());
    if (!m) return undefined;
    const domain = Number(m[1]);
    const server = Number(m[2]);
    const seq = BigInt(m[3]);
    if (domain > U32 || server > U32 || seq > 0xffff_ffff_ffff_ffffn) return undefined;
    if (pos.has(domain)) return undefined;
    pos.set(domain, { domain, server, seq });
  }
  return pos;
}

/** Formats a MariaDB GTID position, domains in ascending order. */
export function formatMariadbGtidPos(pos: MariadbGtidPos): string {
  return [...pos.values()].sort((a, b) => a.domain - b.domain).map(formatMariadbGtid).join(",");
}

/** Formats one MariaDB GTID: `domain-server-seq`. */
export function formatMariadbGtid(g: MariadbGtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

function combine(ahead: boolean, behind: boolean): GtidOrder {
  if (ahead && behind) return "diverged";
  if (ahead) return "ahead";
  if (behind) return "behind";
  return "equal";
}

/**
 * Compares two MariaDB positions of servers that replicate the same history, domain by domain: a
 * domain missing on one side counts as sequence 0; the same sequence number from two different
 * servers is a fork (diverged).
 */
export function compareMariadbGtidPos(a: MariadbGtidPos, b: MariadbGtidPos): GtidOrder {
  let ahead = false;
  let behind = false;
  for (const domain of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(domain);
    const y = b.get(domain);
    const sx = x?.seq ?? 0n;
    const sy = y?.seq ?? 0n;
    if (sx > sy) ahead = true;
    else if (sx < sy) behind = true;
    else if (x !== undefined && y !== undefined && x.server !== y.server) {
      ahead = true;
      behind = true;
    }
  }
  return combine(ahead, behind);
}

/**
 * The GTIDs of `node` that `reference` cannot hold: per domain, the node's last GTID when the
 * reference lacks the domain, has a lower sequence number, or has the same sequence number from
 * another server. A lower node sequence number counts as held (MariaDB keeps no more history in
 * a position; with gtid_strict_mode the server itself refuses a replica whose GTID is not in the
 * master's binlog).
 */
export function mariadbErrantGtids(
  node: MariadbGtidPos,
  reference: MariadbGtidPos,
): MariadbGtid[] {
  const errant: MariadbGtid[] = [];
  for (const g of node.values()) {
    const r = reference.get(g.domain);
    if (r === undefined || g.seq > r.seq || (g.seq === r.seq && g.server !== r.server)) {
      errant.push(g);
    }
  }
  return errant.sort((a, b) => a.domain - b.domain);
}

/**
 * Per domain, the later of two positions (the node's own binlog and what it applied as a
 * replica): what the node holds, for gtid_slave_pos before it replicates again.
 */
export function mergeMariadbGtidPos(a: MariadbGtidPos, b: MariadbGtidPos): MariadbGtidPos {
  const out: MariadbGtidPos = new Map(a);
  for (const [domain, g] of b) {
    const x = out.get(domain);
    if (x === undefined || g.seq > x.seq) out.set(domain, g);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MySQL GTID sets

/** A MySQL GTID set: source UUID (lower case, optionally `uuid:tag`) → sorted disjoint intervals. */
export type MysqlGtidSet = Map<string, [bigint, bigint][]>;

function normaliseIntervals(list: [bigint, bigint][]): [bigint, bigint][] {
  const sorted = [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1] + 1n) {
      if (e > last[1]) last[1] = e;
    } else out.push([s, e]);
  }
  return out;
}

/**
 * Parses a MySQL GTID set (gtid_executed, Retrieved_Gtid_Set): `uuid:1-5:7,uuid2:1-3`, also with
 * MySQL 8.3 tags (`uuid:tag:1-3`). Returns undefined when malformed.
 */
export function parseMysqlGtidSet(text: string): MysqlGtidSet | undefined {
  const set: MysqlGtidSet = new Map();
  const trimmed = text.replace(/\s+/g, "");
  if (trimmed === "") return set;
  for (const item of trimmed.split(",")) {
    const parts = item.split(":");
    const uuid = parts.shift()!.toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
      return undefined;
    }
    let key = uuid;
    const intervals: [bigint, bigint][] = set.get(uuid) ?? [];
    for (const p of parts) {
      if (/^[a-z_][a-z0-9_]{0,31}$/i.test(p)) {
        key = `${uuid}:${p.toLowerCase()}`;
        continue;
      }
      const m = /^(\d{1,19})(?:-(\d{1,19}))?$/.exec(p);
      if (!m) return undefined;
      const s = BigInt(m[1]);
      const e = m[2] === undefined ? s : BigInt(m[2]);
      if (s < 1n || e < s) return undefined;
      intervals.push([s, e]);
    }
    set.set(key, normaliseIntervals([...(set.get(key) ?? []), ...intervals]));
  }
  return set;
}

/** Formats a MySQL GTID set in MySQL's own form (sorted by UUID). */
export function formatMysqlGtidSet(set: MysqlGtidSet): string {
  return [...set.keys()].sort().filter((k) => set.get(k)!.length > 0).map((k) =>
    `${k}:${set.get(k)!.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(":")}`
  ).join(",");
}

/** The GTIDs of a that b lacks (a - b). */
export function subtractMysqlGtidSet(a: MysqlGtidSet, b: MysqlGtidSet): MysqlGtidSet {
  const out: MysqlGtidSet = new Map();
  for (const [key, intervals] of a) {
    let rest = intervals.map(([s, e]) => [s, e] as [bigint, bigint]);
    for (const [bs, be] of b.get(key) ?? []) {
      const next: [bigint, bigint][] = [];
      for (const [s, e] of rest) {
        if (be < s || bs > e) {
          next.push([s, e]);
          continue;
        }
        if (s < bs) next.push([s, bs - 1n]);
        if (e > be) next.push([be + 1n, e]);
      }
      rest = next;
    }
    if (rest.length > 0) out.set(key, rest);
  }
  return out;
}

/** Compares two MySQL GTID sets: ahead when a strictly contains b, diverged when neither. */
export function compareMysqlGtidSets(a: MysqlGtidSet, b: MysqlGtidSet): GtidOrder {
  return combine(
    subtractMysqlGtidSet(a, b).size > 0,
    subtractMysqlGtidSet(b, a).size > 0,
  );
}

// ---------------------------------------------------------------------------------------------
// Election and errant check, flavour-neutral

/** Which GTID notation a value is in. */
export type GtidFlavour = "mariadb" | "mysql";

/** Compares two GTID positions given as text; undefined when either is malformed. */
export function compareGtidText(
  a: string,
  b: string,
  flavour: GtidFlavour,
): GtidOrder | undefined {
  if (flavour === "mariadb") {
    const x = parseMariadbGtidPos(a);
    const y = parseMariadbGtidPos(b);
    return x && y ? compareMariadbGtidPos(x, y) : undefined;
  }
  const x = parseMysqlGtidSet(a);
  const y = parseMysqlGtidSet(b);
  return x && y ? compareMysqlGtidSets(x, y) : undefined;
}

/**
 * The errant part of `node` against `reference` as text ("" when none), or undefined when either
 * is malformed. MariaDB: the node's last GTIDs the reference cannot hold; MySQL: node − reference.
 */
export function errantGtidText(
  node: string,
  reference: string,
  flavour: GtidFlavour,
): string | undefined {
  if (flavour === "mariadb") {
    const x = parseMariadbGtidPos(node);
    const y = parseMariadbGtidPos(reference);
    if (!x || !y) return undefined;
    return mariadbErrantGtids(x, y).map(formatMariadbGtid).join(",");
  }
  const x = parseMysqlGtidSet(node);
  const y = parseMysqlGtidSet(reference);
  if (!x || !y) return undefined;
  return formatMysqlGtidSet(subtractMysqlGtidSet(x, y));
}

/** A GTID position published by a node for the election. */
export interface PeerGtid {
  /** Node name. */
  node: string;
  /** The master it replicated from. */
  masterHost: string;
  /** What it received of that master (MariaDB Gtid_IO_Pos merged with gtid_slave_pos; MySQL
   * Retrieved_Gtid_Set ∪ gtid_executed). */
  gtid: string;
}

/** Formats a {@link PeerGtid} for a private attribute: `host|gtid`. */
export function encodePeerGtid(masterHost: string, gtid: string): string {
  return `${masterHost}|${gtid}`;
}

/** Parses a published GTID value (untrusted), or undefined when malformed. */
export function decodePeerGtid(node: string, value: string): PeerGtid | undefined {
  const m = /^([A-Za-z0-9_.:-]{1,255})\|([0-9A-Za-z_:,-]{0,60000})$/.exec(value.trim());
  if (!m) return undefined;
  return { node, masterHost: m[1], gtid: m[2] };
}

/** Input of {@link checkPromoteeGtid}. */
export interface GtidPromoteInput {
  /** The promotee's node name. */
  self: string;
  /** The promotee's own position, undefined when it replicated from nobody. */
  mine?: PeerGtid;
  /** Positions published by live peers. */
  peers: PeerGtid[];
  /** GTID notation. */
  flavour: GtidFlavour;
}

/** Outcome of {@link checkPromoteeGtid}. */
export interface GtidPromoteCheck {
  /** True when the promotee may go on. */
  proceed: boolean;
  /** A peer holding strictly more, when there is one. */
  better?: PeerGtid;
  /** Why, with the positions. */
  reason: string;
  /** Peers whose history forked from the promotee's (neither holds the other). */
  diverged: PeerGtid[];
}

/**
 * The GTID election: the promotee goes on unless a peer of the same master holds strictly more
 * (ahead in some domain and behind in none). Diverged peers are reported, not followed: neither
 * side holds everything, so moving the election would lose data either way.
 */
export function checkPromoteeGtid(input: GtidPromoteInput): GtidPromoteCheck {
  const { mine, self, flavour } = input;
  const peers = input.peers.filter((p) => p.node !== self && p.masterHost !== self);
  const text = peers.map((p) => `${p.node}=${p.gtid || "(empty)"}`).join(" ") || "none";
  const diverged: PeerGtid[] = [];
  if (mine === undefined) {
    const best = peers.find((p) => p.gtid !== "");
    if (best === undefined) {
      return { proceed: true, reason: "no GTID positions to compare", diverged };
    }
    return {
      proceed: false,
      better: best,
      reason:
        `this node replicated from nobody while ${best.node} holds ${best.gtid} of ${best.masterHost}`,
      diverged,
    };
  }
  let best: PeerGtid | undefined;
  for (const p of peers) {
    if (p.masterHost !== mine.masterHost) continue;
    const order = compareGtidText(p.gtid, mine.gtid, flavour);
    if (order === "diverged") diverged.push(p);
    if (order !== "ahead") continue;
    if (best === undefined || compareGtidText(p.gtid, best.gtid, flavour) === "ahead") best = p;
  }
  if (best !== undefined) {
    return {
      proceed: false,
      better: best,
      reason:
        `${best.node} holds more of ${mine.masterHost}: ${best.gtid} ahead of ${mine.gtid} (peers: ${text})`,
      diverged,
    };
  }
  return {
    proceed: true,
    reason: `this node holds the most of ${mine.masterHost}: ${mine.gtid} (peers: ${text})${
      diverged.length ? `; diverged: ${diverged.map((p) => p.node).join(", ")}` : ""
    }`,
    diverged,
  };
}

// ---------------------------------------------------------------------------------------------
// Errant transactions of a node that comes back

/**
 * Where a master's history forked from its predecessor's: its own server identity (MariaDB
 * server_id, MySQL server_uuid) and its GTID position when it was promoted, before its first write.
 */
export interface GtidFork {
  /** server_id (MariaDB) or server_uuid (MySQL) of the master. */
  server: string;
  /** gtid_binlog_pos / gtid_executed at promotion. */
  pos: string;
}

/** Formats a {@link GtidFork} for a private attribute: `server|pos`. */
export function encodeGtidFork(fork: GtidFork): string {
  return `${fork.server}|${fork.pos}`;
}

/** Parses a published fork (untrusted), or undefined when malformed. */
export function decodeGtidFork(value: string): GtidFork | undefined {
  const m = /^([0-9A-Fa-f-]{1,36})\|([0-9A-Za-z_:,-]{0,60000})$/.exec(value.trim());
  return m ? { server: m[1].toLowerCase(), pos: m[2] } : undefined;
}

/**
 * The GTIDs of `node` (its gtid_binlog_pos / gtid_executed) that the master's history cannot
 * hold, as text ("" when none; undefined when malformed). The master's history is everything up
 * to its fork point plus what the master itself wrote since. MariaDB, per domain with the node's
 * last GTID d-s-n and the fork's sequence F: n < F is held; n = F only if the fork's GTID is the
 * same; n > F only if the master wrote it (s is the master's server_id). MySQL: node − fork, less
 * every GTID of the master's UUID.
 */
export function errantSinceFork(
  node: string,
  fork: GtidFork,
  flavour: GtidFlavour,
): string | undefined {
  if (flavour === "mariadb") {
    const x = parseMariadbGtidPos(node);
    const f = parseMariadbGtidPos(fork.pos);
    if (!x || !f) return undefined;
    const errant = [...x.values()].filter((g) => {
      const at = f.get(g.domain);
      const seq = at?.seq ?? 0n;
      if (g.seq < seq) return false;
      if (g.seq === seq) return at !== undefined && at.server !== g.server;
      return String(g.server) !== fork.server;
    });
    return errant.sort((a, b) => a.domain - b.domain).map(formatMariadbGtid).join(",");
  }
  const x = parseMysqlGtidSet(node);
  const f = parseMysqlGtidSet(fork.pos);
  if (!x || !f) return undefined;
  const rest = subtractMysqlGtidSet(x, f);
  for (const key of [...rest.keys()]) {
    if (key === fork.server || key.startsWith(`${fork.server}:`)) rest.delete(key);
  }
  return formatMysqlGtidSet(rest);
}

/** The union of two MySQL GTID sets. */
export function unionMysqlGtidSet(a: MysqlGtidSet, b: MysqlGtidSet): MysqlGtidSet {
  const out: MysqlGtidSet = new Map();
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    out.set(key, normaliseIntervals([...(a.get(key) ?? []), ...(b.get(key) ?? [])]));
  }
  return out;
}

/**
 * What a replica holds of its master, as text: MariaDB Gtid_IO_Pos merged with gtid_slave_pos
 * (the IO position is empty until the IO thread received something), MySQL Retrieved_Gtid_Set ∪
 * gtid_executed. Undefined when malformed.
 */
export function heldGtidText(
  received: string,
  applied: string,
  flavour: GtidFlavour,
): string | undefined {
  if (flavour === "mariadb") {
    const x = parseMariadbGtidPos(received);
    const y = parseMariadbGtidPos(applied);
    return x && y ? formatMariadbGtidPos(mergeMariadbGtidPos(x, y)) : undefined;
  }
  const x = parseMysqlGtidSet(received);
  const y = parseMysqlGtidSet(applied);
  return x && y ? formatMysqlGtidSet(unionMysqlGtidSet(x, y)) : undefined;
}

/**
 * True when one transaction's GTID (MariaDB `d-s-n`, MySQL `uuid:gno` or `uuid:tag:gno`) lies
 * outside the master's history as {@link errantSinceFork} defines it. Undefined when malformed.
 */
export function isErrantGtid(
  gtid: string,
  fork: GtidFork,
  flavour: GtidFlavour,
): boolean | undefined {
  if (flavour === "mariadb") {
    const one = parseMariadbGtidPos(gtid);
    if (one === undefined || one.size !== 1) return undefined;
    const errant = errantSinceFork(gtid, fork, flavour);
    return errant === undefined ? undefined : errant !== "";
  }
  const m = /^(.*):(\d+)$/.exec(gtid.trim());
  if (!m) return undefined;
  const errant = errantSinceFork(`${m[1]}:${m[2]}`, fork, flavour);
  return errant === undefined ? undefined : errant !== "";
}
