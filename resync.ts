/**
 * Slave resync without GTIDs: where a replica resumes in a new master's binary log.
 *
 * After the master is lost, each surviving replica has applied everything it received, and the
 * most advanced one is promoted. Every other replica must then replicate from the new master
 * starting right after its own last received transaction, so that it receives exactly what it
 * lacks: nothing skipped, nothing applied twice. Without GTIDs the only link between the two
 * servers is the transactions themselves: the replica's relay log holds the old master's events,
 * the new master's binary log (written with log_slave_updates) holds the same transactions
 * re-encoded at other positions, and `binlog.ts` hashes a transaction to the same MD5 in both.
 *
 * Everything here is pure: plain data in, a decision out. Reading relay logs and fetching the new
 * master's binary log happen in `binlog.ts` and `remote_binlog.ts`.
 *
 * ## The run rule
 *
 * The replica supplies its trailing transactions `t[0..N-1]` (oldest first, the last one being the
 * last transaction it received). A position `p` in the new master's transaction list `m` is
 * *consistent* with the replica when the replica's trailing transactions, aligned so that `t[N-1]`
 * sits at `m[p]`, are equal MD5 for MD5:
 *
 * - for all `N` of them (a full match), or
 * - for every transaction back to the first transaction of the new master's history, when the
 *   caller says the list starts there (older binlogs purged) and at least `minRun` of them match.
 *
 * A position whose last `minRun` transactions match but which differs further back is
 * *contradicted*: the replica's older history is not what the new master holds before that point,
 * which is exactly what happens inside a block of identical transactions (the same statement run
 * many times in the same second). The resume point is returned only when exactly one consistent
 * position exists; it is the end of the new master's copy of the replica's last transaction
 * (file and end position in the new master's binlog). Otherwise the answer is a refusal with a
 * reason: a replica is never pointed anywhere blindly.
 *
 * Consequences, stated so that nobody is surprised:
 * - Identical transactions are handled by context: if the replica's whole trailing window lies
 *   inside a block of identical transactions, several positions are consistent and the answer is
 *   `ambiguous`; supplying more trailing transactions (a larger `N`) resolves it.
 * - `N < minRun` is refused as `too-short`, unless the replica states that the list is its whole
 *   history since replication was set up (`replicaHistoryComplete`).
 * - Transactions that can never match (statement-based ones re-logged as rows, row-less
 *   transactions that vanish from a ROW binlog, `DROP TABLE` rewritten to `DROP TABLE IF EXISTS`,
 *   a MyISAM group ending with XID on one side and COMMIT on the other; binlog.ts says which) are not
 *   skipped: if one of them is among the replica's trailing transactions, the full match fails and
 *   the answer is `not-found` (or `ambiguous`), never a guess. Skipping them would need a way to
 *   tell them apart from a transaction the new master really lacks, and those look the same.
 * - A replica that holds a transaction the new master never received cannot match (its last
 *   transaction is not in the new master's list): `not-found`. The election is what prevents it.
 * - Where the trailing transactions come from: the replica's relay log (what it received, after
 *   its SQL thread applied it all). Right after a previous resync the relay log may hold fewer
 *   than `minRun` transactions (CHANGE MASTER TO purges it); the replica's own binary log written
 *   with log_slave_updates hashes the same and can supply them instead.
 *
 * Two drivers apply the rule: {@link ResumeMatcher} reads the new master's list forward (one
 * pass, constant memory), {@link BackwardResumeSearch} takes it one file at a time, newest first,
 * so that a replica that is close reads only the newest file and one that is far behind reads
 * back only as far as it must; both hash every transaction once and reach the same decision.
 *
 * @module
 */

/** One transaction of the replica's trailing list: only its MD5 is used for matching. */
export interface TrailingTransaction {
  /** MD5 of the transaction payload as computed by `binlog.ts`, 32 lowercase hex digits. */
  md5: string;
  /** Origin timestamp from the event headers (seconds), used by the remote fetcher's guard. */
  timestamp?: number;
  /** End position in the old master's coordinates (from the relay log); informative only. */
  end?: number;
}

/** One transaction of the new master's binary log, in log order. */
export interface MasterTransaction {
  /** Binary log file (base name or path) holding the transaction. */
  file: string;
  /** End position of the transaction's last event in that file: where a replica resumes. */
  end: number;
  /** MD5 as computed by `binlog.ts`. */
  md5: string;
  /** Origin timestamp from the event headers (seconds). */
  timestamp?: number;
}

