/**
 * `deno task install`: installs what `deno task build` wrote in `dist/`.
 *
 * - the agent at `$OCF_ROOT/resource.d/prm/mysql_prm` (OCF_ROOT defaults to /usr/lib/ocf), so that
 *   Pacemaker knows it as `ocf:prm:mysql_prm`, and a link `$PREFIX/sbin/mysql_prm` for the operator
 *   subcommands;
 * - the parser at `$PREFIX/bin/prm_binlog_parser` (PREFIX defaults to /usr/local);
 * - their cache folder `$PRM_CACHE_DIR/deno` (PRM_CACHE_DIR defaults to /var/cache/prm, made 0755;
 *   `deno` in it 0700), owned by the installing user (root), which the launchers use as DENO_DIR.
 *
 * The installed programs are `/bin/sh` launchers with absolute paths (Pacemaker runs agents with a
 * bare PATH, and ocf-tester runs them as `bash AGENT ACTION`, which a shell script survives). They
 * run the compiled binaries from `dist/bin/` when the build made them, otherwise the bundles with
 * the Deno runtime copied to `$PREFIX/lib/prm/deno`. Either way the launcher gives the program an
 * explicit environment and refuses an unsafe cache folder (launcher_shell.ts).
 *
 * Every folder written into must be safe by the launchers' rule (owned by root or the installing
 * user, writable by no one else, nor below a folder others can write, /tmp included), and every
 * file is written under a new random name, created exclusively, then renamed into place: a running
 * program never sees half a file, and no one can have put a link where a file is written.
 *
 * @module
 */

import { denoCommand, launcherScript } from "./build.ts";
import { type Program, PROGRAMS } from "./programs.ts";
import { exists } from "./fs.ts";
import { checkFolder } from "./launcher_shell.ts";
import { DatabaseSync } from "node:sqlite";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const dist = `${root}/dist`;

/** A folder the install will not write into, or use as a cache. */
export class UnsafeFolderError extends Error {
  /**
   * @param path The folder.
   * @param why What is wrong with it.
   */
  constructor(readonly path: string, why: string) {
    super(`refusing to use ${path}: ${why}`);
    this.name = "UnsafeFolderError";
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [sa, sb] = await Promise.all([Deno.stat(a), Deno.stat(b)]);
    return sa.size === sb.size && sa.mtime?.getTime() === sb.mtime?.getTime();
  } catch {
    return false;
  }
}

/** Makes `dir` (and what is missing above it) and returns its real path once it is safe. */
async function safeFolder(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const real = await Deno.realPath(dir);
  const check = await checkFolder(real);
  if (check.status !== "safe") throw new UnsafeFolderError(real, check.why || "cannot see it");
  return real;
}

/** A name beside `to` that nobody can have chosen first. */
function tempName(to: string): string {
  const slash = to.lastIndexOf("/");
  return `${to.slice(0, slash)}/.${to.slice(slash + 1)}.prm-${crypto.randomUUID()}`;
}

