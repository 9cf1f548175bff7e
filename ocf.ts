/**
 * The OCF vocabulary: exit codes, the context Pacemaker passes in `OCF_*` variables, exit reasons
 * and logging. Pure except for {@link Logger}, which writes to stderr (pacemaker-execd logs it).
 *
 * @module
 */

import type { Problem } from "./params.ts";
import { redactSecrets } from "./redact.ts";
import { quotedForms } from "./sql.ts";

/** OCF 1.1 exit codes. */
export const OCF = {
  SUCCESS: 0,
  ERR_GENERIC: 1,
  ERR_ARGS: 2,
  ERR_UNIMPLEMENTED: 3,
  ERR_PERM: 4,
  ERR_INSTALLED: 5,
  ERR_CONFIGURED: 6,
  NOT_RUNNING: 7,
  RUNNING_PROMOTED: 8,
  FAILED_PROMOTED: 9,
  DEGRADED: 190,
  DEGRADED_PROMOTED: 191,
} as const;

/** One of the {@link OCF} exit codes. */
export type OcfCode = (typeof OCF)[keyof typeof OCF];

/** The role Pacemaker expects of an instance (`OCF_RESKEY_CRM_meta_role`). */
export type Role = "Promoted" | "Unpromoted";

/** One node of a notification list: the node name and the clone instance, paired by index. */
export interface NotifyEntry {
  /** Node name (uname). */
  uname: string;
  /** Resource instance (e.g. `p_mysql:1`), or "" when Pacemaker gave fewer instances than nodes. */
  resource: string;
}

/** The notification a `notify` action carries. */
export interface NotifyInfo {
  /** "pre" or "post". */
  type: string;
  /** The operation notified about: start, stop, promote, demote. */
  operation: string;
  /** Instances being started. */
  start: NotifyEntry[];
  /** Instances being stopped. */
  stop: NotifyEntry[];
  /** Instances being promoted. */
  promote: NotifyEntry[];
  /** Instances being demoted. */
  demote: NotifyEntry[];
  /** Active instances. */
  active: NotifyEntry[];
  /** Inactive instances. */
  inactive: NotifyEntry[];
  /** Promoted instances (promoted_* names, falling back to master_*). */
  promoted: NotifyEntry[];
  /** Unpromoted instances (unpromoted_* names, falling back to slave_*). */
  unpromoted: NotifyEntry[];
  /** All instances. */
  all: NotifyEntry[];
}

/** Everything the agent learns from its environment, read once. */
export interface OcfContext {
  /** The action (start, stop, monitor, ...). */
  action: string;
  /** Resource name without any `:N` clone suffix (`OCF_RESOURCE_INSTANCE`). */
  resource: string;
  /** Clone instance number, or undefined when not cloned. */
  cloneNumber?: number;
  /** The clone's clone-max (`OCF_RESKEY_CRM_meta_clone_max`), or undefined when not cloned. */
  cloneMax?: number;
  /** True when the resource is a promotable clone (promoted_max/master_max/promotable meta). */
  promotable: boolean;
  /** The clone's meta attributes the agent depends on (undefined where Pacemaker set none). */
  cloneMeta: CloneMeta;
  /** The role Pacemaker expects on a recurring monitor, if any. */
  role?: Role;
  /** Operation interval in ms (0 for probes and non-recurring operations). */
  intervalMs: number;
  /** Operation timeout in ms (default 20 000 when Pacemaker does not say). */
  timeoutMs: number;
  /** OCF_CHECK_LEVEL (0 when unset). */
  checkLevel: number;
  /** The local node name as Pacemaker knows it (`OCF_RESKEY_CRM_meta_on_node`), if given. */
  nodeName?: string;
  /** The notification, for the notify action. */
  notify?: NotifyInfo;
  /** Raw resource parameters: `OCF_RESKEY_<name>` without the meta ones. */
  params: Record<string, string>;
  /** True when PCMK_debug or HA_debug asks for debug logging. */
  debug: boolean;
  /** Directory for transient agent state (HA_RSCTMP, default /run/resource-agents). */
  stateDir: string;
}

/** A clone's meta attributes, as Pacemaker passes them (`OCF_RESKEY_CRM_meta_*`). */
export interface CloneMeta {
  /** notify: the agent needs the notifications (election, repointing). */
  notify?: boolean;
  /** promoted-max (the deprecated master-max as a fallback). */
  promotedMax?: number;
  /** promoted-node-max (master-node-max as a fallback). */
  promotedNodeMax?: number;
  /** clone-node-max. */
  cloneNodeMax?: number;
}

