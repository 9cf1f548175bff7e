/**
 * `mysql_prm status [--json]`: the replication cluster at a glance, from any node. The cluster's
 * side (roles, scores, reader attribute, failures, quorum, fencing, the published master) comes
 * from `crm_mon --output-as=xml` and `cibadmin -Q`; each node's side (read_only, binlog
 * coordinates, GTID position, replication threads, lag) from its MySQL over TCP, with the login
 * of the resource's credentials_file. A node that cannot be reached is a row that says so.
 *
 * Pure parsing and rendering ({@link parseClusterView}, {@link buildReport}, {@link renderText})
 * are kept apart from the I/O ({@link collectStatus}, {@link statusMain}).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { WireConnection } from "./mysql_wire.ts";
import { runTool, TOOL_MAX_MS, type ToolRunner } from "./cib.ts";
import { decodeReplInfo, type ReplInfo } from "./attrs.ts";
import { heartbeatLagSeconds, heartbeatReadSql } from "./heartbeat.ts";
import { parseBoolean, parseCredentialsFile } from "./params.ts";
import {
  binlogStatusSql,
  type Flavour,
  normalizeBinlogStatus,
  normalizeReplicaStatus,
  parseFlavour,
  type ReplicaStatus,
  replicaStatusSql,
} from "./sql.ts";

// ---------------------------------------------------------------------------------------------
// A small XML reader (Pacemaker's output: elements and attributes, no mixed content needed)

/** An XML element. */
export interface XmlNode {
  /** Tag name. */
  name: string;
  /** Attributes, entities decoded. */
  attrs: Record<string, string>;
  /** Child elements. */
  children: XmlNode[];
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "amp") return "&";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    const code = e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

