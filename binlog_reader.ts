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

/** What openFile uses of node:fs (loaded with the other native modules, see binlog_native.ts). */
export type NodeFs = Pick<
  typeof import("node:fs"),
  "openSync" | "fstatSync" | "readSync" | "closeSync" | "constants"
>;

/** Why the file system object `st` is not a regular file, or null when it is one. */
function notRegular(st: Deno.FileInfo): string | null {
  if (st.isFile) return null;
  if (st.isDirectory) return "is a directory";
  if (st.isFifo) return "not a regular file (a FIFO)";
  if (st.isSocket) return "not a regular file (a socket)";
  if (st.isCharDevice) return "not a regular file (a character device)";
  if (st.isBlockDevice) return "not a regular file (a block device)";
  return "not a regular file";
}

/**
 * Opens the binlog file at `path` as a byte source (`final`: the last file of the read). Anything
 * but a regular file is refused before it is opened: opening a FIFO waits for a writer, for ever.
 * The open itself does not wait either (O_NONBLOCK, which regular files ignore), and what it
 * opened is checked to be that same regular file, so that a FIFO put in its place meanwhile is
 * refused too.
 */
export async function openFile(path: string, final: boolean, fs: NodeFs): Promise<ByteSource> {
  let fd: number;
  try {
    const st = await Deno.stat(path);
    const why = notRegular(st);
    if (why !== null) throw new BinlogError("io", path, -1, `cannot read: ${why}`);
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const opened = fs.fstatSync(fd);
    if (!opened.isFile() || Number(opened.ino) !== st.ino || Number(opened.dev) !== st.dev) {
      fs.closeSync(fd);
      throw new BinlogError("io", path, -1, "cannot read: the file changed while it was opened");
    }
  } catch (e) {
    if (e instanceof BinlogError) throw e;
    throw new BinlogError("io", path, -1, `cannot open: ${ioReason(e)}`);
  }
  // Reads at explicit positions (no seek): skip() only moves `position`.
  let position = 0;
  return {
    name: path,
    final,
    read(into) {
      try {
        // Synchronous reads: the data is usually in the page cache, and an async round trip
        // per buffer costs more than it saves.
        const n = fs.readSync(fd, into, 0, into.length, position);
        position += n;
        return Promise.resolve(n);
      } catch (e) {
        return Promise.reject(new BinlogError("io", path, -1, `cannot read: ${ioReason(e)}`));
      }
    },
    skip(n) {
      try {
        const to = Math.min(fs.fstatSync(fd).size, position + n);
        const k = Math.max(0, to - position);
        position += k;
        return Promise.resolve(k);
      } catch (e) {
        return Promise.reject(new BinlogError("io", path, -1, `cannot seek: ${ioReason(e)}`));
      }
    },
    close() {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

/** Node-style error codes (node:fs) in the words of the messages. */
const IO_CODES: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
};

function ioReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && IO_CODES[code] !== undefined) return IO_CODES[code];
  const m = e instanceof Error ? e.message : String(e);
  // node:fs says "EIO: i/o error, read": keep the words, not the code and the call.
  return m.split("\n")[0].replace(/^[A-Z]+: /, "").replace(/, \w+( '.*')?$/, "")
    .replace(/^./, (c) => c.toLowerCase());
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

/** The header of an event that the end of the input cuts short. */
export interface CutEvent {
  /** Offset of the event in its file. */
  pos: number;
  /** Its size and its log_pos, as its header gives them. */
  size: number;
  logPos: number;
}

/**
 * Whether an event that the end of the last file cuts short (its size points past the end) is a
 * torn tail, the file ending where a server stopped writing it, rather than a corrupt size
 * (which would leave out as "partial" everything that follows it).
 *
 * A server writes each event's header with its size and its log_pos, the end of the event in
 * the coordinates of the log it comes from: in a binlog its own end offset, in a relay log its
 * end in the master's binlog. A torn event keeps that header whole and consistent; a corrupt
 * size does not fit the log_pos beside it (unless both were corrupted alike):
 * - log_pos = pos + size: an event of a binlog (or a relay log's own event);
 * - log_pos - size >= `prevLogPos`, the log_pos of the event before it (0 if none): an event
 *   of a relay log starts in the master's binlog where the previous one ended, or later (the
 *   replica leaves gaps where it filters events out); so does each event of a binlog, where
 *   this is the first rule again. A size larger than the true one breaks both rules.
 * - log_pos = size: MySQL 5.0 wrote the events inside a transaction with positions counted from
 *   the transaction's start, so its first event after BEGIN "ends at its size";
 * - log_pos 0: an event the server made up (a relay log's copies of the master's rotate and
 *   format description) carries no position to check against.
 * A size smaller than the true one does not point past the end. Measured: each of the 1,578,181
 * events of the fixtures (MySQL 5.0-9.x, MariaDB), of the corpus of bench/binlog_compare.ts (real
 * MariaDB binlogs and relay logs) and of the bench binlog, cut short, is a torn tail by these
 * rules (tests/binlog_test.ts and tests/binlog_mariadb_test.ts check the fixtures and the real
 * logs they make).
 *
 * @example
 * ```ts
 * isTornTail({ pos: 256, size: 46, logPos: 302 }, 256); // true: the file stops inside it
 * isTornTail({ pos: 256, size: 1_000_000, logPos: 302 }, 256); // false: a corrupt size
 * ```
 */
export function isTornTail(cut: CutEvent, prevLogPos: number): boolean {
  if (cut.logPos === 0 || cut.logPos === cut.size || cut.logPos === cut.pos + cut.size) return true;
  return cut.logPos >= cut.size && cut.logPos - cut.size >= prevLogPos;
}
