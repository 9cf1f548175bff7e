/**
 * Observing the lab cluster: crm_mon, who is promoted, waiting on conditions, SQL on the nodes,
 * table checksums, replica status and the failure dump.
 *
 * @module
 */

import mysql from "mysql2/promise";
import {
  credentials,
  exec,
  nodeAddress,
  nodeDir,
  nodeRunning,
  readState,
  requireState,
  sh,
} from "./nodes.ts";
import { findAll, parseXml } from "./xml.ts";

/** A node as crm_mon sees it. */
export interface MonNode {
  /** Node name. */
  name: string;
  /** Member and online. */
  online: boolean;
  /** Unclean (needs fencing). */
  unclean: boolean;
  /** Node attributes (transient and permanent) from crm_mon -A. */
  attributes: Record<string, string>;
}

/** A resource instance as crm_mon sees it (one per clone instance). */
export interface MonResource {
  /** Primitive id (without clone suffix). */
  id: string;
  /** Enclosing clone or group id, if any. */
  parent?: string;
  /** Agent, e.g. ocf:heartbeat:mysql. */
  agent: string;
  /** Started, Promoted, Unpromoted, Stopped, ... */
  role: string;
  /** Failed flag. */
  failed: boolean;
  /** Node(s) it is active on. */
  nodes: string[];
}

/** Parsed crm_mon status. */
export interface MonStatus {
  /** Node that produced the view. */
  viewer: string;
  /** Current DC name, if any. */
  dc: string | null;
  /** Whether the viewer's partition has quorum. */
  quorum: boolean;
  /** Nodes known to the cluster. */
  nodes: MonNode[];
  /** Resource instances. */
  resources: MonResource[];
  /** Raw XML. */
  xml: string;
}

/** First running node of the lab (in node order), or null when every node is off. */
export function firstRunningNode(): string | null {
  const st = readState();
  return st?.nodes.find((n) => nodeRunning(n)) ?? null;
}

/** Runs crm_mon on a node (default: the first running node) and parses it. */
export async function crmMon(node?: string): Promise<MonStatus> {
  const viewer = node ?? firstRunningNode();
  if (!viewer) throw new Error("No lab node is running");
  const r = await exec(viewer, ["crm_mon", "-1", "-A", "--output-as=xml"], { timeoutMs: 15_000 });
  if (r.code !== 0) {
    throw new Error(`crm_mon failed on ${viewer} (exit ${r.code}): ${r.stderr.trim()}`);
  }
  const doc = parseXml(r.stdout);
  const dcEl = findAll(doc, "current_dc")[0];
  const attrs: Record<string, Record<string, string>> = {};
  for (const sec of findAll(doc, "node_attributes")) {
    for (const n of sec.children) {
      attrs[n.attrs.name] = Object.fromEntries(
        n.children.filter((a) => a.name === "attribute").map((a) => [a.attrs.name, a.attrs.value]),
      );
    }
  }
  const nodesSec = doc.children.flatMap((c) => c.children).find((c) => c.name === "nodes");
  const nodes: MonNode[] = (nodesSec?.children ?? []).filter((n) => n.name === "node").map((
    n,
  ) => ({
    name: n.attrs.name,
    online: n.attrs.online === "true",
    unclean: n.attrs.unclean === "true",
    attributes: attrs[n.attrs.name] ?? {},
  }));
  const resources: MonResource[] = [];
  const resSec = doc.children.flatMap((c) => c.children).find((c) => c.name === "resources");
  const walk = (els: typeof doc.children, parent?: string) => {
    for (const el of els) {
      if (el.name === "resource") {
        resources.push({
          id: el.attrs.id.replace(/:\d+$/, ""),
          parent,
          agent: el.attrs.resource_agent ?? "",
          role: el.attrs.role ?? "",
          failed: el.attrs.failed === "true",
          nodes: el.children.filter((c) => c.name === "node").map((c) => c.attrs.name),
        });
      } else if (el.name === "clone" || el.name === "group" || el.name === "bundle") {
        walk(el.children, el.attrs.id);
      }
    }
  };
  walk(resSec?.children ?? []);
  return {
    viewer,
    dc: dcEl?.attrs.present === "true" ? dcEl.attrs.name : null,
    quorum: dcEl?.attrs.with_quorum === "true",
    nodes,
    resources,
    xml: r.stdout,
  };
}

/** Options of {@linkcode exitReasons}. */
export interface ExitReasonsOptions {
  /** Resource id the failures belong to (default "p_mysql"). */
  resource?: string;
  /** Node that runs crm_mon (default: the first running node). */
  viewer?: string;
}

