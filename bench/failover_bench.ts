/**
 * `deno task bench:failover [--agent heartbeat|prm|both|A,B,...] [--runs N] [--json FILE]`: failover
 * figures on the lab, median and spread over N runs (default 5) per agent. The agents alternate
 * run by run so both see the same machine state; each run brings its own lab up and down (about
 * 45 s per run). Both agents get the same operations: monitors every 2 s (promoted) and 3 s
 * (unpromoted), the same timeouts, migration-threshold=1, a writer VIP, a writer of about 20-50
 * rows/s through it, and faults injected at a random phase of the promoted monitor (so the
 * detection delay is uniform in 0-2 s for both; "failure detected → writable" is the agent's own
 * reaction, read from the killed node's pacemaker.log).
 *
 * Needs root, no other lab up (waits up to PRM_LAB_WAIT_MS for one to go down), and for the prm
 * agent `deno task build && deno task install`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type FailoverRun, measureFailoverOnFreshLab } from "../tests/lab/failover.ts";

/** Median of numbers (mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median s (min–max)" of durations in ms; "–" without values. */
export function cell(xs: number[]): string {
  const v = xs.filter((x) => x >= 0);
  if (v.length === 0) return "–";
  const sec = (ms: number) => (ms / 1000).toFixed(2);
  return `${sec(median(v))} s (${sec(Math.min(...v))}–${sec(Math.max(...v))})`;
}

type Figure = [string, (r: FailoverRun) => number];

const FIGURES: Figure[] = [
  ["converge (load → writable, replicas replicating)", (r) => r.convergeMs],
  ["mysqld kill → failure detected (monitor)", (r) => r.killDetectedMs],
  [
    "failure detected → writable",
    (r) => r.killDetectedMs < 0 ? -1 : r.killToWritableMs - r.killDetectedMs,
  ],
  ["**mysqld kill → writable**", (r) => r.killToWritableMs],
  ["mysqld kill → every replica replicates from the new master", (r) => r.killReplicasFollowMs],
  ["power cut → node lost (corosync)", (r) => r.powerCutLostMs],
  [
    "node lost → writable",
    (r) => r.powerCutLostMs < 0 ? -1 : r.powerCutToWritableMs - r.powerCutLostMs,
  ],
  ["**power cut → writable**", (r) => r.powerCutToWritableMs],
  [
    "power cut → every replica replicates from the new master",
    (r) => r.powerCutReplicasFollowMs,
  ],
  ["rejoin (boot → replicating; runs where it rejoined)", (r) => r.rejoinMs],
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      agent: { type: "string", default: "both" },
      runs: { type: "string", default: "5" },
      json: { type: "string" },
    },
  });
  // "both", one name, or a comma list (e.g. ocf:prmhead:mysql_prm,prm to compare two builds).
  const agents = values.agent === "both" ? ["heartbeat", "prm"] : values.agent!.split(",");
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");
  const waitFreeMs = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
  const results = new Map<string, FailoverRun[]>(agents.map((a) => [a, []]));
  // A run whose phase timed out is a finding too (the dump is printed): counted, not fatal.
  const unfinished = new Map<string, string[]>(agents.map((a) => [a, []]));
  const t0 = Date.now();
  for (let i = 0; i < runs; i++) {
    for (const agent of agents) {
      const log = (m: string) => console.error(`[run ${i + 1}/${runs} ${agent}] ${m}`);
      try {
        const run = await measureFailoverOnFreshLab({ agent, log, waitFreeMs });
        log(JSON.stringify(run));
        results.get(agent)!.push(run);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        log(`did not finish: ${why}`);
        unfinished.get(agent)!.push(`run ${i + 1}: ${why}`);
      }
    }
  }
  const minutes = ((Date.now() - t0) / 60_000).toFixed(1);
  console.log(
    `\nFailover benchmark: ${runs} run(s) per agent, 3-node lab, monitors 2 s / 3 s, ` +
      `${minutes} min\n`,
  );
  console.log(`| figure (median, min–max) | ${agents.join(" | ")} |`);
  console.log(`|---|${agents.map(() => "---:").join("|")}|`);
  for (const [label, get] of FIGURES) {
    const cells = agents.map((a) => cell(results.get(a)!.map(get)));
    console.log(`| ${label} | ${cells.join(" | ")} |`);
  }
  const count = (f: (r: FailoverRun) => boolean) =>
    agents.map((a) => results.get(a)!.filter(f).length).join(" | ");
  console.log(`| runs with acknowledged rows lost | ${count((r) => r.rowsLost.length > 0)} |`);
  console.log(
    `| runs where the old master came back with errant transactions and was kept out | ${
      count((r) => r.keptOut !== "")
    } |`,
  );
  console.log(
    `| runs with diverged data or broken replication | ${
      count((r) => !r.dataEqual || r.replicationErrors.length > 0)
    } |`,
  );
  console.log(
    `| runs that did not finish (a phase timed out) | ${
      agents.map((a) => unfinished.get(a)!.length).join(" | ")
    } |`,
  );
  for (const a of agents) for (const why of unfinished.get(a)!) console.log(`- ${a} ${why}`);
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(Object.fromEntries(results), null, 2) + "\n",
    );
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:failover: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
