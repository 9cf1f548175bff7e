/**
 * The agent's GTID mode and semi-sync steps, called from agent.ts through small hooks: what a
 * replica publishes for the election, the promote-time GTID check, the fork point a new master
 * publishes, and the check that a node may follow a master by GTID (errant transactions keep it
 * out). Pure decisions live in gtid.ts; SQL in sql.ts via mysql.ts.
 *
 * @module
 */

import {
  checkPromoteeGtid,
  decodeGtidFork,
  decodePeerGtid,
  encodeGtidFork,
  encodePeerGtid,
  errantSinceFork,
  formatMariadbGtidPos,
  type GtidFlavour,
  type GtidFork,
  type GtidPromoteCheck,
  heldGtidText,
  isErrantGtid,
  mergeMariadbGtidPos,
  parseMariadbGtidPos,
  type PeerGtid,
} from "./gtid.ts";
import type { MysqlClient } from "./mysql.ts";
import { localLogs, SALVAGE_DIR, tailOf } from "./resync_agent.ts";
import { type ErrantAnalysis, writeSalvage } from "./salvage.ts";
import type { BinlogTransaction } from "./binlog.ts";
import type { ReplicaStatus } from "./sql.ts";
import type { AttributeNames } from "./attrs.ts";
import { type Budget, waitUntil } from "./budget.ts";

/** The logging the helpers need (the agent's Logger fits). */
export interface GtidLog {
  /** Informational line. */
  info(message: string): void;
  /** Warning line. */
  warn(message: string): void;
}

/** The private-attribute access the helpers need (the agent's Cib fits). */
export interface GtidAttributes {
  /** Sets (or deletes, with undefined) this node's private attribute. */
  setPrivate(name: string, value: string | undefined): Promise<boolean>;
  /** Every node's value of a private attribute. */
  privateAll(name: string): Promise<Map<string, string>>;
}

function gtidFlavour(client: MysqlClient): GtidFlavour {
  return client.flavour.kind === "mariadb" ? "mariadb" : "mysql";
}

/** What a replica holds of its master, by GTID, or undefined when not a replica. */
export async function heldGtid(
  client: MysqlClient,
  status: ReplicaStatus | undefined,
): Promise<PeerGtid | undefined> {
  if (status === undefined) return undefined;
  const state = await client.gtidState();
  const applied = client.flavour.kind === "mariadb" ? state.slavePos : state.binlogPos;
  const held = heldGtidText(status.gtidIoPos, applied, gtidFlavour(client));
  if (held === undefined) return undefined;
  return { node: "", masterHost: status.masterHost, gtid: held };
}

/** pre-promote hook: publishes this replica's GTID position (or clears it). */
export async function publishElectionGtid(
  client: MysqlClient,
  attrs: GtidAttributes,
  options: { names: AttributeNames; log: GtidLog },
): Promise<void> {
  const held = await heldGtid(client, await client.replicaStatus());
  const value = held === undefined ? undefined : encodePeerGtid(held.masterHost, held.gtid);
  if (held !== undefined) {
    options.log.info(`GTID position for the election: ${held.gtid} of ${held.masterHost}`);
  }
  await attrs.setPrivate(options.names.gtid, value);
}

/** Options of {@link gtidElection}. */
export interface GtidElectionOptions {
  /** The resource's attribute names. */
  names: AttributeNames;
  /** This node. */
  self: string;
  /** Nodes expected to publish. */
  expected: string[];
  /** How long to wait for the expected nodes. */
  budget: Budget;
}

/**
 * promote hook: the GTID election. Compares what this node holds with the positions the live
 * peers published in pre-promote (waiting for the expected ones until `until`).
 */
export async function gtidElection(
  client: MysqlClient,
  attrs: GtidAttributes,
  options: GtidElectionOptions,
): Promise<GtidPromoteCheck> {
  const held = await heldGtid(client, await client.replicaStatus());
  const mine = held === undefined ? undefined : { ...held, node: options.self };
  let values = new Map<string, string>();
  await waitUntil(async () => {
    values = await attrs.privateAll(options.names.gtid);
    return options.expected.every((n) => values.has(n)) || undefined;
  }, { budget: options.budget });
  const peers: PeerGtid[] = [];
  for (const [node, value] of values) {
    if (node === options.self) continue;
    const p = decodePeerGtid(node, value);
    if (p !== undefined) peers.push(p);
  }
  return checkPromoteeGtid({ self: options.self, mine, peers, flavour: gtidFlavour(client) });
}

/** The fork point of this server as a new master (call before its first write). */
export async function readGtidFork(client: MysqlClient): Promise<GtidFork> {
  const state = await client.gtidState();
  return { server: await client.serverIdentity(), pos: state.binlogPos };
}

/** promote hook: publishes this node's fork point and clears its election value. */
export async function publishGtidFork(
  client: MysqlClient,
  attrs: GtidAttributes,
  options: { names: AttributeNames; log: GtidLog },
): Promise<void> {
  const fork = await readGtidFork(client);
  await attrs.setPrivate(options.names.gtidFork, encodeGtidFork(fork));
  await attrs.setPrivate(options.names.gtid, undefined);
  options.log.info(`GTID fork point published: server ${fork.server} at ${fork.pos || "(empty)"}`);
}

/** Outcome of {@link prepareGtidFollow}. */
export type GtidFollow =
  | { ok: true; detail: string }
  | { ok: false; reason: string; errant: string; salvageFile?: string };

