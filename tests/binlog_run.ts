/**
 * Runs a program for the parser's tests, killed if it outlives its deadline: a parser that waits
 * (on a FIFO, say) fails its test instead of hanging the suite.
 *
 * @module
 */

/** What a run printed and how it ended. */
export interface Run {
  /** Exit code (128 + the signal number when killed). */
  code: number;
  /** The signal that ended it (SIGKILL at the deadline), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` with `args` (environment: NO_COLOR=1 only) and returns its output; kills it after
 * `timeoutMs` (default 120 s).
 *
 * @example
 * ```ts
 * const r = await runKilledAfter(Deno.execPath(), ["run", "-A", "binlog.ts", "/tmp/fifo"], 20_000);
 * ```
 */
export async function runKilledAfter(
  cmd: string,
  args: string[],
  timeoutMs = 120_000,
): Promise<Run> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      signal: out.signal,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}
