/**
 * The server process: find the binary, initialise a datadir, start it as `user` directly (never
 * mysqld_safe, so a kill sticks), wait until it accepts connections, stop it with escalation, and
 * clean pid/socket leftovers. Knows nothing about SQL: readiness is a probe the caller passes.
 *
 * @module
 */

import { sleep } from "./timer.ts";
import type { Budget } from "./budget.ts";
import { runChild } from "./child.ts";
import { chownNoFollow, readBoundedFile, readTail } from "./safe_fs.ts";

/** What a readiness probe saw. */
export type ProbeResult = "up" | "starting";

/** Where the server's files are and how to run it. */
export interface ServerLayout {
  /** Server binary (absolute). */
  binary: string;
  /** Command prefix words (e.g. numactl ...). */
  prefix: string[];
  /** --defaults-file. */
  config: string;
  /** --datadir. */
  datadir: string;
  /** System user (--user). */
  user: string;
  /** System group for created directories. */
  group: string;
  /** --log-error. */
  log: string;
  /** --pid-file. */
  pid: string;
  /** --socket. */
  socket: string;
  /** Extra options, appended last. */
  extra: string[];
}

const SEARCH_DIRS = [
  "/usr/sbin",
  "/usr/bin",
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/local/mysql/bin",
];

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Finds mariadbd or mysqld (never mysqld_safe); `extraDirs` are searched first. */
export function findServerBinary(extraDirs: string[] = []): string | undefined {
  for (const name of ["mariadbd", "mysqld"]) {
    for (const dir of [...extraDirs, ...SEARCH_DIRS]) {
      if (isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
    }
  }
  return undefined;
}

/** True when `path` is an executable file. */
export function executableExists(path: string): boolean {
  return isExecutable(path);
}

/**
 * Reads a pid file (written by the server's user: a small regular file, anything else is
 * ignored); undefined when absent or not a number.
 */
export function readPidFile(path: string): number | undefined {
  const read = readBoundedFile(path, 64);
  if (!read.ok) return undefined;
  const text = read.text.trim();
  return /^\d{1,9}$/.test(text) ? Number(text) : undefined;
}

/**
 * True when `pid` runs (a zombie counts as exited, since the host's init may reap late) and, when
 * `binary` is given, its executable has the same base name (a recycled pid is not our server).
 */
export function processAlive(pid: number, binary?: string): boolean {
  const state = processState(pid);
  if (state === undefined || state === "Z" || state === "X") return false;
  if (binary === undefined) return true;
  try {
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0];
    const exe = cmd.split("/").pop() ?? "";
    const want = binary.split("/").pop() ?? "";
    // Debian's mysqld is a symlink to mariadbd: accept either name for either.
    return exe === want || (/^(mysqld|mariadbd)$/.test(exe) && /^(mysqld|mariadbd)$/.test(want));
  } catch {
    return false;
  }
}

/** The running server's pid from its pid file, or undefined. */
export function serverPid(layout: ServerLayout): number | undefined {
  const pid = readPidFile(layout.pid);
  return pid !== undefined && processAlive(pid, layout.binary) ? pid : undefined;
}

/** Flavour of a binary from `--version`: kind and "major.minor.patch". */
export async function binaryVersion(
  binary: string,
  budget: Budget,
): Promise<{ mariadb: boolean; version: string }> {
  const r = await runChild([binary, "--version"], { budget, maxMs: 10_000 });
  return versionOf(r.stdout);
}

/**
 * True when `binary` is MariaDB's server: by its name when it says so (no process to start on a
 * failover's path), else from `--version`.
 */
export async function isMariadbServer(binary: string, budget: Budget): Promise<boolean> {
  if (/mariadb/i.test(binary.slice(binary.lastIndexOf("/") + 1))) return true;
  return (await binaryVersion(binary, budget)).mariadb;
}

function versionOf(text: string): { mariadb: boolean; version: string } {
  const m = /Ver\s+(?:\S+\s+Distrib\s+)?(\d+\.\d+\.\d+)/.exec(text) ??
    /(\d+\.\d+\.\d+)/.exec(text);
  return { mariadb: /mariadb/i.test(text), version: m ? m[1] : "0.0.0" };
}

/** The last `lines` lines of a file (its last 64 KiB at most), "" when unreadable. */
export function tailFile(path: string, lines = 8): string {
  const text = readTail(path, 64 * 1024);
  return text === undefined ? "" : text.trimEnd().split("\n").slice(-lines).join(" | ");
}

