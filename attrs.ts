/**
 * Every name the agent, `mysql_prm status` and `mysql_prm config` use in the cluster, with the
 * codec of its value, defined once (pure). cib.ts reads and writes them; nothing else builds a name.
 *
 * | name                                   | kind                      | value                         |
 * | -------------------------------------- | ------------------------- | ----------------------------- |
 * | `<rsc>_REPL_INFO` (set mysql_replication) | cluster property       | published master `host\|file\|pos` |
 * | `master-<rsc>`                         | promotion score           | {@link SCORE}                 |
 * | `readable` (`reader_attribute`)        | node attribute, reboot    | `1` / `0`                     |
 * | `prm-<rsc>-pos`                        | private (attrd only)      | received position or `idle`   |
 * | `prm-<rsc>-final`                      | private                   | a demoted master's last position |
 * | `prm-<rsc>-gtid`, `prm-<rsc>-gtid-fork` | private                  | GTID position, fork point     |
 * | `prm-<rsc>-refused`                    | private                   | `stepped-aside` or an OCF code |
 * | `prm-<rsc>-resume`                     | node attribute (operator) | `published` or `FILE:POS`     |
 * | `prm-<rsc>-not-promotable`             | node attribute, reboot    | a {@link NotPromotable} reason |
 * | `prm-<rsc>-promoted`                   | private                   | when writes opened, how long it took |
 *
 * Private attributes never reach the CIB (`attrd_updater -p`): they carry what only the running
 * cluster needs during one transition.
 *
 * @module
 */

import {
  type BinlogPosition,
  type Coordinates,
  decodeCoordinates,
  encodeCoordinates,
  parsePosition,
} from "./position.ts";
import { PARAM_DEFAULTS } from "./params.ts";

/** The reader attribute's default name (PRM's and ocf:heartbeat:mysql's): the parameter's. */
export const DEFAULT_READER_ATTRIBUTE: string = PARAM_DEFAULTS.readerAttribute;

/** The cluster property set that holds `<rsc>_REPL_INFO` (PRM's name, kept for migrations). */
export const REPL_INFO_SET = "mysql_replication";

/** Promotion scores. The master keeps the top one so the role does not ping-pong. */
export const SCORE = {
  /** The promoted node. */
  PROMOTED: 1000,
  /** Given to a peer that holds more data than the promotee, so that Pacemaker re-plans on it. */
  BETTER_PEER: 150,
  /**
   * The last published master back read-only (its mysqld restarted in place after a crash, or the
   * cluster back from a whole outage): it holds at least what any of its replicas received, so it
   * goes before them; never before a peer the election found better.
   */
  LAST_MASTER: 120,
  /** A healthy replica of the current master. */
  REPLICA: 100,
  /**
   * A healthy replica repaired by hand (resume override): its older binary logs still hold the
   * transactions a person removed, and a replica resyncing against it as a new master cannot
   * find a run that crosses them. Between equally advanced candidates, the other one wins.
   */
  REPAIRED_REPLICA: 90,
  /** A healthy server that replicates from nobody (first start of a cluster). */
  IDLE: 10,
  /** What a promotee that stepped aside keeps: still a candidate, behind every healthy peer. */
  STEPPED_ASIDE: 1,
} as const;

/** The names one resource uses. */
export interface AttributeNames {
  /** The resource (primitive) id. */
  resource: string;
  /** Cluster property with the published master, in {@link REPL_INFO_SET}. */
  replInfo: string;
  /** The promotion score's node attribute (what `crm_attribute --promotion` writes). */
  promotion: string;
  /** Node attribute (lifetime reboot): 1 when the node serves reads. */
  reader: string;
  /** Private: what a replica received, published in pre-promote for the election. */
  position: string;
  /** Private: the position where a demoted master stopped writing (switchover). */
  final: string;
  /** Private: a replica's GTID position for the election. */
  gtid: string;
  /** Private: the new master's GTID fork point. */
  gtidFork: string;
  /** Private: set by a promotee whose promote failed, so that peers stop waiting for it. */
  refused: string;
  /** Node attribute set by an operator: where a kept-out node resumes. */
  resume: string;
  /** Node attribute (lifetime reboot): why this node is not a promotion candidate now. */
  notPromotable: string;
  /** Private: this node's last promotion ({@link PromotionRecord}), for the metrics. */
  promoted: string;
}

/**
 * The names of resource `resource` (no clone suffix).
 *
 * @example
 * ```ts
 * const names = attributeNames("p_mysql");
 * console.assert(names.replInfo === "p_mysql_REPL_INFO");
 * console.assert(names.position === "prm-p_mysql-pos");
 * ```
 */
export function attributeNames(
  resource: string,
  readerAttribute: string = DEFAULT_READER_ATTRIBUTE,
): AttributeNames {
  const own = (what: string) => `prm-${resource}-${what}`;
  return {
    resource,
    replInfo: `${resource}_REPL_INFO`,
    promotion: `master-${resource}`,
    reader: readerAttribute,
    position: own("pos"),
    final: own("final"),
    gtid: own("gtid"),
    gtidFork: own("gtid-fork"),
    refused: own("refused"),
    resume: own("resume"),
    notPromotable: own("not-promotable"),
    promoted: own("promoted"),
  };
}

/** The reader attribute's values. */
export const READABLE = { yes: "1", no: "0" } as const;

/** Value a replica publishes in pre-promote when it replicates from nobody. */
export const IDLE_MARK = "idle";

