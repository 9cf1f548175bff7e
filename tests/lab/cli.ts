/**
 * Command line of the lab, for people: `deno task lab COMMAND [ARGS]`.
 *
 *   up [--nodes N] [--wait S] bring a lab of N (2..5, default 3) nodes up (--wait: for another
 *                             lab on this machine to go down, up to S seconds, instead of refusing)
 *   up --sites 2,2            two sites (east prm1-2, west prm3-4, each its own cluster) and a
 *                             booth arbitrator (prm5), 20 ms each way between them (sites.ts)
 *   [fault] cut-link | heal-link  SITE|arbitrator   a location's WAN link down or up
 *   down                      tear everything down (also after a crash)
 *   status                    nodes, holder PIDs, crm_mon
 *   exec NODE CMD...          run a command inside a node
 *   dump                      crm_mon, replica status and logs of every node
 *   start-mysqld NODE | stop-mysqld NODE      MariaDB by hand (agents normally do it)
 *   [fault] kill-mysqld | power-cut | boot | isolate | heal | fill-disk | unfill-disk |
 *           exhaust-connections | release-connections | freeze-mysqld | thaw-mysqld  NODE
 *   [fault] fence NODE        stonith_admin --reboot NODE from another node (timed)
 *
 * NODE is prm1..prm5 (or 1..5, n1..n5).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { crmMon, dump, firstRunningNode } from "./cluster.ts";
import {
  boot,
  connectionHolderPidFile,
  exhaustConnections,
  fillDisk,
  freezeMysqld,
  heal,
  isolate,
  killMysqld,
  releaseConnectionHolder,
  startMysqld,
  stopMysqld,
  thawMysqld,
  unfillDisk,
} from "./faults.ts";
import { cutSiteLink, healSiteLink } from "./sites.ts";
import { fenceNode } from "./fencing.ts";
import { down, up } from "./lifecycle.ts";
import {
  canonicalNode,
  enterArgv,
  existsSync,
  holderPid,
  nodeDir,
  pidAlive,
  powerCut,
  readPid,
  readState,
  sh,
  shellQuote,
  sleep,
  STATE_DIR,
} from "./nodes.ts";

const USAGE =
  `usage: deno task lab up [--nodes N | --sites 2,2] [--wait SECONDS] | down | status | dump |
       deno task lab exec NODE CMD... | cut-link SITE | heal-link SITE
       deno task lab [fault] kill-mysqld|power-cut|boot|isolate|heal|fill-disk|unfill-disk|
                     exhaust-connections|release-connections|freeze-mysqld|thaw-mysqld|fence NODE
       deno task lab start-mysqld|stop-mysqld NODE`;

async function status(): Promise<number> {
  const st = readState();
  if (!st) {
    console.log(`No lab is up (${STATE_DIR}).`);
    return 1;
  }
  for (const n of st.nodes) {
    const pid = holderPid(n);
    const fenced = existsSync(`${nodeDir(n)}/fenced`) ? " (fenced)" : "";
    console.log(`${n}: ${pid !== null ? `running, holder PID ${pid}` : `off${fenced}`}`);
  }
  const fence = readPid(`${STATE_DIR}/fence_loop.pid`);
  console.log(`fence loop: ${fence !== null && pidAlive(fence) ? `PID ${fence}` : "not running"}`);
  for (const n of st.nodes) {
    const c = readPid(connectionHolderPidFile(n));
    if (c !== null && pidAlive(c)) console.log(`${n}: connections held by PID ${c}`);
  }
  const v = firstRunningNode();
  if (v) {
    const mon = await crmMon(v);
    console.log(
      `crm_mon on ${v}: DC ${mon.dc ?? "none"}, quorum ${mon.quorum}, online ` +
        mon.nodes.filter((n) => n.online).map((n) => n.name).join(" "),
    );
    for (const r of mon.resources) {
      console.log(`  ${r.parent ? `${r.parent}/` : ""}${r.id} ${r.role} ${r.nodes.join(" ")}`);
    }
  }
  return 0;
}

/** Runs in a detached background process: holds a node's connections until SIGTERM. */
async function holdConnections(node: string): Promise<number> {
  const held = await exhaustConnections(node);
  Deno.writeTextFileSync(
    `${nodeDir(node)}/connections.info`,
    `${held.count} connections held; refused with ${held.refusedWith.errno}\n`,
  );
  Deno.writeTextFileSync(connectionHolderPidFile(node), `${Deno.pid}\n`);
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
  await held.release();
  return 0;
}

