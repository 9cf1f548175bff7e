/**
 * A small client of the MySQL/MariaDB client/server protocol: connect (unix socket or TCP), log
 * in (mysql_native_password, caching_sha2_password), run text-protocol statements, read their
 * rows. It is what the agent talks to mysqld with.
 *
 * Why not npm:mysql2: every agent action starts a fresh process, and loading mysql2 (with the
 * Node compatibility modules it needs) was most of the agent's start-up, on every monitor and on
 * each of the three actions of a failover. This client uses only Deno's own sockets and Web
 * Crypto. It covers what the agent needs and no more: no prepared statements, no TLS, no LOAD
 * DATA LOCAL, one statement per call.
 *
 * Values come back as mysql2 gives them by default (supportBigNumbers): integers and floats as
 * numbers (BIGINTs beyond 2^53 as strings), DECIMAL and every other type as strings, NULL as
 * null. Errors carry mysql2's `errno`, `code` and `sqlState` fields, so callers classify them the
 * same way.
 *
 * Every reply is untrusted input: a server (or whatever answers on its port) decides how much it
 * sends, so every size it announces is checked against {@link WireLimits} before a byte of it is
 * read, and a reply past a limit fails with a {@link WireLimitError} and closes the connection.
 *
 * The packet encoding and decoding functions are pure and exported for tests.
 *
 * @module
 */

import { after, sleep, type Timer } from "./timer.ts";

/** Client capability flags (protocol constants). */
const CLIENT = {
  LONG_PASSWORD: 0x1,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
} as const;

const SERVER_MORE_RESULTS_EXISTS = 0x8;
/** Server status flag: the session's sql_mode has NO_BACKSLASH_ESCAPES. */
const SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x200;
/** utf8mb4_general_ci: known to MariaDB 10.x/11.x and MySQL 5.6-9.x. */
const CHARSET_UTF8MB4 = 45;
const MAX_PACKET = 0xffffff;

/** mysql2's names of the server errors the agent looks at (others get `ER_<errno>`). */
const ERROR_CODES: Record<number, string> = {
  1040: "ER_CON_COUNT_ERROR",
  1044: "ER_DBACCESS_DENIED_ERROR",
  1045: "ER_ACCESS_DENIED_ERROR",
  1053: "ER_SERVER_SHUTDOWN",
  1094: "ER_NO_SUCH_THREAD",
  1146: "ER_NO_SUCH_TABLE",
  1193: "ER_UNKNOWN_SYSTEM_VARIABLE",
  1203: "ER_TOO_MANY_USER_CONNECTIONS",
  1205: "ER_LOCK_WAIT_TIMEOUT",
  1226: "ER_USER_LIMIT_REACHED",
  1927: "ER_CONNECTION_KILLED",
  1969: "ER_STATEMENT_TIMEOUT",
  3024: "ER_QUERY_TIMEOUT",
};

/** An error from the server (errno set) or from the connection (code set). */
export class MysqlError extends Error {
  /** Server error number, when the server sent an error packet. */
  errno?: number;
  /** mysql2-style code: `ER_...` for server errors, `ECONNREFUSED`, `PROTOCOL_...`, ... */
  code?: string;
  /** SQLSTATE of a server error. */
  sqlState?: string;

  constructor(message: string, fields: { errno?: number; code?: string; sqlState?: string } = {}) {
    super(message);
    this.name = "MysqlError";
    this.errno = fields.errno;
    this.code = fields.code;
    this.sqlState = fields.sqlState;
  }
}

/**
 * Bounds on what a server may make the client hold. The agent's own statements return a few rows
 * of short values (its widest reply is one SHOW SLAVE STATUS row of about 60 columns; its longest
 * lists are SHOW BINARY LOGS and the processlist), so the defaults leave them room by orders of
 * magnitude while a hostile reply costs at most about 75 MiB (measured: the worst was rows of
 * one-byte values up to maxValues; without limits the issue saw 2.1 GiB).
 */
