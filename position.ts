/**
 * The position vocabulary (pure): a place in a server's binary log, the one rule for binary and
 * relay log file names, the one rule for host names, their order, and the one `host|file|pos`
 * codec that the published master (`<rsc>_REPL_INFO`), the positions replicas publish for the
 * election and an old master's final position all use.
 *
 * Every value here may come from an untrusted place (the CIB, a server's reply, a file an
 * operator wrote): the parsers accept only what the rules below allow, with size limits, and
 * answer `undefined` for anything else.
 *
 * Why a file name may never start with `-`, `.` or hold `/`: names end up as arguments of tools
 * (`mariadb-binlog ... FILE`) and as paths under a datadir; a leading `-` would read as an option,
 * a `/` or `..` would leave the datadir.
 *
 * @module
 */

/** A position in a server's binary log (or, in a replica's status, in its master's). */
export interface BinlogPosition {
  /** Binary log file base name, e.g. `mysql-bin.000012`. */
  file: string;
  /** Byte offset in that file (4 is the first event). */
  pos: number;
}

/** A position on a named server: `host|file|pos` in attributes and properties. */
export interface Coordinates extends BinlogPosition {
  /** The server's node name or address. */
  host: string;
}

/** The longest file name accepted (NAME_MAX). */
export const MAX_NAME_LENGTH = 255;
/** The largest position accepted: binary logs are at most 1 GiB plus one event, with room. */
export const MAX_POSITION = 2 ** 53 - 1;

/**
 * A binary or relay log file name: a base name of letters, digits, `_`, `.` and `-` that starts
 * with a letter, digit or `_`, then a numeric extension (`mysql-bin.000012`, `relay-bin.001000`).
 */
const LOG_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,240}\.(\d{1,12})$/;

/**
 * A host: a node name (letters, digits, `-`, `_`, `.`) or an IPv4/IPv6 address, starting and
 * ending with a letter or digit. Never a leading `-` (it would read as an option).
 */
const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9_.:-]{0,251}[A-Za-z0-9])?$/;

/**
 * True when `name` is a binary or relay log file's base name: no path, no leading `-` or `.`, a
 * numeric extension.
 *
 * @example
 * ```ts
 * console.assert(isBinlogName("mysql-bin.000012"));
 * console.assert(!isBinlogName("-hevil.000001"));
 * ```
 */
export function isBinlogName(name: unknown): name is string {
  return typeof name === "string" && name.length <= MAX_NAME_LENGTH && LOG_NAME.test(name) &&
    !name.includes("..");
}

/** True when `host` is a node name or address the agent may connect to or publish. */
export function isValidHost(host: unknown): host is string {
  return typeof host === "string" && HOST.test(host);
}

/** True when `pos` is a byte offset inside a binary log (4, the first event, or later). */
export function isValidPosition(pos: unknown): pos is number {
  return typeof pos === "number" && Number.isSafeInteger(pos) && pos >= 4 && pos <= MAX_POSITION;
}

/** The numeric extension of a binary log name (`mysql-bin.000012` → 12), or -1 for another name. */
export function binlogSequence(name: string): number {
  const m = LOG_NAME.exec(name);
  return m ? Number(m[1]) : -1;
}

/**
 * The binary log before `name` in sequence (`mysql-bin.000010` → `mysql-bin.000009`), keeping the
 * width of the extension; undefined before the first one.
 */
export function previousBinlogName(name: string): string | undefined {
  const m = LOG_NAME.exec(name);
  if (!m) throw new TypeError(`Not a binary log file name: ${JSON.stringify(name)}`);
  const seq = Number(m[1]);
  if (seq <= 1) return undefined;
  return name.slice(0, name.length - m[1].length) + String(seq - 1).padStart(m[1].length, "0");
}

/**
 * Orders two positions of the same server's binary log: negative when `a` is before `b`, 0 when
 * equal, positive after. Files order by their numeric extension (`.000010` after `.000009`, and
 * `.1000000` after `.999999`), then by offset.
 *
 * @example
 * ```ts
 * const a = { file: "mysql-bin.000009", pos: 900 };
 * const b = { file: "mysql-bin.000010", pos: 4 };
 * console.assert(comparePositions(a, b) < 0);
 * ```
 */
export function comparePositions(a: BinlogPosition, b: BinlogPosition): number {
  const sa = binlogSequence(a.file);
  const sb = binlogSequence(b.file);
  if (sa !== sb) return sa - sb;
  return a.pos - b.pos;
}

/** Formats a position for logs and the operator's override: `file:pos`. */
export function formatPosition(p: BinlogPosition): string {
  return `${p.file}:${p.pos}`;
}

/** Parses `file:pos` (untrusted): undefined unless both parts follow the rules. */
export function parsePosition(text: string): BinlogPosition | undefined {
  const v = text.trim();
  const at = v.lastIndexOf(":");
  if (at < 0 || v.length > MAX_NAME_LENGTH + 20) return undefined;
  const file = v.slice(0, at);
  const digits = v.slice(at + 1);
  if (!isBinlogName(file) || !/^\d{1,16}$/.test(digits)) return undefined;
  const pos = Number(digits);
  return isValidPosition(pos) ? { file, pos } : undefined;
}

/**
 * Formats coordinates as `host|file|pos`. Throws a TypeError for a value no reader would accept,
 * so that nothing malformed is ever published.
 *
 * @example
 * ```ts
 * const text = encodeCoordinates({ host: "db1", file: "mysql-bin.000003", pos: 1234 });
 * console.assert(text === "db1|mysql-bin.000003|1234");
 * console.assert(decodeCoordinates(text)?.pos === 1234);
 * ```
 */
export function encodeCoordinates(c: Coordinates): string {
  if (!isValidHost(c.host)) throw new TypeError(`Not a host name or address: ${c.host}`);
  if (!isBinlogName(c.file)) throw new TypeError(`Not a binary log file name: ${c.file}`);
  if (!isValidPosition(c.pos)) throw new TypeError(`Not a binary log position: ${c.pos}`);
  return `${c.host}|${c.file}|${c.pos}`;
}

/** Parses `host|file|pos` (untrusted): undefined when any part breaks its rule. */
export function decodeCoordinates(text: string): Coordinates | undefined {
  if (text.length > 600) return undefined;
  const parts = text.trim().split("|");
  if (parts.length !== 3) return undefined;
  const [host, file, digits] = parts;
  if (!isValidHost(host) || !isBinlogName(file) || !/^\d{1,16}$/.test(digits)) return undefined;
  const pos = Number(digits);
  return isValidPosition(pos) ? { host, file, pos } : undefined;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * 4 or 6 for an IPv4 or IPv6 address, else 0 (node:net's isIP without its zone ids: the agent
 * bundles this module, and loading node:net would slow every agent action's start-up).
 */
export function ipFamily(address: string): 0 | 4 | 6 {
  if (IPV4.test(address)) return 4;
  if (!/^[0-9A-Fa-f:.]+$/.test(address)) return 0;
  const halves = address.split("::");
  if (halves.length > 2) return 0;
  const groups = (part: string) => part === "" ? [] : part.split(":");
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const all = [...head, ...tail];
  let count = all.length;
  // An IPv4 tail (::ffff:1.2.3.4) stands for two groups.
  if (all.length > 0 && all[all.length - 1].includes(".")) {
    if (!IPV4.test(all[all.length - 1])) return 0;
    all.pop();
    count++;
  }
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return 0;
  if (halves.length === 2 ? count > 7 : count !== 8) return 0;
  return 6;
}
