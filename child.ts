/**
 * The one way the agent runs another program (Pacemaker's tools, mariadb-binlog, the server's
 * `--version` and datadir initialisation, post_promote_script). The agent runs as root, so every
 * child gets:
 *
 * - an explicit, minimal environment ({@link MINIMAL_ENV} plus what the caller names): nothing of
 *   the agent's own environment, where Pacemaker puts every `OCF_RESKEY_*` value, passwords too;
 * - a deadline from the action's budget: SIGTERM a short grace before it, SIGKILL at it (a tool
 *   that ignores SIGTERM must not hold the action), and the answer
 *   {@link TIMED_OUT} (124, as timeout(1) says) whatever the child did meanwhile;
 * - bounded output: past `maxOutputBytes` the rest is dropped (a hostile or broken tool cannot
 *   fill the agent's memory);
 * - no standard input.
 *
 * @module
 */

import { after, type Timer } from "./timer.ts";
import type { Budget } from "./budget.ts";

/** PATH and locale every child gets (Pacemaker's tools and the server's live in these). */
export const MINIMAL_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  LC_ALL: "C",
};

/** Exit code reported for a child that did not finish in time. */
export const TIMED_OUT = 124;
/** Exit code reported for a program that does not exist. */
export const NOT_FOUND = 127;

/** Default grace between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 1_000;

/** What a child did. */
export interface ChildResult {
  /** Exit code; {@link TIMED_OUT} when the deadline passed, {@link NOT_FOUND} when missing. */
  code: number;
  /** True when it was stopped at the deadline. */
  timedOut: boolean;
  /** Standard output (at most `maxOutputBytes`), decoded. */
  stdout: string;
  /** Standard error (at most `maxOutputBytes`), decoded. */
  stderr: string;
  /** The signal that ended it, if any. */
  signal?: string;
}

/** Options of {@link runChild}. */
export interface RunChildOptions {
  /** The time it may take (the caller's share of the action's budget). */
  budget: Budget;
  /** At most this many ms, even when the budget has more. */
  maxMs?: number;
  /** Variables added to {@link MINIMAL_ENV} (never a password). */
  env?: Record<string, string>;
  /** Output kept per stream. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Grace between SIGTERM and SIGKILL. Default {@link KILL_GRACE_MS}. */
  graceMs?: number;
  /** Working directory. Default "/" (never a folder another user controls). */
  cwd?: string;
  /** Drop standard output (the child writes files). */
  discardStdout?: boolean;
}

/** A stream being read into memory up to a limit, which can be abandoned. */
interface BoundedRead {
  /** The bytes kept, once the stream ended (or was cancelled). */
  bytes: Promise<Uint8Array>;
  /** Stops reading (a grandchild may hold the pipe open after the child ended). */
  cancel(): void;
}

function readBounded(stream: ReadableStream<Uint8Array> | null, max: number): BoundedRead {
  if (stream === null) return { bytes: Promise.resolve(new Uint8Array()), cancel: () => {} };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let kept = 0;
  const bytes = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (kept < max) {
          const part = value.subarray(0, max - kept);
          chunks.push(part);
          kept += part.length;
        }
        // Past the limit the stream is still drained, so the child never blocks on a full pipe.
      }
    } catch {
      // Cancelled: what was read stands.
    }
    const out = new Uint8Array(kept);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  })();
  return { bytes, cancel: () => void reader.cancel().catch(() => {}) };
}

/**
 * Runs `argv` (no shell) and returns its result; never throws for a missing program, a failure
 * or a timeout (see {@link ChildResult}).
 *
 * @example
 * ```ts
 * const r = await runChild(["/usr/sbin/crm_node", "-n"], { budget: Budget.ofMs(5_000) });
 * if (r.code === 0) console.log(r.stdout);
 * ```
 */
export async function runChild(argv: string[], options: RunChildOptions): Promise<ChildResult> {
  // SIGKILL must land within the budget too: SIGTERM comes a grace earlier (at most half of
  // what is left, for short budgets).
  const left = options.budget.remainingMs();
  const graceMs = Math.min(options.graceMs ?? KILL_GRACE_MS, Math.floor(left / 2));
  const limitMs = Math.min(options.maxMs ?? Number.MAX_SAFE_INTEGER, left - graceMs);
  if (limitMs <= 0) {
    return { code: TIMED_OUT, timedOut: true, stdout: "", stderr: `${argv[0]}: no time left` };
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: options.discardStdout ? "null" : "piped",
      stderr: "piped",
      clearEnv: true,
      env: { ...MINIMAL_ENV, ...options.env },
      cwd: options.cwd ?? "/",
    }).spawn();
  } catch (err) {
    const missing = err instanceof Deno.errors.NotFound;
    return {
      code: missing ? NOT_FOUND : 126,
      timedOut: false,
      stdout: "",
      stderr: `${argv[0]}: ${missing ? "not found" : (err as Error).message}`,
    };
  }
  const max = options.maxOutputBytes ?? 1024 * 1024;
  const stdout = readBounded(options.discardStdout ? null : child.stdout, max);
  const stderr = readBounded(child.stderr, max);
  let timedOut = false;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  let graceTimer: Timer | undefined;
  const termTimer = after(limitMs, () => {
    timedOut = true;
    kill("SIGTERM");
    graceTimer = after(graceMs, () => kill("SIGKILL"));
  });
  const status = await child.status;
  termTimer.cancel();
  graceTimer?.cancel();
  // A grandchild may still hold the pipes open: wait for the output only briefly after the end.
  const settle = async (read: BoundedRead) => {
    const timer = after(200, () => read.cancel());
    try {
      return await read.bytes;
    } finally {
      timer.cancel();
    }
  };
  const dec = new TextDecoder();
  const out = dec.decode(await settle(stdout)).trim();
  const err = dec.decode(await settle(stderr)).trim();
  return {
    code: timedOut ? TIMED_OUT : status.code,
    timedOut,
    stdout: out,
    stderr: timedOut ? `${argv[0]}: no answer within ${limitMs} ms${err ? `: ${err}` : ""}` : err,
    signal: status.signal ?? undefined,
  };
}
