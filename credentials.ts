/**
 * The credentials file: a my.cnf-style option file whose [client] group holds the agent's login
 * and [replication] group the replication login, read by the rules MariaDB's own option-file
 * reader applies (so that `my_print_defaults --defaults-file=F client replication` and the agent
 * see the same values; tests/credentials_test.ts compares the two on a table of cases):
 *
 * - A line is read up to `\n`; leading and trailing white space goes (space, tab, CR, LF, VT, FF
 *   and the byte 0xA0, which MariaDB's latin1 rules count as space).
 * - Lines starting with `#` or `;` are comments; on an option line, `#` outside quotes starts a
 *   comment (`s3cret   # rotated` is `s3cret`); `;` elsewhere is an ordinary character.
 * - `[name]` starts a group (the text after `]` is ignored; trailing space in the name goes,
 *   leading space stays; names compare case-insensitively). An option before any group, or a `[`
 *   without `]`, makes the whole file invalid.
 * - `name = value`: white space around both goes; one pair of matching quotes (`'` or `"`) around
 *   the whole value goes; then `\n \t \r \b \s \" \' \\` are escapes (newline, tab, CR, backspace,
 *   space, the character), any other backslash stays as it is. `name` alone is an option without
 *   value; a later option of the same name wins.
 *
 * What the agent refuses where MariaDB would read on: `!include` and `!includedir` (other `!`
 * lines are ignored, as MariaDB does), because an included file escapes the checks made on this
 * one (a regular file, no group or other access) and a directory brings in whatever files appear
 * there later, while the two groups the agent needs fit in this file; lines of more than 4094
 * bytes (MariaDB reads a line in pieces of that size and takes the rest for another option); NUL
 * bytes (MariaDB ends the line there); and values that are not UTF-8 (they would reach the server
 * as other bytes than the file holds). The file is untrusted input of at most 64 KiB. Checks on the
 * file itself (regular, owner, mode 0600, a bounded read) belong to whoever opens it.
 *
 * @module
 */

import type { AgentParams, ProblemKind } from "./params.ts";

/**
 * Largest credentials file accepted: two groups of a few lines fit a hundred times over. Whoever
 * reads the file bounds the read by it (the parser refuses more).
 */
export const MAX_CREDENTIALS_FILE_BYTES = 64 * 1024;

/** Longest line MariaDB 10.11 reads in one piece (measured with my_print_defaults). */
export const MAX_OPTION_LINE_BYTES = 4094;

/** A credentials file that cannot be used; `kind` says which OCF error it maps to. */
export class CredentialsFileError extends Error {
  /** installed: missing; perm: access too open or unreadable; configured: its content. */
  readonly kind: ProblemKind;

  constructor(kind: ProblemKind, message: string) {
    super(message);
    this.name = "CredentialsFileError";
    this.kind = kind;
  }
}

/** One option of an option file, in file order. */
export interface OptionEntry {
  /** The group it is in, as written (compare case-insensitively). */
  group: string;
  /** Option name as written. */
  name: string;
  /** Its value; undefined for an option written without `=`. */
  value?: string;
}

/** Bytes MariaDB's option-file reader counts as white space. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

const ESCAPES: Record<number, number> = {
  0x6e: 0x0a, // \n
  0x74: 0x09, // \t
  0x72: 0x0d, // \r
  0x62: 0x08, // \b
  0x73: 0x20, // \s
  0x22: 0x22, // \"
  0x27: 0x27, // \'
  0x5c: 0x5c, // \\
};

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Where an option line's comment starts (a `#` outside quotes), or the line's end. */
function commentStart(line: Uint8Array): number {
  let quote = 0;
  let escaped = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if ((c === 0x27 || c === 0x22) && !escaped) {
      if (quote === 0) quote = c;
      else if (quote === c) quote = 0;
    }
    if (quote === 0 && c === 0x23) return i;
    // A backslash protects a quote only inside quotes.
    escaped = quote !== 0 && c === 0x5c && !escaped;
  }
  return line.length;
}

/** The value bytes between `from` and `to`: quotes around it removed, escapes resolved. */
function optionValue(line: Uint8Array, from: number, to: number): Uint8Array {
  let a = from;
  let b = to;
  while (a < b && isSpace(line[a])) a++;
  while (b > a && isSpace(line[b - 1])) b--;
  if (b - a > 1 && (line[a] === 0x22 || line[a] === 0x27) && line[b - 1] === line[a]) {
    a++;
    b--;
  }
  const out: number[] = [];
  for (let i = a; i < b; i++) {
    if (line[i] === 0x5c && i < b - 1) {
      const next = line[++i];
      const mapped = ESCAPES[next];
      if (mapped === undefined) out.push(0x5c, next);
      else out.push(mapped);
    } else out.push(line[i]);
  }
  return Uint8Array.from(out);
}

function text(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new CredentialsFileError("configured", `${where} is not valid UTF-8`);
  }
}

function startsWithWord(line: Uint8Array, at: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (line[at + k] !== word.charCodeAt(k)) return false;
  const after = line[at + word.length];
  return after === undefined || isSpace(after);
}

