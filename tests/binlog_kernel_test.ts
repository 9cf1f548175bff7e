// The hashing kernels (binlog_kernel.ts) run in worker threads from their source text: the module
// must import nothing and the text must run alone. These tests evaluate that text in the global
// scope, where no name of any module is defined, and check every kernel against node:zlib and
// node:crypto; then they run the generated worker source in a real worker.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { type HashKernels, hashKernels, type PoolLayout } from "../binlog_kernel.ts";
import { poolLayout, workerSource } from "../binlog_pool.ts";

const KERNEL_MODULE = new URL("../binlog_kernel.ts", import.meta.url).pathname;

/** The kernels built from nothing but their own source text. */
function isolatedKernels(): HashKernels {
  const text = hashKernels.toString();
  return new Function(`"use strict"; return (${text})();`)() as HashKernels;
}

/** Deterministic bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

Deno.test("binlog_kernel.ts imports nothing", () => {
  const text = Deno.readTextFileSync(KERNEL_MODULE);
  assert.doesNotMatch(text, /^\s*import\b/m);
  assert.doesNotMatch(text, /\bimport\s*\(/);
  // Everything that runs is inside hashKernels: the module's only top-level value.
  const values = [
    ...text.matchAll(/^(?:export )?(?:async )?(?:function|const|let|var|class|enum) (\w+)/gm),
  ];
  assert.deepEqual(values.map((m) => m[1]), ["hashKernels"]);
});

Deno.test("the CRC-32 kernel, evaluated alone, equals node:zlib for any length and seed", () => {
  const crcRange = isolatedKernels().crcKernel(crc32);
  const data = bytes(600, 7);
  for (let from = 0; from < 20; from += 3) {
    for (let to = from; to <= 300; to += 7) {
      const expected = crc32(data.subarray(from, to)) >>> 0;
      assert.equal(crcRange(data, from, to), expected, `${from}..${to}`);
      const seed = crc32(data.subarray(400, 419));
      assert.equal(crcRange(data, from, to, seed), crc32(data.subarray(from, to), seed) >>> 0);
    }
  }
  assert.equal(crcRange(new TextEncoder().encode("123456789"), 0, 9), 0xcbf43926);
});

/** Writes an event of `n` bytes at read[o] ending in its CRC-32 (wrong when `bad`). */
function checksummedEvent(read: Uint8Array, o: number, n: number, bad: boolean): void {
  read.set(bytes(n - 4, o), o);
  const c = (crc32(read.subarray(o, o + n - 4)) ^ (bad ? 1 : 0)) >>> 0;
  new DataView(read.buffer).setUint32(o + n - 4, c, true);
}

/** One batch in slot 0: checksummed events and transactions over read and inline spans. */
function fillBatch(
  layout: PoolLayout,
  read: Uint8Array,
  inline: Uint8Array,
  meta: Int32Array,
  badEvent: number,
): { md5s: string[]; events: number[] } {
  const at = layout.at;
  // Checksummed events: a run of 40 adjacent ones, then two apart.
  const events: Array<[number, number]> = [];
  let o = 100;
  for (let k = 0; k < 40; k++) {
    const n = 30 + (k * 37) % 500;
    events.push([o, n]);
    o += n;
  }
  events.push([o + 10, 70], [o + 200, 5000]);
  events.forEach(([eo, n], k) => {
    checksummedEvent(read, eo, n, k === badEvent);
    meta[at.crc + 2 * k] = eo;
    meta[at.crc + 2 * k + 1] = n;
  });
  meta[at.crcs] = events.length;
  // Transactions: spans in the read buffer and in the inline area, of sizes around 64.
  inline.set(bytes(4000, 99));
  const txs: Array<Array<[number, number]>> = [
    [],
    [[0, 1]],
    [[5, 63], [-1 - 3, 1], [200, 64], [-1 - 100, 129]],
    [[1000, 3000], [-1 - 7, 55], [9000, 65], [9100, 4]],
    [[-1 - 0, 4000]],
  ];
  let span = 0;
  const md5s: string[] = [];
  txs.forEach((spans, r) => {
    meta[at.rec + 2 * r] = span;
    meta[at.rec + 2 * r + 1] = spans.length;
    const h = createHash("md5");
    for (const [src, n] of spans) {
      meta[at.span + 2 * span] = src;
      meta[at.span + 2 * span + 1] = n;
      span++;
      h.update(src >= 0 ? read.subarray(src, src + n) : inline.subarray(-1 - src, -1 - src + n));
    }
    md5s.push(h.digest("hex"));
  });
  meta[at.recs] = txs.length;
  meta[at.spans] = span;
  return { md5s, events: events.map(([eo]) => eo) };
}

function digestHexOf(meta: Int32Array, d: number): string {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  for (let k = 0; k < 4; k++) dv.setInt32(4 * k, meta[d + k], true);
  return Array.from(out, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("the batch kernel, evaluated alone, checks CRC-32s and computes MD5s", () => {
  const k = isolatedKernels();
  const layout = poolLayout(1);
  for (const badEvent of [-1, 0, 17, 41]) {
    const read = new ArrayBuffer(64 * 1024);
    const inline = new ArrayBuffer(layout.inline);
    const meta = new Int32Array(layout.stride);
    const { md5s } = fillBatch(
      layout,
      new Uint8Array(read),
      new Uint8Array(inline),
      meta,
      badEvent,
    );
    const process = k.batchKernel(read, inline, meta, layout, k.crcKernel(crc32));
    process(0);
    assert.equal(meta[layout.at.crcFail], badEvent, `bad event ${badEvent}`);
    if (badEvent >= 0) {
      assert.equal(
        (meta[layout.at.crcStored] ^ meta[layout.at.crcComputed]) >>> 0,
        1,
        "stored and computed CRC-32 differ in the flipped bit",
      );
    }
    const got = md5s.map((_, r) => digestHexOf(meta, layout.at.digest + 4 * r));
    assert.deepEqual(got, md5s);
  }
});

Deno.test("the generated worker source runs alone in a worker and hashes a batch", async () => {
  const layout = poolLayout(1);
  const read = new SharedArrayBuffer(64 * 1024);
  const inline = new SharedArrayBuffer(layout.inline);
  const meta = new Int32Array(new SharedArrayBuffer(layout.stride * 4));
  const ctl = new Int32Array(new SharedArrayBuffer(16 * 4));
  const { md5s } = fillBatch(layout, new Uint8Array(read), new Uint8Array(inline), meta, 3);
  const url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const idx = { published: 0, claimed: 1, stop: 2, done: 3, sleeping: 4, queue: 8 };
  try {
    const failed = new Promise<never>((_, reject) => {
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`worker failed: ${e.message}`));
      };
    });
    worker.postMessage({ read, inline, meta, ctl, layout, idx });
    // Publish slot 0 as batch 0 and wait until it is done.
    Atomics.store(ctl, idx.queue, 0);
    Atomics.store(ctl, idx.published, 1);
    Atomics.notify(ctl, idx.published);
    const deadline = Date.now() + 20_000;
    const done = (async () => {
      while (Atomics.load(ctl, idx.done) < 1) {
        if (Date.now() > deadline) throw new Error("the worker did not process the batch");
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await Promise.race([done, failed]);
    assert.equal(meta[layout.at.crcFail], 3);
    assert.deepEqual(md5s.map((_, r) => digestHexOf(meta, layout.at.digest + 4 * r)), md5s);
  } finally {
    Atomics.store(ctl, idx.stop, 1);
    Atomics.notify(ctl, idx.published);
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});