/** The uid of `user` and gid of `group` from /etc/passwd and /etc/group (unknown: undefined). */
export function systemIds(user: string, group: string): { uid?: number; gid?: number } {
  const ids: { uid?: number; gid?: number } = {};
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const f = line.split(":");
      if (f[0] === user) ids.uid = Number(f[2]);
    }
    for (const line of Deno.readTextFileSync("/etc/group").split("\n")) {
      const f = line.split(":");
      if (f[0] === group) ids.gid = Number(f[2]);
    }
  } catch {
    // Without the files ids stay unknown and nothing is chowned.
  }
  return ids;
}

/** True when the system user exists. */
export function systemUserExists(user: string): boolean {
  return systemIds(user, "").uid !== undefined;
}

function ensureDir(dir: string, ids: { uid?: number; gid?: number }): void {
  try {
    Deno.statSync(dir);
    return;
  } catch {
    // Created below.
  }
  Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (ids.uid !== undefined && Deno.uid() === 0) chownNoFollow(dir, { uid: ids.uid, gid: ids.gid });
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function removeIfExists(path: string): boolean {
  try {
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes a stale pid file and socket (only call when no server process runs). */
export function cleanLeftovers(layout: ServerLayout): string[] {
  const removed: string[] = [];
  for (const path of [layout.pid, layout.socket, `${layout.socket}.lock`]) {
    if (removeIfExists(path)) removed.push(path);
  }
  return removed;
}

/** True when the datadir already holds a database (the mysql system schema). */
export function datadirInitialised(datadir: string): boolean {
  try {
    return Deno.statSync(`${datadir}/mysql`).isDirectory;
  } catch {
    return false;
  }
}

/** Initialises an empty datadir with mariadb-install-db or mysqld --initialize-insecure. */
export async function initialiseDatadir(
  layout: ServerLayout,
  budget: Budget,
): Promise<{ ok: boolean; output: string }> {
  const ids = systemIds(layout.user, layout.group);
  ensureDir(layout.datadir, ids);
  if (ids.uid !== undefined && Deno.uid() === 0) {
    chownNoFollow(layout.datadir, { uid: ids.uid, gid: ids.gid });
  }
  const { mariadb } = await binaryVersion(layout.binary, budget);
  let cmd: string;
  let args: string[];
  if (mariadb) {
    const dir = dirname(layout.binary);
    cmd = [
      `${dir}/mariadb-install-db`,
      "/usr/bin/mariadb-install-db",
      "/usr/local/mysql/scripts/mariadb-install-db",
    ]
      .find(isExecutable) ?? "mariadb-install-db";
    args = [
      `--defaults-file=${layout.config}`,
      `--datadir=${layout.datadir}`,
      `--user=${layout.user}`,
      "--skip-test-db",
      "--auth-root-authentication-method=socket",
    ];
  } else {
    cmd = layout.binary;
    args = [
      `--defaults-file=${layout.config}`,
      "--initialize-insecure",
      `--datadir=${layout.datadir}`,
      `--user=${layout.user}`,
    ];
  }
  const out = await runChild([cmd, ...args], { budget, maxOutputBytes: 256 * 1024 });
  const text = `${out.stdout}\n${out.stderr}`;
  return { ok: out.code === 0, output: text.trim().split("\n").slice(-5).join(" | ") };
}

/** Options for {@link startServer}. */
export interface StartOptions {
  /** Extra options for this start only (read-only, skip replica start, init file). */
  startArgs: string[];
  /** Absolute deadline (Date.now() ms). */
  deadline: number;
  /** Tells whether the server accepts connections yet. */
  probe: () => Promise<ProbeResult>;
  /** Interval between probes in ms. Default 100. */
  pollMs?: number;
}

/** Outcome of a start or stop. */
export interface ProcessOutcome {
  /** True on success. */
  ok: boolean;
  /** The server's pid, when known. */
  pid?: number;
  /** Why it failed, with the error log's tail. */
  reason?: string;
}

/**
 * Starts the server detached as `user` and waits until the probe says it is up. Fails with the
 * error log's tail when the process exits or the deadline passes.
 */
export async function startServer(
  layout: ServerLayout,
  options: StartOptions,
): Promise<ProcessOutcome> {
  const ids = systemIds(layout.user, layout.group);
  for (const path of [layout.pid, layout.socket, layout.log]) ensureDir(dirname(path), ids);
  const args = [
    `--defaults-file=${layout.config}`,
    `--datadir=${layout.datadir}`,
    `--pid-file=${layout.pid}`,
    `--socket=${layout.socket}`,
    `--log-error=${layout.log}`,
    ...(Deno.uid() === 0 ? [`--user=${layout.user}`] : []),
    ...options.startArgs,
    ...layout.extra,
  ];
  const argv = [...layout.prefix, layout.binary, ...args];
  let logSize = 0;
  try {
    logSize = Deno.statSync(layout.log).size;
  } catch {
    // No log yet.
  }
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
    clearEnv: true,
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      TZ: Deno.env.get("TZ") ?? "UTC",
    },
  }).spawn();
  child.unref();
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  const pollMs = options.pollMs ?? 100;
  while (true) {
    if (exited !== undefined) {
      return {
        ok: false,
        pid: child.pid,
        reason: `Server exited with code ${exited.code} during start: ${
          newLogText(layout.log, logSize)
        }`,
      };
    }
    let state: ProbeResult = "starting";
    try {
      state = await options.probe();
    } catch {
      state = "starting";
    }
    if (state === "up") return { ok: true, pid: child.pid };
    if (Date.now() >= options.deadline) {
      return {
        ok: false,
        pid: child.pid,
        reason: `Server did not accept connections before the start timeout: ${
          newLogText(layout.log, logSize)
        }`,
      };
    }
    await sleep(pollMs);
  }
}

