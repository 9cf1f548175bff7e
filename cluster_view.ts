/**
 * The cluster as Pacemaker describes it, for the operator's commands (`mysql_prm status`,
 * `switchover`, the metrics) and the agent's maintenance check: parsed from
 * `crm_mon -1 -A -r --output-as=xml` and `cibadmin -Q` (pure). Attribute names come from
 * attrs.ts, parameter defaults from params.ts.
 *
 * @module
 */

import {
  attributeNames,
  decodeNotPromotable,
  decodeReplInfo,
  type NotPromotable,
  type ReplInfo,
} from "./attrs.ts";
import { PARAM_DEFAULTS } from "./params.ts";
import { findAll, nvpairs, parseXml, type XmlNode } from "./pcmk_xml.ts";

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

/** The resource's role on a node, as Pacemaker reports it. */
export type ClusterRole = "promoted" | "unpromoted" | "stopped" | "failed";

/** One node as the cluster sees it. */
export interface ClusterNode {
  /** Node name (uname). */
  name: string;
  /** Online member. */
  online: boolean;
  /** Standby. */
  standby: boolean;
  /** In maintenance (node attribute maintenance=true). */
  maintenance: boolean;
  /** Unclean: needs fencing. */
  unclean: boolean;
  /** The resource's role there. */
  role: ClusterRole;
  /** The promotion score attribute (master-RSC), undefined when unset. */
  score?: number;
  /** The reader attribute, undefined when unset. */
  readable?: string;
  /** Why the agent says the node is not a promotion candidate (`prm-<rsc>-not-promotable`). */
  notPromotable?: NotPromotable;
  /** The raw not-promotable value when it is not a known reason (an older or newer agent). */
  notPromotableRaw?: string;
  /** Every node attribute crm_mon -A shows. */
  attributes: Record<string, string>;
  /** Failures of the resource on this node, newest first. */
  failures: NodeFailure[];
}

/** Everything the operator's commands need from Pacemaker. */
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
  /** The clone's meta attributes (notify, promoted-max, ...). */
  cloneMeta: Record<string, string>;
  /** A promotable clone (promotable=true, or the old master element). */
  promotable: boolean;
  /** False when Pacemaker does not manage the resource now (is-managed=false, maintenance). */
  managed: boolean;
  /** Its instance parameters. */
  params: Record<string, string>;
  /** `<rsc>_REPL_INFO` as stored ("" when unset). */
  replInfoRaw: string;
  /** Parsed REPL_INFO, undefined when unset or malformed. */
  replInfo?: ReplInfo;
  /** Location constraints left by crm_resource --move/--ban on the clone (cli-prefer-, cli-ban-). */
  moveConstraints: string[];
  /** Resources colocated with the promoted role (writer VIPs), by id. */
  followersOfPromoted: string[];
  /** Where each resource of {@link followersOfPromoted} runs (id → nodes). */
  placements: Record<string, string[]>;
  /** The nodes, in crm_mon order. */
  nodes: ClusterNode[];
}

function normalizeRole(role: string, failed: boolean): ClusterRole {
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

function parseScore(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (/^-?\d{1,9}$/.test(raw)) return Number(raw);
  if (/^[-+]?INFINITY$/i.test(raw)) return raw.startsWith("-") ? -1_000_000 : 1_000_000;
  return undefined;
}

function isTrue(v: string | undefined): boolean {
  return /^(true|yes|on|1|y)$/i.test(v ?? "");
}

function isFalse(v: string | undefined): boolean {
  return /^(false|no|off|0|n)$/i.test(v ?? "");
}

/** Why Pacemaker leaves the resource alone now, if it does. */
export type Unmanaged =
  | "maintenance-mode"
  | "node-maintenance"
  | "resource-maintenance"
  | "unmanaged";

/** Options of {@link unmanagedReason}. */
export interface UnmanagedOptions {
  /** The primitive id. */
  resource: string;
  /** This node's name (a node in maintenance leaves its resources alone). */
  node?: string;
}

/**
 * Why Pacemaker does not manage `resource` (on `node`) now, from the CIB, or undefined when it
 * does: the cluster property maintenance-mode, the node attribute maintenance, the `maintenance`
 * or `is-managed` meta attribute of the primitive, its clone, or the resource defaults. While one
 * holds, nothing must be restarted or repointed behind the operator's back.
 *
 * @example
 * ```ts
 * const cib = parseXml(`<cib><configuration><crm_config><cluster_property_set id="o">
 *   <nvpair id="m" name="maintenance-mode" value="true"/></cluster_property_set></crm_config>
 *   </configuration></cib>`);
 * unmanagedReason(cib, { resource: "p_mysql" }); // "maintenance-mode"
 * ```
 */
export function unmanagedReason(cib: XmlNode, options: UnmanagedOptions): Unmanaged | undefined {
  const config = findAll(cib, "configuration")[0];
  if (config === undefined) return undefined;
  const props: Record<string, string> = {};
  for (const set of findAll(config, "cluster_property_set")) Object.assign(props, nvpairs(set));
  if (isTrue(props["maintenance-mode"])) return "maintenance-mode";
  if (options.node !== undefined) {
    const node = findAll(config, "node").find((n) => n.attrs.uname === options.node);
    const attrs: Record<string, string> = {};
    for (const ia of node?.children.filter((c) => c.name === "instance_attributes") ?? []) {
      Object.assign(attrs, nvpairs(ia));
    }
    if (isTrue(attrs.maintenance)) return "node-maintenance";
  }
  // The nearest definition wins: primitive, then its clone, then the resource defaults.
  const meta: Record<string, string>[] = [];
  const walk = (e: XmlNode, chain: XmlNode[]): boolean => {
    for (const c of e.children) {
      if (c.name === "primitive" && c.attrs.id === options.resource) {
        for (const el of [c, ...chain.toReversed()]) meta.push(metaOf(el));
        return true;
      }
      if (walk(c, ["clone", "master", "group"].includes(c.name) ? [...chain, c] : chain)) {
        return true;
      }
    }
    return false;
  };
  for (const r of findAll(config, "resources")) walk(r, []);
  for (const d of findAll(config, "rsc_defaults")) meta.push(metaOf(d));
  for (const m of meta) {
    if (m.maintenance !== undefined) {
      if (isTrue(m.maintenance)) return "resource-maintenance";
      break;
    }
  }
  for (const m of meta) {
    if (m["is-managed"] !== undefined) return isFalse(m["is-managed"]) ? "unmanaged" : undefined;
  }
  return undefined;
}

function metaOf(el: XmlNode): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of el.children.filter((c) => c.name === "meta_attributes")) {
    Object.assign(out, nvpairs(m));
  }
  return out;
}

