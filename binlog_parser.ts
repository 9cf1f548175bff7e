/**
 * The parser of one binlog file or stream: walks its events (framing, binlog_reader.ts), checks
 * their CRC32s, applies the grouping rule (binlog_group.ts) and hashes what the hash plan says
 * (binlog_hash_plan.ts) through the hash pool (binlog_pool.ts). binlog_read.ts runs one per file.
 *
 * @module
 */

import {
  BinlogError,
  type BinlogErrorKind,
  crcMismatch,
  EventError,
  locate,
} from "./binlog_error.ts";
import {
  decodeFormatDescription,
  decodeGtid,
  decodePayloadHeader,
  FLAG_RELAY_LOG,
  HEADER_LEN,
  MAGIC,
  outsideTransactions,
  T_FDE,
  T_START_ENCRYPTION,
  T_TRANSACTION_PAYLOAD,
  u16,
  u32,
} from "./binlog_events.ts";
import { payloadEvents } from "./binlog_compression.ts";
import {
  type Carry,
  DROP_BEFORE_BEGIN,
  DROP_BEFORE_GTID,
  END,
  type Group,
  groupStep,
  IN_TRANSACTION,
  OPEN,
  ORPHAN_COMMIT,
} from "./binlog_group.ts";
import {
  type EventPlan,
  HASH_PREFIX_MAX,
  HashPlanner,
  ROLE_GTID,
  writeHashPrefix,
} from "./binlog_hash_plan.ts";
import { MAX_EVENT_SIZE, MAX_WHOLE_EVENT, PREFIX_MAX } from "./binlog_limits.ts";
import type { Native } from "./binlog_native.ts";
import type { HashPool } from "./binlog_pool.ts";
import {
  type ByteSource,
  EventReader,
  isTornTail,
  ownBuffer,
  type ReadBuffers,
} from "./binlog_reader.ts";
import type { BinlogTransaction, ReadEnd } from "./binlog_types.ts";

/** How one file or stream is parsed. */
export interface FileParseOptions {
  /** Verify CRC32 checksums. */
  verify: boolean;
  /** Receives warnings (parts left out). */
  warn: (message: string) => void;
  /** Read buffer size without a hash pool. */
  bufferSize: number;
  /** Where transactions are hashed; null when not hashing. */
  pool: HashPool | null;
  /** node:crypto and node:zlib. */
  native: Native;
  /** Offset to start at; events before it only set the format. */
  startPosition: number;
  /** Index of this file in the files read. */
  fileIndex: number;
  /** The transaction the previous file left open: continued here if this file is a relay log. */
  carryIn: Carry | null;
}

/** What a file leaves to the next one, and where it ended. */
export interface FileEnd {
  /** The transaction open at the end of this (not last) file. */
  carry: Carry | null;
  /** Where this file ended (for the last file: where the read ended). */
  end: ReadEnd;
}

/** The size and log_pos an event's header gives. */
interface Header {
  size: number;
  logPos: number;
}

/** The events of encrypted binlogs are not read. */
function encrypted(): EventError {
  return new EventError("unsupported", "encrypted binlog (START_ENCRYPTION event): cannot read it");
}

/** Parser of one file or stream: framing, checksums, grouping, hashing. */
export class FileParser {
  private src: ByteSource;
  private reader: EventReader;
  private native: Native;
  /** Plans the events under the latest format description; null before the first one. */
  private planner: HashPlanner | null = null;
  /** Whether the events under the latest format description end in a CRC32. */
  private checksum = false;
  private group: Group | null = null;
  private out: BinlogTransaction[] = [];
  private verify: boolean;
  private warn: (m: string) => void;
  private startPosition: number;
  private fileIndex: number;
  /** Open transaction left by the previous file, until this file's first FDE decides. */
  private carryIn: Carry | null;
  /** Open transaction at the end of this (non-final) file. */
  private carryOut: Carry | null = null;
  /** Bytes in earlier files of the transaction continued from them (adopted carry). */
  private carriedBytes = 0;
  /** log_pos of the last complete event (0 before the first): see isTornTail. */
  private prevLogPos = 0;
  /** Offset after the last complete transaction that ended in this file, or -1. */
  private lastTransactionEnd = -1;
  /** Where the file ended (set at its end). */
  private end: ReadEnd | null = null;
  /** Where the hash prefix of an event is written before it goes to the pool. */
  private prefix = new Uint8Array(HASH_PREFIX_MAX);
  private pool: HashPool | null;

