/**
 * `mysql_prm status [--format text|json|openmetrics|prometheus]`: the replication cluster at a
 * glance, from any node. The cluster's side (roles, scores, reader attribute, why a node is not
 * promotable, failures, quorum, fencing, the published master) comes from `crm_mon
 * --output-as=xml` and `cibadmin -Q` (cluster_view.ts); the last promotions from the private
 * attributes (`attrd_updater`); each node's side (read_only, binlog coordinates, GTID position,
 * replication threads, lag) from its MySQL over TCP with the agent's own client (mysql.ts) and
 * the login of the resource's credentials_file. A node that cannot be reached is a row that says
 * so. Parameter defaults and attribute names are the agent's (params.ts, attrs.ts).
 *
 * Pure parts ({@link buildReport}, {@link renderText}) are kept apart from the I/O
 * ({@link collectStatus}, {@link statusMain}); the metrics formats are metrics.ts.
 *
 * @module
 */

import { parseFlags } from "./cli_args.ts";
import {
  attributeNames,
  decodePromotionRecord,
  type NotPromotable,
  type PromotionRecord,
} from "./attrs.ts";
import { parseAttrdQuery, runTool, TOOL_MAX_MS, type ToolRunner } from "./cib.ts";
import { type ClusterNode, type ClusterView, parseClusterView } from "./cluster_view.ts";
import {
  type Credentials,
  CredentialsFileError,
  MAX_CREDENTIALS_FILE_BYTES,
  parseCredentialsFile,
  resolveCredentials,
} from "./credentials.ts";
import { readHeartbeatLag } from "./heartbeat.ts";
import { describeError, MysqlClient } from "./mysql.ts";
import { type AgentParams, resolveParams } from "./params.ts";
import { AGENT_DATA_DIR, readBoundedFile } from "./safe_fs.ts";
import { countSalvageFiles } from "./salvage.ts";
import type { ReplicaStatus } from "./sql.ts";
import { renderMetrics } from "./metrics.ts";

// ---------------------------------------------------------------------------------------------
// What each node's MySQL says, and the report (pure)

/** What a node's MySQL answered (or why it did not). */
export interface NodeProbe {
  /** Undefined when the server answered. */
  unreachable?: string;
  /** Server version. */
  version?: string;
  /** mariadb or mysql (which GTID notation). */
  flavour?: "mariadb" | "mysql";
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
  /** online, offline, standby, maintenance or unclean. */
  state: string;
  /** promoted, unpromoted, stopped or failed (Pacemaker's view). */
  role: string;
  /** read_only, undefined when unknown. */
  readOnly?: boolean;
  /** `file:pos` of the node's own binlog, or "". */
  binlog: string;
  /** GTID position, or "". */
  gtid: string;
  /** mariadb or mysql, when the server answered. */
  flavour?: "mariadb" | "mysql";
  /** Master host and both threads (e.g. `prm1 io=Yes sql=Yes`), "" when not a replica. */
  replication: string;
  /** The replica's master, "" when not a replica. */
  masterHost: string;
  /** IO thread state (Yes, No, Connecting), "" when not a replica. */
  ioRunning: string;
  /** SQL thread running, undefined when not a replica. */
  sqlRunning?: boolean;
  /** Executed master coordinates of a replica (`file:pos`), "". */
  executed: string;
  /** Lag in seconds (heartbeat lag when on, else Seconds_Behind_Master), undefined when none. */
  lag?: number;
  /** Where the lag comes from: "heartbeat" or "sbm". */
  lagSource?: "heartbeat" | "sbm";
  /** Seconds_Behind_Master as the server reports it (null = NULL). */
  secondsBehindMaster?: number | null;
  /** Heartbeat lag in seconds, when the heartbeat is on and a row was read. */
  heartbeatLag?: number;
  /** The reader attribute value, undefined when unset. */
  readable?: string;
  /** Promotion score, undefined when unset. */
  score?: number;
  /** Why the agent says this node is not a promotion candidate, undefined when it did not. */
  notPromotable?: NotPromotable | string;
  /** This node's last promotion, when its attribute daemon remembers one. */
  lastPromotion?: PromotionRecord;
  /** Failed operations of the resource Pacemaker recorded on this node. */
  failedOperations: number;
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
    /** False while Pacemaker leaves the resource alone (is-managed=false, maintenance). */
    managed: boolean;
  };
  /** Published master coordinates. */
  master: { raw: string; host?: string; file?: string; pos?: number };
  /** Heartbeat settings when on. */
  heartbeat?: { table: string; intervalSeconds: number };
  /** max_slave_lag. */
  maxSlaveLag: number;
  /** One row per node. */
  rows: StatusRow[];
  /** The node this report was made on and its salvage files waiting (they are local files). */
  local?: { node: string; salvageFiles: number };
}