export interface WireLimits {
  /**
   * Bytes of one packet, its 16 MiB pieces joined: the client's max_allowed_packet. Default
   * 16 MiB, the server's own default max_allowed_packet (MariaDB 10.2.4+, MySQL 8.0).
   */
  maxPacketBytes: number;
  /**
   * Bytes of one statement's whole reply (every packet of every result set). Default 32 MiB:
   * the agent's longest reply, a processlist of thousands of sessions, is a few MiB.
   */
  maxResultBytes: number;
  /** Columns of one result set. Default 4096, the most a MySQL or MariaDB table can have. */
  maxColumns: number;
  /**
   * Values of one result set, rows times columns (so it bounds the rows, and the memory their
   * objects take: a row of many tiny values costs far more as an object than as bytes; a million
   * one-byte values measured 180 MiB). Default 250 000: the processlist of 50 000 sessions (five
   * values each), the agent's longest result.
   */
  maxValues: number;
  /**
   * Bytes the server may send from its greeting up to the end of the login (greeting, auth
   * switch, auth data; each is well under 1 KiB). Default 64 KiB.
   */
  maxLoginBytes: number;
}

/** The limits a connection uses for what its options leave out. */
export const DEFAULT_WIRE_LIMITS: Readonly<WireLimits> = Object.freeze({
  maxPacketBytes: 16 * 1024 * 1024,
  maxResultBytes: 32 * 1024 * 1024,
  maxColumns: 4096,
  maxValues: 250_000,
  maxLoginBytes: 64 * 1024,
});

/** A reply past one of the {@link WireLimits}: the client stopped reading and closed. */
export class WireLimitError extends MysqlError {
  /** Which limit. */
  readonly limit: keyof WireLimits;
  /** Its value. */
  readonly max: number;

  constructor(limit: keyof WireLimits, max: number, what: string) {
    super(`The server sent ${what}, past the client's ${limit} of ${max}`, {
      code: "PROTOCOL_LIMIT_EXCEEDED",
    });
    this.name = "WireLimitError";
    this.limit = limit;
    this.max = max;
  }
}

/** Longest server version and auth plugin name accepted in the greeting (real ones: < 64). */
const MAX_NAME_BYTES = 255;
/** Error messages are cut at the size libmysqlclient keeps (MYSQL_ERRMSG_SIZE). */
const MAX_ERROR_MESSAGE_BYTES = 512;

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** A length-encoded integer at b[o]: [value, offset after it]; null for the NULL marker 0xfb. */
export function readLenencInt(b: Uint8Array, o: number): [number | null, number] {
  const first = b[o];
  if (first === undefined) throw new MysqlError("Malformed packet: truncated length", PROTO);
  if (first < 0xfb) return [first, o + 1];
  if (first === 0xfb) return [null, o + 1];
  const n = first === 0xfc ? 2 : first === 0xfd ? 3 : first === 0xfe ? 8 : -1;
  if (n < 0 || o + 1 + n > b.length) {
    throw new MysqlError("Malformed packet: bad length-encoded integer", PROTO);
  }
  let v = 0;
  for (let k = n - 1; k >= 0; k--) v = v * 256 + b[o + 1 + k];
  return [v, o + 1 + n];
}

const PROTO = { code: "PROTOCOL_MALFORMED" };

/** A length-encoded string at b[o] as bytes: [bytes or null, offset after it]. */
function readLenencBytes(b: Uint8Array, o: number): [Uint8Array | null, number] {
  const [len, at] = readLenencInt(b, o);
  if (len === null) return [null, at];
  if (at + len > b.length) throw new MysqlError("Malformed packet: truncated string", PROTO);
  return [b.subarray(at, at + len), at + len];
}

