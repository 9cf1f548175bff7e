/**
 * credentials.ts against MariaDB's own option-file reader: each case is written to a file, read
 * by `my_print_defaults --defaults-file=F client replication` (MariaDB's, on this machine) and by
 * the parser, and the two must print the same options byte for byte, or both refuse the file.
 * Then the cases the agent refuses on purpose, and the checks on the file itself.
 */
import assert from "node:assert/strict";
import {
  CredentialsFileError,
  MAX_CREDENTIALS_FILE_BYTES,
  MAX_OPTION_LINE_BYTES,
  parseCredentialsFile,
  parseOptionFile,
} from "../credentials.ts";
import { parseCredentialsFile as agentParse } from "../params.ts";

const enc = new TextEncoder();
const GROUPS = ["client", "replication"];

/** Option file bodies (after a leading group unless they bring their own). */
const CASES: string[] = [
  "[client]\nuser = prm\npassword = s3cret   # rotated\n",
  "[client]\npassword=a#b\n",
  '[client]\npassword="a#b"\n',
  "[client]\npassword='it''s'\n",
  '[client]\npassword="a\\"b"\n',
  "[client]\npassword=a\\\\b\n",
  "[client]\npassword=a\\qb\n",
  "[client]\npassword=a b\n",
  "[client]\npassword = \n",
  "[client]\npassword\n",
  "[client]\npassword #no value\n",
  '[client]\npassword="abc\n',
  "[client]\npassword=\"abc'\n",
  '[client]\npassword=x"#y"\n',
  '[client]\npassword="a" # c\n',
  "[client]\npassword='a#b' #c\n",
  '[client]\npassword=\\"a\\"\n',
  '[client]\npassword="a\\"#b"\n',
  "[client]\npassword=a\\#b\n",
  "[client]\npassword=a\\nb\\tc\\sd\\re\\bf\n",
  "[client]\npassword=ends\\\n",
  '[client]\npassword="  spaced  "\n',
  "[client]\npassword=\ttab\t\n",
  "[client]\npassword=;not a comment\n",
  '[client]\npassword="x"y"\n',
  "[client]\npassword='\"'\n",
  '[client]\npassword=""\n',
  '[client]\npassword="\n',
  '[client]\npassword="\'"#x\n',
  "[client]\npass-word=dash\nPASSWORD=upper\n",
  "[client]\n  password = indented\n",
  "[client]\npassword==eq\npassword=a=b\n",
  "[client]\npassword=é ü €\n",
  "[client]\npassword=Tr0ub4dor'and-SECRET-tail\n",
  "[client]\npassword=last\npassword=wins\n",
  "[client]\nuser=a\r\npassword=b \r\n",
  "[client]\npassword=a\x0bb\x0c\x0b\n",
  "[client]\n= value\n",
  "[client]\nuser=a #x",
  // Groups.
  "[client] # c\nuser=a\n",
  "[client] junk\nuser=a\n",
  "[ client ]\nuser=a\n",
  "[client\nuser=a\n",
  "[]\nuser=a\n[client]\nuser=b\n",
  "[client]]\nuser=a\n",
  "[CLIENT]\nuser=a\n[Replication]\nuser=r\n",
  "[client ]\nuser=a\n",
  "[cli#ent]\nuser=a\n",
  "[client] [replication]\nuser=a\n",
  "[client]\nuser=a\n[mysqld]\nuser=z\n[client]\npassword=p\n",
  "[replication]\nuser=r\n[client]\nuser=c\n",
  "[client]\nuser=a\n[client-server]\nuser=b\n",
  "user=x\n[client]\nuser=a\n",
  "\ufeff[client]\nuser=a\n",
  // Comments and other directives.
  "# c\n; c\n\n[client]\nuser=a\n",
  "[client]\n  # indented comment\n\t; tab comment\nuser=a\n",
  "[client]\n!foo bar\nuser=a\n",
  "[client]\n!includex /y\nuser=a\n",
  // A line just as long as MariaDB reads in one piece.
  `[client]\npassword=${"x".repeat(MAX_OPTION_LINE_BYTES - "password=".length)}\n`,
  "",
];

/** "a\u00a0b" and "a\u00a0" as option values, in UTF-8 (0xc2 0xa0 for the no-break space). */
const NBSP_INSIDE = new Uint8Array([...enc.encode("[client]\npassword=a"), 0xc2, 0xa0, 0x62, 0x0a]);
const NBSP_AT_END = new Uint8Array([...enc.encode("[client]\npassword=a"), 0xc2, 0xa0, 0x0a]);