function newLogText(path: string, fromSize: number): string {
  const text = readTail(path, 64 * 1024, fromSize);
  if (text === undefined) return "(no error log)";
  return text.trimEnd().split("\n").slice(-6).join(" | ") || tailFile(path, 6);
}

/** The state letter of `pid` in /proc (R, S, D, T, Z, ...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** Options for {@link stopServer}. */
export interface StopOptions {
  /** Absolute deadline (Date.now() ms) for the whole stop, SIGKILL included. */
  deadline: number;
  /**
   * How long SIGTERM may take before SIGKILL (default: all the time but the last 10 s). A server
   * known to be wedged gets a short grace: its orderly shutdown would only run out the clock.
   */
  termGraceMs?: number;
  /** Return once the server no longer accepts connections (async_stop). */
  untilUnreachable?: () => Promise<boolean>;
}

/** Waits until `pid` exits or `deadline`; true when it exited. */
export async function waitExit(pid: number, deadline: number, binary?: string): Promise<boolean> {
  while (processAlive(pid, binary)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Stops the server: SIGTERM, wait (leaving 10 s of the deadline for SIGKILL), SIGKILL, wait.
 * Fails when the process survives, so that Pacemaker fences the node.
 */
export async function stopServer(
  layout: ServerLayout,
  options: StopOptions,
): Promise<ProcessOutcome> {
  const pid = serverPid(layout);
  if (pid === undefined) {
    cleanLeftovers(layout);
    return { ok: true };
  }
  try {
    Deno.kill(pid, "SIGTERM");
  } catch {
    // Exited meanwhile.
  }
  if (options.untilUnreachable !== undefined) {
    while (Date.now() < options.deadline - 10_000 && processAlive(pid, layout.binary)) {
      if (await options.untilUnreachable()) return { ok: true, pid };
      await sleep(100);
    }
  }
  // A process stopped by a signal (SIGSTOP, a debugger) cannot act on SIGTERM until continued.
  const frozen = processState(pid) === "T";
  const termDeadline = frozen ? Date.now() : Math.max(
    Date.now() + 1_000,
    Math.min(
      options.deadline - 10_000,
      Date.now() + (options.termGraceMs ?? Number.MAX_SAFE_INTEGER),
    ),
  );
  if (!(await waitExit(pid, termDeadline, layout.binary))) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Exited meanwhile.
    }
    if (!(await waitExit(pid, Math.max(Date.now() + 2_000, options.deadline), layout.binary))) {
      return { ok: false, pid, reason: `Server pid ${pid} survived SIGTERM and SIGKILL` };
    }
    cleanLeftovers(layout);
    return { ok: true, pid, reason: `Server pid ${pid} ignored SIGTERM and was killed` };
  }
  cleanLeftovers(layout);
  return { ok: true, pid };
}
