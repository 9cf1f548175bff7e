/**
 * A fake MySQL server on loopback for the protocol client's tests: it sends scripted bytes (what a
 * broken or hostile server could send) and counts them, plus builders of the server's packets.
 *
 * Each connection gets the whole script at once, then the write side is shut (the client reads
 * EOF once it has used everything) while what the client sends is read and dropped until it
 * closes. A scripted part may also be a function that streams (until the client stops reading).
 *
 * @module
 */

const encoder = new TextEncoder();

/** One part of a script: bytes, or a function that streams bytes through `send`. */
export type FakePart = Uint8Array | ((send: (bytes: Uint8Array) => Promise<void>) => Promise<void>);

/** A server that plays a script to every client that connects. */
export class FakeMysqlServer {
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  #listener: Deno.Listener;
  #script: () => FakePart[];
  #sessions = new Set<Promise<void>>();
  #conns = new Set<Deno.Conn>();
  /** Bytes written to clients so far (a streaming part stops when the client stops reading). */
  written = 0;

  /** Listens on a free port; `script` is called for each connection. */
  constructor(script: () => FakePart[]) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#script = script;
    this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const session = this.#serve(conn);
        this.#sessions.add(session);
        session.finally(() => this.#sessions.delete(session));
      }
    } catch {
      // closed
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    const drain = (async () => {
      const sink = new Uint8Array(64 * 1024);
      try {
        while ((await conn.read(sink)) !== null);
      } catch {
        // reset by the client
      }
    })();
    const send = async (bytes: Uint8Array) => {
      let o = 0;
      while (o < bytes.length) {
        const n = await conn.write(bytes.subarray(o));
        o += n;
        this.written += n;
      }
    };
    try {
      for (const part of this.#script()) {
        if (part instanceof Uint8Array) await send(part);
        else await part(send);
      }
      await conn.closeWrite();
    } catch {
      // the client closed first
    }
    await drain;
    this.#conns.delete(conn);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  /** Stops listening and ends every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await Promise.all([...this.#sessions]);
  }
}

/** Bytes of a length-encoded integer. */
export function lenenc(n: number): number[] {
  if (n < 0xfb) return [n];
  if (n < 0x10000) return [0xfc, n & 255, n >> 8];
  if (n < 0x1000000) return [0xfd, n & 255, (n >> 8) & 255, n >> 16];
  const out = [0xfe];
  let v = n;
  for (let k = 0; k < 8; k++) {
    out.push(v % 256);
    v = Math.floor(v / 256);
  }
  return out;
}

/** A length-encoded string's bytes. */
export function lenencString(s: string): number[] {
  const b = encoder.encode(s);
  return [...lenenc(b.length), ...b];
}

/** One packet (payload under 16 MiB) with its header. */
export function packet(seq: number, payload: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out[0] = payload.length & 255;
  out[1] = (payload.length >> 8) & 255;
  out[2] = (payload.length >> 16) & 255;
  out[3] = seq & 255;
  out.set(payload, 4);
  return out;
}

/** Server status flag bits used in scripts. */
export const STATUS = { AUTOCOMMIT: 0x2, MORE_RESULTS: 0x8, NO_BACKSLASH_ESCAPES: 0x200 };

/** Options of {@link greeting}. */
export interface GreetingOptions {
  /** Server version. Default "10.11.6-MariaDB-fake". */
  version?: string;
  /** Status flags. Default AUTOCOMMIT. */
  status?: number;
  /** Default auth plugin. Default mysql_native_password. */
  plugin?: string;
}

/** A protocol-10 greeting payload offering PROTOCOL_41, SECURE_CONNECTION and PLUGIN_AUTH. */
export function greeting(options: GreetingOptions = {}): number[] {
  const caps = 0x200 | 0x8000 | 0x80000 | 0x2000 | 0x20000 | 0x1 | 0x4;
  return [
    10,
    ...encoder.encode(options.version ?? "10.11.6-MariaDB-fake"),
    0,
    7,
    0,
    0,
    0, // connection id
    ...encoder.encode("abcdefgh"),
    0,
    caps & 255,
    (caps >> 8) & 255,
    45, // charset
    (options.status ?? STATUS.AUTOCOMMIT) & 255,
    (options.status ?? STATUS.AUTOCOMMIT) >> 8,
    (caps >> 16) & 255,
    (caps >> 24) & 255,
    21,
    ...new Array(10).fill(0),
    ...encoder.encode("ijklmnopqrst"),
    0,
    ...encoder.encode(options.plugin ?? "mysql_native_password"),
    0,
  ];
}

/** An OK payload with status flags. */
export function ok(status = STATUS.AUTOCOMMIT): number[] {
  return [0x00, 0, 0, status & 255, status >> 8, 0, 0];
}

/** An EOF payload with status flags. */
export function eof(status = STATUS.AUTOCOMMIT): number[] {
  return [0xfe, 0, 0, status & 255, status >> 8];
}

/** An ERR payload. */
export function err(errno: number, message: string): number[] {
  return [0xff, errno & 255, errno >> 8, ...encoder.encode("#HY000"), ...encoder.encode(message)];
}

/** A ColumnDefinition41 payload (type 0xfd VAR_STRING unless given). */
export function column(name: string, type = 0xfd): number[] {
  return [
    ...lenencString("def"),
    ...lenencString(""),
    ...lenencString(""),
    ...lenencString(""),
    ...lenencString(name),
    ...lenencString(name),
    0x0c,
    45,
    0,
    255,
    0,
    0,
    0,
    type,
    0,
    0,
    0,
    0,
    0,
  ];
}

/** A text-protocol row payload; null is SQL NULL. */
export function row(values: (string | null)[]): number[] {
  return values.flatMap((v) => v === null ? [0xfb] : lenencString(v));
}

/**
 * The packets of a whole result set from sequence id 1: column count, definitions, EOF, rows,
 * EOF with `status`.
 */
export function resultSet(
  columns: string[],
  rows: (string | null)[][],
  status = STATUS.AUTOCOMMIT,
): Uint8Array[] {
  let seq = 1;
  return [
    packet(seq++, lenenc(columns.length)),
    ...columns.map((c) => packet(seq++, column(c))),
    packet(seq++, eof()),
    ...rows.map((r) => packet(seq++, row(r))),
    packet(seq++, eof(status)),
  ];
}

/** The greeting and the login OK: a server that lets any password in. */
export function login(options: GreetingOptions = {}): Uint8Array[] {
  return [packet(0, greeting(options)), packet(2, ok(options.status))];
}