async function exhaustInBackground(node: string): Promise<number> {
  const pidFile = connectionHolderPidFile(node);
  const old = readPid(pidFile);
  if (old !== null && pidAlive(old)) {
    console.error(`Connections of ${node} are already held by PID ${old}`);
    return 1;
  }
  const self = new URL(import.meta.url).pathname;
  await sh(
    `setsid -f ${shellQuote(Deno.execPath())} run -A ${shellQuote(self)} _hold-connections ` +
      `${node} </dev/null >>${shellQuote(nodeDir(node))}/connections.log 2>&1`,
    { check: true },
  );
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const pid = readPid(pidFile);
    if (pid !== null) {
      console.log(
        Deno.readTextFileSync(`${nodeDir(node)}/connections.info`).trim() + `, PID ${pid}`,
      );
      return 0;
    }
    await sleep(100);
  }
  console.error(`The connection holder did not report; see ${nodeDir(node)}/connections.log`);
  return 1;
}

async function fault(name: string, node: string): Promise<number> {
  switch (name) {
    case "kill-mysqld": {
      const pids = await killMysqld(node);
      console.log(pids.length ? `killed ${pids.join(" ")}` : `no mysqld on ${node}`);
      return pids.length ? 0 : 1;
    }
    case "power-cut":
      await powerCut(node);
      console.log(`${node} powered off`);
      return 0;
    case "boot": {
      const t0 = performance.now();
      await boot(node);
      console.log(`${node} online after ${Math.round(performance.now() - t0)} ms`);
      return 0;
    }
    case "isolate":
      await isolate(node);
      console.log(`${node} isolated`);
      return 0;
    case "heal":
      await heal(node);
      console.log(`${node} healed`);
      return 0;
    case "fill-disk":
      console.log(`wrote ${await fillDisk(node)} bytes into ${node}'s datadir filesystem`);
      return 0;
    case "unfill-disk":
      await unfillDisk(node);
      console.log(`${node}'s datadir filesystem unfilled`);
      return 0;
    case "exhaust-connections":
      return await exhaustInBackground(node);
    case "release-connections":
      console.log((await releaseConnectionHolder(node)) ? "released" : "nothing held");
      return 0;
    case "freeze-mysqld": {
      const p = freezeMysqld(node);
      console.log(p.length ? `stopped ${p.join(" ")}` : `no mysqld on ${node}`);
      return p.length ? 0 : 1;
    }
    case "thaw-mysqld": {
      const p = thawMysqld(node);
      console.log(p.length ? `continued ${p.join(" ")}` : `no mysqld on ${node}`);
      return p.length ? 0 : 1;
    }
    case "fence": {
      const r = await fenceNode(node);
      console.log(`${node} fenced in ${r.ms} ms (by ${r.via})`);
      return 0;
    }
    case "start-mysqld":
      console.log(`MariaDB on ${node}: PID ${await startMysqld(node)}`);
      return 0;
    case "stop-mysqld":
      await stopMysqld(node);
      console.log(`MariaDB on ${node} stopped`);
      return 0;
  }
  console.error(USAGE);
  return 2;
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      nodes: { type: "string", default: "3" },
      sites: { type: "string" },
      wait: { type: "string", default: "0" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: false,
  });
  let [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (cmd === "fault") [cmd, ...rest] = rest;
  switch (cmd) {
    case "up": {
      const sites = typeof values.sites === "string"
        ? values.sites.split(",").map(Number)
        : undefined;
      const lab = await up({
        nodes: Number(values.nodes),
        sites,
        waitFreeMs: Number(values.wait) * 1000,
        persistent: true,
      });
      console.log(`lab up: ${lab.nodes.join(" ")} online in ${lab.bringUpMs} ms`);
      return 0;
    }
    case "down":
      await down();
      console.log("lab down");
      return 0;
    case "status":
      return await status();
    case "dump":
      await dump();
      return 0;
    case "exec": {
      // Everything after NODE belongs to the command, flags included.
      const at = args.indexOf("exec");
      const [node, ...argv] = args.slice(at + 1);
      if (!node || !argv.length) {
        console.error(USAGE);
        return 2;
      }
      const enter = enterArgv(canonicalNode(node));
      const p = new Deno.Command(enter[0], {
        args: [...enter.slice(1), ...argv],
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      return (await p.status).code;
    }
    case "_hold-connections":
      return await holdConnections(canonicalNode(rest[0]));
  }
  if (!rest[0]) {
    console.error(USAGE);
    return 2;
  }
  if (cmd === "cut-link" || cmd === "heal-link") {
    await (cmd === "cut-link" ? cutSiteLink(rest[0]) : healSiteLink(rest[0]));
    console.log(`${rest[0]}'s WAN link ${cmd === "cut-link" ? "cut" : "back"}`);
    return 0;
  }
  return await fault(cmd, canonicalNode(rest[0]));
}

try {
  Deno.exit(await main(Deno.args));
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