  /** A parser of `src`. */
  constructor(src: ByteSource, opts: FileParseOptions) {
    this.src = src;
    this.pool = opts.pool;
    this.native = opts.native;
    this.fileIndex = opts.fileIndex;
    this.carryIn = opts.carryIn;
    let buffers: ReadBuffers;
    if (this.pool !== null) {
      const pool = this.pool;
      pool.beginFile(src.name);
      buffers = { take: () => pool.takeReadBuffer(), retire: () => pool.retireReadBuffer() };
    } else buffers = ownBuffer(opts.bufferSize);
    this.reader = new EventReader(src, buffers);
    this.verify = opts.verify;
    this.warn = opts.warn;
    this.startPosition = opts.startPosition;
  }

  private fail(kind: BinlogErrorKind, offset: number, detail: string): never {
    throw new BinlogError(kind, this.src.name, offset, detail);
  }

  /**
   * The file's transactions in order, in arrays; each once its md5 is known. On an error, the
   * transactions complete before it come first. Returns what the file leaves to the next one.
   */
  async *run(): AsyncGenerator<BinlogTransaction[], FileEnd> {
    const pool = this.pool;
    let error: unknown = null;
    try {
      yield* this.walk();
      if (pool !== null) {
        pool.endFile();
        const crcError = pool.checksumError();
        if (crcError !== null) throw crcError;
      }
    } catch (e) {
      error = e;
    }
    if (error !== null && pool !== null) {
      // A bad checksum found by now comes first in the file (the event was read before).
      pool.abort();
      pool.endFile();
      error = pool.checksumError() ?? error;
    }
    const done = this.ready();
    if (done !== null) yield done;
    this.out = [];
    if (error !== null) throw error;
    return { carry: this.carryOut, end: this.end! };
  }

  /** Transactions at the head of `out` whose md5 is known (all of them without hashing). */
  private ready(): BinlogTransaction[] | null {
    const out = this.out;
    if (out.length === 0) return null;
    let n = out.length;
    if (this.pool !== null) {
      this.pool.poll();
      n = 0;
      while (n < out.length && out[n].md5 !== "") n++;
      if (n === 0) return null;
    }
    if (n === out.length) {
      this.out = [];
      return out;
    }
    this.out = out.slice(n);
    return out.slice(0, n);
  }

  private async *walk(): AsyncGenerator<BinlogTransaction[]> {
    const r = this.reader;
    const have = await r.fill(4);
    if (have === 0) this.fail("not_binlog", 0, "not a binlog: empty file");
    for (let i = 0; i < 4; i++) {
      if (i >= have || r.buf[i] !== MAGIC[i]) {
        this.fail("not_binlog", 0, "not a binlog: bad magic number (expected fe 62 69 6e)");
      }
    }
    r.lo = 4;
    let first = true;
    while (true) {
      // Synchronous inner loop over whole events present in the buffer.
      const b = r.buf;
      let lo = r.lo;
      const hi = r.hi;
      // Hand transactions over every few so that they die young (cheap for the garbage
      // collector; RSS grows when many survive a scavenge).
      const limit = this.out.length + 64;
      let last = -1;
      try {
        while (hi - lo >= HEADER_LEN && this.out.length < limit) {
          const size = (b[lo + 9] | (b[lo + 10] << 8) | (b[lo + 11] << 16) | (b[lo + 12] << 24)) >>>
            0;
          if (size > hi - lo) break;
          const pos = r.base + lo;
          if (size < HEADER_LEN) {
            this.fail("corrupt", pos, `event size ${size} is below the 19-byte header`);
          }
          if (first) this.checkFirst(b, lo, pos);
          first = false;
          if (pos < this.startPosition) this.preStartEvent(b, lo, size, pos);
          else this.event(b, lo, size, pos);
          last = lo;
          lo += size;
        }
      } catch (e) {
        throw locate(e, this.src.name, r.base + lo);
      }
      if (last >= 0) this.prevLogPos = u32(b, last + 13);
      r.lo = lo;
      const done = this.ready();
      if (done !== null) yield done;
      const crcError = this.pool?.checksumError();
      if (crcError) throw crcError;
      // Need more input: a header, or an event larger than what is buffered.
      const avail = await r.fill(HEADER_LEN);
      if (avail < HEADER_LEN) {
        this.atEnd(r.offset, avail, null);
        break;
      }
      const size = u32(r.buf, r.lo + 9);
      const pos = r.offset;
      const header = { size, logPos: u32(r.buf, r.lo + 13) };
      if (size < HEADER_LEN) {
        this.fail("corrupt", pos, `event size ${size} is below the 19-byte header`);
      }
      if (size > MAX_EVENT_SIZE) {
        this.fail("corrupt", pos, `event size ${size} is larger than any server writes`);
      }
      if (size <= r.buf.length) {
        const got = await r.fill(size);
        if (got < size) {
          this.atEnd(pos, got, header);
          break;
        }
        continue;
      }
      if (first) this.checkFirst(r.buf, r.lo, pos);
      first = false;
      let more: boolean;
      try {
        more = await this.bigEvent(header, pos);
      } catch (e) {
        throw locate(e, this.src.name, pos);
      }
      if (!more) break;
      const big = this.ready();
      if (big !== null) yield big;
    }
  }

