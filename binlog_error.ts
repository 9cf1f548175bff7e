/**
 * The errors of prm_binlog_parser: one class, {@link BinlogError}, whose kind selects the exit
 * code. The event decoders, which know neither the file nor the offset, throw
 * {@link EventError}; the parser turns it into a BinlogError naming both.
 *
 * @module
 */

/** Name used in messages. */
export const PROGRAM = "prm_binlog_parser";

/** Error classes and their process exit codes. */
export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  io: 3,
  not_binlog: 4,
  corrupt: 5,
  unsupported: 6,
} as const;

/** The kind of a BinlogError; selects the exit code. */
export type BinlogErrorKind = Exclude<keyof typeof EXIT_CODES, "ok">;

/**
 * A clean, user-facing failure: names the file and the offset, carries an exit code.
 *
 * @example
 * ```ts
 * const e = new BinlogError("corrupt", "mysql-bin.000007", 1234, "event size 3 is below the 19-byte header");
 * e.message; // "mysql-bin.000007: offset 1234: event size 3 is below the 19-byte header"
 * e.exitCode; // 5
 * ```
 */
export class BinlogError extends Error {
  /** File (or stream) name. */
  file: string;
  /** Byte offset in the file the problem was found at, or -1 when not applicable. */
  offset: number;
  /** Error class. */
  kind: BinlogErrorKind;
  /** Process exit code for the kind. */
  exitCode: number;
  /** The message without the file and offset. */
  detail: string;

  /** Builds the error; the message is `FILE: offset N: detail`. */
  constructor(kind: BinlogErrorKind, file: string, offset: number, detail: string) {
    super(offset >= 0 ? `${file}: offset ${offset}: ${detail}` : `${file}: ${detail}`);
    this.name = "BinlogError";
    this.kind = kind;
    this.file = file;
    this.offset = offset;
    this.detail = detail;
    this.exitCode = EXIT_CODES[kind];
  }
}

/**
 * A problem with the content of one event, found by a decoder that knows neither the file nor
 * the event's offset: the parser reports it as a {@link BinlogError} at the event's offset (see
 * {@link locate}).
 */
export class EventError extends Error {
  /** Error class. */
  kind: BinlogErrorKind;
  /** What is wrong, as BinlogError.detail. */
  detail: string;

  /** Builds the error. */
  constructor(kind: BinlogErrorKind, detail: string) {
    super(detail);
    this.name = "EventError";
    this.kind = kind;
    this.detail = detail;
  }
}

/** `e` as a BinlogError at `file`, `offset` when it is an EventError; else `e` itself. */
export function locate(e: unknown, file: string, offset: number): unknown {
  return e instanceof EventError ? new BinlogError(e.kind, file, offset, e.detail) : e;
}

/** Where a CRC32 check failed, and the two values. */
export interface CrcFailure {
  /** File (or stream) name. */
  file: string;
  /** Offset of the event in the file. */
  offset: number;
  /** The CRC32 stored at the end of the event. */
  stored: number;
  /** The CRC32 computed over the rest of the event. */
  computed: number;
}

/** The error for an event whose stored CRC32 differs from the one computed. */
export function crcMismatch(f: CrcFailure): BinlogError {
  const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
  return new BinlogError(
    "corrupt",
    f.file,
    f.offset,
    `bad CRC32 checksum (stored 0x${hex8(f.stored)}, computed 0x${hex8(f.computed)})`,
  );
}