/**
 * Builds the cluster's view from `crm_mon -1 -A -r --output-as=xml` and `cibadmin -Q` output.
 * Throws when the CIB holds no mysql_prm resource (or not the one asked for).
 *
 * @example
 * ```ts
 * const view = parseClusterView(crmMonXml, cibXml);
 * const master = view.nodes.find((n) => n.role === "promoted")?.name;
 * ```
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
    Object.assign(params, nvpairs(ia));
  }
  const cloneEl = chosen.clone === undefined
    ? undefined
    : findAll(cib, "clone").concat(findAll(cib, "master")).find((c) => c.attrs.id === chosen.clone);
  const cloneMeta = cloneEl === undefined ? {} : metaOf(cloneEl);
  const props: Record<string, string> = {};
  for (const set of findAll(cib, "crm_config").flatMap((c) => c.children)) {
    Object.assign(props, nvpairs(set));
  }
  const names = attributeNames(rsc, params.reader_attribute || PARAM_DEFAULTS.readerAttribute);
  const replInfoRaw = props[names.replInfo] ?? "";
  const fenceDevices = findAll(cib, "primitive").filter((p) => p.attrs.class === "stonith")
    .map((p) => p.attrs.id);
  const target = chosen.clone ?? rsc;
  const moveConstraints = findAll(cib, "rsc_location").filter((l) =>
    l.attrs.rsc === target && /^cli-(prefer|ban)-/.test(l.attrs.id ?? "")
  ).map((l) => l.attrs.id);
  const followersOfPromoted = findAll(cib, "rsc_colocation").filter((c) =>
    c.attrs["with-rsc"] === target && /^(Promoted|Master)$/.test(c.attrs["with-rsc-role"] ?? "")
  ).map((c) => c.attrs.rsc);

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
  // Where each instance of the resource runs, and in which role; where the followers run.
  const roles = new Map<string, ClusterRole>();
  const placements: Record<string, string[]> = {};
  let managed = true;
  for (const r of findAll(mon, "resource")) {
    const id = r.attrs.id.replace(/:\d+$/, "");
    const on = r.children.filter((c) => c.name === "node").map((c) => c.attrs.name);
    if (followersOfPromoted.includes(id)) placements[id] = [...(placements[id] ?? []), ...on];
    if (id !== rsc) continue;
    if (r.attrs.managed === "false" || r.attrs.maintenance === "true") managed = false;
    const role = normalizeRole(r.attrs.role ?? "", r.attrs.failed === "true");
    for (const n of on) {
      const prev = roles.get(n);
      if (prev === undefined || prev === "stopped" || role === "failed") roles.set(n, role);
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
    const online = n.attrs.online === "true";
    const rawReason = attrs[names.notPromotable];
    return {
      name: n.attrs.name,
      online,
      standby: n.attrs.standby === "true",
      maintenance: n.attrs.maintenance === "true",
      unclean: n.attrs.unclean === "true",
      role: online ? roles.get(n.attrs.name) ?? "stopped" : "stopped",
      score: parseScore(attrs[names.promotion] ?? attrs[`promotion-${rsc}`]),
      readable: attrs[names.reader],
      notPromotable: decodeNotPromotable(rawReason),
      notPromotableRaw: rawReason !== undefined && decodeNotPromotable(rawReason) === undefined
        ? rawReason.slice(0, 64)
        : undefined,
      attributes: attrs,
      failures: (failures.get(n.attrs.name) ?? []).sort((a, b) => b.when.localeCompare(a.when)),
    };
  });
  const maintenance = options["maintenance-mode"] === "true";
  return {
    dc: dc?.attrs.present === "true" ? dc.attrs.name : undefined,
    quorum: dc?.attrs.with_quorum === "true",
    stonithEnabled: options["stonith-enabled"] === "true",
    fenceDevices,
    noQuorumPolicy: options["no-quorum-policy"] ?? "",
    maintenance,
    resource: rsc,
    clone: chosen.clone,
    cloneMeta,
    promotable: cloneEl !== undefined &&
      (cloneEl.name === "master" || isTrue(cloneMeta.promotable)),
    managed: managed && !maintenance,
    params,
    replInfoRaw,
    replInfo: replInfoRaw === "" ? undefined : decodeReplInfo(replInfoRaw),
    moveConstraints,
    followersOfPromoted,
    placements,
    nodes,
  };
}