  private checkFirst(b: Uint8Array, o: number, pos: number): void {
    const type = b[o + 4];
    if (type === T_FDE) return;
    if (type === 1) {
      this.fail("unsupported", pos, "binlog format v1/v3 (START_EVENT_V3) is not read");
    }
    this.fail(
      "not_binlog",
      pos,
      `not a binlog: first event has type ${type}, expected FORMAT_DESCRIPTION (15)`,
    );
  }

  /**
   * End of input: the file ends `have` bytes (0: none) after its last complete event, which ends
   * at `pos`; `header` is the header of the event cut short, when all of it is there. A torn
   * event at the end of the last file is left out with a warning; one whose header contradicts
   * its size, or one in a file that is not the last, is corrupt.
   */
  private atEnd(pos: number, have: number, header: Header | null): void {
    if (this.startPosition > pos) {
      this.fail("usage", this.startPosition, "start position is past the end of the file");
    }
    if (have > 0 && !this.src.final) {
      this.fail("corrupt", pos, `event of ${have} bytes truncated (the file is not the last one)`);
    }
    if (have > 0 && header !== null && !isTornTail({ pos, ...header }, this.prevLogPos)) {
      this.fail(
        "corrupt",
        pos,
        `event size ${header.size} points ${
          header.size - have
        } bytes past the end of the file, which its log_pos ${header.logPos} contradicts ` +
          "(a corrupt size, not a torn tail)",
      );
    }
    const end = pos + have;
    this.dropCarry();
    const g = this.group;
    this.end = {
      file: this.src.name,
      size: end,
      complete: g !== null
        ? { file: g.file, offset: g.start }
        : { file: this.src.name, offset: pos },
      eventsEnd: pos,
      lastTransactionEnd: this.lastTransactionEnd,
      tornBytes: have,
      openTransaction: g !== null ? { file: g.file, start: g.start } : null,
      leftOutBytes: g !== null ? this.bytesOf(g, end) : have,
    };
    if (g && !this.src.final) {
      // Relay logs can rotate inside a transaction: the next file decides (see dropCarry).
      this.carryOut = { group: g, bytes: this.bytesOf(g, end) };
      this.group = null;
    } else if (g) {
      this.warnPartial(g, this.bytesOf(g, end));
      this.group = null;
      this.pool?.abort();
    } else if (have > 0) {
      this.warn(
        `${this.src.name}: offset ${pos}: partial event of ${have} bytes at end of file left out`,
      );
    }
  }

  /** Bytes of the open group `g` up to offset `end` of this file, earlier files included. */
  private bytesOf(g: Group, end: number): number {
    const startedHere = g.file === this.src.name && g.fileIndex === this.fileIndex;
    return startedHere ? end - g.start : this.carriedBytes + end;
  }

  private warnPartial(g: Group, bytes: number): void {
    this.warn(
      `${g.file}: offset ${g.start}: partial transaction of ${bytes} bytes at end of file left out`,
    );
  }

