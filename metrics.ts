/**
 * `mysql_prm status --format openmetrics|prometheus`: the status report as metrics (pure), for
 * Prometheus' node_exporter textfile collector (Prometheus text format 0.0.4) and for direct
 * scraping (OpenMetrics 1.0). Every metric is a gauge labelled with the resource and, per node,
 * the node; a figure the cluster does not have now (a score that is unset, a NULL
 * Seconds_Behind_Master, a node whose MySQL did not answer) is left out rather than invented.
 *
 * | metric                                         | per  | value                                   |
 * | ---------------------------------------------- | ---- | --------------------------------------- |
 * | `mysql_prm_cluster_quorum`                     | -    | 1 with quorum                           |
 * | `mysql_prm_cluster_fencing_enabled`            | -    | 1 when stonith-enabled                  |
 * | `mysql_prm_cluster_maintenance`                | -    | 1 in maintenance-mode                   |
 * | `mysql_prm_resource_managed`                   | -    | 0 while Pacemaker leaves it alone       |
 * | `mysql_prm_node_online`                        | node | 1 online                                |
 * | `mysql_prm_mysql_up`                           | node | 1 when its MySQL answered               |
 * | `mysql_prm_role{role}`                         | node | 1 for its role, 0 for the others        |
 * | `mysql_prm_read_only`                          | node | read_only                               |
 * | `mysql_prm_replication_io_running`             | node | 1 when the IO thread runs (replicas)    |
 * | `mysql_prm_replication_sql_running`            | node | 1 when the SQL thread runs (replicas)   |
 * | `mysql_prm_replication_lag_seconds{source}`    | node | Seconds_Behind_Master, heartbeat lag    |
 * | `mysql_prm_promotion_score`                    | node | master-<rsc>                            |
 * | `mysql_prm_readable`                           | node | the reader attribute                    |
 * | `mysql_prm_not_promotable{reason}`             | node | 1 with the agent's reason               |
 * | `mysql_prm_failed_operations`                  | node | failed operations Pacemaker recorded    |
 * | `mysql_prm_last_promotion_timestamp_seconds`   | node | when writes last opened there           |
 * | `mysql_prm_last_promotion_duration_seconds`    | node | pre-promote to writes open              |
 * | `mysql_prm_salvage_files`                      | node | salvage files waiting (the local node)  |
 *
 * @module
 */

import type { StatusReport } from "./status.ts";

/** The two text formats. */
export type MetricsFormat = "openmetrics" | "prometheus";

/** Options of {@link renderMetrics}. */
export interface MetricsOptions {
  /** OpenMetrics 1.0 (with `# UNIT` and `# EOF`) or Prometheus text 0.0.4. */
  format: MetricsFormat;
}

/** The Content-Type a scrape endpoint would send with each format. */
export const METRICS_CONTENT_TYPE: Readonly<Record<MetricsFormat, string>> = {
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
};

interface Family {
  name: string;
  help: string;
  unit?: "seconds";
  samples: { labels: Record<string, string>; value: number }[];
}

/** Escapes a label value (backslash, double quote and newline, as both formats require). */
export function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function bool(v: boolean): number {
  return v ? 1 : 0;
}

const ROLES = ["promoted", "unpromoted", "stopped", "failed"] as const;

/**
 * Renders the report as metrics text.
 *
 * @example
 * ```ts
 * const text = renderMetrics(await collectStatus(), { format: "prometheus" });
 * // mysql_prm_role{resource="p_mysql",node="prm1",role="promoted"} 1 ...
 * ```
 */