/**
 * What a promotable clone of this agent must be, as PAF checks it: notify=true (the election
 * and the repointing of replicas happen in notifications), promoted-max=1 (one writable master),
 * one instance per node. Empty for a plain resource or a clone that is fine.
 *
 * @example
 * ```ts
 * const ctx = readContext({ OCF_RESKEY_CRM_meta_promotable: "true" });
 * clonePromotableProblems(ctx)[0].message; // "The promotable clone needs notify=true ..."
 * ```
 */
export function clonePromotableProblems(
  ctx: Pick<OcfContext, "promotable" | "cloneMeta">,
): Problem[] {
  if (!ctx.promotable) return [];
  const m = ctx.cloneMeta;
  const problems: Problem[] = [];
  if (m.notify !== true) {
    problems.push({
      kind: "configured",
      message:
        "The promotable clone needs notify=true (the election and the repointing of replicas run in notifications): set the clone's meta attribute notify=true",
    });
  }
  if (m.promotedMax !== undefined && m.promotedMax > 1) {
    problems.push({
      kind: "configured",
      message:
        `The promotable clone has promoted-max=${m.promotedMax}: MySQL replication has one writable master, set promoted-max=1`,
    });
  }
  if (m.promotedNodeMax !== undefined && m.promotedNodeMax > 1) {
    problems.push({
      kind: "configured",
      message: `The promotable clone has promoted-node-max=${m.promotedNodeMax}: set it to 1`,
    });
  }
  if (m.cloneNodeMax !== undefined && m.cloneNodeMax > 1) {
    problems.push({
      kind: "configured",
      message:
        `The clone has clone-node-max=${m.cloneNodeMax}: one MySQL server per node, set it to 1`,
    });
  }
  return problems;
}

function optionalInt(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

function optionalBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (/^(1|yes|true|on|y)$/i.test(value.trim())) return true;
  if (/^(0|no|false|off|n)$/i.test(value.trim())) return false;
  return undefined;
}

/** Parses a role name, accepting the OCF 1.1 words and the older Master/Slave ones. */
export function parseRole(value: string | undefined): Role | undefined {
  switch ((value ?? "").toLowerCase()) {
    case "promoted":
    case "master":
      return "Promoted";
    case "unpromoted":
    case "slave":
      return "Unpromoted";
    default:
      return undefined;
  }
}

function parseMs(value: string | undefined, fallback: number): number {
  if (value === undefined || !/^\d+$/.test(value.trim())) return fallback;
  return Number(value.trim());
}

function isTrue(value: string | undefined): boolean {
  return /^(1|yes|true|on|y)$/i.test((value ?? "").trim());
}

function words(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((w) => w !== "");
}

/**
 * Reads one notify list, pairing `<name>_uname` with `<name>_resource` by index. The first name
 * that is set wins, so `promoted` is read before its old alias `master`.
 */
function notifyList(env: Record<string, string | undefined>, names: string[]): NotifyEntry[] {
  const prefix = "OCF_RESKEY_CRM_meta_notify_";
  for (const name of names) {
    const unames = env[`${prefix}${name}_uname`];
    const resources = env[`${prefix}${name}_resource`];
    if (unames === undefined && resources === undefined) continue;
    const u = words(unames);
    const r = words(resources);
    return u.map((uname, i) => ({ uname, resource: r[i] ?? "" }));
  }
  return [];
}

/** Options for {@link readContext}. */
export interface ReadContextOptions {
  /** The action, when it comes from argv rather than `__OCF_ACTION`. */
  action?: string;
}

/**
 * Reads the OCF environment into an {@link OcfContext}.
 *
 * @example
 * ```ts
 * const ctx = readContext({ OCF_RESOURCE_INSTANCE: "p_mysql:2" }, { action: "monitor" });
 * console.assert(ctx.resource === "p_mysql");
 * ```
 */