  /** The previous file's open transaction is not continued here: report it left out. */
  private dropCarry(): void {
    const c = this.carryIn;
    if (c === null) return;
    this.carryIn = null;
    this.warnPartial(c.group, c.bytes);
    // The carried transaction is the one open in the pool (this file has opened none).
    if (this.group === null) this.pool?.abort();
  }

  /** Events before --start-position: only format descriptions matter. */
  private preStartEvent(b: Uint8Array, o: number, size: number, pos: number): void {
    if (pos + size > this.startPosition) {
      this.fail(
        "usage",
        this.startPosition,
        `start position is not at an event boundary (an event spans ${pos} to ${pos + size})`,
      );
    }
    const type = b[o + 4];
    if (type === T_FDE) this.formatDescription(b, o, size, pos);
    else if (type === T_START_ENCRYPTION) throw encrypted();
  }

  private formatDescription(b: Uint8Array, o: number, size: number, pos: number): void {
    const format = decodeFormatDescription(b, o, size);
    if (format.checksum && this.verify) {
      // The server sets and clears the in-use flag (0x01) without updating the checksum.
      const head = b.slice(o, o + HEADER_LEN);
      head[17] &= 0xfe;
      const crc = this.native.crcRange;
      const computed = crc(b, o + HEADER_LEN, o + size - 4, crc(head, 0, HEADER_LEN));
      const stored = u32(b, o + size - 4);
      if (stored !== computed) {
        throw crcMismatch({ file: this.src.name, offset: pos, stored, computed });
      }
    }
    this.checksum = format.checksum;
    this.planner = new HashPlanner(format, this.native);
    if (this.carryIn !== null) {
      if ((u16(b, o + 17) & FLAG_RELAY_LOG) !== 0 && this.group === null) {
        // A relay log continues the previous one, possibly inside a transaction.
        this.group = this.carryIn.group;
        this.carriedBytes = this.carryIn.bytes;
        this.carryIn = null;
      } else this.dropCarry();
    }
  }

  private checkCrc(b: Uint8Array, o: number, size: number, pos: number): void {
    const stored = u32(b, o + size - 4);
    const computed = this.native.crcRange(b, o, o + size - 4);
    if (stored !== computed) {
      throw crcMismatch({ file: this.src.name, offset: pos, stored, computed });
    }
  }

  /** The planner in force at the event at `pos`. */
  private plannerAt(pos: number): HashPlanner {
    if (this.planner === null) {
      this.fail("corrupt", pos, "event before any FORMAT_DESCRIPTION event");
    }
    return this.planner;
  }

  /** One complete event in b[o, o+size), at file offset pos. */
  private event(b: Uint8Array, o: number, size: number, pos: number): void {
    const type = b[o + 4];
    if (type === T_FDE) {
      this.formatDescription(b, o, size, pos);
      return;
    }
    this.plannerAt(pos);
    const crcLen = this.checksum ? 4 : 0;
    if (size < HEADER_LEN + crcLen) this.fail("corrupt", pos, `event size ${size} is too small`);
    if (crcLen && this.verify && !this.pool?.crc(b, o, size, pos)) this.checkCrc(b, o, size, pos);
    if (outsideTransactions(b, o)) return;
    this.content(b, o, size - crcLen, pos, pos + size, u32(b, o + 13));
  }

  /**
   * A complete event of a transaction (or of none) whose content, without CRC, is b[o, o+end).
   * If it opens a group, the group starts at file offset `start`; if it ends one, the
   * transaction ends at file offset `endOffset` and log_pos `logPos`. For the inner events of a
   * TRANSACTION_PAYLOAD these are the payload event's. (Positional arguments: once per event.)
   */
  private content(
    b: Uint8Array,
    o: number,
    end: number,
    start: number,
    endOffset: number,
    logPos: number,
  ): void {
    const type = b[o + 4];
    if (type === T_START_ENCRYPTION) throw encrypted();
    if (type === T_TRANSACTION_PAYLOAD) {
      this.payload(b, o, end, { start, endOffset, logPos });
      return;
    }
    const plan = this.planner!.plan(b, o, end, end);
    const act = this.enter(plan, b, o, end, start);
    if (plan.type !== 0 && this.pool !== null) {
      const pool = this.pool;
      pool.updateRange(this.prefix, 0, writeHashPrefix(plan, u32(b, o), this.prefix));
      pool.updateRange(b, o + plan.from, o + plan.to);
      if (plan.inflated !== null) pool.update(plan.inflated);
    }
    this.leave(act, start, endOffset, logPos);
  }