/** Options for {@link ResumeMatcher} and {@link findResumePointIn}. */
export interface MatchOptions {
  /**
   * Minimum number of trailing transactions that must match at a position before it counts.
   * Default {@link DEFAULT_MIN_RUN}.
   */
  minRun?: number;
  /**
   * The trailing list is the replica's whole history since replication was set up, so a list
   * shorter than `minRun` is acceptable (all of it must then match). Default false.
   */
  replicaHistoryComplete?: boolean;
  /** How many consistent positions to keep for the refusal message. Default 5. */
  keepCandidates?: number;
}

/** Options for {@link ResumeMatcher.decide}. */
export interface DecideOptions {
  /**
   * The transactions pushed start at the beginning of the new master's available history (its
   * oldest binary log), so a partial match that reaches that beginning counts as consistent.
   * When false, such a match is undecided and the decision is `incomplete`. Default false.
   */
  fromHistoryStart?: boolean;
}

/** Default minimum run length. Ten transactions that are equal MD5 for MD5 and in order. */
export const DEFAULT_MIN_RUN = 10;

/** A position in the new master's transaction list that agrees with the replica's history. */
export interface ResumeCandidate {
  /** New master's binary log file holding the replica's last transaction. */
  file: string;
  /** End position of that transaction: the resume position. */
  pos: number;
  /** How many of the replica's trailing transactions matched, newest first. */
  matched: number;
  /** True when the match was cut short by the beginning of the pushed list, not by a mismatch. */
  atStart: boolean;
}

/** Why no resume point was given. */
export type RefusalReason = "empty" | "too-short" | "not-found" | "ambiguous" | "incomplete";

/** The answer: a resume point, or a reasoned refusal. */
export type ResumeDecision =
  | {
    ok: true;
    /** New master's binary log file to resume from. */
    file: string;
    /** Position in that file (MASTER_LOG_POS). */
    pos: number;
    /** How many trailing transactions matched at that position. */
    matched: number;
    /** How many positions matched the last `minRun` but were contradicted further back. */
    contradicted: number;
    /** Number of new master transactions examined. */
    scanned: number;
  }
  | {
    ok: false;
    reason: RefusalReason;
    /** A sentence for the log and the exit reason. */
    message: string;
    /** Consistent (or undecided) positions, at most `keepCandidates` of them. */
    candidates: ResumeCandidate[];
    contradicted: number;
    scanned: number;
  };

interface Rule {
  trailing: string[];
  need: number;
  minRun: number;
  keep: number;
  tooShort: boolean;
}

function makeRule(trailing: readonly TrailingTransaction[], options: MatchOptions): Rule {
  const minRun = options.minRun ?? DEFAULT_MIN_RUN;
  if (!Number.isInteger(minRun) || minRun < 1) {
    throw new RangeError(`Minimum run must be a positive integer, got ${minRun}`);
  }
  const md5s = trailing.map((t, i) => {
    if (!/^[0-9a-f]{32}$/.test(t.md5)) {
      throw new TypeError(`Trailing transaction ${i} has no valid MD5: ${JSON.stringify(t.md5)}`);
    }
    return t.md5;
  });
  return {
    trailing: md5s,
    need: Math.min(minRun, md5s.length),
    minRun,
    keep: options.keepCandidates ?? 5,
    tooShort: md5s.length < minRun && !options.replicaHistoryComplete,
  };
}

/** Candidate positions seen so far, by class (see the module documentation). */
class Tally {
  full: ResumeCandidate[] = [];
  fullCount = 0;
  atStart: ResumeCandidate[] = [];
  atStartCount = 0;
  contradicted = 0;
  scanned = 0;

  /** Records a position whose last `matched` transactions agree, `depth` being all it had. */
  add(rule: Rule, tx: MasterTransaction, matched: number, depth: number): void {
    const candidate = { file: tx.file, pos: tx.end, matched, atStart: false };
    if (matched === rule.trailing.length) {
      this.fullCount++;
      if (this.full.length < rule.keep) this.full.push(candidate);
    } else if (matched === depth) {
      candidate.atStart = true;
      this.atStartCount++;
      if (this.atStart.length < rule.keep) this.atStart.push(candidate);
    } else {
      this.contradicted++;
    }
  }
}

/** The last N MD5s of the new master's list, and how far back they agree with the replica's. */
class RunWindow {
  readonly #t: string[];
  readonly #ring: string[];
  count = 0;

  constructor(trailing: string[]) {
    this.#t = trailing;
    this.#ring = new Array(Math.max(trailing.length, 1));
  }

  /** Adds the next MD5; returns how many of the replica's newest transactions end here. */
  push(md5: string): number {
    const t = this.#t;
    const n = t.length;
    this.count++;
    if (n === 0) return 0;
    const ring = this.#ring;
    ring[(this.count - 1) % n] = md5;
    // Cheap reject first: nearly every position fails on the newest MD5.
    if (md5 !== t[n - 1]) return 0;
    const depth = Math.min(n, this.count);
    let matched = 1;
    while (matched < depth && ring[(this.count - 1 - matched) % n] === t[n - 1 - matched]) {
      matched++;
    }
    return matched;
  }
}

