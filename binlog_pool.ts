/**
 * The hash pool: computes the checksums and MD5s of what the parser reads, in batches, by worker
 * threads when there are any.
 *
 * The parser reads into read buffers owned by the pool. For each transaction it records spans:
 * ranges of the current read buffer (event bodies, not copied) and of an inline area (the
 * per-event prefixes, and bytes from elsewhere such as decompressed events, copied); for each
 * event with a checksum, where it is. A batch (records, spans, checksums) is published once it
 * holds enough work; the workers claim published batches, verify their checksums and hash
 * their transactions while the parser goes on. The main thread processes batches itself when it
 * has no worker, and helps when it has to wait. Batches are collected in order: each
 * transaction gets its md5 then (until then its md5 is ""), and none does after a checksum error
 * (checksumError). A read buffer is reused only once the batches that refer to it are collected.
 * Transactions hashing more than BATCH_TX_MAX bytes stream into node:crypto instead.
 *
 * The kernels that do the work are in binlog_kernel.ts; a worker runs their source text.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { BinlogError, crcMismatch } from "./binlog_error.ts";
import { hashKernels, type PoolLayout } from "./binlog_kernel.ts";
import type { Native } from "./binlog_native.ts";
import type { BinlogTransaction } from "./binlog_types.ts";

/** The layout of a pool of `slots` batch slots (at most BATCH_LIMITS per batch). */
export function poolLayout(slots: number): PoolLayout {
  const { recs, spans, crcs, inline } = BATCH_LIMITS;
  const rec = 8;
  const digest = rec + 2 * recs;
  const span = digest + 4 * recs;
  const crc = span + 2 * spans;
  return {
    slots,
    recs,
    spans,
    crcs,
    inline,
    txMax: BATCH_TX_MAX,
    stride: crc + 2 * crcs,
    at: {
      recs: 0,
      spans: 1,
      crcs: 2,
      crcFail: 3,
      crcStored: 4,
      crcComputed: 5,
      rec,
      digest,
      span,
      crc,
    },
  };
}

// Indexes in the control array shared with the hashing workers.
const C_PUBLISHED = 0; // batches published so far
const C_CLAIMED = 1; // batches claimed (by a worker or the main thread) so far
const C_STOP = 2; // set to make the workers return
const C_DONE = 3; // batches processed so far (waited on)
const C_SLEEPING = 4; // workers waiting for a batch
const C_QUEUE = 8; // slot of batch number s at C_QUEUE + s % slots
// Then one "processed" flag per slot at C_QUEUE + slots + slot.
// Then one "processed" flag per slot at C_QUEUE + slots + slot.

/**
 * Source text of a hashing worker: a module run from a blob: URL (so bundling needs no file)
 * that runs the text of {@link hashKernels}.
 */
export function workerSource(): string {
  return [
    `import { crc32 } from "node:zlib";`,
    `(${hashKernels.toString()})().workerMain(crc32);`,
    "",
  ].join("\n");
}

const HEX_DIGITS = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const HEX_CODES: number[] = new Array(32).fill(0);

/**
 * The 32 hex digits of the digest words w[at, at + 4) (the MD5 state, little-endian) as one
 * flat string: cheaper to build and to write out than a concatenation.
 */
function digestHex(w: Int32Array, at: number): string {
  const codes = HEX_CODES;
  for (let k = 0; k < 4; k++) {
    const v = w[at + k];
    for (let j = 0; j < 4; j++) {
      const x = (v >>> (8 * j)) & 255;
      codes[8 * k + 2 * j] = HEX_DIGITS[x >> 4];
      codes[8 * k + 2 * j + 1] = HEX_DIGITS[x & 15];
    }
  }
  return String.fromCharCode.apply(null, codes);
}

/**
 * Work per batch (bytes hashed plus a quarter of the bytes checksummed) before it is published:
 * small, so that few transactions wait for their md5 (they survive scavenges meanwhile, which
 * grows the heap).
 */