export function readContext(
  env: Record<string, string | undefined>,
  options: ReadContextOptions = {},
): OcfContext {
  const instance = env.OCF_RESOURCE_INSTANCE ?? "";
  const [resource, suffix] = instance.split(":", 2);
  const cloneRaw = env.OCF_RESKEY_CRM_meta_clone ?? suffix;
  const cloneNumber = cloneRaw !== undefined && /^\d+$/.test(cloneRaw)
    ? Number(cloneRaw)
    : undefined;
  const cloneMaxRaw = env.OCF_RESKEY_CRM_meta_clone_max;
  const cloneMax = cloneMaxRaw !== undefined && /^\d{1,6}$/.test(cloneMaxRaw)
    ? Number(cloneMaxRaw)
    : undefined;
  const promotable = isTrue(env.OCF_RESKEY_CRM_meta_promotable) ||
    env.OCF_RESKEY_CRM_meta_promoted_max !== undefined ||
    env.OCF_RESKEY_CRM_meta_master_max !== undefined;
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("OCF_RESKEY_") || value === undefined) continue;
    const name = key.slice("OCF_RESKEY_".length);
    if (name.startsWith("CRM_meta_") || name === "crm_feature_set") continue;
    params[name] = value;
  }
  let notify: NotifyInfo | undefined;
  const notifyType = env.OCF_RESKEY_CRM_meta_notify_type;
  if (notifyType !== undefined) {
    notify = {
      type: notifyType,
      operation: env.OCF_RESKEY_CRM_meta_notify_operation ?? "",
      start: notifyList(env, ["start"]),
      stop: notifyList(env, ["stop"]),
      promote: notifyList(env, ["promote"]),
      demote: notifyList(env, ["demote"]),
      active: notifyList(env, ["active"]),
      inactive: notifyList(env, ["inactive"]),
      promoted: notifyList(env, ["promoted", "master"]),
      unpromoted: notifyList(env, ["unpromoted", "slave"]),
      all: notifyList(env, ["all"]),
    };
  }
  const meta = (name: string, old?: string) =>
    env[`OCF_RESKEY_CRM_meta_${name}`] ?? (old ? env[`OCF_RESKEY_CRM_meta_${old}`] : undefined);
  return {
    action: options.action ?? env.__OCF_ACTION ?? "",
    resource: resource || "mysql_prm",
    cloneNumber,
    cloneMax,
    promotable,
    cloneMeta: {
      notify: optionalBool(meta("notify")),
      promotedMax: optionalInt(meta("promoted_max", "master_max")),
      promotedNodeMax: optionalInt(meta("promoted_node_max", "master_node_max")),
      cloneNodeMax: optionalInt(meta("clone_node_max")),
    },
    role: parseRole(env.OCF_RESKEY_CRM_meta_role),
    intervalMs: parseMs(env.OCF_RESKEY_CRM_meta_interval, 0),
    timeoutMs: parseMs(env.OCF_RESKEY_CRM_meta_timeout, 20_000),
    checkLevel: parseMs(env.OCF_CHECK_LEVEL, 0),
    nodeName: env.OCF_RESKEY_CRM_meta_on_node || undefined,
    notify,
    params,
    debug: isTrue(env.PCMK_debug) || isTrue(env.HA_debug) ||
      /(^|,)\s*mysql_prm\s*(,|$)/.test(env.PCMK_debug ?? ""),
    stateDir: env.HA_RSCTMP || "/run/resource-agents",
  };
}

/** Where log lines go; replaceable in tests. */
export type LogSink = (line: string) => void;

function stderrSink(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/**
 * Stderr logging in Pacemaker's convention (pacemaker-execd logs an agent's stderr), with a
 * redaction guard on every line and exit reason written: a registered secret, in any of the forms
 * an SQL literal gives it, and every run of four or more of its characters (the piece of it a
 * server error quotes back) become `***` (redact.ts).
 */
export class Logger {
  #secrets: string[] = [];
  #sink: LogSink;
  #prefix: string;
  /** Whether debug lines are written. */
  debugEnabled: boolean;

  /** Creates a logger whose lines start with `prefix` (e.g. the resource and action). */
  constructor(prefix: string, options: { debug?: boolean; sink?: LogSink } = {}) {
    this.#prefix = prefix;
    this.debugEnabled = options.debug ?? false;
    this.#sink = options.sink ?? stderrSink;
  }

  /** Registers a value that must never appear in a log line (passwords), nor any piece of it. */
  secret(value: string | undefined): void {
    if (value === undefined || value.length === 0) return;
    for (const form of quotedForms(value)) {
      if (!this.#secrets.includes(form)) this.#secrets.push(form);
    }
  }

  /** Returns `text` with the registered secrets and their pieces replaced by `***`. */
  redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }

  #write(level: string, message: string): void {
    this.#sink(this.redact(`${level}: ${this.#prefix}: ${message}`));
  }

  /** A decision or state change, with the figures behind it. */
  info(message: string): void {
    this.#write("INFO", message);
  }

  /** Something unusual the agent copes with. */
  warn(message: string): void {
    this.#write("WARNING", message);
  }

  /** A failure. */
  error(message: string): void {
    this.#write("ERROR", message);
  }

  /** Detail for PCMK_debug. */
  debug(message: string): void {
    if (this.debugEnabled) this.#write("DEBUG", message);
  }

  /**
   * Writes the `ocf-exit-reason:` line Pacemaker shows in crm_mon, and logs it as an error.
   */
  exitReason(message: string): void {
    this.#sink(this.redact(`ocf-exit-reason:${message.replaceAll("\n", " ")}`));
  }
}

/** Describes an exit code for log lines. */
export function codeName(code: number): string {
  for (const [name, value] of Object.entries(OCF)) if (value === code) return `${name}(${code})`;
  return String(code);
}
