/**
 * `deno task bench:failover [--agent heartbeat|prm|both] [--runs N]`: failover figures on the lab,
 * median and spread over N runs (default 5) per agent, in one run so the agents are compared on
 * the same machine state. Each run brings its own lab up and down.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type FailoverRun, measureFailoverOnFreshLab } from "../tests/lab/failover.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cell(xs: number[]): string {
  const sec = (ms: number) => (ms / 1000).toFixed(1);
  return `${sec(median(xs))} s (${sec(Math.min(...xs))}–${sec(Math.max(...xs))})`;
}

const FIGURES: [keyof FailoverRun, string][] = [
  ["convergeMs", "converge"],
  ["killToWritableMs", "mysqld kill → writable"],
  ["powerCutToWritableMs", "power cut → writable"],
  ["rejoinMs", "rejoin"],
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { agent: { type: "string", default: "both" }, runs: { type: "string", default: "5" } },
  });
  const agents = values.agent === "both" ? ["heartbeat", "prm"] : [values.agent!];
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");
  const results = new Map<string, FailoverRun[]>();
  for (let i = 0; i < runs; i++) {
    for (const agent of agents) {
      const run = await measureFailoverOnFreshLab({ agent });
      console.error(`run ${i + 1}/${runs} ${agent}: ${JSON.stringify(run)}`);
      results.set(agent, [...(results.get(agent) ?? []), run]);
    }
  }
  console.log(`| figure (median, min–max of ${runs}) | ${agents.join(" | ")} |`);
  console.log(`|---|${agents.map(() => "---").join("|")}|`);
  for (const [key, label] of FIGURES) {
    const cells = agents.map((a) => cell(results.get(a)!.map((r) => r[key] as number)));
    console.log(`| ${label} | ${cells.join(" | ")} |`);
  }
  const lost = agents.map((a) =>
    results.get(a)!.filter((r) => !r.dataEqual || r.replicationErrors.length).length
  );
  console.log(`| runs with diverged data or broken replication | ${lost.join(" | ")} |`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:failover: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