const BATCH_WORK = 128 * 1024;
/** A transaction hashing more than this streams into node:crypto instead of a batch. */
const BATCH_TX_MAX = 512 * 1024;
const BATCH_LIMITS = { recs: 4096, spans: 16384, crcs: 16384, inline: BATCH_TX_MAX + 256 * 1024 };
/** Read buffers of a pool with workers (they stay in use until their batches are processed). */
const READ_BUFFERS = 4;
/**
 * Bytes per read: reads of 1 MiB cost no more than of 4 MiB, and the workers find more of
 * what they hash still in the CPU caches (measured: 0.1 s less CPU on the bench binlog).
 */
export const READ_BUFFER_SIZE = 1024 * 1024;

/**
 * The shared memory of a hash pool and the workers started on it: made before node:crypto and
 * node:zlib are loaded, so that the workers start meanwhile (see {@link startPool}).
 */
export interface PoolStart {
  /** Shapes of the shared buffers. */
  layout: PoolLayout;
  /** Bytes per read buffer, and how many there are. */
  bufferSize: number;
  readBuffers: number;
  /** The read buffers, the inline areas, the batch metadata and the control words. */
  read: ArrayBufferLike;
  inline: ArrayBufferLike;
  meta: Int32Array;
  ctl: Int32Array;
  /** The hashing workers started. */
  workers: Worker[];
}

/**
 * Allocates the memory of a pool with `workers` hashing workers (0: the main thread hashes) and
 * read buffers of `bufferSize` bytes, and starts the workers.
 */
export function startPool(workers: number, bufferSize: number): PoolStart {
  const slots = workers > 0 ? 4 + 4 * workers : 1;
  const readBuffers = workers > 0 ? READ_BUFFERS : 1;
  const layout = poolLayout(slots);
  const shared = workers > 0;
  const mk = (n: number) => shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n);
  const start: PoolStart = {
    layout,
    bufferSize,
    readBuffers,
    read: mk(readBuffers * bufferSize),
    inline: mk(slots * layout.inline),
    meta: new Int32Array(mk(slots * layout.stride * 4)),
    ctl: new Int32Array(mk((C_QUEUE + 2 * slots) * 4)),
    workers: [],
  };
  if (workers > 0) startWorkers(start, workers);
  return start;
}

