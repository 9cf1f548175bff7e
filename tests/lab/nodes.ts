/**
 * Lab nodes: the state directory, naming, running commands on the host and inside a node, and a
 * node's power (boot and power cut). Everything else of the lab builds on this module.
 *
 * @module
 */

/** Root of the lab's state: holder PIDs, per-node directories, credentials, logs. */
export const STATE_DIR: string = Deno.env.get("PRM_LAB_STATE") ?? "/var/lib/prm-lab";
/** The host bridge every node is plugged into. */
export const BRIDGE = "prmbr0";
/** The host's address on the bridge. */
export const HOST_ADDRESS = "10.213.7.1";
/** First three octets of the lab network. */
export const NET_PREFIX = "10.213.7";
/** Writer VIP default. */
export const WRITER_VIP = "10.213.7.100";
/** PATH given to every daemon of a node (agents inherit pacemakerd's). */
export const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const HERE = new URL(".", import.meta.url).pathname;
/** Path of the node's PID-1 script. */
export const NODE_INIT = `${HERE}node_init.sh`;
/** Path of the two-site lab's WAN delay line (sites.ts), a lab process when it runs. */
export const WAN_DELAY_LINE = `${HERE}wan_delay.py`;
/** Path of the fence agent source (copied to /usr/sbin by `up`). */
export const FENCE_AGENT_SRC = `${HERE}fence_prm_lab`;
/** Where the fencer looks for fence agents. */
export const FENCE_AGENT_INSTALLED = "/usr/sbin/fence_prm_lab";