/** Options of {@link prepareGtidFollow}. */
export interface GtidFollowOptions {
  /** The resource's attribute names. */
  names: AttributeNames;
  /** The time the check (and a salvage file) may take. */
  budget: Budget;
  /** The master to follow (node name). */
  master: string;
  /** This node's name (salvage file name). */
  node: string;
  /** Logging. */
  log: GtidLog;
  /** Where salvage files go. Default {@link SALVAGE_DIR}. */
  salvageDir?: string;
}

/** How many of its newest binlog transactions a refused node examines for the salvage file. */
export const SALVAGE_TAIL = 100_000;

/**
 * Splits a node's binlog tail (oldest first) at its first transaction outside the master's
 * history: everything from there on whose GTID is errant goes to the salvage file.
 */
export function gtidErrantAnalysis(
  tail: BinlogTransaction[],
  fork: GtidFork,
  flavour: GtidFlavour,
): ErrantAnalysis {
  const errant = tail.filter((t) => t.gtid !== undefined && isErrantGtid(t.gtid, fork, flavour));
  const first = errant.length ? tail.indexOf(errant[0]) : tail.length;
  const lastCommon = first > 0 ? tail[first - 1] : undefined;
  return {
    errant,
    lastCommon,
    certain: first > 0 || errant.length === 0,
    note: `GTIDs past the fork point ${fork.pos || "(empty)"} not written by the master ` +
      `(server ${fork.server})${
        first === 0 && errant.length ? "; the tail examined starts errant" : ""
      }`,
  };
}

/** Writes the salvage file of a refused node (its errant transactions, decoded); never throws. */
async function salvageGtid(
  client: MysqlClient,
  fork: GtidFork,
  options: GtidFollowOptions,
): Promise<string | undefined> {
  try {
    const logs = await localLogs(client);
    const tail = (await tailOf(logs.binlogFiles, SALVAGE_TAIL)).transactions;
    const analysis = gtidErrantAnalysis(tail, fork, gtidFlavour(client));
    return await writeSalvage(analysis, {
      dir: options.salvageDir ?? SALVAGE_DIR,
      node: options.node,
      resource: options.names.resource,
      master: `${options.master} (GTID fork point ${fork.pos || "empty"}, server ${fork.server})`,
      lookup: `GTID comparison of ${tail.length} newest binlog transactions`,
      budget: options.budget,
    });
  } catch (err) {
    options.log.warn(`Cannot write the salvage file: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Before a node replicates from `master` by GTID (replication stopped): warns when
 * gtid_strict_mode or log_slave_updates is off, refuses when the node's binlog holds transactions
 * the master's history cannot hold (errant), and otherwise (MariaDB) sets gtid_slave_pos to
 * everything the node holds, so that a former master resumes after its own last transaction
 * instead of at a stale replica position.
 */
export async function prepareGtidFollow(
  client: MysqlClient,
  attrs: GtidAttributes,
  options: GtidFollowOptions,
): Promise<GtidFollow> {
  const state = await client.gtidState();
  const flavour = gtidFlavour(client);
  if (!state.strict) {
    options.log.warn(
      flavour === "mariadb"
        ? "gtid_strict_mode is OFF: set it ON in my.cnf so the server itself refuses out-of-order or duplicate GTIDs"
        : "gtid_mode/enforce_gtid_consistency are not ON: GTID auto-positioning cannot work",
    );
  }
  if (!state.logReplicaUpdates) {
    options.log.warn(
      "log_slave_updates is OFF: this node's binlog lacks what it replicated, so replicas cannot follow it by GTID after a failover",
    );
  }
  const raw = (await attrs.privateAll(options.names.gtidFork)).get(options.master);
  const fork = raw === undefined ? undefined : decodeGtidFork(raw);
  if (fork === undefined) {
    options.log.warn(
      `${options.master} published no GTID fork point: errant transactions are left to the server's own check`,
    );
  } else {
    const errant = errantSinceFork(state.binlogPos, fork, flavour);
    if (errant === undefined) {
      options.log.warn(`Cannot compare GTID positions ${state.binlogPos} and ${fork.pos}`);
    } else if (errant !== "") {
      const salvageFile = await salvageGtid(client, fork, options);
      return {
        ok: false,
        errant,
        salvageFile,
        reason: `This node holds transactions ${options.master} never received ` +
          `(errant GTIDs ${errant}; own binlog at ${state.binlogPos}, ${options.master} took over at ` +
          `${fork.pos || "nothing"}): not replicating from it` +
          (salvageFile ? `. Saved in ${salvageFile}` : ""),
      };
    }
  }
  let detail = `following ${options.master} by GTID from ${state.slavePos || state.binlogPos}`;
  if (flavour === "mariadb") {
    const slave = parseMariadbGtidPos(state.slavePos);
    const binlog = parseMariadbGtidPos(state.binlogPos);
    if (slave && binlog) {
      const merged = formatMariadbGtidPos(mergeMariadbGtidPos(slave, binlog));
      if (merged !== formatMariadbGtidPos(slave)) {
        await client.setGtidSlavePos(merged);
        detail = `following ${options.master} by GTID from ${merged} (gtid_slave_pos was ${
          state.slavePos || "empty"
        })`;
      } else detail = `following ${options.master} by GTID from ${merged}`;
    }
  }
  return { ok: true, detail };
}