function readNulString(b: Uint8Array, o: number): [string, number] {
  let end = b.indexOf(0, o);
  if (end < 0) end = b.length;
  return [utf8.decode(b.subarray(o, end)), Math.min(end + 1, b.length)];
}

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** The error an ERR packet (first byte 0xff) describes. */
export function parseErrPacket(p: Uint8Array): MysqlError {
  const errno = u16(p, 1);
  let o = 3;
  let sqlState: string | undefined;
  // The SQLSTATE marker is absent in errors sent before the handshake (too many connections).
  if (p[o] === 0x23) {
    sqlState = utf8.decode(p.subarray(o + 1, o + 6));
    o += 6;
  }
  // A message is logged and can become an exit reason: a server does not decide its length.
  const text = p.subarray(o, o + MAX_ERROR_MESSAGE_BYTES);
  const message = utf8.decode(text) + (p.length - o > text.length ? "…" : "");
  return new MysqlError(message, { errno, code: ERROR_CODES[errno] ?? `ER_${errno}`, sqlState });
}

/** What the server's initial handshake packet (protocol 10) says. */
export interface Handshake {
  /** Server version string (e.g. `10.11.6-MariaDB-0+deb12u1-log`). */
  serverVersion: string;
  /** Connection id. */
  connectionId: number;
  /** Server capability flags. */
  capabilities: number;
  /** The 20-byte scramble (auth plugin data). */
  scramble: Uint8Array;
  /** Default auth plugin ("" when the server has no plugin auth). */
  authPlugin: string;
  /** Server status flags (SERVER_STATUS_*), 0 when the greeting has none. */
  status: number;
}

/** Parses the server's first packet; an ERR packet (e.g. too many connections) is thrown. */
export function parseHandshake(p: Uint8Array): Handshake {
  if (p[0] === 0xff) throw parseErrPacket(p);
  if (p[0] !== 10) {
    throw new MysqlError(`Unsupported protocol version ${p[0]}`, { code: "PROTOCOL_VERSION" });
  }
  const [serverVersion, o1] = readNulString(p, 1);
  if (o1 - 2 > MAX_NAME_BYTES) throw new MysqlError("Malformed handshake: version too long", PROTO);
  if (o1 + 4 + 8 + 1 + 2 > p.length) {
    throw new MysqlError("Malformed handshake packet", PROTO);
  }
  const connectionId = u32(p, o1);
  const part1 = p.subarray(o1 + 4, o1 + 12);
  let o = o1 + 13;
  let capabilities = u16(p, o);
  o += 2;
  let authLen = 0;
  let part2 = new Uint8Array(0);
  let authPlugin = "";
  let status = 0;
  if (o < p.length) {
    status = u16(p, o + 1); // after the charset
    o += 1 + 2;
    capabilities = (capabilities | (u16(p, o) << 16)) >>> 0;
    o += 2;
    authLen = p[o];
    o += 1 + 10;
    if (capabilities & CLIENT.SECURE_CONNECTION) {
      const n = Math.max(13, authLen - 8);
      // The last byte of this part is a NUL that is not part of the scramble.
      part2 = p.slice(o, o + n - 1);
      o += n;
    }
    if (capabilities & CLIENT.PLUGIN_AUTH) authPlugin = pluginName(p, o)[0];
  }
  const scramble = new Uint8Array(part1.length + part2.length);
  scramble.set(part1);
  scramble.set(part2, part1.length);
  return { serverVersion, connectionId, capabilities, scramble, authPlugin, status };
}

/**
 * An auth plugin name at p[o] (NUL-terminated or to the end), refused when implausibly long:
 * [name, offset after it].
 */
function pluginName(p: Uint8Array, o: number): [string, number] {
  const [name, end] = readNulString(p, o);
  if (end - o > MAX_NAME_BYTES + 1) throw new MysqlError("Malformed auth plugin name", PROTO);
  return [name, end];
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function sha(algorithm: "SHA-1" | "SHA-256", ...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(algorithm, concat(parts)));
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i % b.length];
  return out;
}

/**
 * The auth response of a plugin for a password and scramble: mysql_native_password is
 * SHA1(pw) XOR SHA1(scramble, SHA1(SHA1(pw))), caching_sha2_password is SHA256(pw) XOR
 * SHA256(SHA256(SHA256(pw)), scramble); both are empty for an empty password. Undefined for a
 * plugin this client does not speak.
 */
