/**
 * Bringing the lab up and down: packages, lock, leftovers of a crashed run, bridge, namespaces,
 * per-node directories and datadir filesystems, MariaDB datadirs, the fence agent and its host loop.
 *
 * @module
 */

import { accountsSql, corosyncConf, credentialsCnf, hostsFile, myCnf, seedCib } from "./configs.ts";
import { crmMon, dump, waitFor } from "./cluster.ts";
import {
  bridgeName,
  ipv4Only,
  prepareWan,
  ROUTER_NS,
  siteLayout,
  startArbitrator,
  writeBoothFiles,
} from "./sites.ts";
import {
  bootNode,
  BRIDGE,
  type Credentials,
  existsSync,
  FENCE_AGENT_INSTALLED,
  FENCE_AGENT_SRC,
  HOST_ADDRESS,
  isLabProcess,
  killPid,
  type LabState,
  netnsName,
  nodeAddress,
  nodeDir,
  nodeName,
  processStart,
  readPid,
  readState,
  run,
  scanHolders,
  sh,
  shellQuote,
  sleep,
  STATE_DIR,
  vethName,
  waitPidGone,
} from "./nodes.ts";

const LOCK_FILE = "/run/prm-lab.lock";
const ENSURE_PACKAGES = new URL("../../scripts/ensure_packages.sh", import.meta.url).pathname;

/** Options of {@linkcode up}. */
export interface UpOptions {
  /** Number of nodes, 2..5 (default 3). */
  nodes?: number;
  /**
   * Two sites instead of one (sites.ts): the nodes of each site, e.g. [2, 2] (east prm1-prm2,
   * west prm3-prm4, arbitrator prm5). `nodes` is then ignored.
   */
  sites?: number[];
  /** Size of each node's datadir filesystem in MiB (default 512). */
  dataSizeMb?: number;
  /** Wait until every node is online (default true). */
  waitOnline?: boolean;
  /** Deadline for the whole bring-up in ms (default 90000). */
  timeoutMs?: number;
  /** Progress messages (default: console.error). */
  log?: (msg: string) => void;
  /** When a lab is already up, wait up to this many ms for it to go down (default 0: refuse). */
  waitFreeMs?: number;
  /**
   * Keep the lab after this process ends, until `down` (default false: the lab belongs to this
   * process, and once it is gone, killed or crashed, the next `up` clears what it left).
   */
  persistent?: boolean;
}

/** What {@linkcode up} returns. */
export interface Lab {
  /** Node names, e.g. ["prm1", "prm2", "prm3"] (with two sites: the database nodes). */
  nodes: string[];
  /** Two sites: the site names with their nodes, and the arbitrator. */
  sites?: { name: string; nodes: string[] }[];
  /** Two sites: the arbitrator node. */
  arbitrator?: string;
  /** Node name → lab address. */
  addresses: Record<string, string>;
  /** The state directory. */
  stateDir: string;
  /** MariaDB accounts. */
  credentials: Credentials;
  /** Time from start of bring-up (after the package check) to every node online, in ms. */
  bringUpMs: number;
}

/** Every PID the lab records (holders, fence loop, connection holders), for checks and `down`. */
export function recordedPids(): number[] {
  const pids: number[] = [];
  const add = (p: string) => {
    const pid = readPid(p);
    if (pid !== null) pids.push(pid);
  };
  add(`${STATE_DIR}/fence_loop.pid`);
  add(`${STATE_DIR}/wan_delay.pid`);
  try {
    for (const e of Deno.readDirSync(`${STATE_DIR}/nodes`)) {
      const d = `${STATE_DIR}/nodes/${e.name}`;
      add(`${d}/holder.pid`);
      add(`${d}/connections.pid`);
    }
  } catch {
    // No nodes directory.
  }
  return pids;
}

/**
 * True when a lab is up: a state file, at least one live recorded process of the lab, and its
 * owner (when it has one) still running. A lab whose owning test run was killed is a leftover.
 */
export function labIsUp(): boolean {
  const state = readState();
  if (state === null || !recordedPids().some(isLabProcess)) return false;
  return state.owner === undefined || processStart(state.owner.pid) === state.owner.start;
}

/**
 * Runs `fn` holding the machine's lab lock (the one `up` and `down` take). Inside, use
 * {@linkcode cleanupLocked}, never `up`/`down` (they would wait for the lock forever).
 */
export async function withLabLock<T>(fn: () => Promise<T>): Promise<T> {
  const f = await Deno.open(LOCK_FILE, { create: true, write: true });
  try {
    await f.lock(true);
    return await fn();
  } finally {
    f.close();
  }
}