/** Parses an XML document into elements (text, comments and declarations are skipped). */
export function parseXml(text: string): XmlNode {
  const root: XmlNode = { name: "#document", attrs: {}, children: [] };
  const stack: XmlNode[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const attr = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const cleaned = text.replace(/<!--[\s\S]*?-->/g, "").replace(/<\?[\s\S]*?\?>/g, "")
    .replace(/<!DOCTYPE[^>]*>/g, "");
  for (const m of cleaned.matchAll(tag)) {
    const [, closing, name, attrText, selfClosing] = m;
    if (closing) {
      while (stack.length > 1 && stack.pop()!.name !== name) {
        // Tolerate a missing end tag.
      }
      continue;
    }
    const el: XmlNode = { name, attrs: {}, children: [] };
    for (const a of attrText.matchAll(attr)) el.attrs[a[1]] = decodeEntities(a[2] ?? a[3] ?? "");
    stack[stack.length - 1].children.push(el);
    if (!selfClosing) stack.push(el);
  }
  return root;
}

/** Every descendant element named `name`, in document order. */
export function findAll(el: XmlNode, name: string): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (e: XmlNode) => {
    for (const c of e.children) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The cluster's view (pure)

/** An operation failure Pacemaker recorded. */
export interface NodeFailure {
  /** Operation, e.g. p_mysql_monitor_3000. */
  op: string;
  /** Exit status text (e.g. "error", "not running"). */
  exitStatus: string;
  /** The agent's exit reason ("" when none). */
  exitReason: string;
  /** When it happened, as crm_mon prints it. */
  when: string;
}

/** One node as the cluster sees it. */
export interface ClusterNode {
  /** Node name (uname). */
  name: string;
  /** Online member. */
  online: boolean;
  /** Standby. */
  standby: boolean;
  /** Unclean: needs fencing. */
  unclean: boolean;
  /** The resource's role there: promoted, unpromoted, stopped or failed. */
  role: "promoted" | "unpromoted" | "stopped" | "failed";
  /** The promotion score attribute (master-RSC), undefined when unset. */
  score?: number;
  /** The reader attribute, undefined when unset. */
  readable?: string;
  /** Failures of the resource on this node, newest first. */
  failures: NodeFailure[];
}

/** Everything status needs from Pacemaker. */
export interface ClusterView {
  /** Current DC, undefined when none. */
  dc?: string;
  /** This partition has quorum. */
  quorum: boolean;
  /** stonith-enabled. */
  stonithEnabled: boolean;
  /** Fence devices configured (stonith-class primitives). */
  fenceDevices: string[];
  /** no-quorum-policy. */
  noQuorumPolicy: string;
  /** maintenance-mode. */
  maintenance: boolean;
  /** The mysql_prm primitive id. */
  resource: string;
  /** Its clone id, if cloned. */
  clone?: string;
  /** Its instance parameters. */
  params: Record<string, string>;
  /** `<rsc>_REPL_INFO` as stored ("" when unset). */
  replInfoRaw: string;
  /** Parsed REPL_INFO, undefined when unset or malformed. */
  replInfo?: ReplInfo;
  /** The nodes, in crm_mon order. */
  nodes: ClusterNode[];
}

function normalizeRole(role: string, failed: boolean): ClusterNode["role"] {
  if (failed) return "failed";
  if (/^(Promoted|Master)$/i.test(role)) return "promoted";
  if (/^(Unpromoted|Slave|Started)$/i.test(role)) return "unpromoted";
  return "stopped";
}

/** The mysql_prm primitives of a CIB (id and enclosing clone). */
export function findPrmResources(cib: XmlNode): { id: string; clone?: string }[] {
  const out: { id: string; clone?: string }[] = [];
  const walk = (e: XmlNode, clone?: string) => {
    for (const c of e.children) {
      if (c.name === "primitive" && c.attrs.type === "mysql_prm" && c.attrs.class === "ocf") {
        out.push({ id: c.attrs.id, clone });
      }
      walk(c, c.name === "clone" || c.name === "master" ? c.attrs.id : clone);
    }
  };
  for (const r of findAll(cib, "resources")) walk(r);
  return out;
}

/**
 * Builds the cluster's view from `crm_mon -1 -A --output-as=xml` and `cibadmin -Q` output. Throws
 * when the CIB holds no mysql_prm resource (or not the one asked for).
 */
export function parseClusterView(
  crmMonXml: string,
  cibXml: string,
  resource?: string,
): ClusterView {
  const mon = parseXml(crmMonXml);
  const cib = parseXml(cibXml);
  const found = findPrmResources(cib);
  const chosen = resource === undefined ? found[0] : found.find((r) => r.id === resource);
  if (chosen === undefined) {
    throw new Error(
      resource === undefined
        ? "No ocf:*:mysql_prm resource in the CIB"
        : `No mysql_prm resource "${resource}" in the CIB (found: ${
          found.map((r) => r.id).join(", ") || "none"
        })`,
    );
  }
  const rsc = chosen.id;
  const primitive = findAll(cib, "primitive").find((p) => p.attrs.id === rsc)!;
  const params: Record<string, string> = {};
  for (const ia of primitive.children.filter((c) => c.name === "instance_attributes")) {
    for (const nv of ia.children.filter((c) => c.name === "nvpair")) {
      params[nv.attrs.name] = nv.attrs.value ?? "";
    }
  }
  const crmConfig = findAll(cib, "crm_config")[0];
  const props = new Map<string, string>();
  for (const nv of crmConfig ? findAll(crmConfig, "nvpair") : []) {
    props.set(nv.attrs.name, nv.attrs.value ?? "");
  }
  const replInfoRaw = props.get(`${rsc}_REPL_INFO`) ?? "";
  const fenceDevices = findAll(cib, "primitive").filter((p) => p.attrs.class === "stonith")
    .map((p) => p.attrs.id);

  const dc = findAll(mon, "current_dc")[0];
  const options = findAll(mon, "cluster_options")[0]?.attrs ?? {};
  const nodeAttrs = new Map<string, Record<string, string>>();
  for (const sec of findAll(mon, "node_attributes")) {
    for (const n of sec.children.filter((c) => c.name === "node")) {
      nodeAttrs.set(
        n.attrs.name,
        Object.fromEntries(
          n.children.filter((a) => a.name === "attribute").map((
            a,
          ) => [a.attrs.name, a.attrs.value]),
        ),
      );
    }
  }
  // Where each instance of the resource runs, and in which role.
  const roles = new Map<string, ClusterNode["role"]>();
  for (const r of findAll(mon, "resource")) {
    if (r.attrs.id.replace(/:\d+$/, "") !== rsc) continue;
    const role = normalizeRole(r.attrs.role ?? "", r.attrs.failed === "true");
    for (const n of r.children.filter((c) => c.name === "node")) {
      const prev = roles.get(n.attrs.name);
      if (prev === undefined || prev === "stopped" || role === "failed") {
        roles.set(n.attrs.name, role);
      }
    }
  }
  const failures = new Map<string, NodeFailure[]>();
  for (const f of findAll(mon, "failure")) {
    const op = f.attrs.op_key ?? f.attrs.id ?? "";
    if (!op.startsWith(`${rsc}_`) && !op.startsWith(`${rsc}:`)) continue;
    const list = failures.get(f.attrs.node) ?? [];
    list.push({
      op,
      exitStatus: f.attrs.exitstatus ?? "",
      exitReason: f.attrs.exitreason ?? "",
      when: f.attrs["last-rc-change"] ?? "",
    });
    failures.set(f.attrs.node, list);
  }
  const monNodes = findAll(mon, "nodes")[0]?.children.filter((c) => c.name === "node") ?? [];
  const nodes: ClusterNode[] = monNodes.map((n) => {
    const attrs = nodeAttrs.get(n.attrs.name) ?? {};
    const rawScore = attrs[`master-${rsc}`] ?? attrs[`promotion-${rsc}`];
    const score = rawScore !== undefined && /^-?\d+$/.test(rawScore)
      ? Number(rawScore)
      : rawScore !== undefined && /^-?INFINITY$/i.test(rawScore)
      ? (rawScore.startsWith("-") ? -1_000_000 : 1_000_000)
      : undefined;
    const readerName = params.reader_attribute || "readable";
    const online = n.attrs.online === "true";
    return {
      name: n.attrs.name,
      online,
      standby: n.attrs.standby === "true",
      unclean: n.attrs.unclean === "true",
      role: online ? roles.get(n.attrs.name) ?? "stopped" : "stopped",
      score,
      readable: attrs[readerName],
      failures: (failures.get(n.attrs.name) ?? []).sort((a, b) => b.when.localeCompare(a.when)),
    };
  });
  return {
    dc: dc?.attrs.present === "true" ? dc.attrs.name : undefined,
    quorum: dc?.attrs.with_quorum === "true",
    stonithEnabled: options["stonith-enabled"] === "true",
    fenceDevices,
    noQuorumPolicy: options["no-quorum-policy"] ?? "",
    maintenance: options["maintenance-mode"] === "true",
    resource: rsc,
    clone: chosen.clone,
    params,
    replInfoRaw,
    replInfo: replInfoRaw === "" ? undefined : decodeReplInfo(replInfoRaw),
    nodes,
  };
}

// ---------------------------------------------------------------------------------------------
// What each node's MySQL says, and the report (pure)

/** What a node's MySQL answered (or why it did not). */
export interface NodeProbe {
  /** Undefined when the server answered. */
  unreachable?: string;
  /** Server version. */
  version?: string;
  /** server_id. */
  serverId?: number;
  /** read_only (or super_read_only). */
  readOnly?: boolean;
  /** SHOW MASTER STATUS, undefined when binary logging is off. */
  binlog?: { file: string; pos: number };
  /** GTID position (MariaDB gtid_current_pos, MySQL gtid_executed), "" when none. */
  gtid?: string;
  /** Replica status, undefined when replicating from nobody. */
  replica?: ReplicaStatus;
  /** Heartbeat lag in seconds (replicas, when the heartbeat parameter is on). */
  heartbeatLag?: number;
  /** Why no heartbeat lag, when it is on. */
  heartbeatProblem?: string;
}

/** One row of the status. */
export interface StatusRow {
  /** Node name. */
  node: string;
  /** online, offline, standby or unclean. */
  state: string;
  /** promoted, unpromoted, stopped or failed (Pacemaker's view). */
  role: string;
  /** read_only, undefined when unknown. */
  readOnly?: boolean;
  /** `file:pos` of the node's own binlog, or "". */
  binlog: string;
  /** GTID position, or "". */
  gtid: string;
  /** Master host and both threads (e.g. `prm1 io=Yes sql=Yes`), "" when not a replica. */
  replication: string;
  /** Executed master coordinates of a replica (`file:pos`), "". */
  executed: string;
  /** Lag in seconds (heartbeat lag when on, else Seconds_Behind_Master), undefined when none. */
  lag?: number;
  /** Where the lag comes from: "heartbeat" or "sbm". */
  lagSource?: "heartbeat" | "sbm";
  /** Seconds_Behind_Master as the server reports it (null = NULL). */
  secondsBehindMaster?: number | null;
  /** The reader attribute value, undefined when unset. */
  readable?: string;
  /** Promotion score, undefined when unset. */
  score?: number;
  /** The last error: unreachable MySQL, replication error, or the agent's exit reason. */
  error: string;
}

/** The whole status. */
export interface StatusReport {
  /** The mysql_prm resource. */
  resource: string;
  /** Its clone. */
  clone?: string;
  /** Cluster header. */
  cluster: {
    dc?: string;
    quorum: boolean;
    noQuorumPolicy: string;
    stonithEnabled: boolean;
    fenceDevices: string[];
    maintenance: boolean;
  };
  /** Published master coordinates. */
  master: { raw: string; host?: string; file?: string; pos?: number };
  /** Heartbeat settings when on. */
  heartbeat?: { table: string; intervalSeconds: number };
  /** max_slave_lag. */
  maxSlaveLag: number;
  /** One row per node. */
  rows: StatusRow[];
}

function nodeState(n: ClusterNode): string {
  if (n.unclean) return "unclean";
  if (!n.online) return "offline";
  if (n.standby) return "standby";
  return "online";
}

/** Combines the cluster's view and the nodes' answers into the report. */
export function buildReport(view: ClusterView, probes: Map<string, NodeProbe>): StatusReport {
  const heartbeatOn = parseBoolean(view.params.heartbeat ?? "") === true;
  const rows = view.nodes.map((n): StatusRow => {
    const p = probes.get(n.name) ?? { unreachable: "not probed" };
    const r = p.replica;
    const errors: string[] = [];
    if (p.unreachable) errors.push(`MySQL unreachable: ${p.unreachable}`);
    if (r?.lastSqlErrno) errors.push(`SQL ${r.lastSqlErrno}: ${r.lastSqlError}`);
    if (r?.lastIoErrno) errors.push(`IO ${r.lastIoErrno}: ${r.lastIoError}`);
    const f = n.failures[0];
    if (f) {
      errors.push(`${f.op} ${f.exitStatus}${f.exitReason ? `: ${f.exitReason}` : ""}`);
    }
    const useHb = heartbeatOn && r !== undefined && p.heartbeatLag !== undefined;
    const lag = useHb ? p.heartbeatLag : r?.secondsBehind ?? undefined;
    return {
      node: n.name,
      state: nodeState(n),
      role: n.role,
      readOnly: p.readOnly,
      binlog: p.binlog ? `${p.binlog.file}:${p.binlog.pos}` : "",
      gtid: p.gtid ?? "",
      replication: r
        ? `${r.masterHost} io=${r.ioRunning || "-"} sql=${r.sqlRunning ? "Yes" : "No"}`
        : "",
      executed: r ? `${r.relayMasterLogFile}:${r.execMasterLogPos}` : "",
      lag: lag === undefined || lag === null ? undefined : lag,
      lagSource: lag === undefined || lag === null ? undefined : useHb ? "heartbeat" : "sbm",
      secondsBehindMaster: r ? r.secondsBehind : undefined,
      readable: n.readable,
      score: n.score,
      error: errors.join("; "),
    };
  });
  const info = view.replInfo;
  return {
    resource: view.resource,
    clone: view.clone,
    cluster: {
      dc: view.dc,
      quorum: view.quorum,
      noQuorumPolicy: view.noQuorumPolicy,
      stonithEnabled: view.stonithEnabled,
      fenceDevices: view.fenceDevices,
      maintenance: view.maintenance,
    },
    master: info
      ? { raw: view.replInfoRaw, host: info.host, file: info.file, pos: info.pos }
      : { raw: view.replInfoRaw },
    heartbeat: heartbeatOn
      ? {
        table: view.params.heartbeat_table || "percona.heartbeat",
        intervalSeconds: Number(view.params.heartbeat_interval || "1"),
      }
      : undefined,
    maxSlaveLag: Number(view.params.max_slave_lag || "3600"),
    rows,
  };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function formatLag(row: StatusRow): string {
  if (row.lag === undefined) return row.secondsBehindMaster === null ? "NULL" : "-";
  const figure = row.lagSource === "heartbeat" ? `${row.lag.toFixed(1)}s hb` : `${row.lag}s`;
  if (row.lagSource === "heartbeat" && row.secondsBehindMaster !== undefined) {
    return `${figure} (SBM ${row.secondsBehindMaster ?? "NULL"})`;
  }
  return figure;
}

/** The human-readable status: a header and one row per node. */
export function renderText(report: StatusReport): string {
  const c = report.cluster;
  const fencing = c.stonithEnabled
    ? `stonith-enabled=true, fence devices: ${c.fenceDevices.join(", ") || "NONE CONFIGURED"}`
    : "stonith-enabled=false: NO FENCING (a split brain can give two writable masters)";
  const m = report.master;
  const lines = [
    `Cluster: DC ${c.dc ?? "none"}, ${c.quorum ? "quorum" : "NO QUORUM"} (no-quorum-policy=${
      c.noQuorumPolicy || "stop"
    }), ${fencing}${c.maintenance ? ", MAINTENANCE MODE" : ""}`,
    `Resource: ${report.resource}${report.clone ? ` (clone ${report.clone})` : ""}, lag from ${
      report.heartbeat
        ? `heartbeat ${report.heartbeat.table} every ${report.heartbeat.intervalSeconds}s`
        : "Seconds_Behind_Master"
    }, max_slave_lag ${report.maxSlaveLag}s`,
    `Published master (${report.resource}_REPL_INFO): ${
      m.host ? `${m.host} ${m.file}:${m.pos}` : m.raw === "" ? "none" : `malformed "${m.raw}"`
    }`,
    "",
  ];
  const header = [
    "NODE",
    "STATE",
    "ROLE",
    "READ_ONLY",
    "BINLOG",
    "GTID",
    "REPLICATION",
    "EXECUTED",
    "LAG",
    "READABLE",
    "SCORE",
    "LAST ERROR",
  ];
  const rows = report.rows.map((r) => [
    r.node,
    r.state,
    r.role,
    r.readOnly === undefined ? "?" : r.readOnly ? "on" : "off",
    r.binlog || "-",
    r.gtid || "-",
    r.replication || "-",
    r.executed || "-",
    formatLag(r),
    r.readable ?? "-",
    r.score === undefined ? "-" : String(r.score),
    // The text view keeps rows readable; --json has the whole message.
    r.error === "" ? "-" : r.error.length > 160 ? `${r.error.slice(0, 159)}…` : r.error,
  ]);
  lines.push(table(header, rows), "");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// I/O

/** Options of {@link collectStatus}. */
export interface CollectOptions {
  /** The mysql_prm primitive id (default: the first in the CIB). */
  resource?: string;
  /** Credentials file overriding the resource's credentials_file. */
  credentialsFile?: string;
  /** Node name → address to connect to (default: the node name, resolved by the system). */
  addresses?: Record<string, string>;
  /** Per-node connect and query timeout in ms (default 3000). */
  timeoutMs?: number;
  /** Pacemaker tool runner (tests). */
  runner?: ToolRunner;
}

/** The login status uses on every node, from the credentials file or the resource's params. */
export function statusLogin(
  params: Record<string, string>,
  credentialsText?: string,
): { user: string; password: string } {
  const file = credentialsText === undefined ? undefined : parseCredentialsFile(credentialsText);
  return {
    user: file?.client?.user ?? params.test_user ?? "root",
    password: file?.client?.password ?? params.test_passwd ?? "",
  };
}

async function probeNode(
  host: string,
  opts: {
    port: number;
    user: string;
    password: string;
    timeoutMs: number;
    heartbeatTable?: string;
  },
): Promise<NodeProbe> {
  let conn: WireConnection;
  try {
    conn = await WireConnection.connect({
      host,
      port: opts.port,
      user: opts.user,
      password: opts.password,
      connectTimeoutMs: opts.timeoutMs,
    });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { unreachable: `${e.code ?? ""} ${e.message ?? err}`.trim() };
  }
  const q = (sql: string) => conn.query(sql, opts.timeoutMs);
  try {
    const [v] = await q(
      "SELECT VERSION() AS v, @@version_comment AS c, @@global.server_id AS id, " +
        "@@global.read_only AS ro",
    );
    const flavour: Flavour = parseFlavour(String(v.v), String(v.c ?? ""));
    const probe: NodeProbe = {
      version: String(v.v),
      serverId: Number(v.id),
      readOnly: Number(v.ro) === 1,
    };
    if (flavour.kind !== "mariadb") {
      const [s] = await q("SELECT @@global.super_read_only AS sro");
      probe.readOnly = probe.readOnly || Number(s?.sro) === 1;
    }
    const [b] = await q(binlogStatusSql(flavour));
    if (b !== undefined) {
      const s = normalizeBinlogStatus(b);
      probe.binlog = { file: s.file, pos: s.pos };
      probe.gtid = s.gtid;
    }
    if (flavour.kind === "mariadb") {
      const [g] = await q("SELECT @@global.gtid_current_pos AS g");
      probe.gtid = String(g?.g ?? "");
    }
    const [rs] = await q(replicaStatusSql(flavour));
    const replica = rs === undefined ? undefined : normalizeReplicaStatus(rs);
    if (replica !== undefined && replica.masterHost !== "") {
      probe.replica = replica;
      if (opts.heartbeatTable !== undefined) {
        const id = Number(rs.Master_Server_Id ?? rs.Source_Server_Id);
        if (!Number.isSafeInteger(id) || id <= 0) {
          probe.heartbeatProblem = "master's server_id unknown";
        } else {
          try {
            const [h] = await q(heartbeatReadSql(opts.heartbeatTable, id));
            const lag = h === undefined
              ? undefined
              : heartbeatLagSeconds(String(h.ts), String(h.now));
            if (lag === undefined) probe.heartbeatProblem = `no heartbeat row of server ${id}`;
            else probe.heartbeatLag = Math.round(lag * 1000) / 1000;
          } catch (err) {
            probe.heartbeatProblem = (err as Error).message;
          }
        }
      }
    }
    return probe;
  } catch (err) {
    return { unreachable: `query failed: ${(err as Error).message}` };
  } finally {
    await conn.close();
  }
}

/** Reads the cluster and every node's MySQL; throws only when Pacemaker cannot be read. */
export async function collectStatus(options: CollectOptions = {}): Promise<StatusReport> {
  const run = options.runner ?? runTool;
  const [mon, cib] = await Promise.all([
    run("crm_mon", ["-1", "-A", "-r", "--output-as=xml"], TOOL_MAX_MS),
    run("cibadmin", ["-Q"], TOOL_MAX_MS),
  ]);
  if (mon.code !== 0 || !mon.stdout.includes("<")) {
    throw new Error(`crm_mon failed (exit ${mon.code}): ${mon.stderr || mon.stdout}`.trim());
  }
  if (cib.code !== 0) throw new Error(`cibadmin -Q failed (exit ${cib.code}): ${cib.stderr}`);
  const view = parseClusterView(mon.stdout, cib.stdout, options.resource);
  const credPath = options.credentialsFile ?? view.params.credentials_file;
  let credText: string | undefined;
  if (credPath) {
    try {
      credText = await Deno.readTextFile(credPath);
    } catch (err) {
      throw new Error(`Cannot read credentials file ${credPath}: ${(err as Error).message}`);
    }
  }
  const login = statusLogin(view.params, credText);
  const port = Number(view.params.replication_port || "3306");
  const heartbeatOn = parseBoolean(view.params.heartbeat ?? "") === true;
  const timeoutMs = options.timeoutMs ?? 3_000;
  const probes = new Map<string, NodeProbe>();
  await Promise.all(view.nodes.map(async (n) => {
    if (!n.online) {
      probes.set(n.name, { unreachable: `node ${n.unclean ? "unclean" : "offline"}` });
      return;
    }
    probes.set(
      n.name,
      await probeNode(options.addresses?.[n.name] ?? n.name, {
        port,
        ...login,
        timeoutMs,
        heartbeatTable: heartbeatOn
          ? view.params.heartbeat_table || "percona.heartbeat"
          : undefined,
      }),
    );
  }));
  return buildReport(view, probes);
}

/** Text of `mysql_prm status --help`. */
export const STATUS_HELP =
  `Usage: mysql_prm status [--json] [--resource ID] [--credentials-file PATH]
                        [--address NODE=ADDRESS]... [--timeout MS]

Shows the replication cluster managed by mysql_prm, from any cluster node (run it as root: it
runs crm_mon and cibadmin, and reads the resource's credentials_file).

Header: the DC, quorum and no-quorum-policy, fencing (stonith-enabled and the fence devices),
lag source and max_slave_lag, and the master the agent published (<rsc>_REPL_INFO).
One row per node:
  STATE        online, offline, standby or unclean (Pacemaker's membership)
  ROLE         promoted, unpromoted, stopped or failed (the resource's role there)
  READ_ONLY    the server's read_only (? when MySQL did not answer)
  BINLOG       the node's own binlog coordinates (SHOW MASTER STATUS)
  GTID         gtid_current_pos (MariaDB) or gtid_executed (MySQL)
  REPLICATION  master host, IO and SQL thread state
  EXECUTED     master coordinates executed by the SQL thread
  LAG          heartbeat lag ("hb", with Seconds_Behind_Master beside) when the heartbeat
               parameter is on, else Seconds_Behind_Master (NULL when the server says NULL)
  READABLE     the reader attribute (reader_attribute parameter)
  SCORE        the promotion score (master-<rsc>)
  LAST ERROR   MySQL unreachable, replication errors, and the last failed operation's
               exit reason as Pacemaker recorded it

MySQL is reached over TCP at the node name (or --address) on replication_port, with the
[client] login of credentials_file (or test_user/test_passwd).

Options:
  --json                 Print the report as JSON (same fields as the rows above).
  -r, --resource ID      The mysql_prm primitive (default: the first one in the CIB).
  --credentials-file P   Use this file instead of the resource's credentials_file.
  --address NODE=ADDR    Connect to NODE's MySQL at ADDR (repeatable).
  --timeout MS           Per-node connect and query timeout (default 3000).
  -h, --help             This text.

Exit status: 0 when the report was printed (unreachable nodes included), 1 when Pacemaker
could not be read or no mysql_prm resource exists, 2 on a usage error.
`;

/** Entry point of `mysql_prm status ARGS...`; returns the exit status. */
export async function statusMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        resource: { type: "string", short: "r" },
        "credentials-file": { type: "string" },
        address: { type: "string", multiple: true },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message} (see mysql_prm status --help)`);
    return 2;
  }
  if (values.help) {
    console.log(STATUS_HELP);
    return 0;
  }
  const addresses: Record<string, string> = {};
  for (const a of values.address ?? []) {
    const eq = a.indexOf("=");
    if (eq <= 0 || eq === a.length - 1) {
      console.error(`--address takes NODE=ADDRESS, not "${a}"`);
      return 2;
    }
    addresses[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    console.error(`--timeout takes milliseconds, not "${values.timeout}"`);
    return 2;
  }
  try {
    const report = await collectStatus({
      resource: values.resource,
      credentialsFile: values["credentials-file"],
      addresses,
      timeoutMs,
    });
    console.log(values.json ? JSON.stringify(report, null, 2) : renderText(report));
    return 0;
  } catch (err) {
    console.error(`mysql_prm status: ${(err as Error).message}`);
    return 1;
  }
}
