/**
 * Fault injection on lab nodes: mysqld kill, freeze and thaw, network isolation, full datadir,
 * exhausted connections, power cut and boot; plus a manual MariaDB start and stop for tests of the
 * lab itself.
 *
 * @module
 */

import mysql from "mysql2/promise";
import { crmMon, onlineNodes, resolveUser, waitFor } from "./cluster.ts";
import { startArbitrator } from "./sites.ts";
import {
  bootNode,
  canonicalNode,
  clusterNodes,
  exec,
  killPid,
  nodeAddress,
  nodeDir,
  nodeProcesses,
  nodeRunning,
  pidAlive,
  readPid,
  readState,
  run,
  sh,
  shellQuote,
  startDetached,
  vethName,
  waitPidGone,
} from "./nodes.ts";

/** Process names that count as "the MariaDB server" of a node. */
const SERVER_NAMES = ["mariadbd", "mysqld"];
/** The restarting wrappers. */
const SAFE_NAMES = ["mysqld_safe", "mariadbd-safe"];

/** Host PIDs of the node's MariaDB server processes (normally one). */
export function mysqldPids(node: string): number[] {
  return nodeProcesses(node, SERVER_NAMES);
}

/** Options of {@linkcode killMysqld}. */
export interface KillMysqldOptions {
  /** Also kill a mysqld_safe wrapper first, so that it cannot restart the server (default false). */
  withSafe?: boolean;
}

/**
 * SIGKILL of the node's MariaDB server (found in the node's pid namespace, killed by host PID);
 * waits until it is gone. Returns the killed PIDs (empty when none ran).
 */
export async function killMysqld(node: string, opts: KillMysqldOptions = {}): Promise<number[]> {
  const killed: number[] = [];
  if (opts.withSafe) {
    for (const pid of nodeProcesses(node, SAFE_NAMES)) {
      killPid(pid, "SIGKILL");
      killed.push(pid);
    }
  }
  for (const pid of mysqldPids(node)) {
    killPid(pid, "SIGKILL");
    killed.push(pid);
  }
  for (const pid of killed) {
    if (!(await waitPidGone(pid, 10_000))) throw new Error(`mysqld ${pid} survived SIGKILL`);
  }
  return killed;
}

/** SIGSTOP of the node's MariaDB server. Returns the stopped PIDs. */
export function freezeMysqld(node: string): number[] {
  const pids = mysqldPids(node);
  for (const pid of pids) killPid(pid, "SIGSTOP");
  return pids;
}

/** SIGCONT of the node's MariaDB server (also when it is not frozen). Returns the PIDs. */
export function thawMysqld(node: string): number[] {
  const pids = mysqldPids(node);
  for (const pid of pids) killPid(pid, "SIGCONT");
  return pids;
}

/** Options of {@linkcode startMysqld}. */
export interface StartMysqldOptions {
  /** Deadline in ms (default 30000). */
  timeoutMs?: number;
}

/**
 * Starts the node's MariaDB by hand (mariadbd directly, no restarting wrapper) with the node's
 * my.cnf and waits until it answers on its socket. For tests of the lab itself: agents start it.
 */
export async function startMysqld(node: string, opts: StartMysqldOptions = {}): Promise<number> {
  if (mysqldPids(node).length) throw new Error(`MariaDB already runs on ${node}`);
  await startDetached(
    node,
    ["/usr/sbin/mariadbd", "--defaults-file=/etc/mysql/my.cnf"],
    { logFile: "/var/log/mysql/mariadbd.out" },
  );
  await waitFor(async () => {
    const r = await exec(node, ["mariadb-admin", "-uroot", "ping"], { timeoutMs: 5_000 });
    return r.code === 0;
  }, {
    timeoutMs: opts.timeoutMs ?? 30_000,
    what: `MariaDB answering on ${node}`,
    onTimeout: null,
  });
  return mysqldPids(node)[0];
}

/** Stops the node's MariaDB cleanly (mariadb-admin shutdown) and waits until it is gone. */
export async function stopMysqld(node: string): Promise<void> {
  const pids = mysqldPids(node);
  if (!pids.length) return;
  await exec(node, ["mariadb-admin", "-uroot", "shutdown"], { timeoutMs: 60_000 });
  for (const pid of pids) {
    if (!(await waitPidGone(pid, 60_000))) {
      throw new Error(`MariaDB ${pid} on ${node} did not stop`);
    }
  }
}

/** Cuts a node off the network: its veth is set down on the bridge side. */
export async function isolate(node: string): Promise<void> {
  await run(["ip", "link", "set", vethName(node), "down"], { check: true });
}

/** Plugs an isolated node back into the bridge. */
export async function heal(node: string): Promise<void> {
  await run(["ip", "link", "set", vethName(node), "up"], { check: true });
}

/** Host path of the file that fills a node's datadir filesystem. */
export function fillFile(node: string): string {
  return `${nodeDir(node)}/mysql-data/.prm_lab_fill`;
}

/** Bytes free on the node's datadir filesystem. */
export async function datadirFree(node: string): Promise<number> {
  const r = await run(["df", "-B1", "--output=avail", `${nodeDir(node)}/mysql-data`], {
    check: true,
  });
  return Number(r.stdout.trim().split("\n").at(-1));
}