/** Result of a command. */
export interface ExecResult {
  /** Exit code (128 + signal when killed). */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options of {@linkcode run} and {@linkcode exec}. */
export interface RunOptions {
  /** Text written to the command's standard input. */
  stdin?: string;
  /** Kill the command after this many ms (default: no limit). */
  timeoutMs?: number;
  /** Throw when the exit code is not 0 (default false). */
  check?: boolean;
}

/** Persistent description of an up lab (STATE_DIR/state.json). */
export interface LabState {
  /** Node names, e.g. ["prm1", "prm2", "prm3"]. */
  nodes: string[];
  /** When `up` started (ISO time). */
  createdAt: string;
  /** Size of every node's datadir filesystem in MiB. */
  dataSizeMb: number;
  /**
   * The process that owns the lab (a test run), with its start time: once it is gone, the lab
   * is a leftover that the next `up` clears. Absent for a lab a person brought up (`lab up`),
   * which stays until `lab down`.
   */
  owner?: { pid: number; start: string };
  /** Two sites (sites.ts): each its own cluster on its own subnet; absent for one site. */
  sites?: LabSite[];
  /** Two sites: the booth arbitrator's node (no Pacemaker, only boothd). */
  arbitrator?: string;
}

/** One site of a two-site lab. */
export interface LabSite {
  /** Site name ("east", "west"). */
  name: string;
  /** Its nodes: one Pacemaker cluster. */
  nodes: string[];
  /** First three octets of its subnet (a /24 on its own bridge). */
  subnet: string;
  /** Its booth address, a floating IP of its cluster. */
  boothAddress: string;
}

/** MariaDB accounts created on every node. */
export interface Credentials {
  /** Administrative account (ALL PRIVILEGES), for agents and the harness. */
  admin: { user: string; password: string };
  /** Replication account (REPLICATION SLAVE, REPLICATION CLIENT). */
  repl: { user: string; password: string };
  /** Unprivileged application account (ALL on database `test` only). */
  app: { user: string; password: string };
}

const decoder = new TextDecoder();

/** Runs a host command (argv, no shell) and collects its output. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
  const ac = new AbortController();
  const timer = opts.timeoutMs ? setTimeout(() => ac.abort(), opts.timeoutMs) : undefined;
  try {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: opts.stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      cwd: "/",
      signal: ac.signal,
    }).spawn();
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await child.output();
    const res = {
      code: out.signal ? 128 + signalNumber(out.signal) : out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
    if (opts.check && res.code !== 0) {
      throw new Error(
        `Command failed (exit ${res.code}): ${argv.join(" ")}\n${res.stderr.trim()}${
          ac.signal.aborted ? `\n(killed after ${opts.timeoutMs} ms)` : ""
        }`,
      );
    }
    return res;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function signalNumber(sig: string): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as Record<string, number>)[sig] ?? 0;
}

/** Runs a host shell command (bash -c) and collects its output. */
export function sh(script: string, opts: RunOptions = {}): Promise<ExecResult> {
  return run(["bash", "-c", script], opts);
}

/** Name of node number `i` (1-based): prm1, prm2, ... */
export function nodeName(i: number): string {
  return `prm${i}`;
}

/** Node number of a node name or alias ("prm2", "n2", "2" → 2). */
export function nodeIndex(node: string): number {
  const m = /^(?:prm|n|prm-n)?([1-9])$/.exec(node);
  if (!m) throw new Error(`Unknown lab node "${node}": use prm1..prm5`);
  return Number(m[1]);
}

/** Canonical node name of an alias ("2" or "n2" → "prm2"). */
export function canonicalNode(node: string): string {
  return nodeName(nodeIndex(node));
}

/**
 * First three octets of a node's subnet: NET_PREFIX in a one-site lab; with two sites, its
 * site's (or the arbitrator's) subnet, as the lab's state records it.
 */
export function subnetOf(node: string): string {
  const state = readState();
  if (state?.sites === undefined) return NET_PREFIX;
  const name = canonicalNode(node);
  const site = state.sites.find((s) => s.nodes.includes(name));
  if (site !== undefined) return site.subnet;
  return name === state.arbitrator ? ARBITRATOR_SUBNET : NET_PREFIX;
}

/** The nodes of `node`'s cluster: every node in a one-site lab, its site's with two sites. */
export function clusterNodes(node: string): string[] {
  const state = requireState();
  const name = canonicalNode(node);
  return state.sites?.find((s) => s.nodes.includes(name))?.nodes ?? state.nodes;
}

/** Subnet of a two-site lab's arbitrator (its own, as a third location). */
export const ARBITRATOR_SUBNET = "10.213.9";

/** IPv4 address of a node (prm1 → 10.213.7.11; with two sites, prm3 → 10.213.8.13). */
export function nodeAddress(node: string): string {
  return `${subnetOf(node)}.${10 + nodeIndex(node)}`;
}

/** The router's address in a subnet: a two-site lab's nodes route to the others through it. */
export function routerAddress(subnet: string): string {
  return `${subnet}.254`;
}

/** Network namespace name of a node (prm1 → prm-n1). */
export function netnsName(node: string): string {
  return `prm-n${nodeIndex(node)}`;
}

/** Host side of a node's veth pair (prm1 → prmv1). */
export function vethName(node: string): string {
  return `prmv${nodeIndex(node)}`;
}

/** Host directory holding a node's private state (bind-mounted inside the node). */
export function nodeDir(node: string): string {
  return `${STATE_DIR}/nodes/${canonicalNode(node)}`;
}

/** Reads the state of the lab that is up, or null when there is none. */
export function readState(): LabState | null {
  try {
    return JSON.parse(Deno.readTextFileSync(`${STATE_DIR}/state.json`)) as LabState;
  } catch {
    return null;
  }
}

/** Reads the lab state and throws a clear error when no lab is up. */
export function requireState(): LabState {
  const st = readState();
  if (!st) throw new Error(`No lab is up (no ${STATE_DIR}/state.json): run \`deno task lab up\``);
  return st;
}

/** The MariaDB accounts of the lab that is up. */
export function credentials(): Credentials {
  return JSON.parse(Deno.readTextFileSync(`${STATE_DIR}/credentials.json`)) as Credentials;
}

/** Reads a PID file; null when absent or invalid. */
export function readPid(path: string): number | null {
  try {
    const n = Number(Deno.readTextFileSync(path).trim());
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

/** True when the process exists and is not a zombie (the host's PID 1 reaps orphans late). */
export function pidAlive(pid: number): boolean {
  try {
    const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Waits until a PID is gone (or a zombie); false on timeout. */
export async function waitPidGone(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await sleep(25);
  }
  return !pidAlive(pid);
}

/** Sends a signal to a PID, ignoring a process that is already gone. */
export function killPid(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Sleeps (for pacing poll loops only, never as a wait for a condition). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * True when a live PID is one of the lab's own processes (a node holder, the fence loop, a
 * connection holder), judged by its command line: a recorded PID may have been reused since.
 */
export function isLabProcess(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    return cmd.includes(NODE_INIT) || cmd.includes(`${FENCE_AGENT_SRC}\0--serve`) ||
      cmd.includes("_hold-connections") || cmd.includes(WAN_DELAY_LINE);
  } catch {
    return false;
  }
}

/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
export function processStart(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** PID of a node's PID-1 holder when it is running, else null. */
export function holderPid(node: string): number | null {
  const pid = readPid(`${nodeDir(node)}/holder.pid`);
  return pid !== null && isLabProcess(pid) ? pid : null;
}

/** True when the node is powered (its holder runs). */
export function nodeRunning(node: string): boolean {
  return holderPid(node) !== null;
}

function requireHolder(node: string): number {
  const pid = holderPid(node);
  if (pid === null) throw new Error(`Node ${canonicalNode(node)} is not running (power cut?)`);
  return pid;
}

/** The argv prefix that enters a node's namespaces with a clean environment. */
export function enterArgv(node: string): string[] {
  return [
    "nsenter",
    "-t",
    String(requireHolder(node)),
    "-m",
    "-u",
    "-i",
    "-n",
    "-p",
    "--",
    "env",
    "-i",
    `PATH=${NODE_PATH}`,
    "HOME=/root",
    "LC_ALL=C",
    "TERM=dumb",
  ];
}

/**
 * Runs a command inside a node: a string goes through `bash -c`, an array is run as is.
 * Returns the exit code and the output; never throws for a non-zero exit unless `check` is set.
 */
export function exec(
  node: string,
  cmd: string | string[],
  opts: RunOptions = {},
): Promise<ExecResult> {
  const argv = typeof cmd === "string" ? ["bash", "-c", cmd] : cmd;
  return run([...enterArgv(node), ...argv], opts);
}

/** Options of {@linkcode startDetached}. */
export interface DetachedOptions {
  /** Log file inside the node that receives stdout and stderr (appended). */
  logFile: string;
  /** Environment variables besides PATH, HOME, LC_ALL, TERM. */
  env?: Record<string, string>;
}

/**
 * Starts a daemon inside a node, detached (own session, stdio to a log file inside the node, clean
 * environment), so that the caller never waits for it.
 */
export async function startDetached(
  node: string,
  argv: string[],
  opts: DetachedOptions,
): Promise<void> {
  const env = opts.env ?? {};
  const logFile = opts.logFile;
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const quoted = ["env", ...envArgs, ...argv].map(shellQuote).join(" ");
  await exec(node, `setsid -f ${quoted} </dev/null >>${shellQuote(logFile)} 2>&1`, {
    check: true,
    timeoutMs: 10_000,
  });
}

/** Quotes a word for bash. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Host PIDs of the node's processes whose command name (comm) is one of `names`. */
export function nodeProcesses(node: string, names: string[]): number[] {
  return nodeProcessesWhere(node, (pid) => names.includes(readProc(pid, "comm").trim()));
}

/**
 * Host PIDs of the node's agent processes running `action` (`mysql_prm start`, say): the
 * launcher execs Deno with the bundle and the action as its last argument.
 */
export function agentProcesses(node: string, action: string): number[] {
  return nodeProcessesWhere(node, (pid) => {
    const argv = readProc(pid, "cmdline").split("\0").filter((a) => a !== "");
    return argv.at(-1) === action && argv.some((a) => a.endsWith("/mysql_prm.js"));
  });
}

function readProc(pid: number, file: string): string {
  return Deno.readTextFileSync(`/proc/${pid}/${file}`);
}

/** Host PIDs of the node's live processes that `match` (which may throw when one ends). */
function nodeProcessesWhere(node: string, match: (pid: number) => boolean): number[] {
  const holder = holderPid(node);
  if (holder === null) return [];
  let ns: string;
  try {
    ns = Deno.readLinkSync(`/proc/${holder}/ns/pid`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    try {
      if (Deno.readLinkSync(`/proc/${pid}/ns/pid`) !== ns) continue;
      if (match(pid) && pidAlive(pid)) out.push(pid);
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** Host PIDs of every lab node holder found by its command line (recorded or not). */
export function scanHolders(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (argv[0] !== "/bin/bash" || argv[1] !== NODE_INIT) continue;
      // Only the node's PID 1, not a short-lived fork of it before exec.
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/) ?? [];
      if (nspid.at(-1) === "1" && pidAlive(Number(e.name))) out.push(Number(e.name));
    } catch {
      // Gone.
    }
  }
  return out;
}

function holderFor(node: string): number | null {
  for (const pid of scanHolders()) {
    try {
      const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      if (argv[2] === canonicalNode(node)) return pid;
    } catch {
      // Gone.
    }
  }
  return null;
}

/** Options of {@linkcode bootNode}. */
export interface BootOptions {
  /** Give up after this many ms (default 20000). */
  timeoutMs?: number;
  /** Start corosync and pacemakerd (default true). */
  cluster?: boolean;
}

/**
 * Powers a node on: a new PID-1 holder in the node's network namespace with fresh mount, pid, uts
 * and ipc namespaces, then corosync and pacemakerd. Returns once the daemons are started (not yet
 * online: wait with `waitOnline`).
 */
export async function bootNode(node: string, opts: BootOptions = {}): Promise<number> {
  node = canonicalNode(node);
  const dir = nodeDir(node);
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  if (holderPid(node) !== null) throw new Error(`Node ${node} is already running`);
  try {
    Deno.removeSync(`${dir}/ready`);
  } catch {
    // Not there.
  }
  try {
    Deno.removeSync(`${dir}/fenced`);
  } catch {
    // Not fenced.
  }
  // Power on: the interface comes up with the node's own address only (a VIP it held is gone).
  const ns = netnsName(node);
  await run(["ip", "-n", ns, "addr", "flush", "dev", "eth0"], { check: true });
  await run(["ip", "-n", ns, "addr", "add", `${nodeAddress(node)}/24`, "dev", "eth0"], {
    check: true,
  });
  await run(["ip", "-n", ns, "link", "set", "eth0", "up"], { check: true });
  if (readState()?.sites !== undefined) {
    // Two sites: the other subnets are behind the WAN router (sites.ts).
    await run(
      ["ip", "-n", ns, "route", "replace", "default", "via", routerAddress(subnetOf(node))],
      {
        check: true,
      },
    );
  }
  const inner = [
    "ip",
    "netns",
    "exec",
    ns,
    "unshare",
    "--mount",
    "--uts",
    "--ipc",
    "--pid",
    "--fork",
    "--mount-proc",
    "--propagation",
    "private",
    "/bin/bash",
    NODE_INIT,
    node,
    dir,
    `${STATE_DIR}/hosts`,
  ].map(shellQuote).join(" ");
  await sh(`setsid -f ${inner} </dev/null >>${shellQuote(dir)}/holder.log 2>&1`, {
    check: true,
    timeoutMs: 10_000,
  });
  let pid: number | null = null;
  while (Date.now() < deadline) {
    if (existsSync(`${dir}/ready`)) {
      pid = holderFor(node);
      if (pid !== null) break;
    }
    await sleep(20);
  }
  if (pid === null) {
    let log = "";
    try {
      log = Deno.readTextFileSync(`${dir}/holder.log`);
    } catch {
      // No log.
    }
    throw new Error(`Node ${node} did not become ready (holder.log: ${log.trim().slice(-500)})`);
  }
  Deno.writeTextFileSync(`${dir}/holder.pid`, `${pid}\n`);
  if (opts.cluster === false) return pid;
  await startDetached(node, ["corosync", "-f"], { logFile: "/var/log/pacemaker/corosync.out" });
  while (true) {
    const r = await exec(node, ["corosync-cfgtool", "-s"], { timeoutMs: 5_000 });
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`Corosync did not start on ${node}: ${r.stderr.trim()}`);
    }
    await sleep(100);
  }
  await startDetached(node, ["pacemakerd"], {
    logFile: "/var/log/pacemaker/pacemakerd.out",
    env: { PCMK_logfile: "/var/log/pacemaker/pacemaker.log", PCMK_logfacility: "none" },
  });
  return pid;
}

/** Options of {@linkcode powerCut}. */
export interface PowerCutOptions {
  /** Give up waiting for the node's processes after this many ms (default 10000). */
  timeoutMs?: number;
}

/**
 * Power-cuts a node: its link goes down, then SIGKILL of its PID-1 holder, which kills every
 * process of the node; waits until the holder is gone. The network namespace and the node's disks
 * (state directories) remain.
 */
export async function powerCut(node: string, opts: PowerCutOptions = {}): Promise<void> {
  node = canonicalNode(node);
  const pid = holderPid(node);
  if (pid === null) return;
  // The network namespace outlives the holder: without its link going down first, the kernel
  // would still flush the dead node's socket buffers (a graceful close a power cut never makes)
  // and keep answering for its addresses, the writer VIP included.
  await run(["ip", "-n", netnsName(node), "link", "set", "eth0", "down"]);
  killPid(pid, "SIGKILL");
  if (!(await waitPidGone(pid, opts.timeoutMs ?? 10_000))) {
    throw new Error(`Holder ${pid} of node ${node} survived SIGKILL`);
  }
}

/** True when a path exists. */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