function decideTally(rule: Rule, tally: Tally, options: DecideOptions): ResumeDecision {
  const n = rule.trailing.length;
  const { scanned, contradicted } = tally;
  const refuse = (
    reason: RefusalReason,
    message: string,
    candidates: ResumeCandidate[] = [],
  ): ResumeDecision => ({ ok: false, reason, message, candidates, contradicted, scanned });
  if (n === 0) {
    return refuse("empty", "The replica supplied no trailing transactions to look for");
  }
  if (rule.tooShort) {
    return refuse(
      "too-short",
      `The replica supplied ${n} trailing transactions, fewer than the minimum run of ` +
        `${rule.minRun}; a shorter run is not proof enough of the position`,
    );
  }
  const fromStart = options.fromHistoryStart ?? false;
  // Older history can only rule out the undecided positions, never the full matches.
  if (!fromStart && tally.atStartCount > 0 && tally.fullCount < 2) {
    return refuse(
      "incomplete",
      `${tally.atStartCount} position(s) match back to the first transaction examined; ` +
        "older binary logs are needed to confirm or rule them out",
      tally.atStart,
    );
  }
  const withStart = fromStart || tally.fullCount >= 2;
  const consistentCount = tally.fullCount + (withStart ? tally.atStartCount : 0);
  const consistent = withStart ? [...tally.atStart, ...tally.full] : tally.full;
  if (consistentCount === 1) {
    const c = consistent[0];
    return {
      ok: true,
      file: c.file,
      pos: c.pos,
      matched: c.matched,
      contradicted,
      scanned,
    };
  }
  if (consistentCount === 0) {
    const detail = contradicted > 0
      ? `; ${contradicted} position(s) matched the last ${rule.need} but differ further back`
      : "";
    return refuse(
      "not-found",
      `The replica's last ${n} transactions are not a run in the ${scanned} transactions of ` +
        `the new master's binary log${detail}`,
    );
  }
  const where = consistent.map((c) => `${c.file}:${c.pos}`).join(", ");
  return refuse(
    "ambiguous",
    `The replica's last ${n} transactions match at ${consistentCount} positions of the new ` +
      `master's binary log (${where}${consistentCount > consistent.length ? ", ..." : ""}); ` +
      "supply more trailing transactions to tell them apart",
    consistent,
  );
}

/**
 * A streaming matcher: push the new master's transactions in log order, then {@link decide}.
 * It keeps only a ring of the last `N` MD5s (N = the replica's trailing length), so a binary log of
 * millions of transactions is matched in constant memory.
 *
 * @example
 * ```ts
 * const matcher = new ResumeMatcher(trailing, { minRun: 10 });
 * for await (const tx of readTransactions(files)) matcher.push(tx);
 * const decision = matcher.decide({ fromHistoryStart: true });
 * ```
 */
export class ResumeMatcher {
  readonly #rule: Rule;
  readonly #window: RunWindow;
  readonly #tally = new Tally();

  /** Prepares a matcher for one replica's trailing transactions (oldest first). */
  constructor(trailing: readonly TrailingTransaction[], options: MatchOptions = {}) {
    this.#rule = makeRule(trailing, options);
    this.#window = new RunWindow(this.#rule.trailing);
  }

  /** Number of new master transactions pushed so far. */
  get scanned(): number {
    return this.#tally.scanned;
  }

  /** Feeds the next transaction of the new master's binary log (in log order). */
  push(tx: MasterTransaction): void {
    const matched = this.#window.push(tx.md5);
    this.#tally.scanned++;
    if (matched > 0 && matched >= this.#rule.need) {
      this.#tally.add(this.#rule, tx, matched, this.#window.count);
    }
  }

  /** Applies the run rule to everything pushed so far (see the module documentation). */
  decide(options: DecideOptions = {}): ResumeDecision {
    return decideTally(this.#rule, this.#tally, options);
  }
}

/**
 * The same rule, fed with the new master's binary log newest file first: each call to
 * {@link addOlder} adds the file that precedes everything added so far. Every transaction is
 * hashed once: a position's class only changes with older context when its match reached the
 * oldest transaction seen, and such positions lie within the first `N - 1` transactions, the only
 * ones kept between calls. This is what lets a replica read only as many of the new master's
 * files as its resume point needs, newest first, and discard each file once hashed.
 *
 * @example
 * ```ts
 * const search = new BackwardResumeSearch(trailing);
 * let decision = await search.addOlder(readTransactions([newestFile]));
 * if (!decision.ok && decision.reason === "incomplete") {
 *   decision = await search.addOlder(readTransactions([previousFile]), { fromHistoryStart: true });
 * }
 * ```
 */
export class BackwardResumeSearch {
  readonly #rule: Rule;
  readonly #tally = new Tally();
  #head: MasterTransaction[] = [];