/** Exit reasons crm_mon shows for the failed operations of a resource on `node`. */
export async function exitReasons(node: string, opts: ExitReasonsOptions = {}): Promise<string[]> {
  const resource = opts.resource ?? "p_mysql";
  const out: string[] = [];
  for (const m of (await crmMon(opts.viewer)).xml.matchAll(/<failure [^>]*>/g)) {
    if (!m[0].includes(`node="${node}"`) || !m[0].includes(resource)) continue;
    const r = /exitreason="([^"]*)"/.exec(m[0]);
    // crm_mon escapes the exit reason once more than XML needs ("&amp;apos;"): undo both.
    if (r) out.push(unescapeXml(unescapeXml(r[1])));
  }
  return out;
}

/** The five XML entities, decoded once. */
function unescapeXml(s: string): string {
  return s.replaceAll("&apos;", "'").replaceAll("&quot;", '"').replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

/** Names of the nodes crm_mon (on `viewer`) reports online. */
export async function onlineNodes(viewer?: string): Promise<string[]> {
  const mon = await crmMon(viewer);
  return mon.nodes.filter((n) => n.online).map((n) => n.name).sort();
}

/** Nodes where resource `id` (a primitive of a promotable clone) is promoted. */
export async function promotedNodes(id = "p_mysql", viewer?: string): Promise<string[]> {
  const mon = await crmMon(viewer);
  return mon.resources.filter((r) => r.id === id && r.role === "Promoted").flatMap((r) => r.nodes);
}

/** The node where `id` is promoted, or null when none (or more than one) is. */
export async function promotedNode(id = "p_mysql", viewer?: string): Promise<string | null> {
  const p = await promotedNodes(id, viewer);
  return p.length === 1 ? p[0] : null;
}

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Deadline in ms. */
  timeoutMs: number;
  /** What is awaited, for the error message. */
  what: string;
  /** Poll interval in ms (default 200). */
  intervalMs?: number;
  /** Called on timeout before throwing (default: {@linkcode dump}); pass `null` for nothing. */
  onTimeout?: (() => Promise<void> | void) | null;
}

/**
 * Polls `cond` until it returns a value other than false/null/undefined (returned), with a
 * deadline. Exceptions thrown by `cond` count as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(
  cond: () => Promise<T | false | null | undefined> | T | false | null | undefined,
  opts: WaitOptions,
): Promise<T> {
  const end = Date.now() + opts.timeoutMs;
  let last: unknown = undefined;
  while (true) {
    try {
      const v = await cond();
      if (v !== false && v !== null && v !== undefined) return v;
      last = v;
    } catch (e) {
      last = e instanceof Error ? e.message : e;
    }
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
  if (opts.onTimeout !== null) await (opts.onTimeout ?? dump)();
  throw new Error(
    `Timed out after ${opts.timeoutMs} ms waiting for ${opts.what} (last: ${String(last)})`,
  );
}

/** Which account runs a query. */
export type SqlUser = "admin" | "app" | "repl" | { user: string; password: string };

/** Options of {@linkcode sql} and {@linkcode sqlAt}. */
export interface SqlOptions {
  /** Account (default "admin"). */
  user?: SqlUser;
  /** Default database. */
  database?: string;
  /** Values for `?` placeholders (escaped by mysql2). */
  params?: unknown[];
  /** Connect and query deadline in ms (default 10000). */
  timeoutMs?: number;
}

/** Rows of a query (empty for statements without a result set). */
export type Rows = Record<string, unknown>[];

/** Runs one SQL statement on a node's MariaDB over TCP (its lab address) and returns the rows. */
export function sql(node: string, query: string, opts: SqlOptions = {}): Promise<Rows> {
  return sqlAt(nodeAddress(node), query, opts);
}

/** Runs one SQL statement against any lab address (e.g. the writer VIP) and returns the rows. */
export async function sqlAt(host: string, query: string, opts: SqlOptions = {}): Promise<Rows> {
  const acct = resolveUser(opts.user ?? "admin");
  const timeout = opts.timeoutMs ?? 10_000;
  const conn = await mysql.createConnection({
    host,
    port: 3306,
    user: acct.user,
    password: acct.password,
    database: opts.database,
    connectTimeout: timeout,
    multipleStatements: false,
  });
  try {
    const [rows] = await conn.query({ sql: query, timeout, values: opts.params });
    return Array.isArray(rows) ? (rows as Rows) : [];
  } finally {
    conn.destroy();
  }
}

/** Credentials of an account of the lab. */
export function resolveUser(u: SqlUser): { user: string; password: string } {
  if (typeof u === "object") return u;
  return credentials()[u];
}