function nodeState(n: ClusterNode): string {
  if (n.unclean) return "unclean";
  if (!n.online) return "offline";
  if (n.standby) return "standby";
  if (n.maintenance) return "maintenance";
  return "online";
}

/** The typed parameters of the resource as configured (defaults from params.ts). */
export function resourceParams(view: Pick<ClusterView, "params">): AgentParams {
  return resolveParams(view.params).params;
}

/** Extra inputs of {@link buildReport} besides the view and the probes. */
export interface ReportExtras {
  /** Last promotion per node (private attribute). */
  promotions?: Map<string, PromotionRecord>;
  /** The local node and its salvage files. */
  local?: { node: string; salvageFiles: number };
}

/** Combines the cluster's view and the nodes' answers into the report. */
export function buildReport(
  view: ClusterView,
  probes: Map<string, NodeProbe>,
  extras: ReportExtras = {},
): StatusReport {
  const params = resourceParams(view);
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
    const useHb = params.heartbeat && r !== undefined && p.heartbeatLag !== undefined;
    const lag = useHb ? p.heartbeatLag : r?.secondsBehind ?? undefined;
    return {
      node: n.name,
      state: nodeState(n),
      role: n.role,
      readOnly: p.readOnly,
      binlog: p.binlog ? `${p.binlog.file}:${p.binlog.pos}` : "",
      gtid: p.gtid ?? "",
      flavour: p.flavour,
      replication: r
        ? `${r.masterHost} io=${r.ioRunning || "-"} sql=${r.sqlRunning ? "Yes" : "No"}`
        : "",
      masterHost: r?.masterHost ?? "",
      ioRunning: r ? r.ioRunning || "No" : "",
      sqlRunning: r?.sqlRunning,
      executed: r ? `${r.relayMasterLogFile}:${r.execMasterLogPos}` : "",
      lag: lag === undefined || lag === null ? undefined : lag,
      lagSource: lag === undefined || lag === null ? undefined : useHb ? "heartbeat" : "sbm",
      secondsBehindMaster: r ? r.secondsBehind : undefined,
      heartbeatLag: r ? p.heartbeatLag : undefined,
      readable: n.readable,
      score: n.score,
      notPromotable: n.notPromotable ?? n.notPromotableRaw,
      lastPromotion: extras.promotions?.get(n.name),
      failedOperations: n.failures.length,
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
      managed: view.managed,
    },
    master: info
      ? { raw: view.replInfoRaw, host: info.host, file: info.file, pos: info.pos }
      : { raw: view.replInfoRaw },
    heartbeat: params.heartbeat
      ? { table: params.heartbeatTable, intervalSeconds: params.heartbeatInterval }
      : undefined,
    maxSlaveLag: params.maxSlaveLag,
    rows,
    local: extras.local,
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
    `Resource: ${report.resource}${report.clone ? ` (clone ${report.clone})` : ""}${
      !c.managed && !c.maintenance ? " UNMANAGED" : ""
    }, lag from ${
      report.heartbeat
        ? `heartbeat ${report.heartbeat.table} every ${report.heartbeat.intervalSeconds}s`
        : "Seconds_Behind_Master"
    }, max_slave_lag ${report.maxSlaveLag}s`,
    `Published master (${attributeNames(report.resource).replInfo}): ${
      m.host ? `${m.host} ${m.file}:${m.pos}` : m.raw === "" ? "none" : `malformed "${m.raw}"`
    }`,
  ];
  const last = lastPromotion(report);
  if (last !== undefined) {
    lines.push(
      `Last promotion: ${last.node} at ${new Date(last.record.atMs).toISOString()}, writes open ${
        (last.record.durationMs / 1000).toFixed(2)
      } s after its pre-promote`,
    );
  }
  if (report.local !== undefined && report.local.salvageFiles > 0) {
    lines.push(
      `Salvage files waiting on ${report.local.node}: ${report.local.salvageFiles} (in ${AGENT_DATA_DIR})`,
    );
  }
  lines.push("");
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
    "NOT PROMOTABLE",
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
    r.notPromotable ?? "-",
    // The text view keeps rows readable; --format json has the whole message.
    r.error === "" ? "-" : r.error.length > 160 ? `${r.error.slice(0, 159)}…` : r.error,
  ]);
  lines.push(table(header, rows), "");
  return lines.join("\n");
}