function randomPassword(): string {
  const b = crypto.getRandomValues(new Uint8Array(18));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Brings a lab up: N nodes online in the cluster with fencing on, MariaDB prepared (not started) on
 * every node. Refuses when a lab is already up; clears leftovers of a crashed run first.
 */
export async function up(opts: UpOptions = {}): Promise<Lab> {
  const deadline = Date.now() + (opts.waitFreeMs ?? 0);
  while (true) {
    try {
      return await upOnce(opts);
    } catch (e) {
      if (!(e instanceof LabBusyError) || Date.now() >= deadline) throw e;
    }
    await sleep(2000);
  }
}

/** Thrown by {@linkcode up} when a lab is already up. */
export class LabBusyError extends Error {}

function upOnce(opts: UpOptions): Promise<Lab> {
  let layout: ReturnType<typeof siteLayout> | undefined;
  try {
    layout = opts.sites === undefined ? undefined : siteLayout(opts.sites);
  } catch (e) {
    return Promise.reject(e);
  }
  const count = layout === undefined
    ? opts.nodes ?? 3
    : layout.sites.flatMap((s) => s.nodes).length;
  if (!Number.isInteger(count) || count < 2 || count > 5) {
    return Promise.reject(new Error(`The lab has 2 to 5 nodes, not ${count}`));
  }
  if (Deno.uid() !== 0) return Promise.reject(new Error("The lab must run as root"));
  const log = opts.log ?? ((m: string) => console.error(`[lab] ${m}`));
  return withLabLock(async () => {
    if (labIsUp()) {
      throw new LabBusyError(
        `A lab is already up (state in ${STATE_DIR}): run \`deno task lab down\` first`,
      );
    }
    const pk = await run(["bash", ENSURE_PACKAGES]);
    if (pk.code !== 0) throw new Error(`Installing the lab's packages failed: ${pk.stderr.trim()}`);
    const t0 = performance.now();
    await cleanupLocked(log);
    const nodes = Array.from({ length: count }, (_, i) => nodeName(i + 1));
    // The clusters: one, or one per site (the arbitrator is in none).
    const clusters = layout?.sites.map((s) => s.nodes) ?? [nodes];
    const dataSizeMb = opts.dataSizeMb ?? 512;
    const start = processStart(Deno.pid);
    const owner = opts.persistent || start === null ? undefined : { pid: Deno.pid, start };
    const creds: Credentials = {
      admin: { user: "prm", password: randomPassword() },
      repl: { user: "repl", password: randomPassword() },
      app: { user: "app", password: randomPassword() },
    };
    try {
      await prepareHost({
        nodes,
        createdAt: new Date().toISOString(),
        dataSizeMb,
        owner,
        sites: layout?.sites,
        arbitrator: layout?.arbitrator,
      }, creds);
      if (layout !== undefined) writeBoothFiles(layout);
      log(`host prepared in ${Math.round(performance.now() - t0)} ms; booting ${count} nodes`);
      await Promise.all(nodes.map((n) => bootNode(n)));
      if (layout !== undefined) {
        await bootNode(layout.arbitrator, { cluster: false });
        await startArbitrator(layout.arbitrator);
      }
      if (opts.waitOnline !== false) {
        for (const members of clusters) {
          await waitFor(async () => {
            const mon = await crmMon(members[0]);
            const online = mon.nodes.filter((n) => n.online).length;
            const fence = mon.resources.find((r) => r.id === "fence_lab");
            return online === members.length && mon.dc !== null && fence?.role === "Started";
          }, {
            timeoutMs: opts.timeoutMs ?? 90_000,
            what: `${members.join(", ")} online with the fence device started`,
            onTimeout: () => dump(),
          });
        }
      }
    } catch (e) {
      log(`bring-up failed, cleaning up: ${e instanceof Error ? e.message : e}`);
      await cleanupLocked(log).catch(() => {});
      throw e;
    }
    const bringUpMs = Math.round(performance.now() - t0);
    log(`${count} nodes online in ${bringUpMs} ms`);
    return {
      nodes,
      sites: layout?.sites.map((s) => ({ name: s.name, nodes: s.nodes })),
      arbitrator: layout?.arbitrator,
      addresses: Object.fromEntries(
        [...nodes, ...(layout ? [layout.arbitrator] : [])].map((n) => [n, nodeAddress(n)]),
      ),
      stateDir: STATE_DIR,
      credentials: creds,
      bringUpMs,
    };
  });
}

async function must(argv: string[]): Promise<string> {
  const r = await run(argv, { check: true, timeoutMs: 60_000 });
  return r.stdout;
}

async function prepareHost(state: LabState, creds: Credentials) {
  const { nodes, dataSizeMb } = state;
  // Two sites: each site is a cluster of its own; the arbitrator gets a node without MariaDB.
  const clusters = state.sites?.map((s) => s.nodes) ?? [nodes];
  const everyNode = state.arbitrator === undefined ? nodes : [...nodes, state.arbitrator];
  for (const d of ["/var/log/mysql", "/var/lib/mysql", "/etc/mysql", "/var/log/pacemaker"]) {
    if (!existsSync(d)) Deno.mkdirSync(d, { recursive: true });
  }
  Deno.mkdirSync(`${STATE_DIR}/nodes`, { recursive: true, mode: 0o755 });
  Deno.mkdirSync(`${STATE_DIR}/fence`, { recursive: true });
  Deno.writeTextFileSync(`${STATE_DIR}/state.json`, JSON.stringify(state, null, 2) + "\n");
  Deno.writeTextFileSync(`${STATE_DIR}/credentials.json`, JSON.stringify(creds) + "\n", {
    mode: 0o600,
  });
  Deno.writeTextFileSync(`${STATE_DIR}/hosts`, hostsFile(everyNode));

  // Fencing: the agent where the fencer looks, the host loop that executes its requests.
  Deno.copyFileSync(FENCE_AGENT_SRC, FENCE_AGENT_INSTALLED);
  Deno.chmodSync(FENCE_AGENT_INSTALLED, 0o755);
  await sh(
    `setsid -f bash ${shellQuote(FENCE_AGENT_SRC)} --serve ${shellQuote(STATE_DIR)} ` +
      `</dev/null >>${shellQuote(STATE_DIR)}/fence_loop.log 2>&1`,
    { check: true },
  );

  // A MariaDB datadir template with the lab's accounts, copied to every node.
  const tpl = `${STATE_DIR}/template`;
  Deno.mkdirSync(tpl, { recursive: true });
  await must(["chown", "mysql:mysql", tpl]);
  await must([
    "mariadb-install-db",
    "--no-defaults",
    "--user=mysql",
    `--datadir=${tpl}`,
    "--auth-root-authentication-method=socket",
    "--skip-test-db",
    "--innodb-log-file-size=16M",
  ]);
  await run([
    "mariadbd",
    "--no-defaults",
    "--bootstrap",
    `--datadir=${tpl}`,
    "--user=mysql",
    "--innodb-log-file-size=16M",
    "--skip-log-bin",
  ], { stdin: accountsSql(creds), check: true, timeoutMs: 60_000 });

  // Network: bridge on the host, a namespace per node with eth0 on the bridge.
  await must(["ip", "link", "add", BRIDGE, "type", "bridge"]);
  await must(["ip", "addr", "add", `${HOST_ADDRESS}/24`, "dev", BRIDGE]);
  await must(["ip", "link", "set", BRIDGE, "up"]);
  if (state.sites !== undefined) await prepareWan();
  const clusterOf = (n: string) => clusters.find((c) => c.includes(n));
  await Promise.all(everyNode.map(async (n) => {
    const members = clusterOf(n);
    const ns = netnsName(n);
    const veth = vethName(n);
    const peer = `${veth}p`;
    await must(["ip", "netns", "add", ns]);
    await must(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer]);
    await must(["ip", "link", "set", peer, "netns", ns]);
    await must(["ip", "link", "set", veth, "master", bridgeOf(state, n), "up"]);
    await must(["ip", "-n", ns, "link", "set", peer, "name", "eth0"]);
    await must(["ip", "-n", ns, "addr", "add", `${nodeAddress(n)}/24`, "dev", "eth0"]);
    await must(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await must(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"]);
    if (state.sites !== undefined) await ipv4Only(ns);

    const d = nodeDir(n);
    for (
      const sub of [
        "etc-corosync",
        "var-lib-corosync",
        "var-lib-pacemaker/cib",
        "var-lib-pacemaker/pengine",
        "var-lib-pacemaker/blackbox",
        "var-lib-pacemaker/cores",
        "log-pacemaker",
        "etc-mysql",
        "mysql-data",
        "log-mysql",
      ]
    ) Deno.mkdirSync(`${d}/${sub}`, { recursive: true });
    if (members !== undefined) {
      const name = clusters.length === 1
        ? "prmlab"
        : `prmlab-${state.sites![clusters.indexOf(members)].name}`;
      Deno.writeTextFileSync(`${d}/etc-corosync/corosync.conf`, corosyncConf(members, name));
      Deno.writeTextFileSync(`${d}/var-lib-pacemaker/cib/cib.xml`, seedCib(members));
    }
    Deno.writeTextFileSync(`${d}/etc-mysql/my.cnf`, myCnf(n));
    Deno.writeTextFileSync(`${d}/etc-mysql/prm.cnf`, credentialsCnf(creds), { mode: 0o600 });
    Deno.chmodSync(`${d}/etc-mysql/prm.cnf`, 0o600);
    const pacemakerOwns = () =>
      must(["chown", "-R", "hacluster:haclient", `${d}/var-lib-pacemaker`, `${d}/log-pacemaker`]);
    // The arbitrator: no datadir filesystem, no MariaDB.
    if (members === undefined) return await pacemakerOwns();
    await must([
      "mount",
      "-t",
      "tmpfs",
      "-o",
      `size=${dataSizeMb}m,mode=0755`,
      "prmlab-data",
      `${d}/mysql-data`,
    ]);
    await must(["cp", "-a", `${tpl}/.`, `${d}/mysql-data/`]);
    await must(["chown", "-R", "mysql:mysql", `${d}/mysql-data`, `${d}/log-mysql`]);
    await must(["chmod", "0750", `${d}/var-lib-pacemaker/cib`]);
    await pacemakerOwns();
  }));
}

/** The bridge a node is plugged into: bridge 0, or its site's (or the arbitrator's). */
function bridgeOf(state: LabState, node: string): string {
  if (state.sites === undefined) return BRIDGE;
  const i = state.sites.findIndex((s) => s.nodes.includes(node));
  return bridgeName(i < 0 ? state.sites.length : i);
}

/** Options of {@linkcode down}. */
export interface DownOptions {
  /** Progress messages (default: console.error). */
  log?: (msg: string) => void;
}

/**
 * Tears the lab down completely (also after a crash of whoever brought it up): processes ended by
 * PID, mounts, namespaces, bridge, fence agent, state directory.
 */
export function down(opts: DownOptions = {}): Promise<void> {
  if (Deno.uid() !== 0) return Promise.reject(new Error("The lab must run as root"));
  const log = opts.log ?? ((m: string) => console.error(`[lab] ${m}`));
  return withLabLock(() => cleanupLocked(log));
}

/** What `down` does, for a caller that already holds the lab lock ({@linkcode withLabLock}). */
export async function cleanupLocked(log: (msg: string) => void): Promise<void> {
  // Processes: recorded PIDs first, then any holder of a lab node found by its command line.
  const pids = new Set([...recordedPids(), ...scanHolders()]);
  const live = [...pids].filter(isLabProcess);
  for (const pid of live) killPid(pid, "SIGKILL");
  for (const pid of live) {
    if (!(await waitPidGone(pid, 10_000))) throw new Error(`Process ${pid} survived SIGKILL`);
  }
  if (live.length) log(`killed ${live.length} lab process(es): ${live.join(" ")}`);

  // Mounts under the state directory (host side: the datadir filesystems).
  const mounts = Deno.readTextFileSync("/proc/mounts").split("\n")
    .map((l) => l.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((m): m is string => !!m && (m === STATE_DIR || m.startsWith(`${STATE_DIR}/`)))
    .reverse();
  for (const m of mounts) {
    const r = await run(["umount", m]);
    if (r.code !== 0) await run(["umount", "-l", m], { check: true });
  }

  // Network: namespaces of the lab (their veths go with them) and the bridge.
  // Two-site labs add the router namespace, its legs (prmr*) and two more bridges.
  const nsList = (await run(["ip", "netns", "list"])).stdout.split("\n")
    .map((l) => l.split(" ")[0]).filter((n) => /^prm-n\d+$/.test(n) || n === ROUTER_NS);
  for (const ns of nsList) await run(["ip", "netns", "del", ns], { check: true });
  const links = (await run(["ip", "-o", "link", "show"])).stdout;
  for (const m of links.matchAll(/^\d+:\s+(prm[vr]\d+p?)[@:]/gm)) {
    await run(["ip", "link", "del", m[1]]);
  }
  for (const bridge of [BRIDGE, bridgeName(1), bridgeName(2)]) {
    if (new RegExp(`^\\d+:\\s+${bridge}[@:]`, "m").test(links)) {
      await run(["ip", "link", "del", bridge], { check: true });
    }
  }

  // Fence agent and state directory (only once nothing is mounted below it).
  try {
    Deno.removeSync(FENCE_AGENT_INSTALLED);
  } catch {
    // Not installed.
  }
  const still = Deno.readTextFileSync("/proc/mounts").includes(` ${STATE_DIR}/`);
  if (still) throw new Error(`Mounts remain under ${STATE_DIR}: not removing it`);
  try {
    Deno.removeSync(STATE_DIR, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