/** Writes `content` to `to` through a new file of its own, then renames it into place. */
async function installStream(
  content: ReadableStream<Uint8Array>,
  to: string,
  mode: number,
): Promise<void> {
  const tmp = tempName(to);
  // createNew: O_EXCL, so never through a link someone put there.
  const file = await Deno.open(tmp, { write: true, createNew: true, mode }).catch(async (e) => {
    await content.cancel();
    throw e;
  });
  try {
    await content.pipeTo(file.writable);
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, to);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

async function installFile(from: string, to: string, mode: number): Promise<void> {
  const src = await Deno.open(from, { read: true });
  await installStream(src.readable, to, mode);
}

async function installText(text: string, to: string, mode: number): Promise<void> {
  await installStream(ReadableStream.from([new TextEncoder().encode(text)]), to, mode);
}

/**
 * The launchers' cache folder `base/deno`: made when missing, its mode set to 0700, and refused
 * when it or a folder above it is not safe or when it is not the installing user's.
 */
async function cacheFolder(base: string): Promise<string> {
  const realBase = await safeFolder(base);
  const dir = `${realBase}/deno`;
  await Deno.mkdir(dir, { mode: 0o700 }).catch((e) => {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  });
  const info = await Deno.lstat(dir);
  if (!info.isDirectory) throw new UnsafeFolderError(dir, "not a folder (a link or another file)");
  if (info.uid !== Deno.uid()) {
    throw new UnsafeFolderError(dir, `owned by uid ${info.uid}, not by the installing user`);
  }
  // Its parent is safe and it is ours: the chmod cannot be sent elsewhere through a link.
  await Deno.chmod(dir, 0o700);
  const check = await checkFolder(dir);
  if (check.status !== "safe") throw new UnsafeFolderError(dir, check.why);
  return dir;
}

/**
 * Deno's caches in the cache folder (V8's code cache among them) are SQLite files whose
 * write-ahead log Deno does not checkpoint when a program ends, so every start reads the whole log
 * back. Each new build rewrites the bundle's code cache entry into that log, which grows to
 * SQLite's 4 MB limit over the builds; such a log cost every monitor ~3 ms of CPU (measured on a
 * lab node: 39.7 ms against 36.4 ms with a fresh folder, median of 60 runs each). The install
 * checkpoints each log into its database and empties it. Returns the caches it emptied.
 */
export function compactDenoCaches(cacheDir: string): string[] {
  const done: string[] = [];
  for (const name of ["v8_code_cache_v2", "dep_analysis_cache_v2", "node_analysis_cache_v2"]) {
    const path = `${cacheDir}/${name}`;
    try {
      if (!Deno.lstatSync(path).isFile) continue;
    } catch {
      continue;
    }
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA busy_timeout = 2000");
      // A program running now may keep part of the log busy: what is left waits for a later
      // install, which is harmless.
      const [r] = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").all();
      if (r && Number(r.busy) === 0) done.push(name);
    } finally {
      db.close();
    }
  }
  return done;
}

/** Installs `program` as a launcher at `target`; the files it runs go into `libDir`. */
async function installProgram(
  program: Program,
  where: { target: string; libDir: string; deno: string; cacheDir: string; compiled: boolean },
): Promise<void> {
  let command: string[];
  if (where.compiled) {
    command = [`${where.libDir}/${program.name}`];
    await installFile(`${dist}/bin/${program.name}`, command[0], 0o755);
  } else {
    const bundle = `${where.libDir}/${program.name}.js`;
    await installFile(`${dist}/lib/${program.name}.js`, bundle, 0o644);
    command = denoCommand(where.deno, bundle);
  }
  const text = launcherScript({ program, command, cacheDir: where.cacheDir });
  await installText(text, where.target, 0o755);
}

async function main(): Promise<void> {
  const ocfRoot = Deno.env.get("OCF_ROOT") || "/usr/lib/ocf";
  const prefix = Deno.env.get("PREFIX") || "/usr/local";
  const cacheBase = Deno.env.get("PRM_CACHE_DIR") || "/var/cache/prm";
  for (const program of PROGRAMS) {
    if (!await exists(`${dist}/lib/${program.name}.js`)) {
      throw new Error(`dist/lib/${program.name}.js is missing: run 'deno task build' first`);
    }
  }
  const compiled = await exists(`${dist}/bin/mysql_prm`) &&
    await exists(`${dist}/bin/prm_binlog_parser`);
  const libDir = await safeFolder(`${prefix}/lib/prm`);
  const cacheDir = await cacheFolder(cacheBase);
  const deno = `${libDir}/deno`;
  if (!compiled && !await sameFile(Deno.execPath(), deno)) {
    await installFile(Deno.execPath(), deno, 0o755);
    const { mtime } = await Deno.stat(Deno.execPath());
    if (mtime) await Deno.utime(deno, new Date(), mtime);
  }
  const folders: Record<string, string> = {
    mysql_prm: await safeFolder(`${ocfRoot}/resource.d/prm`),
    prm_binlog_parser: await safeFolder(`${prefix}/bin`),
  };
  const targets: Record<string, string> = {};
  for (const program of PROGRAMS) {
    const target = `${folders[program.name]}/${program.name}`;
    await installProgram(program, { target, libDir, deno, cacheDir, compiled });
    targets[program.name] = target;
    console.log(`install: ${target}${compiled ? " (launcher, compiled binary)" : " (launcher)"}`);
  }
  const compacted = compactDenoCaches(cacheDir);
  console.log(
    `install: ${cacheDir} (cache folder, 0700${
      compacted.length ? `; emptied the logs of ${compacted.join(", ")}` : ""
    })`,
  );
  const link = `${await safeFolder(`${prefix}/sbin`)}/mysql_prm`;
  const tmpLink = tempName(link);
  await Deno.symlink(targets.mysql_prm, tmpLink);
  await Deno.rename(tmpLink, link);
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