export async function authResponse(
  plugin: string,
  password: string,
  scramble: Uint8Array,
): Promise<Uint8Array | undefined> {
  const pw = encoder.encode(password);
  const salt = scramble.subarray(0, 20);
  if (plugin === "mysql_native_password" || plugin === "") {
    if (pw.length === 0) return new Uint8Array(0);
    const h1 = await sha("SHA-1", pw);
    return xor(h1, await sha("SHA-1", salt, await sha("SHA-1", h1)));
  }
  if (plugin === "caching_sha2_password") {
    if (pw.length === 0) return new Uint8Array(0);
    const h1 = await sha("SHA-256", pw);
    return xor(h1, await sha("SHA-256", await sha("SHA-256", h1), salt));
  }
  return undefined;
}

/** The client's HandshakeResponse41 payload. */
export function handshakeResponse(
  opts: { user: string; auth: Uint8Array; plugin: string; serverCapabilities: number },
): Uint8Array {
  const wanted = CLIENT.LONG_PASSWORD | CLIENT.LONG_FLAG | CLIENT.PROTOCOL_41 |
    CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION | CLIENT.MULTI_RESULTS | CLIENT.PLUGIN_AUTH;
  const caps = (wanted & (opts.serverCapabilities | CLIENT.PROTOCOL_41)) >>> 0;
  if (!(caps & CLIENT.SECURE_CONNECTION) || opts.auth.length > 255) {
    throw new MysqlError("The server does not offer secure password authentication", {
      code: "HANDSHAKE_NO_SECURE_CONNECTION",
    });
  }
  const user = encoder.encode(opts.user);
  const plugin = encoder.encode(opts.plugin);
  const out = new Uint8Array(32 + user.length + 1 + 1 + opts.auth.length + plugin.length + 1);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, caps, true);
  dv.setUint32(4, MAX_PACKET + 1, true);
  out[8] = CHARSET_UTF8MB4;
  let o = 32;
  out.set(user, o);
  o += user.length + 1;
  out[o++] = opts.auth.length;
  out.set(opts.auth, o);
  o += opts.auth.length;
  if (caps & CLIENT.PLUGIN_AUTH) {
    out.set(plugin, o);
    o += plugin.length + 1;
  }
  return out.subarray(0, o);
}

/** One column of a result set: what decoding its values needs. */
export interface Column {
  /** Column name (alias). */
  name: string;
  /** Field type (protocol constant). */
  type: number;
  /** Column flags (UNSIGNED 0x20, ...). */
  flags: number;
}

/** Parses a ColumnDefinition41 packet. */
export function parseColumnDefinition(p: Uint8Array): Column {
  let o = 0;
  let name: Uint8Array | null = null;
  // catalog, schema, table, org_table, name, org_name
  for (let k = 0; k < 6; k++) {
    const [s, next] = readLenencBytes(p, o);
    if (k === 4) name = s;
    o = next;
  }
  const [, fixed] = readLenencInt(p, o);
  if (fixed + 10 > p.length) throw new MysqlError("Malformed column definition", PROTO);
  return {
    name: utf8.decode(name ?? new Uint8Array(0)),
    type: p[fixed + 6],
    flags: u16(p, fixed + 7),
  };
}

const INTEGER_TYPES = new Set([1, 2, 3, 9, 13]); // TINY, SHORT, LONG, INT24, YEAR
const LONGLONG = 8;
const FLOAT_TYPES = new Set([4, 5]); // FLOAT, DOUBLE

