/**
 * One time budget per action. Pacemaker gives every operation a timeout
 * (`OCF_RESKEY_CRM_meta_timeout`); past it, Pacemaker counts the action as failed (and for a
 * stop, fences the node) whatever the agent does next. So an action has exactly one deadline,
 * taken from that timeout minus a margin for the agent's own exit, and every wait, query, tool
 * call and child process gets its share of what is left: nothing may wait longer than the whole.
 *
 * A step that must leave time for later steps takes a {@link Budget.slice}: at most a fixed
 * amount, at most a fraction of what is left, and never past the action's deadline.
 *
 * @module
 */

import { sleep } from "./timer.ts";

/** How much of an operation's timeout the agent keeps for itself: a tenth, at most 5 s. */
export function marginFor(timeoutMs: number): number {
  return Math.min(5_000, Math.floor(timeoutMs / 10));
}

/** Options of {@link Budget.slice}. */
export interface SliceOptions {
  /** At most this many ms. */
  maxMs?: number;
  /** At most this fraction (0..1) of the time left. */
  fraction?: number;
  /** Leave at least this many ms of the parent's time for what comes after. */
  reserveMs?: number;
  /** At least this many ms, when the parent has them (a floor for a useful attempt). */
  minMs?: number;
}

/** Thrown by {@link Budget.check} once the time is up. */
export class BudgetExpiredError extends Error {
  /** What was running out of time. */
  readonly what: string;
  /** Makes the error for `what`. */
  constructor(what: string) {
    super(`Out of time: ${what}`);
    this.name = "BudgetExpiredError";
    this.what = what;
  }
}

/**
 * An absolute deadline with helpers to share it out.
 *
 * @example
 * ```ts
 * const budget = Budget.forOperation(20_000);
 * const wait = budget.slice({ maxMs: 10_000, fraction: 0.25 });
 * console.assert(wait.remainingMs() <= 10_000);
 * ```
 */
export class Budget {
  /** Absolute deadline (Date.now() ms). */
  readonly deadline: number;

  /** A budget ending at `deadline` (Date.now() ms). */
  constructor(deadline: number) {
    this.deadline = deadline;
  }

  /** The budget of an operation with timeout `timeoutMs` that starts now, less the margin. */
  static forOperation(timeoutMs: number, now: number = Date.now()): Budget {
    return new Budget(now + timeoutMs - marginFor(timeoutMs));
  }

  /** A budget of `ms` from now (for tools outside Pacemaker, e.g. `mysql_prm status`). */
  static ofMs(ms: number): Budget {
    return new Budget(Date.now() + ms);
  }

  /** Milliseconds left (0 once expired). */
  remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  /** True once the deadline has passed. */
  expired(): boolean {
    return Date.now() >= this.deadline;
  }

  /** Throws {@link BudgetExpiredError} once the deadline has passed. */
  check(what: string): void {
    if (this.expired()) throw new BudgetExpiredError(what);
  }

  /** A shorter budget inside this one (see {@link SliceOptions}). */
  slice(options: SliceOptions): Budget {
    const left = this.remainingMs();
    let ms = left - (options.reserveMs ?? 0);
    if (options.fraction !== undefined) ms = Math.min(ms, left * options.fraction);
    if (options.maxMs !== undefined) ms = Math.min(ms, options.maxMs);
    if (options.minMs !== undefined) ms = Math.max(ms, Math.min(options.minMs, left));
    return new Budget(Date.now() + Math.max(0, Math.floor(ms)));
  }

  /** `ms`, cut to what is left: the timeout to give one call. */
  cap(ms: number): number {
    return Math.max(0, Math.min(ms, this.remainingMs()));
  }

  /** An AbortSignal that fires at the deadline. */
  signal(): AbortSignal {
    return AbortSignal.timeout(Math.max(1, this.remainingMs()));
  }
}

/** Sleeps `ms`, or less when the budget ends sooner. */
export function delay(ms: number, budget?: Budget): Promise<void> {
  return sleep(budget === undefined ? ms : budget.cap(ms));
}

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /** Until when. */
  budget: Budget;
  /** Pause between two probes (ms). Default 200. */
  intervalMs?: number;
  /** Stop early (e.g. Pacemaker became unreachable): the last value is returned. */
  abandon?: () => boolean;
}

/**
 * Calls `probe` until it returns a value that is not undefined, the budget ends or `abandon`
 * says so; returns that value, or undefined. The probe runs at least once, even on an expired
 * budget, so a caller always gets one fresh answer.
 *
 * @example
 * ```ts
 * const ready = await waitUntil(async () => (await isReady()) || undefined, {
 *   budget: Budget.ofMs(3_000),
 * });
 * ```
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  options: WaitOptions,
): Promise<T | undefined> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (options.budget.expired() || options.abandon?.()) return undefined;
    await delay(options.intervalMs ?? 200, options.budget);
  }
}
