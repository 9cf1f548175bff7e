/**
 * What the build and launcher tests share: running commands, building `dist/`, scratch folders
 * that no other user could have made (under the checkout's `.lab/`, never /tmp or /var/tmp),
 * installs into them, and unprivileged users to run things as.
 *
 * @module
 */

import assert from "node:assert/strict";
import { exists } from "../scripts/fs.ts";

/** The checkout. */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** What `deno task build` writes. */
export const DIST = `${ROOT}/dist`;

/** A finished command. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run a command. */
export interface RunOptions {
  /** Added to this process's environment, or the whole environment with `clearEnv`. */
  env?: Record<string, string>;
  /** Start from an empty environment. */
  clearEnv?: boolean;
  /** Working folder (default: /, which every user may enter). */
  cwd?: string;
}

/** Runs `cmd` with `args` and collects its output. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<Result> {
  const out = await new Deno.Command(cmd, {
    args,
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd: opts.cwd ?? "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Builds `dist/` (with `sfx`, the self-extracting files too) unless it is there. */
export async function ensureBuilt(opts: { sfx?: boolean } = {}): Promise<void> {
  const wanted = opts.sfx
    ? [`${DIST}/sfx/mysql_prm`, `${DIST}/sfx/prm_binlog_parser`]
    : [`${DIST}/mysql_prm`, `${DIST}/prm_binlog_parser`];
  if ((await Promise.all(wanted.map(exists))).every(Boolean)) return;
  const args = ["run", "-A", `${ROOT}/scripts/build.ts`, ...(opts.sfx ? ["--sfx"] : [])];
  const r = await run(Deno.execPath(), args);
  assert.equal(r.code, 0, `build failed: ${r.stderr}`);
}

/**
 * A new folder under the checkout's `.lab/` (root's, 0755, so every user may pass through it).
 * Remove it with `removeScratch`.
 */
export async function scratch(prefix: string): Promise<string> {
  await Deno.mkdir(`${ROOT}/.lab`, { recursive: true, mode: 0o755 });
  const dir = await Deno.makeTempDir({ dir: `${ROOT}/.lab`, prefix });
  await Deno.chmod(dir, 0o755);
  return await Deno.realPath(dir);
}

/** Removes a scratch folder, whoever made what is in it. */
export async function removeScratch(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true });
}

/** Where `install` put things. */
export interface Installed {
  /** The agent's launcher. */
  agent: string;
  /** The parser's launcher. */
  parser: string;
  /** `$PREFIX/lib/prm`. */
  libDir: string;
  /** PRM_CACHE_DIR given to the install. */
  cacheBase: string;
  /** The launchers' cache folder. */
  cache: string;
  /** The install's environment. */
  env: Record<string, string>;
}

/** Runs `deno task install` into `dir` (OCF_ROOT, PREFIX and PRM_CACHE_DIR all inside it). */
export async function install(dir: string): Promise<Installed> {
  const env = {
    OCF_ROOT: `${dir}/ocf`,
    PREFIX: `${dir}/usr`,
    PRM_CACHE_DIR: `${dir}/var/cache/prm`,
  };
  const r = await run(Deno.execPath(), ["run", "-A", `${ROOT}/scripts/install.ts`], { env });
  assert.equal(r.code, 0, `install failed: ${r.stderr}`);
  return {
    agent: `${dir}/ocf/resource.d/prm/mysql_prm`,
    parser: `${dir}/usr/bin/prm_binlog_parser`,
    libDir: `${dir}/usr/lib/prm`,
    cacheBase: env.PRM_CACHE_DIR,
    cache: `${env.PRM_CACHE_DIR}/deno`,
    env,
  };
}

/**
 * `n` unprivileged uids that no account uses. setpriv runs as any number, so no account is made
 * (and none is left behind); each uid's group is the same number.
 */
export function freeUids(n: number): number[] {
  const used = new Set<number>();
  for (const file of ["/etc/passwd", "/etc/group"]) {
    for (const line of Deno.readTextFileSync(file).split("\n")) {
      const id = Number(line.split(":")[2]);
      if (Number.isInteger(id)) used.add(id);
    }
  }
  const uids: number[] = [];
  for (let id = 61000; uids.length < n; id++) if (!used.has(id)) uids.push(id);
  return uids;
}

/** The command prefix that runs what follows as `uid` (group `uid`, no supplementary groups). */
export function asUser(uid: number): string[] {
  return ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
}

/** Makes `path`, a folder of `uid`'s own (0700), and returns it. */
export async function userFolder(path: string, uid: number): Promise<string> {
  await Deno.mkdir(path, { mode: 0o700 });
  await Deno.chown(path, uid, uid);
  return path;
}

/** Runs `cmd` with `args` as `uid` (see `asUser`). */
export async function runAs(
  uid: number,
  cmd: string,
  args: string[],
  opts: RunOptions = {},
): Promise<Result> {
  const [setpriv, ...rest] = asUser(uid);
  return await run(setpriv, [...rest, cmd, ...args], opts);
}

/** Asserts that `r` is the agent's meta-data. */
export function assertMetaData(r: Result, how: string): void {
  assert.equal(r.code, 0, `${how}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stdout, /<resource-agent name="mysql_prm"/, how);
  assert.match(r.stdout, /<\/resource-agent>/, how);
}

/** A file's owner, mode bits (07777) and kind, without following a link. */
export async function describe(path: string): Promise<{ uid: number; mode: number; kind: string }> {
  const s = await Deno.lstat(path);
  const kind = s.isSymlink ? "link" : s.isDirectory ? "dir" : "file";
  return { uid: s.uid!, mode: s.mode! & 0o7777, kind };
}
