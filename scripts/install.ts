/**
 * `deno task install`: installs what `deno task build` wrote in `dist/`.
 *
 * - the agent at `$OCF_ROOT/resource.d/prm/mysql_prm` (OCF_ROOT defaults to /usr/lib/ocf), so that
 *   Pacemaker knows it as `ocf:prm:mysql_prm`, and a link `$PREFIX/sbin/mysql_prm` for the operator
 *   subcommands;
 * - the parser at `$PREFIX/bin/prm_binlog_parser` (PREFIX defaults to /usr/local).
 *
 * Compiled binaries from `dist/bin/` are installed when the build made them. Otherwise the Deno
 * runtime is copied to `$PREFIX/lib/prm/deno` beside the bundles, and the installed programs are
 * `/bin/sh` launchers with absolute paths: Pacemaker runs agents with a bare PATH, and ocf-tester
 * runs them as `bash AGENT ACTION`, which a shell script survives.
 *
 * @module
 */

import { launcherScript } from "./build.ts";
import { PROGRAMS } from "./programs.ts";
import { exists } from "./fs.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const dist = `${root}/dist`;

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [sa, sb] = await Promise.all([Deno.stat(a), Deno.stat(b)]);
    return sa.size === sb.size && sa.mtime?.getTime() === sb.mtime?.getTime();
  } catch {
    return false;
  }
}

/** Copies `from` to `to` through a temporary name, so a running program never sees half a file. */
async function installFile(from: string, to: string, mode: number): Promise<void> {
  const tmp = `${to}.prm-tmp`;
  await Deno.copyFile(from, tmp);
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, to);
}

async function installText(text: string, to: string, mode: number): Promise<void> {
  const tmp = `${to}.prm-tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, to);
}

async function main(): Promise<void> {
  const ocfRoot = Deno.env.get("OCF_ROOT") || "/usr/lib/ocf";
  const prefix = Deno.env.get("PREFIX") || "/usr/local";
  const libDir = `${prefix}/lib/prm`;
  const targets: Record<string, string> = {
    mysql_prm: `${ocfRoot}/resource.d/prm/mysql_prm`,
    prm_binlog_parser: `${prefix}/bin/prm_binlog_parser`,
  };
  for (const program of PROGRAMS) {
    if (!await exists(`${dist}/lib/${program.name}.js`)) {
      throw new Error(`dist/lib/${program.name}.js is missing: run 'deno task build' first`);
    }
  }
  const compiled = await exists(`${dist}/bin/mysql_prm`) &&
    await exists(`${dist}/bin/prm_binlog_parser`);
  await Deno.mkdir(libDir, { recursive: true });
  const deno = `${libDir}/deno`;
  if (!compiled && !await sameFile(Deno.execPath(), deno)) {
    await installFile(Deno.execPath(), deno, 0o755);
    const { mtime } = await Deno.stat(Deno.execPath());
    if (mtime) await Deno.utime(deno, new Date(), mtime);
  }
  for (const program of PROGRAMS) {
    const target = targets[program.name];
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    if (compiled) {
      await installFile(`${dist}/bin/${program.name}`, target, 0o755);
    } else {
      const bundle = `${libDir}/${program.name}.js`;
      await installFile(`${dist}/lib/${program.name}.js`, bundle, 0o644);
      await installText(launcherScript(deno, bundle, program.prelude), target, 0o755);
    }
    console.log(`install: ${target}${compiled ? " (compiled binary)" : " (launcher)"}`);
  }
  const link = `${prefix}/sbin/mysql_prm`;
  await Deno.mkdir(`${prefix}/sbin`, { recursive: true });
  await Deno.remove(link).catch(() => {});
  await Deno.symlink(targets.mysql_prm, link);
  console.log(`install: ${link} -> ${targets.mysql_prm}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`install: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
