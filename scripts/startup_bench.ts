/**
 * `deno run -A scripts/startup_bench.ts [--rounds N]`: what starting the installed agent costs,
 * with and without its cache folder and V8's code cache, for `meta-data` and for `monitor` of a
 * stopped instance. Installs `dist/` (run `deno task build` first) into a scratch folder under the
 * checkout's `.lab/`, and runs the variants round-robin (so that a change of load on the machine
 * falls on all alike); prints a Markdown table of the median, 10th and 90th percentile in ms.
 *
 * Variants: the launcher as root (checked cache folder, code cache on, as installed); the same with
 * `--no-code-cache`; the launcher as another user (caches in memory); Deno run directly, with the
 * same cache folder and flags (what the launcher's shell adds).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DENO_RUN_ARGS } from "./launcher_shell.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

interface Variant {
  name: string;
  cmd: string[];
  env: Record<string, string>;
}

async function timed(v: Variant): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(v.cmd[0], {
    args: v.cmd.slice(1),
    env: v.env,
    clearEnv: true,
    cwd: "/",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  // meta-data succeeds; monitor of a stopped instance says "not running" (7).
  if (out.code !== 0 && out.code !== 7) {
    throw new Error(`${v.name}: exit ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

function percentile(sorted: number[], p: number): string {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string", default: "100" } },
  });
  const rounds = Number(values.rounds);
  await Deno.mkdir(`${root}/.lab`, { recursive: true, mode: 0o755 });
  const dir = await Deno.makeTempDir({ dir: `${root}/.lab`, prefix: "startup-bench-" });
  try {
    await Deno.chmod(dir, 0o755);
    const inst = { OCF_ROOT: `${dir}/ocf`, PREFIX: `${dir}/usr`, PRM_CACHE_DIR: `${dir}/cache` };
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}/scripts/install.ts`],
      env: inst,
      stdout: "null",
    }).output();
    if (!install.success) throw new Error("install failed: run 'deno task build' first");
    const agent = `${dir}/ocf/resource.d/prm/mysql_prm`;
    const noCodeCache = `${dir}/agent-no-code-cache`;
    const text = await Deno.readTextFile(agent);
    await Deno.writeTextFile(noCodeCache, text.replace(/^(exec \S+ run )/m, "$1--no-code-cache "));
    await Deno.chmod(noCodeCache, 0o755);
    await Deno.mkdir(`${dir}/state`, { mode: 0o700 });
    const env = {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      OCF_ROOT: "/usr/lib/ocf",
      OCF_RESOURCE_INSTANCE: "p_bench",
      OCF_RESKEY_datadir: `${dir}/data`,
      OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
      OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
      OCF_RESKEY_CRM_meta_interval: "10000",
      OCF_RESKEY_CRM_meta_timeout: "20000",
      HA_RSCTMP: `${dir}/state`,
    };
    const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    const deno = [`${dir}/usr/lib/prm/deno`, ...DENO_RUN_ARGS, `${dir}/usr/lib/prm/mysql_prm.js`];
    console.log("| action, variant | median ms | p10 | p90 |");
    console.log("| --- | ---: | ---: | ---: |");
    for (const action of ["meta-data", "monitor"]) {
      const variants: Variant[] = [
        { name: "launcher, root (code cache on)", cmd: [agent, action], env },
        { name: "launcher, root, --no-code-cache", cmd: [noCodeCache, action], env },
        { name: "launcher, another user (in memory)", cmd: [...nobody, agent, action], env },
        {
          name: "Deno alone, same folder and flags",
          cmd: [...deno, action],
          env: { ...env, DENO_DIR: `${dir}/cache/deno` },
        },
      ];
      const times: number[][] = variants.map(() => []);
      for (let r = -3; r < rounds; r++) {
        for (const [i, v] of variants.entries()) {
          const ms = await timed(v);
          if (r >= 0) times[i].push(ms);
        }
      }
      for (const [i, v] of variants.entries()) {
        const t = times[i].sort((a, b) => a - b);
        console.log(
          `| ${action}: ${v.name} | ${percentile(t, 0.5)} | ${percentile(t, 0.1)} | ${
            percentile(t, 0.9)
          } |`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`startup_bench: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
