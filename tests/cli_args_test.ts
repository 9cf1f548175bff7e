import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { FlagError, parseFlags } from "../cli_args.ts";

const OPTIONS = {
  to: { type: "string" },
  json: { type: "boolean" },
  resource: { type: "string", short: "r" },
  address: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("parseFlags agrees with node:util's parseArgs on what the commands accept", () => {
  const accepted: string[][] = [
    [],
    ["--to", "db2"],
    ["--to=db2", "--json"],
    ["-r", "p_mysql", "-h"],
    ["-rp_mysql"],
    ["--address", "a=1", "--address=b=2"],
    ["--to", "x", "--to", "y"],
    ["--", "file"],
    ["file1", "--json", "file2"],
  ];
  for (const args of accepted) {
    const node = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
    const ours = parseFlags(args, { options: OPTIONS, allowPositionals: true });
    assert.deepEqual({ ...ours.values }, { ...node.values }, args.join(" "));
    assert.deepEqual(ours.positionals, node.positionals, args.join(" "));
  }
});

Deno.test("parseFlags refuses what node:util refuses, with its wording", () => {
  const refused: [string[], RegExp][] = [
    [["--nope"], /Unknown option '--nope'/],
    [["-x"], /Unknown option '-x'/],
    [["--to"], /Option '--to <value>' argument missing/],
    [["--json=yes"], /Option '--json' does not take an argument/],
    [["stray"], /Unexpected argument 'stray'/],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => parseFlags(args, { options: OPTIONS }), FlagError, args.join(" "));
    assert.throws(() => parseFlags(args, { options: OPTIONS }), message);
    assert.throws(() => parseArgs({ args, options: OPTIONS, strict: true }), args.join(" "));
  }
});