/** A text-protocol row as an object keyed by column name (later duplicates win, as mysql2's). */
export function decodeRow(p: Uint8Array, columns: readonly Column[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  let o = 0;
  for (const c of columns) {
    const [bytes, next] = readLenencBytes(p, o);
    o = next;
    if (bytes === null) {
      row[c.name] = null;
      continue;
    }
    const text = utf8.decode(bytes);
    if (INTEGER_TYPES.has(c.type) || FLOAT_TYPES.has(c.type)) row[c.name] = Number(text);
    else if (c.type === LONGLONG) {
      const n = Number(text);
      row[c.name] = Number.isSafeInteger(n) ? n : text;
    } else row[c.name] = text;
  }
  return row;
}

/** Status flags of an OK packet (first byte 0x00). */
function okStatus(p: Uint8Array): number {
  const [, o1] = readLenencInt(p, 1); // affected rows
  const [, o2] = readLenencInt(p, o1); // last insert id
  return o2 + 2 <= p.length ? u16(p, o2) : 0;
}

/** Status flags of an EOF packet (0xfe, shorter than 9 bytes). */
function eofStatus(p: Uint8Array): number {
  return p.length >= 5 ? u16(p, 3) : 0;
}

function isEof(p: Uint8Array): boolean {
  return p[0] === 0xfe && p.length < 9;
}

/** How to reach and log in to a server. */
export interface WireConnectOptions {
  /** Unix socket path (used when set). */
  socket?: string;
  /** Host name or address (TCP), when no socket is given. */
  host?: string;
  /** TCP port. Default 3306. */
  port?: number;
  /** Login. */
  user: string;
  /** Password ("" for none). Never logged. */
  password: string;
  /** Deadline for connecting and logging in, in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Bounds on the server's replies, each defaulting to {@link DEFAULT_WIRE_LIMITS}. */
  limits?: Partial<WireLimits>;
}

/** Reads whole packets from a socket, within a packet size and a byte budget per reply. */
class PacketReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(64 * 1024);
  #lo = 0;
  #hi = 0;
  #maxPacket: { limit: keyof WireLimits; max: number };
  #budget: { limit: keyof WireLimits; max: number; left: number };
  /** Sequence id of the last packet read. */
  seq = 0;

  constructor(conn: Deno.Conn, limits: WireLimits) {
    this.#conn = conn;
    this.#maxPacket = { limit: "maxPacketBytes", max: limits.maxPacketBytes };
    // The login comes first, with a budget of its own.
    const login = limits.maxLoginBytes;
    this.#budget = { limit: "maxLoginBytes", max: login, left: login };
  }

  /** Starts a new reply that may take `max` bytes in all (the limit named in errors). */
  budget(limit: keyof WireLimits, max: number): void {
    this.#budget = { limit, max, left: max };
  }

  /** Makes n bytes available at #lo (n at most the buffer's size). */
  async #fill(n: number): Promise<void> {
    if (this.#hi - this.#lo >= n) return;
    if (this.#buf.length - this.#lo < n) {
      this.#buf.copyWithin(0, this.#lo, this.#hi);
      this.#hi -= this.#lo;
      this.#lo = 0;
    }
    while (this.#hi - this.#lo < n) {
      this.#hi += await this.#read(this.#buf.subarray(this.#hi));
    }
  }

  async #read(into: Uint8Array): Promise<number> {
    const got = await this.#conn.read(into);
    if (got === null || got === 0) {
      throw new MysqlError("Connection lost: The server closed the connection.", {
        code: "PROTOCOL_CONNECTION_LOST",
      });
    }
    return got;
  }

  /** The next len bytes, as a copy of their own. */
  async #take(len: number): Promise<Uint8Array> {
    if (len <= this.#buf.length) {
      await this.#fill(len);
      const out = this.#buf.slice(this.#lo, this.#lo + len);
      this.#lo += len;
      return out;
    }
    // Longer than the buffer: read straight into the payload rather than grow the buffer.
    const out = new Uint8Array(len);
    let o = Math.min(len, this.#hi - this.#lo);
    out.set(this.#buf.subarray(this.#lo, this.#lo + o));
    this.#lo += o;
    while (o < len) o += await this.#read(out.subarray(o));
    return out;
  }

  /**
   * The next packet's payload (packets of 2^24-1 bytes are joined with what follows). Each
   * announced length is checked before its bytes are read, so a hostile length costs nothing.
   */
  async next(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    while (true) {
      await this.#fill(4);
      const b = this.#buf;
      const len = b[this.#lo] | (b[this.#lo + 1] << 8) | (b[this.#lo + 2] << 16);
      this.seq = b[this.#lo + 3];
      this.#lo += 4;
      total += len;
      const p = this.#maxPacket;
      if (total > p.max) throw new WireLimitError(p.limit, p.max, `a packet of ${total}+ bytes`);
      const r = this.#budget;
      if (total > r.left) {
        throw new WireLimitError(r.limit, r.max, `a reply of ${r.max - r.left + total}+ bytes`);
      }
      parts.push(await this.#take(len));
      if (len < MAX_PACKET) break;
    }
    this.#budget.left -= total;
    return parts.length === 1 ? parts[0] : concat(parts);
  }
}

/** The packets of one payload with sequence ids from `seq` (split at 2^24-1 bytes). */
export function framePackets(payload: Uint8Array, seq: number): Uint8Array {
  const chunks = Math.floor(payload.length / MAX_PACKET) + 1;
  const out = new Uint8Array(payload.length + 4 * chunks);
  let o = 0;
  for (let k = 0; k < chunks; k++) {
    const part = payload.subarray(k * MAX_PACKET, Math.min(payload.length, (k + 1) * MAX_PACKET));
    out[o] = part.length & 255;
    out[o + 1] = (part.length >> 8) & 255;
    out[o + 2] = (part.length >> 16) & 255;
    out[o + 3] = (seq + k) & 255;
    out.set(part, o + 4);
    o += 4 + part.length;
  }
  return out;
}

function socketError(err: unknown, where: string): MysqlError {
  const codes: Array<[new (...a: never[]) => Error, string]> = [
    [Deno.errors.NotFound, "ENOENT"],
    [Deno.errors.ConnectionRefused, "ECONNREFUSED"],
    [Deno.errors.ConnectionReset, "ECONNRESET"],
    [Deno.errors.BrokenPipe, "EPIPE"],
    [Deno.errors.PermissionDenied, "EACCES"],
    [Deno.errors.TimedOut, "ETIMEDOUT"],
  ];
  for (const [cls, code] of codes) {
    if (err instanceof cls) return new MysqlError(`${where}: ${code} ${err.message}`, { code });
  }
  if (err instanceof MysqlError) return err;
  return new MysqlError(`${where}: ${(err as Error)?.message ?? err}`, { code: "ECONNECTION" });
}

/** One logged-in connection. Statements run one at a time, in call order. */
export class WireConnection {
  /** What the server said in its handshake. */
  readonly handshake: Handshake;
  #conn: Deno.Conn;
  #reader: PacketReader;
  #limits: WireLimits;
  #status: number;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    conn: Deno.Conn,
    reader: PacketReader,
    init: { handshake: Handshake; limits: WireLimits; status: number },
  ) {
    this.#conn = conn;
    this.#reader = reader;
    this.handshake = init.handshake;
    this.#limits = init.limits;
    this.#status = init.status;
  }

  /** Connects and logs in, within `connectTimeoutMs` (an expired deadline is `ETIMEDOUT`). */
  static async connect(opts: WireConnectOptions): Promise<WireConnection> {
    const where = opts.socket !== undefined
      ? `connect ${opts.socket}`
      : `connect ${opts.host}:${opts.port ?? 3306}`;
    const timedOut = () => new MysqlError(`${where}: ETIMEDOUT`, { code: "ETIMEDOUT" });
    const limits: WireLimits = { ...DEFAULT_WIRE_LIMITS, ...opts.limits };
    let conn: Deno.Conn | undefined;
    let expired = false;
    let timer: Timer | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = after(opts.connectTimeoutMs ?? 10_000, () => {
        expired = true;
        if (conn !== undefined) closeQuietly(conn);
        reject(timedOut());
      });
    });
    const login = (async () => {
      try {
        conn = opts.socket !== undefined
          ? await Deno.connect({ transport: "unix", path: opts.socket })
          : await Deno.connect({ hostname: opts.host ?? "localhost", port: opts.port ?? 3306 });
      } catch (err) {
        throw socketError(err, where);
      }
      if (expired) {
        closeQuietly(conn);
        throw timedOut();
      }
      const reader = new PacketReader(conn, limits);
      try {
        const handshake = parseHandshake(await reader.next());
        const status = await logIn(conn, reader, handshake, opts);
        return new WireConnection(conn, reader, { handshake, limits, status });
      } catch (err) {
        closeQuietly(conn);
        throw expired ? timedOut() : socketError(err, where);
      }
    })();
    // Whichever loses the race must not become an unhandled rejection.
    login.catch(() => {});
    deadline.catch(() => {});
    try {
      return await Promise.race([login, deadline]);
    } finally {
      timer?.cancel();
    }
  }

  /** True once closed (by close, a timeout, or a lost connection). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * True when the session's sql_mode has NO_BACKSLASH_ESCAPES, as the server's status flags of
   * its last reply say (the greeting, then every OK and EOF): string literals must then be
   * quoted without backslash escapes (see sql.ts). Known without a query of its own.
   */
  get noBackslashEscapes(): boolean {
    return (this.#status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) !== 0;
  }

  /**
   * Runs one statement and returns its rows (none for a statement without a result set). Past
   * `timeoutMs` the connection is destroyed and the call fails with `PROTOCOL_SEQUENCE_TIMEOUT`,
   * as mysql2's query timeout does.
   */
  query(sql: string, timeoutMs = 10_000): Promise<Record<string, unknown>[]> {
    const run = this.#queue.then(() => this.#query(sql, timeoutMs));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #query(sql: string, timeoutMs: number): Promise<Record<string, unknown>[]> {
    if (this.#closed) {
      throw new MysqlError("Can't add new command when connection is in closed state", {
        code: "PROTOCOL_CONNECTION_CLOSED",
      });
    }
    let timedOut = false;
    const timer = after(timeoutMs, () => {
      timedOut = true;
      this.destroy();
    });
    try {
      const text = encoder.encode(sql);
      const payload = new Uint8Array(1 + text.length);
      payload[0] = 0x03; // COM_QUERY
      payload.set(text, 1);
      await writeAll(this.#conn, framePackets(payload, 0));
      this.#reader.budget("maxResultBytes", this.#limits.maxResultBytes);
      return await this.#readResult();
    } catch (err) {
      if (timedOut) {
        throw new MysqlError(`Query inactivity timeout (${timeoutMs} ms)`, {
          code: "PROTOCOL_SEQUENCE_TIMEOUT",
        });
      }
      if (err instanceof MysqlError && err.errno !== undefined) throw err;
      // Anything but a server error leaves the connection in an unknown state.
      this.destroy();
      throw err instanceof MysqlError && err.code === "PROTOCOL_CONNECTION_LOST"
        ? err
        : socketError(err, "query");
    } finally {
      timer.cancel();
    }
  }

  /** Reads one statement's response: its first result set's rows; later ones are drained. */
  async #readResult(): Promise<Record<string, unknown>[]> {
    const { maxColumns, maxValues } = this.#limits;
    let rows: Record<string, unknown>[] | undefined;
    while (true) {
      const first = await this.#reader.next();
      if (first[0] === 0x00) this.#status = okStatus(first);
      // An error ends the response, also after earlier result sets.
      else if (first[0] === 0xff) throw parseErrPacket(first);
      else if (first[0] === 0xfb) {
        throw new MysqlError("LOAD DATA LOCAL is not supported", { code: "PROTOCOL_UNSUPPORTED" });
      } else {
        const [count] = readLenencInt(first, 0);
        if (count === null || count > maxColumns) {
          throw new WireLimitError("maxColumns", maxColumns, `${count} columns`);
        }
        const columns: Column[] = [];
        for (let k = 0; k < count; k++) {
          columns.push(parseColumnDefinition(await this.#reader.next()));
        }
        const eof = await this.#reader.next();
        if (!isEof(eof)) throw new MysqlError("Expected EOF after column definitions", PROTO);
        // Only the first result set is kept; the rows of later ones are read and dropped.
        const set: Record<string, unknown>[] | undefined = rows === undefined ? [] : undefined;
        let values = 0;
        while (true) {
          const p = await this.#reader.next();
          if (isEof(p)) {
            this.#status = eofStatus(p);
            break;
          }
          if (p[0] === 0xff) throw parseErrPacket(p);
          if (set === undefined) continue;
          values += count;
          if (values > maxValues) {
            throw new WireLimitError("maxValues", maxValues, `more than ${set.length} rows`);
          }
          set.push(decodeRow(p, columns));
        }
        rows ??= set;
      }
      if (!(this.#status & SERVER_MORE_RESULTS_EXISTS)) return rows ?? [];
    }
  }

  /** Ends the session (COM_QUIT) and closes the socket; never throws, never waits long. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // A statement in flight (there is none unless a caller did not await) keeps the socket.
    const quit = writeAll(this.#conn, framePackets(new Uint8Array([0x01]), 0)).catch(() => {});
    await Promise.race([quit, sleep(500)]);
    this.destroy();
  }

  /** Closes the socket at once. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
  }
}

/** Closes a socket that the other side, a deadline or an earlier error may have closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let o = 0;
  while (o < data.length) o += await conn.write(data.subarray(o));
}

/** The login exchange after the handshake, up to the server's OK; returns its status flags. */
async function logIn(
  conn: Deno.Conn,
  reader: PacketReader,
  handshake: Handshake,
  opts: WireConnectOptions,
): Promise<number> {
  let plugin = handshake.authPlugin || "mysql_native_password";
  let scramble = handshake.scramble;
  let auth = await authResponse(plugin, opts.password, scramble);
  if (auth === undefined) {
    // Offer the native plugin: the server switches us to the account's own if it differs.
    plugin = "mysql_native_password";
    auth = (await authResponse(plugin, opts.password, scramble))!;
  }
  await writeAll(
    conn,
    framePackets(
      handshakeResponse({
        user: opts.user,
        auth,
        plugin,
        serverCapabilities: handshake.capabilities,
      }),
      reader.seq + 1,
    ),
  );
  const viaSocket = opts.socket !== undefined;
  for (let round = 0; round < 8; round++) {
    const p = await reader.next();
    if (p[0] === 0x00) return okStatus(p);
    if (p[0] === 0xff) throw parseErrPacket(p);
    let reply: Uint8Array;
    if (p[0] === 0xfe) {
      // Auth switch: another plugin, a new scramble.
      const [name, o] = pluginName(p, 1);
      plugin = name;
      scramble = p.slice(o, p[p.length - 1] === 0 ? p.length - 1 : p.length);
      const r = await authResponse(plugin, opts.password, scramble);
      if (r === undefined) {
        throw new MysqlError(`The server asks for the auth plugin ${name}, not supported here`, {
          code: "AUTH_PLUGIN_UNSUPPORTED",
        });
      }
      reply = r;
    } else if (p[0] === 0x01 && plugin === "caching_sha2_password") {
      if (p[1] === 3) continue; // fast auth done: the OK follows
      if (p[1] !== 4) throw new MysqlError("Unexpected caching_sha2_password reply", PROTO);
      // Full authentication: the password itself, which only a unix socket may carry in clear.
      if (!viaSocket) {
        throw new MysqlError(
          "caching_sha2_password full authentication over TCP needs TLS, not supported here",
          { code: "AUTH_PLUGIN_UNSUPPORTED" },
        );
      }
      const pw = encoder.encode(opts.password);
      reply = new Uint8Array(pw.length + 1);
      reply.set(pw);
    } else {
      throw new MysqlError(`Unexpected packet 0x${p[0]?.toString(16)} during login`, PROTO);
    }
    await writeAll(conn, framePackets(reply, reader.seq + 1));
  }
  throw new MysqlError("Login did not finish", PROTO);
}
