/**
 * The two-site variant of THE lab (same lock, same state directory, same clean-up): `up({ sites:
 * [2, 2] })` brings up two Pacemaker clusters, "east" (prm1, prm2 on 10.213.7.0/24, bridge
 * prmbr0) and "west" (prm3, prm4 on 10.213.8.0/24, bridge prmbr1), and a booth arbitrator node
 * (prm5 on 10.213.9.0/24, bridge prmbr2) that runs only boothd.
 *
 * ## The WAN
 * The three subnets meet in one router namespace, `prm-rt`, with a leg (`prmr<k>` on the host
 * bridge, `eth<k>` inside at `.254`) per subnet; every node's default route points there. Each
 * leg delays what it sends by {@link WAN_DELAY_MS} (`tc netem`), so traffic between two
 * locations takes that much each way and a round trip twice as long, while traffic within a site
 * stays on its bridge, undelayed. `cutSiteLink(site)` takes a location's leg down: that site (or
 * the arbitrator) can then reach nobody outside itself, while its own cluster goes on. The host
 * has an address on each bridge, so the harness reaches every node directly, never through the
 * router.
 *
 * ## Booth
 * booth.conf (from booth_conf.ts, the renderer `mysql_prm config` uses) and its HMAC key live in
 * every node's `etc-booth/`, bind-mounted over /etc/booth. Each site's address (`.90`) is a
 * floating IP its cluster runs with boothd (`mysql_prm config --site`'s g_booth group, loaded by
 * the test); the arbitrator's boothd is started by `up` at the arbitrator's own address.
 *
 * Cost: five namespaces instead of three; the arbitrator holds only boothd (no corosync,
 * Pacemaker or MariaDB).
 *
 * @module
 */

import { type BoothConfig, renderBoothConfig } from "../../booth_conf.ts";
import {
  ARBITRATOR_SUBNET,
  BRIDGE,
  exec,
  type ExecResult,
  existsSync,
  type LabSite,
  NET_PREFIX,
  nodeAddress,
  nodeDir,
  nodeName,
  readPid,
  readState,
  requireState,
  routerAddress,
  run,
  shellQuote,
  sleep,
  startDetached,
  STATE_DIR,
  WAN_DELAY_LINE,
} from "./nodes.ts";

/** The userspace delay line (wan_delay.py) and its PID file, where tc netem is missing. */
export const WAN_DELAY_SCRIPT: string = WAN_DELAY_LINE;
/** PID file of the delay line (a lab process, ended by `down`). */
export const WAN_DELAY_PID = `${STATE_DIR}/wan_delay.pid`;

/** The router namespace joining the sites and the arbitrator. */
export const ROUTER_NS = "prm-rt";
/** One-way delay added by each router leg (ms): a round trip between locations is twice it. */
export const WAN_DELAY_MS = 20;
/** The booth ticket of the lab's two sites. */
export const LAB_TICKET = "ticket-mysql";
/** Names of the sites, in order. */
export const SITE_NAMES = ["east", "west"];
/** Booth timing of the lab: short, so a site failover is quick (booth checks the rules). */
export const LAB_TICKET_TIMING = { expire: 10, acquireAfter: 2, timeout: 1, retries: 3 };

/** The bridge of location `k` (0 east, 1 west, 2 arbitrator). */
export function bridgeName(k: number): string {
  return k === 0 ? BRIDGE : `prmbr${k}`;
}

/** The subnets in location order: east, west, arbitrator. */
export function subnets(): string[] {
  return [NET_PREFIX, "10.213.8", ARBITRATOR_SUBNET];
}

