import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BackwardResumeSearch,
  chooseTrailing,
  findResumePointIn,
  type MasterTransaction,
  type ResumeDecision,
  ResumeMatcher,
  type TrailingTransaction,
} from "../resync.ts";

function md5(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/** A new master's log: transaction i has MD5 of label(i), 100 bytes each, 1000 per file. */
function masterLog(labels: string[], perFile = 1000): MasterTransaction[] {
  return labels.map((label, i) => ({
    file: `mysql-bin.${String(1 + Math.floor(i / perFile)).padStart(6, "0")}`,
    end: 256 + (i % perFile) * 100 + 100,
    md5: md5(label),
  }));
}

function trailingOf(labels: string[]): TrailingTransaction[] {
  return labels.map((label) => ({ md5: md5(label) }));
}

function distinct(from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`tx-${i}`);
  return out;
}

Deno.test("exact match resumes after the replica's last transaction", async () => {
  const labels = distinct(0, 500);
  const log = masterLog(labels);
  const d = await findResumePointIn(trailingOf(labels.slice(290, 300)), log);
  assert.ok(d.ok, JSON.stringify(d));
  assert.equal(d.file, log[299].file);
  assert.equal(d.pos, log[299].end);
  assert.equal(d.matched, 10);
  assert.equal(d.scanned, 500);
});

Deno.test("position is in the right file across a rotation", async () => {
  const labels = distinct(0, 2500);
  const log = masterLog(labels);
  const d = await findResumePointIn(trailingOf(labels.slice(1980, 2000)), log);
  assert.ok(d.ok);
  assert.equal(d.file, "mysql-bin.000002");
  assert.equal(d.pos, 256 + 999 * 100 + 100);
});

Deno.test("identical transactions: the run resolves the position when it reaches distinct ones", async () => {
  // The same statement 20 times in the same second: same MD5 each time.
  const labels = [...distinct(0, 100), ...Array(20).fill("same"), ...distinct(100, 200)];
  const log = masterLog(labels);
  // The replica received the first 12 of the 20 identical ones.
  const trailing = trailingOf(labels.slice(0, 112));
  const d = await findResumePointIn(trailing.slice(-30), log);
  assert.ok(d.ok, JSON.stringify(d));
  assert.equal(d.pos, log[111].end);
  // Positions 109..119 matched the last 10 too, and were ruled out by the older context.
  assert.ok(d.contradicted > 0, `contradicted ${d.contradicted}`);
});

Deno.test("identical transactions: a run wholly inside the block is refused as ambiguous", async () => {
  const labels = [...distinct(0, 100), ...Array(20).fill("same"), ...distinct(100, 200)];
  const log = masterLog(labels);
  const trailing = trailingOf(labels.slice(0, 112)).slice(-10);
  const d = await findResumePointIn(trailing, log);
  assert.equal(d.ok, false);
  if (d.ok) return;
  assert.equal(d.reason, "ambiguous");
  assert.equal(d.candidates.length, 5);
  assert.match(d.message, /match at 11 positions/);
});

Deno.test("a single MD5 repeated elsewhere does not fool the run", async () => {
  // "x" also appears long before; the last transaction alone would be ambiguous.
  const labels = [...distinct(0, 50), "x", ...distinct(50, 150), "x", ...distinct(150, 160)];
  const log = masterLog(labels);
  const trailing = trailingOf([...distinct(141, 150), "x"]);
  const d = await findResumePointIn(trailing, log);
  assert.ok(d.ok);
  assert.equal(d.pos, log[151].end);
});

Deno.test("not found: a transaction the new master never received", async () => {
  const labels = distinct(0, 300);
  const trailing = trailingOf([...labels.slice(190, 199), "only-on-the-replica"]);
  const d = await findResumePointIn(trailing, masterLog(labels));
  assert.equal(d.ok, false);
  if (d.ok) return;
  assert.equal(d.reason, "not-found");
  assert.match(d.message, /not a run/);
});

Deno.test("not found: a never-matching transaction inside the run is not skipped", async () => {
  const labels = distinct(0, 300);
  const replica = labels.slice(180, 200);
  replica[15] = "re-logged-as-rows"; // same transaction, different MD5 on the replica
  const d = await findResumePointIn(trailingOf(replica), masterLog(labels));
  assert.equal(d.ok, false);
  if (d.ok) return;
  assert.equal(d.reason, "not-found");
});

Deno.test("replica equal to the new master resumes at its end", async () => {
  const labels = distinct(0, 1000);
  const log = masterLog(labels);
  const d = await findResumePointIn(trailingOf(labels.slice(-50)), log);
  assert.ok(d.ok);
  assert.equal(d.pos, log[999].end);
  assert.equal(d.file, log[999].file);
});