/** The most recent promotion any node remembers. */
export function lastPromotion(
  report: Pick<StatusReport, "rows">,
): { node: string; record: PromotionRecord } | undefined {
  let best: { node: string; record: PromotionRecord } | undefined;
  for (const r of report.rows) {
    if (r.lastPromotion === undefined) continue;
    if (best === undefined || r.lastPromotion.atMs > best.record.atMs) {
      best = { node: r.node, record: r.lastPromotion };
    }
  }
  return best;
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
  /** Folder of salvage files (default /var/lib/prm). */
  salvageDir?: string;
}

/**
 * The login status uses on every node: the credentials file's `[client]` login, else the
 * resource's test_user/test_passwd (with the agent's defaults). `credentials` is the file's
 * content (bytes, as read); a malformed file throws a CredentialsFileError.
 */
export function statusLogin(
  params: Record<string, string>,
  credentials?: Uint8Array | string,
): Credentials["client"] {
  const file = credentials === undefined ? undefined : parseCredentialsFile(credentials);
  return resolveCredentials(resolveParams(params).params, file).client;
}

/** Reads a credentials file the way the agent does: bounded, as bytes. Throws with the reason. */
function readCredentials(path: string): Uint8Array {
  const read = readBoundedFile(path, MAX_CREDENTIALS_FILE_BYTES);
  if (!read.ok) throw new Error(`Cannot read credentials file ${path} (${read.why})`);
  return read.bytes;
}

async function probeNode(
  host: string,
  opts: {
    port: number;
    login: Credentials["client"];
    timeoutMs: number;
    heartbeatTable?: string;
  },
): Promise<NodeProbe> {
  let client: MysqlClient;
  try {
    client = await MysqlClient.connect({
      host,
      port: opts.port,
      user: opts.login.user,
      password: opts.login.password,
      connectTimeoutMs: opts.timeoutMs,
      queryTimeoutMs: opts.timeoutMs,
      deadline: Date.now() + 2 * opts.timeoutMs,
    });
  } catch (err) {
    return { unreachable: describeError(err) };
  }
  try {
    const f = client.flavour;
    const probe: NodeProbe = {
      version: `${f.kind} ${f.major}.${f.minor}.${f.patch}`,
      flavour: f.kind,
      readOnly: await client.readOnly(),
    };
    const binlog = await client.binlogStatus();
    if (binlog !== undefined) probe.binlog = { file: binlog.file, pos: binlog.pos };
    const gtid = await client.gtidState();
    probe.gtid = gtid.currentPos;
    const replica = await client.replicaStatus();
    if (replica !== undefined) {
      probe.replica = replica;
      if (opts.heartbeatTable !== undefined) {
        const hb = await readHeartbeatLag(client, opts.heartbeatTable);
        if (hb.lag === undefined) probe.heartbeatProblem = hb.problem;
        else probe.heartbeatLag = Math.round(hb.lag * 1000) / 1000;
      }
    }
    return probe;
  } catch (err) {
    return { unreachable: `query failed: ${describeError(err)}` };
  } finally {
    await client.close();
  }
}

/** Reads the cluster and every node's MySQL; throws only when Pacemaker cannot be read. */
export async function collectStatus(options: CollectOptions = {}): Promise<StatusReport> {
  return (await collectCluster(options)).report;
}