  /**
   * Applies the grouping rule to the event at b[o] (content up to o + end) before it is hashed:
   * leaves out, opens or marks the group, reads a GTID. Returns the actions (see groupStep).
   */
  private enter(plan: EventPlan, b: Uint8Array, o: number, end: number, start: number): number {
    const act = groupStep(this.group, plan.role, plan.query);
    if ((act & DROP_BEFORE_BEGIN) !== 0) {
      this.dropOpenGroup("a BEGIN query started before its commit");
    } else if ((act & DROP_BEFORE_GTID) !== 0) {
      this.dropOpenGroup("a new GTID event started before its commit");
    }
    if ((act & OPEN) !== 0) this.openGroup(b, o, start);
    const g = this.group;
    if ((act & IN_TRANSACTION) !== 0) g!.inTrx = true;
    if (plan.role === ROLE_GTID) {
      const info = decodeGtid(b, o, end);
      g!.gtid = info.gtid;
      g!.standalone = info.standalone;
      g!.inTrx = info.inTransaction;
    }
    return act;
  }

  /** Applies the grouping rule's end of the event after it is hashed (see content). */
  private leave(act: number, start: number, endOffset: number, logPos: number): void {
    if ((act & END) !== 0) this.terminate(endOffset, logPos);
    else if ((act & ORPHAN_COMMIT) !== 0) {
      this.warn(
        `${this.src.name}: offset ${start}: commit event without a transaction start ignored`,
      );
    }
  }

  private openGroup(b: Uint8Array, o: number, start: number): void {
    this.dropCarry();
    this.pool?.begin();
    this.group = {
      file: this.src.name,
      fileIndex: this.fileIndex,
      start,
      timestamp: u32(b, o),
      serverId: u32(b, o + 5),
      inTrx: false,
      standalone: false,
    };
  }

  private dropOpenGroup(reason: string): void {
    const g = this.group;
    if (!g) return;
    this.warn(`${g.file}: offset ${g.start}: transaction left out: ${reason}`);
    this.group = null;
    this.pool?.abort();
  }

  /** The open group is a complete transaction ending at `endOffset` (log_pos `logPos`). */
  private terminate(endOffset: number, logPos: number): void {
    const g = this.group!;
    this.group = null;
    const md5 = "";
    const t: BinlogTransaction = g.gtid !== undefined
      ? {
        file: this.src.name,
        start: g.start,
        end: logPos,
        endOffset,
        md5,
        gtid: g.gtid,
        timestamp: g.timestamp,
        serverId: g.serverId,
      }
      : {
        file: this.src.name,
        start: g.start,
        end: logPos,
        endOffset,
        md5,
        timestamp: g.timestamp,
        serverId: g.serverId,
      };
    if (g.file !== this.src.name || g.fileIndex !== this.fileIndex) t.startFile = g.file;
    this.lastTransactionEnd = endOffset;
    // Sets t.md5, now or when its batch is hashed.
    this.pool?.end(t);
    this.out.push(t);
  }

  /**
   * MySQL TRANSACTION_PAYLOAD: decompress and process the inner events, which start and end
   * their transaction where the payload event does (`outer`, see content).
   */
  private payload(
    b: Uint8Array,
    o: number,
    end: number,
    outer: { start: number; endOffset: number; logPos: number },
  ): void {
    const h = decodePayloadHeader(b, o, end);
    const inner = payloadEvents(this.native, {
      data: b.subarray(h.from, h.to),
      compression: h.compression,
      uncompressed: h.uncompressed,
    });
    let q = 0;
    while (q < inner.length) {
      if (inner.length - q < HEADER_LEN) {
        throw new EventError("corrupt", "truncated event inside TRANSACTION_PAYLOAD");
      }
      const s = u32(inner, q + 9);
      if (s < HEADER_LEN || q + s > inner.length) {
        throw new EventError("corrupt", "bad event size inside TRANSACTION_PAYLOAD");
      }
      const t = inner[q + 4];
      if (t === T_TRANSACTION_PAYLOAD || t === T_FDE) {
        throw new EventError("corrupt", `unexpected event type ${t} inside TRANSACTION_PAYLOAD`);
      }
      this.content(inner, q, s, outer.start, outer.endOffset, outer.logPos);
      q += s;
    }
  }