Deno.test("replica with fewer transactions than the minimum run", async () => {
  const labels = distinct(0, 40);
  const log = masterLog(labels);
  const short = trailingOf(labels.slice(0, 4));
  const refused = await findResumePointIn(short, log);
  assert.equal(refused.ok, false);
  if (!refused.ok) assert.equal(refused.reason, "too-short");
  const accepted = await findResumePointIn(short, log, { replicaHistoryComplete: true });
  assert.ok(accepted.ok);
  assert.equal(accepted.pos, log[3].end);
  const none = await findResumePointIn([], log, { replicaHistoryComplete: true });
  assert.equal(none.ok, false);
  if (!none.ok) assert.equal(none.reason, "empty");
});

Deno.test("a match cut short by the start of the list needs older logs", async () => {
  const labels = distinct(0, 300);
  // The replica knows 30 transactions; the list examined starts 12 before its last one.
  const trailing = trailingOf(labels.slice(170, 200));
  const partial = masterLog(labels).slice(188);
  const undecided = await findResumePointIn(trailing, partial);
  assert.equal(undecided.ok, false);
  if (!undecided.ok) assert.equal(undecided.reason, "incomplete");
  // If that list really is all the new master still has, the 12 matching suffice (>= minRun).
  const atStart = await findResumePointIn(trailing, partial, { fromHistoryStart: true });
  assert.ok(atStart.ok);
  assert.equal(atStart.pos, partial[11].end);
  // Fewer than minRun at the start is not proof.
  const tooFew = await findResumePointIn(trailing, masterLog(labels).slice(195), {
    fromHistoryStart: true,
  });
  assert.equal(tooFew.ok, false);
  if (!tooFew.ok) assert.equal(tooFew.reason, "not-found");
});

Deno.test("streaming: consumes an async generator once, in order", async () => {
  const labels = distinct(0, 5000);
  let yielded = 0;
  async function* stream(): AsyncGenerator<MasterTransaction> {
    for (const tx of masterLog(labels)) {
      yielded++;
      yield tx;
    }
  }
  const d = await findResumePointIn(trailingOf(labels.slice(2990, 3000)), stream());
  assert.ok(d.ok);
  assert.equal(yielded, 5000);
  assert.equal(d.scanned, 5000);
  // Incremental use: the decision can be taken after any prefix.
  const m = new ResumeMatcher(trailingOf(labels.slice(2990, 3000)));
  for (const tx of masterLog(labels).slice(0, 2000)) m.push(tx);
  const early = m.decide({ fromHistoryStart: true });
  assert.equal(early.ok, false);
  for (const tx of masterLog(labels).slice(2000)) m.push(tx);
  assert.ok(m.decide({ fromHistoryStart: true }).ok);
});

Deno.test("100,000 behind: 100,000+ transactions matched in constant memory", async () => {
  const n = 150_000;
  const labels = distinct(0, n);
  const log = masterLog(labels, 20_000);
  // Lagging replica: its last transaction is 100,000 before the new master's end.
  const trailing = trailingOf(labels.slice(n - 100_000 - 64, n - 100_000));
  const t0 = performance.now();
  const d = await findResumePointIn(trailing, log, { fromHistoryStart: true });
  const ms = performance.now() - t0;
  assert.ok(d.ok);
  assert.equal(d.pos, log[n - 100_001].end);
  assert.equal(d.file, log[n - 100_001].file);
  // Worst case for the matcher: every transaction identical, so every position is compared deeply.
  const same = masterLog(Array(n).fill("same"), 20_000);
  const t1 = performance.now();
  const amb = await findResumePointIn(trailingOf(Array(64).fill("same")), same);
  const worstMs = performance.now() - t1;
  assert.equal(amb.ok, false);
  if (!amb.ok) assert.equal(amb.reason, "ambiguous");
  // The same, newest file first, as remote_binlog.ts does it.
  const t2 = performance.now();
  const search = new BackwardResumeSearch(trailing);
  let back = search.decide();
  for (let end = n; end > 0; end -= 20_000) {
    back = await search.addOlder(log.slice(Math.max(0, end - 20_000), end), {
      fromHistoryStart: end <= 20_000,
    });
  }
  const backMs = performance.now() - t2;
  assert.deepEqual(back, d);
  console.log(
    `matched ${n} transactions (resume 100,000 behind the end) in ${ms.toFixed(1)} ms ` +
      `(newest file first: ${backMs.toFixed(1)} ms); all-identical worst case ` +
      `${worstMs.toFixed(1)} ms`,
  );
  assert.ok(ms < 5000, `matching took ${ms} ms`);
});