/** Runs SQL on a node as root over the unix socket (mariadb client inside the node). */
export async function sqlSocket(node: string, query: string): Promise<string> {
  const r = await exec(node, ["mariadb", "-uroot", "--batch", "--raw", "-e", query], {
    timeoutMs: 15_000,
  });
  if (r.code !== 0) throw new Error(`SQL on ${node} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** SHOW SLAVE STATUS of a node (null when it is not a replica). */
export async function replicaStatus(node: string): Promise<Record<string, unknown> | null> {
  const rows = await sql(node, "SHOW SLAVE STATUS");
  return rows[0] ?? null;
}

/** CHECKSUM TABLE of each table ("db.table") on each node: node → table → checksum. */
export async function tableChecksums(
  nodes: string[],
  tables: string[],
): Promise<Record<string, Record<string, string | null>>> {
  const out: Record<string, Record<string, string | null>> = {};
  for (const n of nodes) {
    out[n] = {};
    for (const t of tables) {
      const [db, tbl] = t.split(".");
      const rows = await sql(n, `CHECKSUM TABLE ${mysql.escapeId(db)}.${mysql.escapeId(tbl)}`);
      const v = rows[0]?.Checksum;
      out[n][t] = v === null || v === undefined ? null : String(v);
    }
  }
  return out;
}

/** Result of {@linkcode compareData}. */
export interface CompareResult {
  /** True when every table has the same (non-null) checksum on every node. */
  equal: boolean;
  /** Tables whose checksums differ (or are missing somewhere). */
  differing: string[];
  /** The checksums. */
  checksums: Record<string, Record<string, string | null>>;
}

/** Compares CHECKSUM TABLE of the tables across nodes. */
export async function compareData(nodes: string[], tables: string[]): Promise<CompareResult> {
  const checksums = await tableChecksums(nodes, tables);
  const differing = tables.filter((t) => {
    const vals = nodes.map((n) => checksums[n][t]);
    return vals.some((v) => v === null) || new Set(vals).size !== 1;
  });
  return { equal: differing.length === 0, differing, checksums };
}

function tailFile(path: string, lines: number): string {
  try {
    return Deno.readTextFileSync(path).split("\n").slice(-lines - 1).join("\n");
  } catch {
    return `(no ${path})`;
  }
}

/** Options of {@linkcode dump}. */
export interface DumpOptions {
  /** Lines of each log (default 30). */
  lines?: number;
}

/**
 * Prints (to stderr) crm_mon, the replica status of every running node and the last lines of each
 * node's pacemaker log and MariaDB error log. Used on test failures; never throws.
 */
export async function dump(opts: DumpOptions = {}): Promise<void> {
  const lines = opts.lines ?? 30;
  const out: string[] = ["===== prm lab dump ====="];
  try {
    const st = requireState();
    // One view per cluster: with two sites, each site's, then booth's view of the ticket.
    const clusters = st.sites?.map((s) => s.nodes) ?? [st.nodes];
    for (const members of clusters) {
      const viewer = members.find((n) => nodeRunning(n));
      if (!viewer) continue;
      const r = await exec(viewer, "crm_mon -1 -r -f -A 2>&1", { timeoutMs: 15_000 });
      out.push(`--- crm_mon (on ${viewer}) ---`, r.stdout.trim());
    }
    if (st.arbitrator !== undefined) {
      for (const n of [...st.nodes, st.arbitrator].filter((x) => nodeRunning(x))) {
        const r = await exec(
          n,
          "booth list -c /etc/booth/booth.conf 2>&1; crm_ticket -t ticket-mysql -q 2>&1 | tail -1",
          { timeoutMs: 15_000 },
        );
        out.push(`--- booth list and ticket state (on ${n}) ---`, r.stdout.trim());
      }
    }
    for (const n of st.nodes) {
      if (!nodeRunning(n)) {
        out.push(`--- ${n}: powered off ---`);
      } else {
        const r = await exec(
          n,
          "mariadb -uroot -e 'SHOW SLAVE STATUS\\G' 2>&1 | grep -E " +
            "'Master_Host|Master_Log_File|Read_Master|Exec_Master|Running|Last_.*Error:|Seconds' ; " +
            "mariadb -uroot -N -e 'SELECT @@read_only' 2>&1 | sed 's/^/read_only=/'",
          { timeoutMs: 15_000 },
        );
        out.push(`--- ${n}: replica status ---`, r.stdout.trim());
      }
      out.push(
        `--- ${n}: pacemaker.log ---`,
        tailFile(`${nodeDir(n)}/log-pacemaker/pacemaker.log`, lines),
        `--- ${n}: mysql error.log ---`,
        tailFile(`${nodeDir(n)}/log-mysql/error.log`, lines),
      );
    }
  } catch (e) {
    out.push(`(dump failed: ${e instanceof Error ? e.message : e})`);
  }
  console.error(out.join("\n"));
}

/** Host-side ping of an address from inside a node: true when answered. */
export async function canPing(node: string, address: string): Promise<boolean> {
  const r = await exec(node, ["ping", "-c", "1", "-W", "1", address], { timeoutMs: 5_000 });
  return r.code === 0;
}

/** True when the host can ping an address on the bridge. */
export async function hostCanPing(address: string): Promise<boolean> {
  return (await sh(`ping -c 1 -W 1 ${address} >/dev/null 2>&1`)).code === 0;
}