  /** Prepares a search for one replica's trailing transactions (oldest first). */
  constructor(trailing: readonly TrailingTransaction[], options: MatchOptions = {}) {
    this.#rule = makeRule(trailing, options);
  }

  /** Number of new master transactions added so far. */
  get scanned(): number {
    return this.#tally.scanned;
  }

  /** The decision over what was added so far, without adding anything. */
  decide(options: DecideOptions = {}): ResumeDecision {
    return decideTally(this.#rule, this.#tally, options);
  }

  /**
   * Adds the transactions that precede everything added so far (in log order) and decides.
   * `fromHistoryStart` says this segment starts at the new master's oldest binary log.
   */
  async addOlder(
    segment: Iterable<MasterTransaction> | AsyncIterable<MasterTransaction>,
    options: DecideOptions = {},
  ): Promise<ResumeDecision> {
    const rule = this.#rule;
    const keepHead = Math.max(rule.trailing.length - 1, 0);
    const window = new RunWindow(rule.trailing);
    const tally = this.#tally;
    // Positions still undecided are re-examined below with the older context.
    tally.atStart = [];
    tally.atStartCount = 0;
    const head: MasterTransaction[] = [];
    for await (const tx of segment) {
      if (head.length < keepHead) head.push(tx);
      tally.scanned++;
      const matched = window.push(tx.md5);
      if (matched > 0 && matched >= rule.need) tally.add(rule, tx, matched, window.count);
    }
    // The newer head: a position h there was classified before from h + 1 transactions; only
    // those whose match reached its beginning (h + 1 agreeing) can be classified differently now.
    for (let h = 0; h < this.#head.length; h++) {
      const tx = this.#head[h];
      if (head.length < keepHead) head.push(tx);
      const matched = window.push(tx.md5);
      if (matched >= h + 1 && matched >= rule.need) tally.add(rule, tx, matched, window.count);
    }
    this.#head = head;
    return decideTally(rule, tally, options);
  }
}

/**
 * Finds the resume point of a replica in the new master's transaction list (any iterable or async
 * iterable, consumed once, in constant memory).
 *
 * @param trailing The replica's last transactions received from the old master, oldest first.
 * @param master The new master's transactions in binary log order.
 * @param options Run rule options, and whether `master` starts at the new master's first binlog.
 */
export async function findResumePointIn(
  trailing: readonly TrailingTransaction[],
  master: Iterable<MasterTransaction> | AsyncIterable<MasterTransaction>,
  options: MatchOptions & DecideOptions = {},
): Promise<ResumeDecision> {
  const matcher = new ResumeMatcher(trailing, options);
  for await (const tx of master) matcher.push(tx);
  return matcher.decide(options);
}

/** Options for {@link chooseTrailing}. */
export interface ChooseTrailingOptions {
  /** How many trailing transactions are wanted (e.g. 64). */
  count: number;
}

/**
 * Picks the trailing transactions a replica should look for: the tail of its relay log (what it
 * received), or, when that holds fewer than `n` transactions (relay logs are purged by CHANGE
 * MASTER TO and by relay_log_purge), the tail of its own binary log written with
 * log_slave_updates, which hashes the same once the SQL thread has applied everything received
 * (also when it holds no more than the relay log: see `replicaHistoryComplete` of the lookup).
 * The binary log tail is used only if it ends with exactly the relay log's transactions (so that
 * local writes or re-encoded transactions cannot slip in); with an empty relay log it is used as
 * is, and a local write at its end then simply makes the search refuse (`not-found`).
 *
 * @param relayTail The last transactions of the relay log, oldest first.
 * @param binlogTail The last transactions of the replica's own binary log, oldest first.
 * @param options How many are wanted.
 */
export function chooseTrailing<T extends TrailingTransaction>(
  relayTail: readonly T[],
  binlogTail: readonly T[],
  options: ChooseTrailingOptions,
): { source: "relay-log" | "binlog"; trailing: T[] } {
  const n = options.count;
  const relay = relayTail.slice(-n);
  // An equally short binary log is still worth taking: when it is the server's whole history,
  // it proves a run shorter than the minimum (the relay log never can).
  if (relay.length >= n || binlogTail.length < relay.length) {
    return { source: "relay-log", trailing: relay };
  }
  const own = binlogTail.slice(-n);
  const offset = own.length - relay.length;
  const agrees = relay.every((t, i) => t.md5 === own[offset + i].md5);
  return agrees ? { source: "binlog", trailing: own } : { source: "relay-log", trailing: relay };
}