  /**
   * The event at `pos` (its header `header`) larger than the read buffer: hashed and checksummed
   * while streaming, never held whole, except compressed events (bounded by MAX_WHOLE_EVENT).
   * Returns false at end of input.
   */
  private async bigEvent(header: Header, pos: number): Promise<boolean> {
    const r = this.reader;
    const size = header.size;
    const type = r.buf[r.lo + 4];
    if (pos < this.startPosition) {
      if (pos + size > this.startPosition) this.preStartEvent(r.buf, r.lo, size, pos);
      const k = await r.skip(size);
      if (k < size) {
        this.atEnd(pos, k, header);
        return false;
      }
      this.prevLogPos = header.logPos;
      return true;
    }
    const planner = this.plannerAt(pos);
    const crcLen = this.checksum ? 4 : 0;
    const whole = type === T_TRANSACTION_PAYLOAD || (type >= 165 && type <= 171) ||
      type === T_FDE || type === T_START_ENCRYPTION;
    if (whole) {
      if (size > MAX_WHOLE_EVENT) {
        this.fail("unsupported", pos, `compressed event of ${size} bytes exceeds the memory limit`);
      }
      const ev = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        if (r.hi === r.lo && (await r.fill(1)) === 0) {
          this.atEnd(pos, got, header);
          return false;
        }
        const k = Math.min(r.hi - r.lo, size - got);
        ev.set(r.buf.subarray(r.lo, r.lo + k), got);
        r.lo += k;
        got += k;
      }
      this.event(ev, 0, size, pos);
      this.prevLogPos = header.logPos;
      return true;
    }
    const skipIt = outsideTransactions(r.buf, r.lo);
    const avail = await r.fill(Math.min(size, PREFIX_MAX));
    if (avail < Math.min(size, PREFIX_MAX)) {
      this.atEnd(pos, avail, header);
      return false;
    }
    const end = size - crcLen;
    let act = 0;
    let plan: EventPlan | null = null;
    if (!skipIt) {
      plan = planner.plan(r.buf, r.lo, end, avail);
      act = this.enter(plan, r.buf, r.lo, end, pos);
    }
    const pool = plan !== null && plan.type !== 0 ? this.pool : null;
    if (pool !== null) {
      // Its pieces pass through the read buffer one after the other: no span can refer to them.
      pool.toNode();
      pool.updateRange(this.prefix, 0, writeHashPrefix(plan!, u32(r.buf, r.lo), this.prefix));
    }
    const from = plan?.from ?? 0;
    const to = plan?.to ?? 0;
    const doCrc = crcLen > 0 && this.verify;
    const tail = new Uint8Array(4);
    let crc = 0;
    let done = 0;
    if (!doCrc && pool === null) {
      const k = await r.skip(size);
      if (k < size) {
        this.atEnd(pos, k, header);
        return false;
      }
      done = size;
    }
    while (done < size) {
      if (r.hi === r.lo && (await r.fill(1)) === 0) {
        this.atEnd(pos, done, header);
        return false;
      }
      const take = Math.min(r.hi - r.lo, size - done);
      const c0 = r.lo;
      if (doCrc) {
        const a = Math.min(take, Math.max(0, size - 4 - done));
        if (a > 0) crc = this.native.crcRange(r.buf, c0, c0 + a, crc);
        for (let k = Math.max(0, size - 4 - done); k < take; k++) {
          tail[done + k - (size - 4)] = r.buf[c0 + k];
        }
      }
      if (pool !== null) {
        const a = Math.max(from, done);
        const z = Math.min(to, done + take);
        if (z > a) pool.update(r.buf.subarray(c0 + a - done, c0 + z - done));
      }
      r.lo += take;
      done += take;
    }
    if (pool !== null && plan!.inflated !== null) pool.update(plan!.inflated);
    if (doCrc) {
      const stored = u32(tail, 0);
      if (stored !== crc) {
        throw crcMismatch({ file: this.src.name, offset: pos, stored, computed: crc });
      }
    }
    if (!skipIt) this.leave(act, pos, pos + size, header.logPos);
    this.prevLogPos = header.logPos;
    return true;
  }
}