/** What a replica published for the election: a received position of `masterHost`, or idle. */
export type PublishedPosition =
  | { idle: true }
  | { idle: false; masterHost: string; position: BinlogPosition };

/** Encodes a {@link PublishedPosition} (the received position as `masterHost|file|pos`). */
export function encodePublishedPosition(p: PublishedPosition): string {
  return p.idle ? IDLE_MARK : encodeCoordinates({ host: p.masterHost, ...p.position });
}

/** Decodes a published position (untrusted); undefined when malformed. */
export function decodePublishedPosition(value: string): PublishedPosition | undefined {
  if (value.trim() === IDLE_MARK) return { idle: true };
  const c = decodeCoordinates(value);
  return c === undefined
    ? undefined
    : { idle: false, masterHost: c.host, position: { file: c.file, pos: c.pos } };
}

/** The published master (`<rsc>_REPL_INFO`): the master's node name and where replicas start. */
export type ReplInfo = Coordinates;

/** Encodes `<rsc>_REPL_INFO`. */
export function encodeReplInfo(info: ReplInfo): string {
  return encodeCoordinates(info);
}

/** Decodes `<rsc>_REPL_INFO` (untrusted); undefined when malformed. */
export function decodeReplInfo(value: string): ReplInfo | undefined {
  return decodeCoordinates(value);
}

/** Why a promote failed, as its peers read it. */
export type RefusedMark = { steppedAside: true } | { steppedAside: false; code: number };

const STEPPED_ASIDE_MARK = "stepped-aside";

/** Encodes a {@link RefusedMark}. */
export function encodeRefused(mark: RefusedMark): string {
  return mark.steppedAside ? STEPPED_ASIDE_MARK : String(mark.code);
}

/** Decodes a {@link RefusedMark} (untrusted); undefined when malformed. */
export function decodeRefused(value: string): RefusedMark | undefined {
  const v = value.trim();
  if (v === STEPPED_ASIDE_MARK) return { steppedAside: true };
  return /^\d{1,3}$/.test(v) ? { steppedAside: false, code: Number(v) } : undefined;
}

/** The operator's resume override: the published coordinates, or a position they chose. */
export type ResumeOverride = { published: true } | { published: false; position: BinlogPosition };

/**
 * Decodes the operator's override (`prm-<rsc>-resume`): `published` or `FILE:POS` in the new
 * master's binary log. Undefined when unset or malformed.
 */
export function decodeResumeOverride(value: string | undefined): ResumeOverride | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "published") return { published: true };
  const position = parsePosition(v);
  return position === undefined ? undefined : { published: false, position };
}

/**
 * Why a running node is not a promotion candidate, as a short machine-readable word (shown by
 * `crm_mon -A` as the node attribute `prm-<rsc>-not-promotable`, and by `mysql_prm status`):
 *
 * - `sql-broken`, `io-broken`, `io-stopped`: a replication thread stopped or failed;
 * - `lagging`: past `max_slave_lag`;
 * - `stale-master`: it still replicates from a master other than the published one (it missed
 *   a switch and could not follow yet): its coordinates are not comparable with its peers';
 * - `errant-transactions`: kept out, it holds transactions the master never had (salvage file);
 * - `resync-refused`: kept out, its resume point in the master's binary log was not found
 *   once (or its relay log could not be applied);
 * - `kept-out`: kept out for a cause this agent did not record (a keep-out written by an older
 *   agent);
 * - `disk-full`: its datadir's filesystem is nearly full;
 * - `cold-start-wait`: after a whole-cluster outage, waiting for a node that may hold more;
 * - `unresponsive`: its server answers nothing.
 */
export const NOT_PROMOTABLE = [
  "sql-broken",
  "io-broken",
  "io-stopped",
  "lagging",
  "stale-master",
  "errant-transactions",
  "resync-refused",
  "kept-out",
  "disk-full",
  "cold-start-wait",
  "unresponsive",
] as const;

/** One of {@link NOT_PROMOTABLE}. */
export type NotPromotable = typeof NOT_PROMOTABLE[number];

/** Decodes a not-promotable reason (untrusted); undefined when it is not one. */
export function decodeNotPromotable(value: string | undefined): NotPromotable | undefined {
  const v = value?.trim();
  return (NOT_PROMOTABLE as readonly string[]).includes(v ?? "") ? v as NotPromotable : undefined;
}

/**
 * A node's last promotion, recorded by promote when it opened writes (a private attribute: no
 * CIB write, so no transition is aborted for it): when, and how long the failover protocol took
 * on that node, from its pre-promote notification (or the promote's start) to writes open.
 */
export interface PromotionRecord {
  /** When writes opened (Date.now() ms). */
  atMs: number;
  /** Pre-promote (or promote start) to writes open, in ms. */
  durationMs: number;
}

/**
 * Encodes a {@link PromotionRecord} as `AT_MS:DURATION_MS`.
 *
 * @example
 * ```ts
 * encodePromotionRecord({ atMs: 1700000000000, durationMs: 412 }); // "1700000000000:412"
 * ```
 */
export function encodePromotionRecord(r: PromotionRecord): string {
  return `${Math.round(r.atMs)}:${Math.max(0, Math.round(r.durationMs))}`;
}

/** Decodes a {@link PromotionRecord} (untrusted); undefined when malformed. */
export function decodePromotionRecord(value: string | undefined): PromotionRecord | undefined {
  const m = /^(\d{1,15}):(\d{1,9})$/.exec(value?.trim() ?? "");
  return m ? { atMs: Number(m[1]), durationMs: Number(m[2]) } : undefined;
}