/** A tiny deterministic PRNG so that failures reproduce. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** A decision without the sample of candidates (which ones are kept depends on the order seen). */
function essence(d: ResumeDecision): unknown {
  if (d.ok) return d;
  return {
    reason: d.reason,
    contradicted: d.contradicted,
    scanned: d.scanned,
    count: /(\d+) positions?/.exec(d.message)?.[1],
  };
}

Deno.test("newest-first search by segments decides exactly like one forward pass", async () => {
  const rand = prng(12345);
  let okCount = 0;
  const reasons = new Map<string, number>();
  for (let round = 0; round < 3000; round++) {
    // A small alphabet makes repeated runs (identical transactions) frequent.
    const alphabet = 1 + Math.floor(rand() * 4);
    const len = 1 + Math.floor(rand() * 60);
    const labels = Array.from({ length: len }, () => `a${Math.floor(rand() * alphabet)}`);
    const log = masterLog(labels, 7);
    const cut = 1 + Math.floor(rand() * len);
    const n = 1 + Math.floor(rand() * 12);
    let trailingLabels = labels.slice(Math.max(0, cut - n), cut);
    if (rand() < 0.2) trailingLabels = [...trailingLabels.slice(1), "elsewhere"];
    const trailing = trailingOf(trailingLabels);
    const minRun = 1 + Math.floor(rand() * 5);
    const forward = await findResumePointIn(trailing, log, { minRun, fromHistoryStart: true });
    const forwardOpen = await findResumePointIn(trailing, log, { minRun });
    // Random segmentation, then fed newest first.
    const bounds = [0, len];
    for (let k = Math.floor(rand() * 6); k > 0; k--) bounds.push(Math.floor(rand() * len));
    const sorted = [...new Set(bounds)].sort((a, b) => a - b);
    const search = new BackwardResumeSearch(trailing, { minRun });
    for (let i = sorted.length - 1; i > 0; i--) {
      await search.addOlder(log.slice(sorted[i - 1], sorted[i]));
    }
    const context = JSON.stringify({ labels, trailingLabels, minRun, sorted });
    assert.deepEqual(essence(search.decide({ fromHistoryStart: true })), essence(forward), context);
    assert.deepEqual(essence(search.decide()), essence(forwardOpen), context);
    if (forward.ok) okCount++;
    else reasons.set(forward.reason, (reasons.get(forward.reason) ?? 0) + 1);
  }
  // The generator must exercise every outcome, or the comparison proves little.
  assert.ok(okCount > 300, `only ${okCount} found`);
  for (const r of ["ambiguous", "not-found"]) assert.ok((reasons.get(r) ?? 0) > 100, r);
});

Deno.test("invalid trailing MD5 and run length are rejected", () => {
  assert.throws(() => new ResumeMatcher([{ md5: "nope" }]), /valid MD5/);
  assert.throws(() => new ResumeMatcher([], { minRun: 0 }), /positive integer/);
});

Deno.test("trailing: relay log first, own binlog when the relay log is short and agrees", () => {
  const own = trailingOf(distinct(0, 100));
  const relayFull = trailingOf(distinct(30, 100));
  assert.equal(chooseTrailing(relayFull, own, { count: 64 }).source, "relay-log");
  assert.equal(chooseTrailing(relayFull, own, { count: 64 }).trailing.length, 64);
  const relayShort = trailingOf(distinct(95, 100));
  const picked = chooseTrailing(relayShort, own, { count: 64 });
  assert.equal(picked.source, "binlog");
  assert.deepEqual(picked.trailing, own.slice(-64));
  // A local write after the last replicated transaction: the binlog does not end like the relay.
  const withLocal = [...own, ...trailingOf(["local-write"])];
  assert.equal(chooseTrailing(relayShort, withLocal, { count: 64 }).source, "relay-log");
  // A young cluster: relay log and binary log hold the same 3 transactions. The binary log is
  // taken, since only it can prove that those 3 are the replica's whole history.
  const young = trailingOf(distinct(0, 3));
  const same = chooseTrailing(trailingOf(distinct(0, 3)), young, { count: 64 });
  assert.equal(same.source, "binlog");
  assert.deepEqual(same.trailing, young);
  // Nothing in the relay log (purged): the binlog tail as is.
  assert.equal(chooseTrailing([], own, { count: 64 }).source, "binlog");
  assert.equal(chooseTrailing([], [], { count: 64 }).trailing.length, 0);
});