/** What {@link collectCluster} read: Pacemaker's view, the report, and the login it used. */
export interface ClusterReading {
  /** Pacemaker's view. */
  view: ClusterView;
  /** The report (the view and every node's MySQL). */
  report: StatusReport;
  /** The login used on every node's MySQL. */
  login: Credentials["client"];
  /** The resource's typed parameters. */
  params: AgentParams;
}

/** {@link collectStatus}, keeping Pacemaker's view and the login (for switchover). */
export async function collectCluster(options: CollectOptions = {}): Promise<ClusterReading> {
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
  const params = resourceParams(view);
  const credPath = options.credentialsFile ?? params.credentialsFile;
  let login: Credentials["client"];
  try {
    login = statusLogin(view.params, credPath ? readCredentials(credPath) : undefined);
  } catch (err) {
    if (!(err instanceof CredentialsFileError)) throw err;
    throw new Error(`Credentials file ${credPath}: ${err.message}`);
  }
  const names = attributeNames(view.resource, params.readerAttribute);
  const timeoutMs = options.timeoutMs ?? 3_000;
  const probes = new Map<string, NodeProbe>();
  const promotionsRead = run("attrd_updater", ["-p", "-n", names.promoted, "-Q", "-A"], TOOL_MAX_MS)
    .catch(() => undefined);
  const localName = run("crm_node", ["-n"], TOOL_MAX_MS).catch(() => undefined);
  const probe = async (n: ClusterNode) => {
    if (!n.online) {
      probes.set(n.name, { unreachable: `node ${n.unclean ? "unclean" : "offline"}` });
      return;
    }
    probes.set(
      n.name,
      await probeNode(options.addresses?.[n.name] ?? n.name, {
        port: params.replicationPort,
        login,
        timeoutMs,
        heartbeatTable: params.heartbeat ? params.heartbeatTable : undefined,
      }),
    );
  };
  // The replicas first, then the promoted node: read after them, the master's position holds
  // everything they received, so a replica never looks ahead of it (a false errant GTID) while
  // writes go on.
  await Promise.all(view.nodes.filter((n) => n.role !== "promoted").map(probe));
  await Promise.all(view.nodes.filter((n) => n.role === "promoted").map(probe));
  const promotions = new Map<string, PromotionRecord>();
  const attrd = await promotionsRead;
  if (attrd?.code === 0) {
    for (const [node, value] of parseAttrdQuery(attrd.stdout)) {
      const record = decodePromotionRecord(value);
      if (record !== undefined) promotions.set(node, record);
    }
  }
  const me = await localName;
  const local = me?.code === 0 && me.stdout !== ""
    ? {
      node: me.stdout.trim(),
      salvageFiles: countSalvageFiles(options.salvageDir ?? AGENT_DATA_DIR, view.resource),
    }
    : undefined;
  return { view, report: buildReport(view, probes, { promotions, local }), login, params };
}

/** The output formats of `mysql_prm status`. */
export const STATUS_FORMATS = ["text", "json", "openmetrics", "prometheus"] as const;

/** One of {@link STATUS_FORMATS}. */
export type StatusFormat = typeof STATUS_FORMATS[number];