/** The layout of a two-site lab with `counts[i]` nodes in site i, and the arbitrator last. */
export function siteLayout(counts: number[]): { sites: LabSite[]; arbitrator: string } {
  if (counts.length !== 2 || counts.some((c) => !Number.isInteger(c) || c < 2 || c > 4)) {
    throw new Error(`A two-site lab has two sites of 2 to 4 nodes, not ${JSON.stringify(counts)}`);
  }
  let next = 1;
  const sites = counts.map((count, i) => {
    const nodes = Array.from({ length: count }, () => nodeName(next++));
    const subnet = subnets()[i];
    return { name: SITE_NAMES[i], nodes, subnet, boothAddress: `${subnet}.90` };
  });
  return { sites, arbitrator: nodeName(next) };
}

/** The lab's booth configuration (every member's booth.conf). */
export function labBoothConfig(sites: LabSite[], arbitrator: string): BoothConfig {
  return {
    port: 9929,
    sites: sites.map((s) => s.boothAddress),
    arbitrators: [`${ARBITRATOR_SUBNET}.${10 + Number(arbitrator.replace(/\D/g, ""))}`],
    authfile: "/etc/booth/authkey",
    tickets: [{ name: LAB_TICKET, ...LAB_TICKET_TIMING }],
  };
}

/** The sites of the lab that is up (throws when it is a one-site lab). */
export function labSites(): LabSite[] {
  const sites = requireState().sites;
  if (sites === undefined) {
    throw new Error("The lab that is up has one site: up({ sites: [2, 2] })");
  }
  return sites;
}

/** The site named `name` (or holding node `name`). */
export function site(name: string): LabSite {
  const s = labSites().find((x) => x.name === name || x.nodes.includes(name));
  if (s === undefined) throw new Error(`No site ${name} in this lab`);
  return s;
}

/** The other site. */
export function otherSite(name: string): LabSite {
  const own = site(name);
  return labSites().find((s) => s !== own)!;
}

async function must(argv: string[]): Promise<void> {
  await run(argv, { check: true, timeoutMs: 30_000 });
}

/**
 * The WAN of a two-site lab, once bridge 0 exists and before the nodes are plugged in: the
 * other bridges with a host address each, the router namespace with a delayed leg per location.
 */
