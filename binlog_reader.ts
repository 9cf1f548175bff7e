/**
 * Reading binlog bytes: files and raw streams as byte sources, and the framing buffer the parser
 * walks events in (EventReader).
 *
 * @module
 */

import { BinlogError } from "./binlog_error.ts";
import type { BinlogStream } from "./binlog_types.ts";

/** A byte source: a file or a stream of chunks. */
export interface ByteSource {
  /** Name used in messages and in BinlogTransaction.file. */
  name: string;
  /** Whether this is the last file of the read (a transaction may continue past the others). */
  final: boolean;
  /** Reads into `into`; null or 0 at the end of input. */
  read(into: Uint8Array): Promise<number | null>;
  /** Advances by n bytes without returning them; false at end of input. */
  skip(n: number): Promise<number>;
  /** Releases the file or stream. */
  close(): void;
}

/** Opens the binlog file at `path` as a byte source (`final`: the last file of the read). */
export async function openFile(path: string, final: boolean): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) throw new BinlogError("io", path, -1, "cannot read: is a directory");
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof BinlogError) throw e;
    throw new BinlogError("io", path, -1, `cannot open: ${ioReason(e)}`);
  }
  return {
    name: path,
    final,
    read(into) {
      try {
        // Synchronous reads: the data is usually in the page cache, and an async round trip
        // per buffer costs more than it saves.
        return Promise.resolve(file.readSync(into));
      } catch (e) {
        return Promise.reject(new BinlogError("io", path, -1, `cannot read: ${ioReason(e)}`));
      }
    },
    async skip(n) {
      try {
        const here = await file.seek(0, Deno.SeekMode.Current);
        const size = (await file.stat()).size;
        const to = Math.min(size, here + n);
        await file.seek(to, Deno.SeekMode.Start);
        return to - here;
      } catch (e) {
        throw new BinlogError("io", path, -1, `cannot seek: ${ioReason(e)}`);
      }
    },
    close() {
      try {
        file.close();
      } catch {
        // already closed
      }
    },
  };
}

function ioReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0].replace(/^./, (c) => c.toLowerCase());
}

/** A raw byte stream as a byte source (always the last of its read). */
export function streamSource(s: BinlogStream): ByteSource {
  const it = s.chunks[Symbol.asyncIterator]();
  let cur: Uint8Array | null = null;
  let curPos = 0;
  let done = false;
  async function next(): Promise<boolean> {
    while (!done && (cur === null || curPos >= cur.length)) {
      const r = await it.next();
      if (r.done) {
        done = true;
        cur = null;
      } else {
        cur = r.value;
        curPos = 0;
      }
    }
    return !done;
  }
  return {
    name: s.name,
    final: true,
    async read(into) {
      if (!(await next()) || cur === null) return null;
      const n = Math.min(into.length, cur.length - curPos);
      into.set(cur.subarray(curPos, curPos + n));
      curPos += n;
      return n;
    },
    async skip(n) {
      let left = n;
      while (left > 0 && (await next()) && cur !== null) {
        const k = Math.min(left, cur.length - curPos);
        curPos += k;
        left -= k;
      }
      return n - left;
    },
    close() {
      it.return?.();
    },
  };
}

/** Where the framing buffer gets its read buffers (the hash pool's, or one of its own). */
export interface ReadBuffers {
  /** A read buffer to fill (all of the same size). */
  take(): Uint8Array;
  /** The reader gives up the buffer it took last: nothing may refer to it once it is reused. */
  retire(): void;
}

/** One read buffer, reused: for a read without a hash pool. */
export function ownBuffer(size: number): ReadBuffers {
  const buf = new Uint8Array(size);
  return { take: () => buf, retire: () => {} };
}

/**
 * The framing buffer over a byte source: the unconsumed bytes are buf[lo, hi), and buf[0] is at
 * offset `base` of the file. The parser reads events from buf and advances lo itself.
 */
export class EventReader {
  /** The current read buffer. */
  buf: Uint8Array;
  /** Unconsumed bytes are buf[lo, hi). */
  lo = 0;
  hi = 0;
  /** File offset of buf[0]. */
  base = 0;
  /** The source has no more bytes. */
  eof = false;
  #src: ByteSource;
  #buffers: ReadBuffers;

  /** A reader of `src` into buffers from `buffers`. */
  constructor(src: ByteSource, buffers: ReadBuffers) {
    this.#src = src;
    this.#buffers = buffers;
    this.buf = buffers.take();
  }

  /** File offset of buf[lo], the next unconsumed byte. */
  get offset(): number {
    return this.base + this.lo;
  }

  /** Makes at least `min` bytes available from lo (min <= buffer size); returns bytes available. */
  async fill(min: number): Promise<number> {
    if (this.hi - this.lo >= min || this.eof) return this.hi - this.lo;
    if (this.lo > 0) this.moveTail();
    while (this.hi < min && !this.eof) {
      const n = await this.#src.read(this.buf.subarray(this.hi));
      if (n === null || n === 0) this.eof = true;
      else this.hi += n;
    }
    return this.hi - this.lo;
  }

  /**
   * Moves the unconsumed bytes [lo, hi) to the start of a buffer: the same one, or with a pool
   * a fresh one (the batches may still refer to this one).
   */
  moveTail(): void {
    const old = this.buf;
    const lo = this.lo;
    const hi = this.hi;
    this.#buffers.retire();
    this.buf = this.#buffers.take();
    if (this.buf === old) old.copyWithin(0, lo, hi);
    else this.buf.set(old.subarray(lo, hi));
    this.base += lo;
    this.hi = hi - lo;
    this.lo = 0;
  }

  /** Consumes n bytes that may extend past the buffer; returns how many there were. */
  async skip(n: number): Promise<number> {
    const inBuf = Math.min(n, this.hi - this.lo);
    this.lo += inBuf;
    if (inBuf === n) return n;
    // Buffer is empty now; skip the rest in the source.
    this.moveTail();
    const k = await this.#src.skip(n - inBuf);
    this.base += k;
    if (k < n - inBuf) this.eof = true;
    return inBuf + k;
  }
}