/** Text of `mysql_prm status --help`. */
export const STATUS_HELP =
  `Usage: mysql_prm status [--format text|json|openmetrics|prometheus] [--json]
                        [--resource ID] [--credentials-file PATH]
                        [--address NODE=ADDRESS]... [--timeout MS]

Shows the replication cluster managed by mysql_prm, from any cluster node (run it as root: it
runs crm_mon, cibadmin and attrd_updater, and reads the resource's credentials_file).

Header: the DC, quorum and no-quorum-policy, fencing (stonith-enabled and the fence devices),
maintenance mode, lag source and max_slave_lag, the master the agent published
(<rsc>_REPL_INFO), the last promotion, and this node's salvage files waiting.
One row per node:
  STATE           online, offline, standby, maintenance or unclean (Pacemaker's membership)
  ROLE            promoted, unpromoted, stopped or failed (the resource's role there)
  READ_ONLY       the server's read_only (? when MySQL did not answer)
  BINLOG          the node's own binlog coordinates (SHOW MASTER STATUS)
  GTID            gtid_current_pos (MariaDB) or gtid_executed (MySQL)
  REPLICATION     master host, IO and SQL thread state
  EXECUTED        master coordinates executed by the SQL thread
  LAG             heartbeat lag ("hb", with Seconds_Behind_Master beside) when the heartbeat
                  parameter is on, else Seconds_Behind_Master (NULL when the server says NULL)
  READABLE        the reader attribute (reader_attribute parameter)
  SCORE           the promotion score (master-<rsc>)
  NOT PROMOTABLE  why the agent keeps the node from being promoted (the node attribute
                  prm-<rsc>-not-promotable, also in crm_mon -A): sql-broken, io-broken,
                  io-stopped, lagging, stale-master, errant-transactions, resync-refused,
                  kept-out, disk-full, cold-start-wait, unresponsive
  LAST ERROR      MySQL unreachable, replication errors, and the last failed operation's
                  exit reason as Pacemaker recorded it

MySQL is reached over TCP at the node name (or --address) on replication_port, with the
[client] login of credentials_file (or test_user/test_passwd).

Formats:
  text          the table above (default)
  json          the same report as JSON (--json is short for it)
  openmetrics   OpenMetrics text for direct scraping (ends with "# EOF")
  prometheus    Prometheus text format 0.0.4, for node_exporter's textfile collector:
                  mysql_prm status --format prometheus > DIR/mysql_prm.prom.$$ &&
                  mv DIR/mysql_prm.prom.$$ DIR/mysql_prm.prom
                The metrics are listed in the README (mysql_prm_*).

Options:
  --format F             Output format (above).
  --json                 Same as --format json.
  -r, --resource ID      The mysql_prm primitive (default: the first one in the CIB).
  --credentials-file P   Use this file instead of the resource's credentials_file.
  --address NODE=ADDR    Connect to NODE's MySQL at ADDR (repeatable).
  --timeout MS           Per-node connect and query timeout (default 3000).
  -h, --help             This text.

Exit status: 0 when the report was printed (unreachable nodes included), 1 when Pacemaker
could not be read or no mysql_prm resource exists, 2 on a usage error.
`;

/**
 * The `--address NODE=ADDRESS` options of status and switchover: node → address, or the usage
 * error to print.
 *
 * @example
 * ```ts
 * parseAddresses(["prm1=10.0.0.11"]); // { prm1: "10.0.0.11" }
 * ```
 */
export function parseAddresses(list: string[] | undefined): Record<string, string> | string {
  const addresses: Record<string, string> = {};
  for (const a of list ?? []) {
    const eq = a.indexOf("=");
    if (eq <= 0 || eq === a.length - 1) return `--address takes NODE=ADDRESS, not "${a}"`;
    addresses[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return addresses;
}

/** Entry point of `mysql_prm status ARGS...`; returns the exit status. */
export async function statusMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseFlags(args, {
      options: {
        json: { type: "boolean" },
        format: { type: "string" },
        resource: { type: "string", short: "r" },
        "credentials-file": { type: "string" },
        address: { type: "string", multiple: true },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
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
  const format = values.format ?? (values.json ? "json" : "text");
  if (!(STATUS_FORMATS as readonly string[]).includes(format)) {
    console.error(
      `--format takes ${STATUS_FORMATS.join(", ")}, not "${format}" (see mysql_prm status --help)`,
    );
    return 2;
  }
  if (values.json && format !== "json") {
    console.error(`--json and --format ${format} contradict each other`);
    return 2;
  }
  const addresses = parseAddresses(values.address);
  if (typeof addresses === "string") {
    console.error(addresses);
    return 2;
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
    const out = format === "json"
      ? JSON.stringify(report, null, 2)
      : format === "text"
      ? renderText(report)
      : renderMetrics(report, { format: format as "openmetrics" | "prometheus" });
    // Metrics end with their own newline; print them byte for byte.
    if (format === "openmetrics" || format === "prometheus") {
      Deno.stdout.writeSync(new TextEncoder().encode(out));
    } else console.log(out);
    return 0;
  } catch (err) {
    console.error(`mysql_prm status: ${(err as Error).message}`);
    return 1;
  }
}