export function renderMetrics(report: StatusReport, options: MetricsOptions): string {
  const rsc = { resource: report.resource };
  const fam = (name: string, help: string, unit?: "seconds"): Family => ({
    name,
    help,
    unit,
    samples: [],
  });
  const quorum = fam("mysql_prm_cluster_quorum", "1 when this partition has quorum.");
  const fencing = fam("mysql_prm_cluster_fencing_enabled", "1 when stonith-enabled is true.");
  const maint = fam("mysql_prm_cluster_maintenance", "1 while maintenance-mode is true.");
  const managed = fam("mysql_prm_resource_managed", "0 while Pacemaker leaves the resource alone.");
  const online = fam("mysql_prm_node_online", "1 when the node is an online cluster member.");
  const up = fam("mysql_prm_mysql_up", "1 when the node's MySQL answered.");
  const role = fam("mysql_prm_role", "The resource's role on the node (1 for the current one).");
  const ro = fam("mysql_prm_read_only", "The server's read_only.");
  const io = fam("mysql_prm_replication_io_running", "1 when the replica's IO thread runs.");
  const sql = fam("mysql_prm_replication_sql_running", "1 when the replica's SQL thread runs.");
  const lag = fam(
    "mysql_prm_replication_lag_seconds",
    "Replica lag: Seconds_Behind_Master, and the heartbeat lag when the heartbeat is on.",
    "seconds",
  );
  const score = fam("mysql_prm_promotion_score", "The promotion score (master-<rsc>).");
  const readable = fam("mysql_prm_readable", "The reader attribute (1 serves reads).");
  const notProm = fam(
    "mysql_prm_not_promotable",
    "1 with the reason the agent keeps the node from being promoted.",
  );
  const failed = fam("mysql_prm_failed_operations", "Failed operations Pacemaker recorded.");
  const promAt = fam(
    "mysql_prm_last_promotion_timestamp_seconds",
    "When writes last opened on the node (Unix time).",
    "seconds",
  );
  const promTook = fam(
    "mysql_prm_last_promotion_duration_seconds",
    "The node's last promotion: from its pre-promote notification to writes open.",
    "seconds",
  );
  const salvage = fam(
    "mysql_prm_salvage_files",
    "Salvage files waiting for a person on the node that made this report.",
  );
  const c = report.cluster;
  quorum.samples.push({ labels: {}, value: bool(c.quorum) });
  fencing.samples.push({ labels: {}, value: bool(c.stonithEnabled) });
  maint.samples.push({ labels: {}, value: bool(c.maintenance) });
  managed.samples.push({ labels: rsc, value: bool(c.managed) });
  for (const r of report.rows) {
    const l = { ...rsc, node: r.node };
    online.samples.push({ labels: l, value: bool(r.state !== "offline" && r.state !== "unclean") });
    up.samples.push({ labels: l, value: bool(r.readOnly !== undefined) });
    for (const x of ROLES) {
      role.samples.push({ labels: { ...l, role: x }, value: bool(r.role === x) });
    }
    if (r.readOnly !== undefined) ro.samples.push({ labels: l, value: bool(r.readOnly) });
    if (r.masterHost !== "") {
      io.samples.push({ labels: l, value: bool(r.ioRunning === "Yes") });
      sql.samples.push({ labels: l, value: bool(r.sqlRunning === true) });
      if (typeof r.secondsBehindMaster === "number") {
        lag.samples.push({
          labels: { ...l, source: "seconds_behind_master" },
          value: r.secondsBehindMaster,
        });
      }
      if (r.heartbeatLag !== undefined) {
        lag.samples.push({ labels: { ...l, source: "heartbeat" }, value: r.heartbeatLag });
      }
    }
    if (r.score !== undefined) score.samples.push({ labels: l, value: r.score });
    if (r.readable !== undefined && /^-?\d+$/.test(r.readable)) {
      readable.samples.push({ labels: l, value: Number(r.readable) });
    }
    if (r.notPromotable !== undefined) {
      notProm.samples.push({ labels: { ...l, reason: r.notPromotable }, value: 1 });
    }
    failed.samples.push({ labels: l, value: r.failedOperations });
    if (r.lastPromotion !== undefined) {
      promAt.samples.push({ labels: l, value: r.lastPromotion.atMs / 1000 });
      promTook.samples.push({ labels: l, value: r.lastPromotion.durationMs / 1000 });
    }
  }
  if (report.local !== undefined) {
    salvage.samples.push({
      labels: { ...rsc, node: report.local.node },
      value: report.local.salvageFiles,
    });
  }
  const families = [
    quorum,
    fencing,
    maint,
    managed,
    online,
    up,
    role,
    ro,
    io,
    sql,
    lag,
    score,
    readable,
    notProm,
    failed,
    promAt,
    promTook,
    salvage,
  ];
  const out: string[] = [];
  const om = options.format === "openmetrics";
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} gauge`);
    if (om && f.unit !== undefined) out.push(`# UNIT ${f.name} ${f.unit}`);
    for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${numberText(s.value)}`);
  }
  if (om) out.push("# EOF");
  return out.join("\n") + "\n";
}