/**
 * Fills the node's datadir filesystem (its own tmpfs) with a file until no byte is free; returns the
 * size written. Undo with {@linkcode unfillDisk}.
 */
export async function fillDisk(node: string): Promise<number> {
  const path = fillFile(node);
  const free = await datadirFree(node);
  // fallocate reserves the space at once; dd tops up whatever remains (e.g. rounding).
  if (free > 0) await run(["fallocate", "-l", String(free), path + ".a"]);
  await sh(`dd if=/dev/zero of=${shellQuote(path)} bs=64k status=none 2>/dev/null; true`);
  const total = (await sh(`du -cb ${shellQuote(path)}* | tail -1 | cut -f1`)).stdout.trim();
  return Number(total);
}

/** Removes the fill file(s) of a node's datadir filesystem. */
export async function unfillDisk(node: string): Promise<void> {
  await sh(`rm -f ${shellQuote(fillFile(node))} ${shellQuote(fillFile(node) + ".a")}`);
}

/** Connections held open by {@linkcode exhaustConnections}. */
export interface HeldConnections {
  /** How many connections are held. */
  count: number;
  /** The error that refused the next one (normally 1040, Too many connections). */
  refusedWith: { errno: number; message: string };
  /** Closes every held connection. */
  release(): Promise<void>;
}

/** Options of {@linkcode exhaustConnections}. */
export interface ExhaustOptions {
  /** Stop after this many connections even if none was refused (default 1000). */
  max?: number;
}

/**
 * Opens connections to a node's MariaDB as the unprivileged `app` user until the server refuses one
 * (error 1040), and holds them until `release()`.
 */
export async function exhaustConnections(
  node: string,
  opts: ExhaustOptions = {},
): Promise<HeldConnections> {
  const acct = resolveUser("app");
  const conns: mysql.Connection[] = [];
  let refused: { errno: number; message: string } | null = null;
  while (conns.length < (opts.max ?? 1000)) {
    try {
      const c = await mysql.createConnection({
        host: nodeAddress(node),
        user: acct.user,
        password: acct.password,
        connectTimeout: 10_000,
      });
      c.on("error", () => {});
      conns.push(c);
    } catch (e) {
      const err = e as { errno?: number; message?: string };
      refused = { errno: err.errno ?? 0, message: err.message ?? String(e) };
      break;
    }
  }
  if (!refused) {
    for (const c of conns) c.destroy();
    throw new Error(`${node} accepted ${conns.length} connections without refusing one`);
  }
  return {
    count: conns.length,
    refusedWith: refused,
    release() {
      for (const c of conns) c.destroy();
      conns.length = 0;
      return Promise.resolve();
    },
  };
}

/** PID file of the CLI's background connection holder for a node. */
export function connectionHolderPidFile(node: string): string {
  return `${nodeDir(node)}/connections.pid`;
}

/** Ends the CLI's background connection holder of a node (by its recorded PID). */
export async function releaseConnectionHolder(node: string): Promise<boolean> {
  const file = connectionHolderPidFile(node);
  const pid = readPid(file);
  if (pid === null) return false;
  if (pidAlive(pid)) {
    killPid(pid, "SIGTERM");
    if (!(await waitPidGone(pid, 5_000))) {
      killPid(pid, "SIGKILL");
      await waitPidGone(pid, 5_000);
    }
  }
  Deno.removeSync(file);
  return true;
}

/** Options of {@linkcode boot}. */
export interface BootWaitOptions {
  /** Wait until the node is online in the cluster (default true). */
  waitOnline?: boolean;
  /** Deadline in ms (default 60000). */
  timeoutMs?: number;
}

/** Boots a powered-off (power-cut or fenced) node and, by default, waits until it is online. */
export async function boot(node: string, opts: BootWaitOptions = {}): Promise<void> {
  node = canonicalNode(node);
  if (readState()?.arbitrator === node) {
    // A two-site lab's arbitrator has no cluster: it boots with its boothd only.
    await bootNode(node, { cluster: false });
    await startArbitrator(node);
    return;
  }
  const viewers = clusterNodes(node);
  // A node booted while the cluster still wants to fence it would be fenced again at once: wait
  // until a running peer sees it offline and clean (fencing done), or until there is no peer.
  await waitFor(async () => {
    const peer = viewers.find((v) => v !== node && nodeRunning(v));
    if (!peer) return true;
    const mon = await crmMon(peer);
    const me = mon.nodes.find((n) => n.name === node);
    return !me || (!me.online && !me.unclean);
  }, { timeoutMs: opts.timeoutMs ?? 60_000, what: `${node} offline and fenced before boot` });
  await bootNode(node);
  if (opts.waitOnline === false) return;
  await waitFor(async () => {
    for (const v of viewers) {
      if (v === node) continue;
      try {
        return (await onlineNodes(v)).includes(node);
      } catch {
        // That viewer is off: ask the next.
      }
    }
    return (await onlineNodes(node)).includes(node);
  }, { timeoutMs: opts.timeoutMs ?? 60_000, what: `${node} online after boot` });
}