function startWorkers(start: PoolStart, n: number): void {
  const url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
  try {
    for (let k = 0; k < n; k++) {
      const wk = new Worker(url, { type: "module" });
      // A worker that fails leaves its batches to the main thread (see progress); its error
      // must not end the process.
      wk.onerror = (e) => e.preventDefault();
      wk.postMessage({
        read: start.read,
        inline: start.inline,
        meta: start.meta,
        ctl: start.ctl,
        layout: start.layout,
        idx: {
          published: C_PUBLISHED,
          claimed: C_CLAIMED,
          stop: C_STOP,
          done: C_DONE,
          sleeping: C_SLEEPING,
          queue: C_QUEUE,
        },
      });
      start.workers.push(wk);
    }
  } catch {
    // No workers here: the main thread processes every batch (see help).
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Stops the workers of `start` (once the pool is done, or when it is never made). */
export function stopWorkers(start: Pick<PoolStart, "ctl" | "workers">): void {
  if (start.workers.length === 0) return;
  Atomics.store(start.ctl, C_STOP, 1);
  Atomics.notify(start.ctl, C_PUBLISHED);
  for (const wk of start.workers) wk.terminate();
  start.workers = [];
}

/**
 * The checksums and MD5s of one read, computed in batches, by worker threads when there are any.
 *
 * The parser reads into read buffers owned by the pool. For each transaction it records spans:
 * ranges of the current read buffer (event bodies, not copied) and of an inline area (the
 * per-event prefixes, and bytes from elsewhere such as decompressed events, copied); for each
 * event with a checksum, where it is. A batch (records, spans, checksums) is published once it
 * holds enough work; the workers claim published batches, verify their checksums and hash
 * their transactions while the parser goes on. The main thread processes batches itself when it
 * has no worker, and helps when it has to wait. Batches are collected in order: each
 * transaction gets its md5 then (until then its md5 is ""), and none does after a checksum error
 * (crcError). A read buffer is reused only once the batches that refer to it are collected.
 * Transactions hashing more than BATCH_TX_MAX bytes stream into node:crypto instead.
 */
export class HashPool {
  private layout: PoolLayout;
  private read: Uint8Array;
  private inline: Uint8Array;
  private meta: Int32Array;
  private ctl: Int32Array;
  private workers: Worker[];
  private process: (slot: number) => void;
  private native: Native;
  private bufferSize: number;
  private readViews: Uint8Array[] = [];
  private readFree: number[] = [];
  /** Read buffers given up by the parser: [id, batches to collect before it is reused]. */
  private readRetired: Array<[number, number]> = [];
  private curRead: Uint8Array | null = null;
  private curReadId = -1;
  private curReadBase = 0;
  /** The batch being filled: slot, counts, inline bytes used, work. */
  private cur = 0;
  private nrec = 0;
  private nspan = 0;
  private ncrc = 0;
  private inlineUsed = 0;
  private work = 0;
  private freeSlots: number[] = [];
  /** Published slots, in publication order. */
  private outstanding: number[] = [];
  private txs: BinlogTransaction[][];
  /** md5s known before their batch is collected (node:crypto), else "". */
  private known: string[][];
  /** File offsets of the checksummed events of each slot (for error messages). */
  private crcPos: Float64Array[];
  private published = 0;
  private collected = 0;
  /** The open transaction: its first span (-1: none open), bytes, inline bytes used before it. */
  private openSpan = -1;
  private openLen = 0;
  private openInline = 0;
  /** The open transaction when it streams into node:crypto. */
  private node: Hash | null = null;
  /** File named in checksum errors. */
  private file = "";
  /** The first checksum error (in file order); no transaction gets its md5 after it. */
  private crcError: BinlogError | null = null;

  /** The pool of the memory and workers `start` made, hashing with `native`. */
  constructor(start: PoolStart, native: Native) {
    const { layout, bufferSize } = start;
    this.layout = layout;
    this.bufferSize = bufferSize;
    this.native = native;
    this.read = new Uint8Array(start.read);
    this.inline = new Uint8Array(start.inline);
    this.meta = start.meta;
    this.ctl = start.ctl;
    this.workers = start.workers;
    this.process = hashKernels().batchKernel(
      start.read,
      start.inline,
      this.meta,
      layout,
      native.crcRange,
    );
    const readBuffers = start.readBuffers;
    for (let i = 0; i < readBuffers; i++) {
      this.readViews.push(this.read.subarray(i * bufferSize, (i + 1) * bufferSize));
      this.readFree.push(readBuffers - 1 - i);
    }
    const slots = layout.slots;
    this.txs = Array.from({ length: slots }, () => []);
    this.known = Array.from({ length: slots }, () => []);
    this.crcPos = Array.from({ length: slots }, () => new Float64Array(layout.crcs));
    for (let s = slots - 1; s > 0; s--) this.freeSlots.push(s);
  }

  /** Names `file` in the checksum errors of the events queued from now on. */
  beginFile(file: string): void {
    this.file = file;
  }

  /** The first bad checksum found so far (in file order), or null. */
  checksumError(): BinlogError | null {
    return this.crcError;
  }

  /** A read buffer for the parser (of the size given to the constructor). */
  takeReadBuffer(): Uint8Array {
    let id = -1;
    while (id < 0) {
      if (this.readFree.length > 0) id = this.readFree.pop()!;
      else {
        const i = this.readRetired.findIndex(([, need]) => this.collected >= need);
        if (i >= 0) id = this.readRetired.splice(i, 1)[0][0];
        else this.progress();
      }
    }
    this.curRead = this.readViews[id];
    this.curReadId = id;
    this.curReadBase = id * this.bufferSize;
    return this.curRead;
  }

  /** The parser gives up its read buffer: nothing may refer to it once its batches are done. */
  retireReadBuffer(): void {
    if (this.curRead === null) return;
    this.inlineOpenSpans();
    this.rotate();
    this.readRetired.push([this.curReadId, this.published]);
    this.curRead = null;
    this.curReadId = -1;
  }

  /** Starts a transaction, discarding one still open. */
  begin(): void {
    this.abort();
    if (this.nrec === this.layout.recs) this.rotate();
    this.openSpan = this.nspan;
    this.openLen = 0;
    this.openInline = this.inlineUsed;
  }

  /** Discards the open transaction, if any. */
  abort(): void {
    if (this.openSpan >= 0 && this.node === null) {
      this.nspan = this.openSpan;
      this.inlineUsed = this.openInline;
      this.work -= this.openLen;
    }
    this.openSpan = -1;
    this.node = null;
  }

  /** Adds b[from, to) to the open transaction. */
  updateRange(b: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (this.node === null && this.openLen + n > this.layout.txMax) this.toNode();
    const inRead = b === this.curRead;
    if (this.node === null && !this.fits(inRead, n)) {
      this.rotate();
      if (!this.fits(inRead, n)) this.toNode();
    }
    if (this.node !== null) {
      this.node.update(b.subarray(from, to));
      return;
    }
    let src: number;
    if (inRead) src = this.curReadBase + from;
    else {
      const at = this.cur * this.layout.inline + this.inlineUsed;
      const d = this.inline;
      if (n <= 16) { for (let i = 0; i < n; i++) d[at + i] = b[from + i]; }
      else d.set(b.subarray(from, to), at);
      this.inlineUsed += n;
      src = -1 - at;
    }
    this.openLen += n;
    this.work += n;
    const meta = this.meta;
    const spans = this.cur * this.layout.stride + this.layout.at.span;
    if (this.nspan > this.openSpan) {
      // Contiguous with the previous span of the transaction: extend it.
      const last = spans + 2 * (this.nspan - 1);
      const s = meta[last];
      const l = meta[last + 1];
      if (src >= 0 ? s >= 0 && s + l === src : s < 0 && -1 - s + l === -1 - src) {
        meta[last + 1] = l + n;
        return;
      }
    }
    const at = spans + 2 * this.nspan;
    meta[at] = src;
    meta[at + 1] = n;
    this.nspan++;
  }

  /** Whether the batch has room for a span of n bytes (copied inline unless inRead). */
  private fits(inRead: boolean, n: number): boolean {
    return this.nspan < this.layout.spans &&
      (inRead || this.inlineUsed + n <= this.layout.inline);
  }

  /** Adds all of b to the open transaction. */
  update(b: Uint8Array): void {
    this.updateRange(b, 0, b.length);
  }

  /** Hashes the open transaction with node:crypto from now on (it is large). */
  toNode(): void {
    if (this.node !== null || this.openSpan < 0) return;
    const h = this.native.md5();
    const meta = this.meta;
    const spans = this.cur * this.layout.stride + this.layout.at.span;
    for (let k = this.openSpan; k < this.nspan; k++) {
      const s = meta[spans + 2 * k];
      const l = meta[spans + 2 * k + 1];
      h.update(s >= 0 ? this.read.subarray(s, s + l) : this.inline.subarray(-1 - s, -1 - s + l));
    }
    this.nspan = this.openSpan;
    this.inlineUsed = this.openInline;
    this.work -= this.openLen;
    this.node = h;
  }

  /**
   * Queues the checksum check of the event b[o, o + size) (its last 4 bytes are the stored
   * CRC32) found at file offset pos; false when b is not the current read buffer (the caller
   * checks it then).
   */
  crc(b: Uint8Array, o: number, size: number, pos: number): boolean {
    if (b !== this.curRead) return false;
    if (this.ncrc === this.layout.crcs) this.rotate();
    const at = this.cur * this.layout.stride + this.layout.at.crc + 2 * this.ncrc;
    this.meta[at] = this.curReadBase + o;
    this.meta[at + 1] = size;
    this.crcPos[this.cur][this.ncrc] = pos;
    this.ncrc++;
    this.work += size >> 2;
    if (this.work >= BATCH_WORK && this.openSpan < 0) this.rotate();
    return true;
  }

  /** Ends the open transaction `t`: its md5 is set when its batch is collected. */
  end(t: BinlogTransaction): void {
    const at = this.cur * this.layout.stride + this.layout.at.rec + 2 * this.nrec;
    let known = "";
    if (this.node !== null) {
      known = this.node.digest("hex");
      this.node = null;
      this.meta[at] = 0;
      this.meta[at + 1] = -1;
    } else {
      this.meta[at] = this.openSpan;
      this.meta[at + 1] = this.nspan - this.openSpan;
    }
    this.txs[this.cur].push(t);
    this.known[this.cur].push(known);
    this.nrec++;
    this.openSpan = -1;
    t.md5 = "";
    if (this.work >= BATCH_WORK || this.nrec === this.layout.recs) this.rotate();
  }

  /** The open transaction refers to the current read buffer no more: copies its spans inline. */
  private inlineOpenSpans(): void {
    if (this.openSpan < 0 || this.node !== null) return;
    const meta = this.meta;
    let need = 0;
    const spansOf = () => this.cur * this.layout.stride + this.layout.at.span;
    for (let k = this.openSpan, sp = spansOf(); k < this.nspan; k++) {
      if (meta[sp + 2 * k] >= 0) need += meta[sp + 2 * k + 1];
    }
    if (need === 0) return;
    if (this.inlineUsed + need > this.layout.inline) {
      this.rotate();
      if (this.inlineUsed + need > this.layout.inline) {
        this.toNode();
        return;
      }
    }
    for (let k = this.openSpan, sp = spansOf(); k < this.nspan; k++) {
      const s = meta[sp + 2 * k];
      if (s < 0) continue;
      const l = meta[sp + 2 * k + 1];
      const at = this.cur * this.layout.inline + this.inlineUsed;
      this.inline.set(this.read.subarray(s, s + l), at);
      this.inlineUsed += l;
      meta[sp + 2 * k] = -1 - at;
    }
  }

  /**
   * Publishes the current batch (if it has transactions or checksums) and continues in a free
   * slot, taking the open transaction's spans along.
   */
  private rotate(): void {
    if (this.nrec === 0 && this.ncrc === 0) return;
    const layout = this.layout;
    const meta = this.meta;
    const old = this.cur;
    const m = old * layout.stride;
    meta[m + layout.at.recs] = this.nrec;
    meta[m + layout.at.spans] = this.nspan;
    meta[m + layout.at.crcs] = this.ncrc;
    const open = this.openSpan >= 0 && this.node === null;
    const first = this.openSpan;
    const count = open ? this.nspan - this.openSpan : 0;
    // The open transaction's inline bytes are all of [openInline, inlineUsed): it is the only
    // one writing there since it began.
    const inlineFrom = old * layout.inline + this.openInline;
    const inlineTo = old * layout.inline + this.inlineUsed;
    this.publish(old);
    this.cur = this.acquireSlot();
    this.nrec = 0;
    this.ncrc = 0;
    this.nspan = 0;
    this.inlineUsed = 0;
    this.work = 0;
    if (this.openSpan >= 0) {
      this.openSpan = 0;
      this.openInline = 0;
    }
    if (!open) return;
    // The new slot may be the old one (then already processed): copyWithin moves correctly,
    // and span k goes to index k - first <= k, so ascending order reads each entry first.
    const to = this.cur * layout.inline;
    this.inline.copyWithin(to, inlineFrom, inlineTo);
    this.inlineUsed = inlineTo - inlineFrom;
    const shift = to - inlineFrom;
    const src = m + layout.at.span + 2 * first;
    const dst = this.cur * layout.stride + layout.at.span;
    for (let k = 0; k < count; k++) {
      const s = meta[src + 2 * k];
      meta[dst + 2 * k] = s >= 0 ? s : s - shift;
      meta[dst + 2 * k + 1] = meta[src + 2 * k + 1];
    }
    this.nspan = count;
    this.work = this.openLen;
  }

  private publish(slot: number): void {
    const slots = this.layout.slots;
    const ctl = this.ctl;
    this.outstanding.push(slot);
    this.published++;
    if (this.workers.length === 0) {
      this.process(slot);
      this.collect();
      return;
    }
    Atomics.store(ctl, C_QUEUE + slots + slot, 0);
    Atomics.store(ctl, C_QUEUE + ((this.published - 1) % slots), slot);
    Atomics.store(ctl, C_PUBLISHED, this.published);
    if (Atomics.load(ctl, C_SLEEPING) > 0) Atomics.notify(ctl, C_PUBLISHED, 1);
  }

  /** Collects the oldest published batch (processed): md5s, checksum error, free slot. */
  private collect(): void {
    const slot = this.outstanding.shift()!;
    const layout = this.layout;
    const meta = this.meta;
    const m = slot * layout.stride;
    const fail = meta[m + layout.at.crcFail];
    if (fail >= 0 && this.crcError === null) {
      const stored = meta[m + layout.at.crcStored] >>> 0;
      const computed = meta[m + layout.at.crcComputed] >>> 0;
      this.crcError = crcMismatch({
        file: this.file,
        offset: this.crcPos[slot][fail],
        stored,
        computed,
      });
    }
    const txs = this.txs[slot];
    const known = this.known[slot];
    // After a bad checksum, only the transactions that end before that event get their md5.
    const limit = this.crcError === null
      ? Infinity
      : fail >= 0 && this.crcError.offset === this.crcPos[slot][fail]
      ? this.crcError.offset
      : -1;
    let d = m + layout.at.digest;
    for (let r = 0; r < txs.length && txs[r].endOffset <= limit; r++, d += 4) {
      txs[r].md5 = known[r] !== "" ? known[r] : digestHex(meta, d);
    }
    this.txs[slot] = [];
    this.known[slot] = [];
    this.freeSlots.push(slot);
    this.collected++;
  }

  private processed(slot: number): boolean {
    return Atomics.load(this.ctl, C_QUEUE + this.layout.slots + slot) === 1;
  }

  /** Collects the batches processed so far, in order, without waiting. */
  poll(): void {
    while (this.outstanding.length > 0 && this.processed(this.outstanding[0])) this.collect();
  }

  /** Processes one published batch no worker has claimed yet; false when there is none. */
  private help(): boolean {
    const ctl = this.ctl;
    const slots = this.layout.slots;
    while (true) {
      const claimed = Atomics.load(ctl, C_CLAIMED);
      if (claimed >= Atomics.load(ctl, C_PUBLISHED)) return false;
      if (Atomics.compareExchange(ctl, C_CLAIMED, claimed, claimed + 1) !== claimed) continue;
      const slot = Atomics.load(ctl, C_QUEUE + (claimed % slots));
      this.process(slot);
      Atomics.store(ctl, C_QUEUE + slots + slot, 1);
      Atomics.add(ctl, C_DONE, 1);
      return true;
    }
  }

  /** Seconds of waiting without any batch done after which the main thread takes over. */
  private stalled = 0;

  /** Makes progress: collects the oldest batch, else processes one, else waits for one. */
  private progress(): void {
    if (this.outstanding.length === 0) {
      throw new BinlogError("internal", this.file, -1, "hash pool waits for nothing");
    }
    const head = this.outstanding[0];
    if (this.processed(head)) {
      this.collect();
      return;
    }
    if (this.help()) return;
    const done = Atomics.load(this.ctl, C_DONE);
    if (this.processed(head)) return;
    if (Atomics.wait(this.ctl, C_DONE, done, 1000) !== "timed-out") {
      this.stalled = 0;
      return;
    }
    // A worker holds the batch and does not finish it (it died?): process it here. Both
    // write the same results, so a late worker does no harm.
    if (++this.stalled >= 5) {
      this.process(head);
      Atomics.store(this.ctl, C_QUEUE + this.layout.slots + head, 1);
    }
  }

  /** A free slot, collecting, processing or waiting for batches when all are taken. */
  private acquireSlot(): number {
    while (this.freeSlots.length === 0) this.progress();
    return this.freeSlots.pop()!;
  }

  /**
   * End of a file: gives up the read buffer (an open transaction may continue in the next
   * file), publishes the batch and waits until every transaction ended so far is collected.
   */
  endFile(): void {
    this.retireReadBuffer();
    this.rotate();
    while (this.outstanding.length > 0) this.progress();
  }

  /** Stops the workers. */
  close(): void {
    stopWorkers({ ctl: this.ctl, workers: this.workers });
    this.workers = [];
  }
}