/**
 * Parses an option file's bytes (the caller bounds their size) into its options, in file order.
 * Throws a
 * {@link CredentialsFileError} (kind configured) naming the line, never quoting it (it may hold
 * a password).
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("[client]\nuser = prm\npassword = s3cret   # rotated\n");
 * parseOptionFile(bytes);
 * // [{ group: "client", name: "user", value: "prm" }, { group: "client", name: "password", value: "s3cret" }]
 * ```
 */
export function parseOptionFile(bytes: Uint8Array): OptionEntry[] {
  const entries: OptionEntry[] = [];
  let group: string | undefined;
  let start = 0;
  for (let n = 1; start < bytes.length; n++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const line = bytes.subarray(start, end);
    start = end + 1;
    const where = `Line ${n}`;
    if (line.length > MAX_OPTION_LINE_BYTES) {
      throw new CredentialsFileError(
        "configured",
        `${where} is longer than ${MAX_OPTION_LINE_BYTES} bytes`,
      );
    }
    if (line.includes(0)) throw new CredentialsFileError("configured", `${where} has a NUL byte`);
    let at = 0;
    while (at < line.length && isSpace(line[at])) at++;
    const first = line[at];
    if (first === undefined || first === 0x23 || first === 0x3b) continue;
    if (first === 0x21) {
      if (startsWithWord(line, at + 1, "include") || startsWithWord(line, at + 1, "includedir")) {
        throw new CredentialsFileError(
          "configured",
          `${where}: !include and !includedir are not followed in a credentials file; put the [client] and [replication] groups in this one file`,
        );
      }
      continue;
    }
    if (first === 0x5b) {
      const close = line.indexOf(0x5d, at + 1);
      if (close < 0) throw new CredentialsFileError("configured", `${where}: a group without ]`);
      let nameEnd = close;
      while (nameEnd > at + 1 && isSpace(line[nameEnd - 1])) nameEnd--;
      group = text(line.subarray(at + 1, nameEnd), `${where}'s group name`);
      continue;
    }
    if (group === undefined) {
      throw new CredentialsFileError("configured", `${where}: an option before any [group]`);
    }
    const body = line.subarray(0, commentStart(line));
    const eq = body.indexOf(0x3d, at);
    let nameEnd = eq < 0 ? body.length : eq;
    while (nameEnd > at && isSpace(body[nameEnd - 1])) nameEnd--;
    const name = text(body.subarray(at, nameEnd), `${where}'s option name`);
    if (eq < 0) entries.push({ group, name });
    else {
      const value = text(optionValue(body, eq + 1, body.length), `${where}'s value`);
      entries.push({ group, name, value });
    }
  }
  return entries;
}

/**
 * The groups of a credentials file: lower-case group name → option name (lower case, `-` as `_`)
 * → value ("" for an option without value; the last one of a name wins). Give it the file's
 * bytes where possible: text decoded leniently has lost a BOM (which MariaDB refuses) and
 * invalid UTF-8 (which this refuses). Throws a {@link CredentialsFileError} (kind configured)
 * past {@link MAX_CREDENTIALS_FILE_BYTES} or as {@link parseOptionFile} does.
 *
 * @example
 * ```ts
 * parseCredentialsFile("[client]\nuser = prm\npassword = 's3cret' # rotated\n");
 * // { client: { user: "prm", password: "s3cret" } }
 * ```
 */
export function parseCredentialsFile(
  input: string | Uint8Array,
): Record<string, Record<string, string>> {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  if (bytes.length > MAX_CREDENTIALS_FILE_BYTES) {
    throw new CredentialsFileError(
      "configured",
      `The file has ${bytes.length} bytes, more than the ${MAX_CREDENTIALS_FILE_BYTES} allowed`,
    );
  }
  return groups(parseOptionFile(bytes));
}

function groups(entries: OptionEntry[]): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  for (const e of entries) {
    const section = sections[e.group.toLowerCase()] ??= {};
    section[e.name.toLowerCase().replaceAll("-", "_")] = e.value ?? "";
  }
  return sections;
}

/** A login read from the credentials file or the parameters. */
export interface Login {
  /** User name. */
  user: string;
  /** Password ("" for none). */
  password: string;
}

/** The two logins the agent uses. */
export interface Credentials {
  /** The agent's own login over the socket. */
  client: Login;
  /** The replication login. */
  replication: Login;
}

/** Combines parameters and an optional parsed credentials file; the file wins. */
export function resolveCredentials(
  params: Pick<AgentParams, "testUser" | "testPasswd" | "replicationUser" | "replicationPasswd">,
  file?: Record<string, Record<string, string>>,
): Credentials {
  const client = file?.client;
  const repl = file?.replication;
  return {
    client: {
      user: client?.user ?? params.testUser,
      password: client?.password ?? params.testPasswd,
    },
    replication: {
      user: repl?.user ?? params.replicationUser,
      password: repl?.password ?? params.replicationPasswd,
    },
  };
}