/** What my_print_defaults prints of groups of a file, or undefined when it refuses the file. */
async function myPrintDefaults(path: string, groups = GROUPS): Promise<Uint8Array | undefined> {
  const out = await new Deno.Command("my_print_defaults", {
    args: [`--defaults-file=${path}`, ...groups],
    env: { PATH: "/usr/bin:/bin" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return out.success ? out.stdout : undefined;
}

/** The parser's options of the same groups, printed as my_print_defaults prints them. */
function ours(bytes: Uint8Array): Uint8Array | undefined {
  try {
    const lines = parseOptionFile(bytes)
      .filter((e) => GROUPS.includes(e.group.toLowerCase()))
      .map((e) => e.value === undefined ? `--${e.name}\n` : `--${e.name}=${e.value}\n`);
    return enc.encode(lines.join(""));
  } catch (e) {
    if (e instanceof CredentialsFileError) {
      assert.equal(e.kind, "configured");
      return undefined;
    }
    throw e;
  }
}

const show = (b: Uint8Array | undefined) =>
  b === undefined ? "(refused)" : JSON.stringify(new TextDecoder().decode(b));

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "prm-credentials-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the parser reads every case as my_print_defaults does", async () => {
  await withDir(async (dir) => {
    const inputs = [...CASES.map((c) => enc.encode(c)), NBSP_INSIDE];
    let refused = 0;
    for (const [i, bytes] of inputs.entries()) {
      const path = `${dir}/case${i}.cnf`;
      await Deno.writeFile(path, bytes, { mode: 0o600 });
      const expected = await myPrintDefaults(path);
      const got = ours(bytes);
      if (expected === undefined) refused++;
      assert.equal(show(got), show(expected), `case ${i}: ${JSON.stringify(CASES[i])}`);
    }
    // Both outcomes occur, or the table tests less than it seems.
    assert.ok(refused >= 3 && refused < inputs.length / 4, `${refused} refused`);
  });
});

/**
 * What my_print_defaults prints of each group alone, as the agent's groups: lower case, `-` as
 * `_`, the last one of a name wins; undefined when it refuses the file.
 */
async function groupsOf(path: string): Promise<Record<string, Record<string, string>> | undefined> {
  const out: Record<string, Record<string, string>> = {};
  for (const group of GROUPS) {
    const printed = await myPrintDefaults(path, [group]);
    if (printed === undefined) return undefined;
    const text = new TextDecoder().decode(printed);
    if (text === "") continue;
    // One option per "--" at a line start (a value may hold a newline, none here holds "\n--").
    for (const option of text.slice(2, -1).split("\n--")) {
      const eq = option.indexOf("=");
      const name = (eq < 0 ? option : option.slice(0, eq)).toLowerCase().replaceAll("-", "_");
      (out[group] ??= {})[name] = eq < 0 ? "" : option.slice(eq + 1);
    }
  }
  return out;
}

Deno.test("the agent's groups (params.ts parseCredentialsFile) are my_print_defaults'", async () => {
  await withDir(async (dir) => {
    for (const [i, text] of CASES.entries()) {
      const path = `${dir}/case${i}.cnf`;
      await Deno.writeTextFile(path, text, { mode: 0o600 });
      let got: Record<string, Record<string, string>> | string;
      try {
        got = agentParse(text);
        for (const g of Object.keys(got)) if (!GROUPS.includes(g)) delete got[g];
      } catch (e) {
        got = `refused (${(e as Error).name})`;
      }
      const expected = await groupsOf(path) ?? "refused (CredentialsFileError)";
      assert.deepEqual(got, expected, `case ${i}: ${JSON.stringify(text)}`);
    }
  });
});

Deno.test("what the agent refuses where MariaDB reads on", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/other.cnf`, "[client]\npassword=from-elsewhere\n");
    await Deno.mkdir(`${dir}/conf.d`);
    const refusedOnPurpose: [string, Uint8Array][] = [
      ["!include", enc.encode(`[client]\nuser=a\n!include ${dir}/other.cnf\n`)],
      ["indented !include", enc.encode(`[client]\n  !include ${dir}/other.cnf\n`)],
      ["!includedir", enc.encode(`[client]\n!includedir ${dir}/conf.d\n`)],
      ["NUL byte", enc.encode("[client]\npassword=a\0b\n")],
      [
        "line past 4094 bytes",
        enc.encode(`[client]\npassword=${"x".repeat(MAX_OPTION_LINE_BYTES)}\n`),
      ],
      // MariaDB trims the byte 0xa0 (a space in latin1) off the UTF-8 of "a\u00a0", leaving
      // half a character: not the password the file holds.
      ["a value cut inside a character", NBSP_AT_END],
    ];
    for (const [what, bytes] of refusedOnPurpose) {
      const path = `${dir}/refused.cnf`;
      await Deno.writeFile(path, bytes, { mode: 0o600 });
      // MariaDB reads each of them (and follows the include).
      assert.ok((await myPrintDefaults(path)) !== undefined, `${what}: my_print_defaults reads it`);
      assert.throws(() => parseOptionFile(bytes), CredentialsFileError, what);
    }
    // An error names the line and never quotes it.
    assert.throws(() => parseCredentialsFile("password=hunter2-very-secret\n[client]\n"), (e) => {
      assert.ok(e instanceof CredentialsFileError);
      assert.ok(!e.message.includes("hunter2"), e.message);
      assert.match(e.message, /^Line 1: /);
      return true;
    });
  });
});

Deno.test("the credentials groups, from text or bytes, within the size limit", () => {
  const text = "[client]\nuser = prm\npassword = s3cret   # rotated\n[replication]\nuser=repl\n" +
    'password=\'r=pw\' ; not a comment\nPass-Word = "quoted \\"x\\""\n';
  const expected = {
    client: { user: "prm", password: "s3cret" },
    replication: { user: "repl", password: "'r=pw' ; not a comment", pass_word: 'quoted "x"' },
  };
  assert.deepEqual(parseCredentialsFile(text), expected);
  assert.deepEqual(parseCredentialsFile(enc.encode(text)), expected);
  // Bytes keep what lenient decoding loses: a BOM (MariaDB refuses the file) and bad UTF-8.
  assert.throws(() => parseCredentialsFile(enc.encode("\ufeff[client]\nuser=a\n")));
  const latin1 = new Uint8Array([...enc.encode("[client]\npassword=caf"), 0xe9, 0x0a]);
  assert.throws(() => parseCredentialsFile(latin1), CredentialsFileError);
  // Comments up to the limit parse; one byte more is refused.
  const atLimit = "#\n".repeat(MAX_CREDENTIALS_FILE_BYTES / 2);
  assert.deepEqual(parseCredentialsFile(atLimit), {});
  assert.throws(() => parseCredentialsFile(atLimit + "#"), (e) => {
    assert.ok(e instanceof CredentialsFileError);
    assert.equal(e.kind, "configured");
    return true;
  });
});