export async function prepareWan(): Promise<void> {
  const nets = subnets();
  for (let k = 1; k < nets.length; k++) {
    await must(["ip", "link", "add", bridgeName(k), "type", "bridge"]);
    await must(["ip", "addr", "add", `${nets[k]}.1/24`, "dev", bridgeName(k)]);
    await must(["ip", "link", "set", bridgeName(k), "up"]);
  }
  await must(["ip", "netns", "add", ROUTER_NS]);
  await must(["ip", "netns", "exec", ROUTER_NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
  await must(["ip", "-n", ROUTER_NS, "link", "set", "lo", "up"]);
  for (let k = 0; k < nets.length; k++) {
    const leg = `prmr${k}`;
    await must(["ip", "link", "add", leg, "type", "veth", "peer", "name", `${leg}p`]);
    await must(["ip", "link", "set", `${leg}p`, "netns", ROUTER_NS]);
    await must(["ip", "link", "set", leg, "master", bridgeName(k), "up"]);
    await must(["ip", "-n", ROUTER_NS, "link", "set", `${leg}p`, "name", `eth${k}`]);
    await must([
      "ip",
      "-n",
      ROUTER_NS,
      "addr",
      "add",
      `${routerAddress(nets[k])}/24`,
      "dev",
      `eth${k}`,
    ]);
    await must(["ip", "-n", ROUTER_NS, "link", "set", `eth${k}`, "up"]);
  }
  await addWanDelay(nets.length);
}

/** How the WAN delay is made: `tc netem` where the kernel has it, else the delay line. */
export function wanDelayMode(): "netem" | "delay-line" {
  return existsSync(WAN_DELAY_PID) ? "delay-line" : "netem";
}

/**
 * Delays what the router sends between locations by {@link WAN_DELAY_MS}: `tc netem` on each leg
 * when the kernel has it; otherwise (a kernel built without sch_netem, as on this machine:
 * "Specified qdisc kind is unknown", and no modules to load) every forwarded packet goes through
 * wan_delay.py, a userspace delay line on two tun devices in the router namespace.
 */
async function addWanDelay(legs: number): Promise<void> {
  const netem = (k: number) =>
    run(
      ["ip", "netns", "exec", ROUTER_NS, "tc", "qdisc", "add", "dev", `eth${k}`, "root"].concat(
        ["netem", "delay", `${WAN_DELAY_MS}ms`],
      ),
      { check: k > 0 },
    );
  if ((await netem(0)).code === 0) {
    for (let k = 1; k < legs; k++) await netem(k);
    return;
  }
  // Detached with its own stdio: a child holding our pipes would keep run() waiting for ever.
  const line = ["python3", WAN_DELAY_SCRIPT, String(WAN_DELAY_MS), WAN_DELAY_PID].map(shellQuote);
  await run([
    "ip",
    "netns",
    "exec",
    ROUTER_NS,
    "bash",
    "-c",
    `setsid -f ${line.join(" ")} </dev/null >>${shellQuote(STATE_DIR)}/wan_delay.log 2>&1`,
  ], { check: true, timeoutMs: 10_000 });
  const deadline = Date.now() + 10_000;
  while (!existsSync(WAN_DELAY_PID)) {
    if (Date.now() > deadline) throw new Error("The WAN delay line did not start");
    await sleep(20);
  }
  const ns = (argv: string[]) => must(["ip", "netns", "exec", ROUTER_NS, ...argv]);
  // Packets come back on wanout with sources of other subnets: no reverse-path filter there.
  await ns(["sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"]);
  for (const dev of ["wanin", "wanout"]) {
    await ns(["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.rp_filter=0`]);
    await ns(["ip", "link", "set", dev, "up"]);
  }
  await ns(["ip", "route", "add", "default", "dev", "wanin", "table", "100"]);
  for (let k = 0; k < legs; k++) {
    await ns(["sysctl", "-q", "-w", `net.ipv4.conf.eth${k}.rp_filter=0`]);
    await ns(["ip", "rule", "add", "iif", `eth${k}`, "lookup", "100"]);
  }
}

/** booth.conf and its key in every node's directory (bind-mounted over /etc/booth). */
export function writeBoothFiles(state: { sites: LabSite[]; arbitrator: string }): void {
  const conf = renderBoothConfig(labBoothConfig(state.sites, state.arbitrator));
  const key = crypto.getRandomValues(new Uint8Array(64));
  const all = [...state.sites.flatMap((s) => s.nodes), state.arbitrator];
  for (const n of all) {
    const dir = `${nodeDir(n)}/etc-booth`;
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${dir}/booth.conf`, conf);
    // The key is binary, mode 0600, read by boothd (root, before it drops to hacluster).
    Deno.writeFileSync(`${dir}/authkey`, key, { mode: 0o600 });
    Deno.chmodSync(`${dir}/authkey`, 0o600);
  }
}

/**
 * Turns IPv6 off in a node's network namespace. boothd finds its own site by dumping the
 * interface addresses over netlink, IPv6 first, and Debian 12's booth (1.0-283) waits for an
 * NLMSG_DONE in a datagram of its own; this kernel (6.18) sends the IPv6 dump's DONE in the same
 * datagram as the addresses, so boothd and every booth client hung there for ever (strace: the
 * DONE received, then recvmsg again). With no IPv6 address the IPv6 dump is a lone DONE, and the
 * IPv4 dump still ends with a separate one. The lab uses IPv4 only.
 */
export async function ipv4Only(ns: string): Promise<void> {
  for (const conf of ["all", "default", "lo"]) {
    await must([
      "ip",
      "netns",
      "exec",
      ns,
      "sysctl",
      "-q",
      "-w",
      `net.ipv6.conf.${conf}.disable_ipv6=1`,
    ]);
  }
}

/** Starts the arbitrator's boothd (it has no cluster to run it). */
export async function startArbitrator(node: string): Promise<void> {
  await startDetached(node, ["boothd", "daemon", "-S", "-c", "/etc/booth/booth.conf"], {
    logFile: "/var/log/pacemaker/boothd.out",
  });
}

/** The router leg of a location: a site's name or "arbitrator". */
function legOf(location: string): string {
  if (location === "arbitrator") return "eth2";
  const i = labSites().findIndex((s) => s.name === location);
  if (i < 0) throw new Error(`No location ${location}: use a site name or arbitrator`);
  return `eth${i}`;
}

/** Cuts a location off the WAN (a site or "arbitrator"): its router leg goes down. */
export async function cutSiteLink(location: string): Promise<void> {
  await must(["ip", "-n", ROUTER_NS, "link", "set", legOf(location), "down"]);
}

/** Joins a location to the WAN again. */
export async function healSiteLink(location: string): Promise<void> {
  await must(["ip", "-n", ROUTER_NS, "link", "set", legOf(location), "up"]);
}

/** `booth list` as seen from `node` (a site node or the arbitrator). */
export function boothList(node: string): Promise<ExecResult> {
  return exec(node, ["booth", "list", "-c", "/etc/booth/booth.conf"], { timeoutMs: 15_000 });
}

/** True when `node`'s own CIB holds the ticket as granted (what Pacemaker acts on). */
export async function ticketGrantedAt(node: string): Promise<boolean> {
  const r = await exec(node, ["crm_ticket", "-t", LAB_TICKET, "-q"], { timeoutMs: 10_000 });
  return r.code === 0 && /granted="true"/.test(r.stdout);
}

/** The ticket's state XML at `node` (for failure reports). */
export async function ticketState(node: string): Promise<string> {
  const r = await exec(node, ["crm_ticket", "-t", LAB_TICKET, "-q"], { timeoutMs: 10_000 });
  return `${r.stdout.trim()}${r.stderr.trim()}`;
}

/** Measured round trip between two nodes of different locations (ms, median of 5 pings). */
export async function roundTripMs(from: string, to: string): Promise<number> {
  const r = await exec(from, ["ping", "-c", "5", "-i", "0.2", "-q", nodeAddress(to)], {
    timeoutMs: 20_000,
  });
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) : NaN;
}

/** True when a two-site lab is what is up. */
export function twoSiteLabUp(): boolean {
  return readState()?.sites !== undefined;
}

/** A site's writer VIP (`.100` of its subnet, where its MariaDBs also listen). */
export function siteWriterVip(name: string): string {
  return `${site(name).subnet}.100`;
}

/**
 * Memory of the whole lab: the resident memory of every process of every node (each node's PID
 * namespace), in MiB, plus the datadir filesystems' use (tmpfs pages are memory too).
 */
export async function labMemoryMb(): Promise<number> {
  const state = requireState();
  const nodes = [...state.nodes, ...(state.arbitrator ? [state.arbitrator] : [])];
  const namespaces = new Set<string>();
  for (const n of nodes) {
    const holder = readPid(`${nodeDir(n)}/holder.pid`);
    if (holder === null) continue;
    try {
      namespaces.add(Deno.readLinkSync(`/proc/${holder}/ns/pid`));
    } catch {
      // Off.
    }
  }
  let kb = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (!namespaces.has(Deno.readLinkSync(`/proc/${e.name}/ns/pid`))) continue;
      const m = /^VmRSS:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${e.name}/status`));
      if (m) kb += Number(m[1]);
    } catch {
      // Gone.
    }
  }
  const df = await run([
    "df",
    "-k",
    "--output=used",
    ...state.nodes.map((n) => `${nodeDir(n)}/mysql-data`),
  ]);
  for (const line of df.stdout.split("\n").slice(1)) kb += Number(line.trim()) || 0;
  return Math.round(kb / 1024);
}
