/**
 * `deno task bench:monitor [--agent heartbeat|prm|both] [--runs N] [--check-level L]`: the cost
 * of one monitor action on the lab, wall time and CPU time (user + system of the agent and every
 * tool it runs), median and spread of N calls (default 100), on the promoted and on an unpromoted
 * node, for our agent and for the upstream ocf:heartbeat:mysql.
 *
 * Each agent is loaded in turn into one lab (its own resource id, so that neither sees the other's
 * attributes), converges, and is then called directly inside the node's namespaces the way
 * pacemaker-execd calls it: a clean environment with PATH, OCF_ROOT, OCF_RESOURCE_INSTANCE,
 * OCF_RESKEY_<param> and the OCF_RESKEY_CRM_meta_* values of a recurring monitor of that role.
 * bash's `time` measures each call (wall, and the CPU of the waited-for process tree). Needs root,
 * no other lab up (waits PRM_LAB_WAIT_MS for one to go down) and `deno task build && deno task
 * install`. Takes about 2-3 minutes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  agentParams,
  agentSpec,
  loadAgent,
  type LoadAgentOptions,
  unloadAgent,
} from "../tests/lab/agent.ts";
import { crmMon, replicaStatus, waitFor } from "../tests/lab/cluster.ts";
import { down, up } from "../tests/lab/lifecycle.ts";
import { exec, NODE_PATH, shellQuote } from "../tests/lab/nodes.ts";

/** One measured call. */
export interface Sample {
  /** Exit code of the monitor. */
  rc: number;
  /** Wall time in ms. */
  wallMs: number;
  /** User + system CPU time in ms. */
  cpuMs: number;
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Parses the `rc wall user sys` lines the node-side loop prints (times in seconds). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+) ([\d.]+) ([\d.]+) ([\d.]+)$/.exec(line.trim());
    if (m) {
      out.push({
        rc: Number(m[1]),
        wallMs: Number(m[2]) * 1000,
        cpuMs: (Number(m[3]) + Number(m[4])) * 1000,
      });
    }
  }
  return out;
}

/** Options of {@linkcode monitorEnv}. */
export interface MonitorEnvOptions {
  /** Resource id (OCF_RESOURCE_INSTANCE). */
  id: string;
  /** Instance parameters. */
  params: Record<string, string>;
  /** Role of the recurring monitor. */
  role: "Promoted" | "Unpromoted";
  /** Interval of that monitor in ms. */
  intervalMs: number;
  /** Node the call runs on. */
  node: string;
  /** Clone instances. */
  cloneMax: number;
  /** OCF_CHECK_LEVEL (omitted when 0). */
  checkLevel?: number;
  /** Provider and type (OCF_RESOURCE_PROVIDER/TYPE). */
  provider: string;
  /** Agent type. */
  type: string;
}

/** The environment pacemaker-execd gives a recurring monitor of a promotable clone instance. */
export function monitorEnv(o: MonitorEnvOptions): Record<string, string> {
  const env: Record<string, string> = {
    PATH: NODE_PATH,
    OCF_ROOT: "/usr/lib/ocf",
    OCF_RA_VERSION_MAJOR: "1",
    OCF_RA_VERSION_MINOR: "1",
    OCF_RESOURCE_INSTANCE: o.id,
    OCF_RESOURCE_PROVIDER: o.provider,
    OCF_RESOURCE_TYPE: o.type,
    OCF_EXIT_REASON_PREFIX: "ocf-exit-reason:",
    HA_RSCTMP: "/run/resource-agents",
    OCF_RESKEY_crm_feature_set: "3.16.1",
    OCF_RESKEY_CRM_meta_name: "monitor",
    OCF_RESKEY_CRM_meta_interval: String(o.intervalMs),
    OCF_RESKEY_CRM_meta_timeout: "30000",
    OCF_RESKEY_CRM_meta_role: o.role,
    OCF_RESKEY_CRM_meta_on_node: o.node,
    OCF_RESKEY_CRM_meta_on_node_uuid: o.node.replace(/^\D+/, ""),
    OCF_RESKEY_CRM_meta_clone: "0",
    OCF_RESKEY_CRM_meta_clone_max: String(o.cloneMax),
    OCF_RESKEY_CRM_meta_clone_node_max: "1",
    OCF_RESKEY_CRM_meta_globally_unique: "false",
    OCF_RESKEY_CRM_meta_interleave: "true",
    OCF_RESKEY_CRM_meta_notify: "true",
    OCF_RESKEY_CRM_meta_promotable: "true",
    OCF_RESKEY_CRM_meta_promoted_max: "1",
    OCF_RESKEY_CRM_meta_promoted_node_max: "1",
    OCF_RESKEY_CRM_meta_master_max: "1",
    OCF_RESKEY_CRM_meta_master_node_max: "1",
  };
  for (const [k, v] of Object.entries(o.params)) env[`OCF_RESKEY_${k}`] = v;
  if (o.checkLevel) env.OCF_CHECK_LEVEL = String(o.checkLevel);
  return env;
}

/**
 * The bash loop run inside a node: N calls of `agent ACTION` (default monitor) under `env -i`,
 * each timed by bash's `time` (ms resolution), printing `rc wall user sys` per call.
 */
export function loopScript(
  agentPath: string,
  env: Record<string, string>,
  runs: number,
  action = "monitor",
): string {
  const envArgs = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(" ");
  return [
    "TIMEFORMAT='%3R %3U %3S'",
    `for i in $(seq ${runs}); do`,
    `  t=$( { time env -i ${envArgs} ${shellQuote(agentPath)} ${action} >/dev/null 2>&1; ` +
    `echo "rc=$?" >&2; } 2>&1 )`,
    '  rc=$(printf "%s\\n" "$t" | sed -n "s/^rc=//p")',
    '  tm=$(printf "%s\\n" "$t" | grep -E "^[0-9.]+ [0-9.]+ [0-9.]+$")',
    '  echo "$rc $tm"',
    "done",
  ].join("\n");
}

