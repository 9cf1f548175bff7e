/**
 * Timers for the agent: the one place that schedules a callback or a sleep.
 *
 * Deno 2.9's global `setTimeout` is Node's (node:timers): its first call loads Deno's Node
 * compatibility layer (node's errors, util, async hooks, ...), which costs about 6.5 ms of CPU per
 * process, a seventh of a whole monitor action (measured: a script that sleeps 20 ms through
 * `setTimeout` 31.8 ms of CPU against 26.4 ms through `AbortSignal.timeout`; the unpromoted
 * monitor 46.3 -> 39.7 ms; median of 60 runs each, see the README). `AbortSignal.timeout` runs on
 * the runtime's own timers, so every timer of the agent is built on it here.
 *
 * The price: such a timer cannot be unscheduled, and it keeps the event loop alive until its
 * time comes. {@linkcode Timer.cancel} therefore only makes sure the callback never runs and
 * drops everything the callback holds; the agent's and the parser's entry points end with
 * `Deno.exit`, so a guard still pending never holds a process past its action. Code that runs
 * in a long-lived process of its own should keep its timers short.
 *
 * @module
 */

/** A scheduled callback. */
export interface Timer {
  /** Makes sure the callback never runs (a no-op once it has run). */
  cancel(): void;
}

/** Milliseconds as AbortSignal.timeout takes them: a whole number, 0 for nonsense. */
function wholeMs(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
}

/**
 * Runs `fire` once, `ms` milliseconds from now, unless cancelled first.
 *
 * @example
 * ```ts
 * import { after } from "./timer.ts";
 * const guard = after(10_000, () => console.error("too slow"));
 * // ... the guarded work ...
 * guard.cancel();
 * ```
 */
export function after(ms: number, fire: () => void): Timer {
  // The listener reaches `fire` only through this holder, so a cancelled timer keeps nothing
  // alive (a connection, a child) until its time comes.
  const holder: { fire?: () => void } = { fire };
  const signal = AbortSignal.timeout(wholeMs(ms));
  const onAbort = () => {
    const f = holder.fire;
    holder.fire = undefined;
    f?.();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  return {
    cancel() {
      holder.fire = undefined;
      signal.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @example
 * ```ts
 * import { sleep } from "./timer.ts";
 * await sleep(50);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}
