// Deterministic fuzz of binlog.ts: mutated real fixtures must give transactions or a BinlogError,
// never another exception, never a hang.
import assert from "node:assert/strict";
import { BinlogError, type BinlogTransaction, readTransactions } from "../binlog.ts";

const FIXTURES_DIR = new URL("./fixtures/mysql", import.meta.url).pathname;
const ITERATIONS = 10000;
const PER_CASE_TIMEOUT_MS = 5000;

/** Small seeded PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fixtures(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const e of [...Deno.readDirSync(FIXTURES_DIR)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (e.name.startsWith("LICENSE") || e.name.endsWith(".md")) continue;
    const b = Deno.readFileSync(`${FIXTURES_DIR}/${e.name}`);
    if (b.length <= 200_000) out.push(b);
  }
  return out;
}

function mutate(src: Uint8Array, all: Uint8Array[], rnd: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(rnd() * n);
  let b = src.slice();
  const ops = 1 + pick(4);
  for (let k = 0; k < ops; k++) {
    switch (pick(6)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + pick(8); i < n && b.length > 0; i++) {
          b[pick(b.length)] ^= 1 << pick(8);
        }
        break;
      case 1: // truncate
        b = b.slice(0, pick(b.length + 1));
        break;
      case 2: { // splice in part of another fixture
        const o = all[pick(all.length)];
        const from = pick(o.length);
        const piece = o.subarray(from, from + pick(600));
        const at = pick(b.length + 1);
        const n = new Uint8Array(b.length + piece.length);
        n.set(b.subarray(0, at));
        n.set(piece, at);
        n.set(b.subarray(at), at + piece.length);
        b = n;
        break;
      }
      case 3: { // random event size at a random place (often an event header)
        if (b.length < 40) break;
        const at = 4 + pick(b.length - 30);
        new DataView(b.buffer).setUint32(at + 9, pick(4) === 0 ? pick(40) : pick(1 << 20), true);
        break;
      }
      case 4: { // overwrite a random type byte
        if (b.length < 30) break;
        b[4 + pick(b.length - 8)] = [2, 15, 16, 19, 23, 30, 33, 40, 162, 164, 165, 166][pick(12)];
        break;
      }
      default: { // delete a range
        const len = Math.min(b.length, pick(64));
        const at = pick(b.length - len + 1);
        const n = new Uint8Array(b.length - len);
        n.set(b.subarray(0, at));
        n.set(b.subarray(at + len), at);
        b = n;
        break;
      }
    }
  }
  return b;
}

async function parse(bytes: Uint8Array, chunk: number): Promise<BinlogTransaction[]> {
  const chunks = (async function* () {
    for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
  })();
  const out: BinlogTransaction[] = [];
  for await (const t of readTransactions({ name: "fuzz", chunks }, { onWarning: () => {} })) {
    out.push(t);
  }
  return out;
}

Deno.test("fuzz: mutated fixtures never crash or hang", async () => {
  const all = fixtures();
  assert.ok(all.length >= 20);
  const rnd = prng(20261122);
  const started = Date.now();
  let errors = 0;
  let txCount = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(all[Math.floor(rnd() * all.length)], all, rnd);
    const chunk = 1 + Math.floor(rnd() * 5000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`iteration ${i} timed out`)), PER_CASE_TIMEOUT_MS);
    });
    try {
      const txs = await Promise.race([parse(input, chunk), timeout]);
      txCount += txs.length;
      for (const t of txs) {
        assert.match(t.md5, /^[0-9a-f]{32}$/, `iteration ${i}`);
        assert.ok(t.start >= 4 && t.endOffset > t.start, `iteration ${i}: ${JSON.stringify(t)}`);
        assert.ok(t.endOffset <= input.length, `iteration ${i}`);
        assert.ok(Number.isInteger(t.end) && t.end >= 0, `iteration ${i}`);
      }
    } catch (e) {
      if (!(e instanceof BinlogError)) {
        throw new Error(`iteration ${i}: not a BinlogError: ${e}`, { cause: e });
      }
      assert.ok(e.exitCode >= 2 && e.exitCode <= 6, `iteration ${i}: ${e.message}`);
      assert.ok(!e.message.includes("\n"), `iteration ${i}: multi-line message`);
      errors++;
    } finally {
      clearTimeout(timer);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  // Both outcomes must occur, or the mutations are not exercising anything.
  assert.ok(errors > ITERATIONS / 20, `only ${errors} errors`);
  assert.ok(txCount > ITERATIONS, `only ${txCount} transactions`);
  assert.ok(seconds < 30, `fuzz took ${seconds}s`);
});