/** One series of calls: which action, on which node, with the monitor environment of which role. */
interface Call {
  label: string;
  role: "Promoted" | "Unpromoted";
  node: string;
  intervalMs: number;
  action: string;
}

interface Row {
  agent: string;
  role: string;
  node: string;
  samples: Sample[];
}

async function converged(id: string, nodes: string[]): Promise<
  { promoted: string; unpromoted: string } | null
> {
  const mon = await crmMon();
  const inst = mon.resources.filter((r) => r.id === id);
  const promoted = inst.filter((r) => r.role === "Promoted").flatMap((r) => r.nodes);
  const unpromoted = inst.filter((r) => r.role === "Unpromoted").flatMap((r) => r.nodes);
  if (promoted.length !== 1 || unpromoted.length !== nodes.length - 1) return null;
  for (const n of unpromoted) {
    const rs = await replicaStatus(n);
    if (!rs || rs.Slave_IO_Running !== "Yes" || rs.Slave_SQL_Running !== "Yes") return null;
  }
  return { promoted: promoted[0], unpromoted: unpromoted.sort()[0] };
}

async function measureAgent(
  agent: string,
  nodes: string[],
  opts: { runs: number; checkLevel: number; log: (m: string) => void },
): Promise<Row[]> {
  const { provider, type } = agentSpec(agent);
  // Own ids per agent: the upstream agent's <rsc>_REPL_INFO has our format, and must not be read
  // by the other agent.
  const id = agent === "heartbeat" ? "p_hb" : "p_mysql";
  const cloneId = agent === "heartbeat" ? "ms_hb" : "ms_mysql";
  const load: LoadAgentOptions = { agent, id, cloneId, writerVip: null };
  await loadAgent(load);
  const t0 = Date.now();
  const where = await waitFor(() => converged(id, nodes), {
    timeoutMs: 120_000,
    what: `${agent} converged (1 promoted, the others replicating)`,
  });
  opts.log(`${agent}: converged in ${Date.now() - t0} ms, promoted ${where.promoted}`);
  const rows: Row[] = [];
  try {
    // For prm also `meta-data` on the unpromoted node: the launcher, Deno's start and the loading
    // of the agent's code with no work at all, the floor under any of its actions.
    const calls: Call[] = [
      {
        label: "Promoted",
        role: "Promoted",
        node: where.promoted,
        intervalMs: 2000,
        action: "monitor",
      },
      {
        label: "Unpromoted",
        role: "Unpromoted",
        node: where.unpromoted,
        intervalMs: 3000,
        action: "monitor",
      },
    ];
    if (agent === "prm") {
      calls.push({
        label: "start-up only (meta-data)",
        role: "Unpromoted",
        node: where.unpromoted,
        intervalMs: 3000,
        action: "meta-data",
      });
    }
    for (const { label, role, node, intervalMs, action } of calls) {
      const env = monitorEnv({
        id,
        params: agentParams(agent),
        role,
        intervalMs,
        node,
        cloneMax: nodes.length,
        checkLevel: opts.checkLevel,
        provider,
        type,
      });
      const path = `/usr/lib/ocf/resource.d/${provider}/${type}`;
      const r = await exec(node, loopScript(path, env, opts.runs, action), {
        timeoutMs: opts.runs * 10_000,
        check: true,
      });
      const samples = parseSamples(r.stdout);
      if (samples.length !== opts.runs) {
        throw new Error(
          `${agent} ${label}: ${samples.length} of ${opts.runs} samples parsed: ${
            r.stdout.slice(0, 300)
          }`,
        );
      }
      rows.push({ agent, role: label, node, samples });
      opts.log(`${agent} ${label} on ${node}: ${samples.length} calls`);
    }
  } finally {
    await unloadAgent({ cloneId });
  }
  return rows;
}

function fmt(xs: number[]): string {
  return `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      agent: { type: "string", default: "both" },
      runs: { type: "string", default: "100" },
      "check-level": { type: "string", default: "0" },
    },
  });
  const agents = values.agent === "both" ? ["prm", "heartbeat"] : values.agent!.split(",");
  const runs = Number(values.runs);
  const checkLevel = Number(values["check-level"]);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");
  const log = (m: string) => console.error(`[bench:monitor] ${m}`);
  const lab = await up({
    nodes: 3,
    waitFreeMs: Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0"),
    log,
  });
  const rows: Row[] = [];
  try {
    for (const agent of agents) {
      rows.push(...await measureAgent(agent, lab.nodes, { runs, checkLevel, log }));
    }
  } finally {
    await down({ log });
  }
  console.log(
    `\nCost of one monitor action (OCF_CHECK_LEVEL=${checkLevel}), ms, median (min–max) of ` +
      `${runs} calls\n`,
  );
  console.log("| agent | role | wall ms | CPU ms (user+sys) | exit codes |");
  console.log("|---|---|---:|---:|---|");
  for (const r of rows) {
    const codes = [...new Set(r.samples.map((s) => s.rc))].join(",");
    console.log(
      `| ${r.agent} | ${r.role} | ${fmt(r.samples.map((s) => s.wallMs))} | ${
        fmt(r.samples.map((s) => s.cpuMs))
      } | ${codes} |`,
    );
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:monitor: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
