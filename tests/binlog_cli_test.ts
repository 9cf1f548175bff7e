// CLI tests of prm_binlog_parser: `deno run binlog.ts`, and dist/prm_binlog_parser when built.
import assert from "node:assert/strict";
import { readTransactions } from "../binlog.ts";
import { type Run, runKilledAfter } from "./binlog_run.ts";

const FIXTURES_DIR = new URL("./fixtures/mysql", import.meta.url).pathname;
const SCRIPT = new URL("../binlog.ts", import.meta.url).pathname;
const DIST = new URL("../dist/prm_binlog_parser", import.meta.url).pathname;

type Runner = { name: string; cmd: (args: string[]) => [string, string[]] };

const runners: Runner[] = [
  { name: "binlog.ts", cmd: (args) => [Deno.execPath(), ["run", "-A", SCRIPT, ...args]] },
];
try {
  if (Deno.statSync(DIST).isFile) runners.push({ name: "dist", cmd: (args) => [DIST, args] });
} catch {
  // not built: only the sources are checked
}

/** Runs the parser; kills it after `timeoutMs` (then the code is 128 + the signal number). */
function run(r: Runner, args: string[], timeoutMs?: number): Promise<Run> {
  const [cmd, a] = r.cmd(args);
  return runKilledAfter(cmd, a, timeoutMs);
}

const fx = (name: string) => `${FIXTURES_DIR}/${name}`;
const MARIADB = fx("mariadb-bin.000001");

function assertOneLineError(
  r: Pick<Run, "code" | "stdout" | "stderr">,
  code: number,
  pattern: RegExp,
): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^prm_binlog_parser: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/); // no stack trace
}

for (const r of runners) {
  Deno.test(`${r.name}: default output is END_POS,MD5 per transaction`, async () => {
    const res = await run(r, [MARIADB]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, "");
    const lines = res.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    for (const l of lines) assert.match(l, /^\d+,[0-9a-f]{32}$/);
    assert.deepEqual(lines.map((l) => Number(l.split(",")[0])), [702, 1074]);
  });

  Deno.test(`${r.name}: --json fields`, async () => {
    const res = await run(r, ["--json", MARIADB, fx("bug32407.001")]);
    assert.equal(res.code, 0, res.stderr);
    const objs = res.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(objs.length, 4);
    assert.deepEqual(Object.keys(objs[0]).sort(), [
      "end",
      "end_offset",
      "file",
      "gtid",
      "md5",
      "server_id",
      "start",
      "timestamp",
    ]);
    assert.equal(objs[0].file, MARIADB);
    assert.equal(objs[0].gtid, "0-1-1");
    assert.equal(objs[1].end, 1074);
    assert.equal(objs[2].file, fx("bug32407.001"));
    assert.equal(objs[2].gtid, undefined);
    assert.deepEqual([objs[3].start, objs[3].end], [233, 468]);
  });

  Deno.test(`${r.name}: --tail and --start-position`, async () => {
    const all = (await run(r, [MARIADB, fx("vector.binlog")])).stdout.trimEnd().split("\n");
    assert.equal(all.length, 12);
    const tail = await run(r, ["--tail", "3", MARIADB, fx("vector.binlog")]);
    assert.equal(tail.code, 0, tail.stderr);
    assert.deepEqual(tail.stdout.trimEnd().split("\n"), all.slice(-3));
    const from = await run(r, ["--start-position", "702", MARIADB]);
    assert.equal(from.code, 0, from.stderr);
    assert.deepEqual(from.stdout.trimEnd().split("\n"), all.slice(1, 2));
    assertOneLineError(
      await run(r, ["--start-position", "703", MARIADB]),
      2,
      /offset 703: start position is not at an event boundary/,
    );
    assertOneLineError(await run(r, ["--tail", "x", MARIADB]), 2, /--tail/);
    assertOneLineError(await run(r, ["--bogus", MARIADB]), 2, /bogus/);
    assertOneLineError(await run(r, []), 2, /no binlog file/);
  });

  Deno.test(`${r.name}: --help documents output, hashing and exit codes`, async () => {
    const res = await run(r, ["--help"]);
    assert.equal(res.code, 0);
    for (
      const s of ["END_POS,MD5", "--json", "--tail", "--start-position", "Not hashed", "Exit codes"]
    ) {
      assert.ok(res.stdout.includes(s), s);
    }
    for (const code of [0, 1, 2, 3, 4, 5, 6]) {
      assert.match(res.stdout, new RegExp(`\\n  ${code}  `));
    }
  });

  Deno.test(`${r.name}: errors are one line with file, offset and exit code`, async () => {
    const dir = Deno.makeTempDirSync();
    try {
      assertOneLineError(
        await run(r, [`${dir}/nope.000001`]),
        3,
        /nope\.000001: cannot open: no such file/,
      );
      assertOneLineError(await run(r, [dir]), 3, /is a directory/);
      Deno.writeFileSync(`${dir}/empty`, new Uint8Array(0));
      assertOneLineError(
        await run(r, [`${dir}/empty`]),
        4,
        /empty: offset 0: not a binlog: empty file/,
      );
      Deno.writeFileSync(`${dir}/text`, new TextEncoder().encode("SELECT 1;\n"));
      assertOneLineError(await run(r, [`${dir}/text`]), 4, /offset 0: not a binlog: bad magic/);
      const bytes = Deno.readFileSync(MARIADB);
      const bad = bytes.slice();
      bad[702 - 10] ^= 0x55; // inside the XID event that starts at 702 - 31
      Deno.writeFileSync(`${dir}/badcrc`, bad);
      assertOneLineError(
        await run(r, [`${dir}/badcrc`]),
        5,
        /badcrc: offset 671: bad CRC32 checksum \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/,
      );
      const small = bytes.slice();
      new DataView(small.buffer).setUint32(671 + 9, 10, true);
      Deno.writeFileSync(`${dir}/small`, small);
      assertOneLineError(await run(r, [`${dir}/small`]), 5, /offset 671: event size 10 is below/);
      // An encrypted binlog: START_ENCRYPTION (164) right after the FDE.
      const fdeEnd = 4 + new DataView(bytes.buffer).getUint32(4 + 9, true);
      const enc = bytes.slice(0, fdeEnd + 40);
      enc[fdeEnd + 4] = 164;
      new DataView(enc.buffer).setUint32(fdeEnd + 9, 40, true);
      new DataView(enc.buffer).setUint16(fdeEnd + 17, 0, true);
      const { crc32 } = await import("node:zlib");
      new DataView(enc.buffer).setUint32(
        fdeEnd + 36,
        crc32(enc.subarray(fdeEnd, fdeEnd + 36)),
        true,
      );
      Deno.writeFileSync(`${dir}/enc`, enc);
      assertOneLineError(await run(r, [`${dir}/enc`]), 6, /encrypted binlog/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(`${r.name}: anything but a regular file is refused before it is opened`, async () => {
    const dir = Deno.makeTempDirSync();
    try {
      const fifo = `${dir}/relay-bin.000002`;
      assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
      // A FIFO without a writer blocks whoever opens it: the run is killed after 20 s if so.
      const alone = await run(r, [fifo], 20_000);
      assertOneLineError(alone, 3, /relay-bin\.000002: cannot read: not a regular file \(a FIFO\)/);
      // After a binlog: its transactions, then the refusal.
      const after = await run(r, [MARIADB, fifo], 20_000);
      assert.equal(after.code, 3, after.stderr);
      assert.equal(after.stdout.trimEnd().split("\n").length, 2);
      assert.match(after.stderr, /not a regular file \(a FIFO\)/);
      assertOneLineError(await run(r, ["/dev/null"], 20_000), 3, /\(a character device\)/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(`${r.name}: a size past the end that its log_pos contradicts is corrupt (exit 5)`, async () => {
    const dir = Deno.makeTempDirSync();
    try {
      // A 1,000,000-byte size at offset 256: it was a partial event at the end (exit 0) that
      // left out both transactions after it.
      const bad = Deno.readFileSync(MARIADB);
      new DataView(bad.buffer).setUint32(256 + 9, 1_000_000, true);
      Deno.writeFileSync(`${dir}/bad`, bad);
      assertOneLineError(
        await run(r, [`${dir}/bad`]),
        5,
        /bad: offset 256: event size 1000000 points \d+ bytes past the end of the file, which its log_pos 285 contradicts/,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(`${r.name}: a file over 32 MiB (hashing workers) prints what one thread does`, async () => {
    // The events of a real fixture repeated after its format description: 34 MB, 140k
    // transactions, enough for the parser to start its hashing workers.
    const src = Deno.readFileSync(fx("bug27213339-bin.000001"));
    const dv = new DataView(src.buffer, src.byteOffset);
    const events = 4 + dv.getUint32(4 + 9, true);
    const copies = 3100;
    const body = src.subarray(events);
    const big = new Uint8Array(events + copies * body.length);
    big.set(src.subarray(0, events));
    for (let k = 0; k < copies; k++) big.set(body, events + k * body.length);
    const dir = Deno.makeTempDirSync();
    try {
      const path = `${dir}/big-bin.000001`;
      Deno.writeFileSync(path, big);
      const expected: string[] = [];
      for await (const t of readTransactions([path], { workers: 0 })) {
        expected.push(`${t.end},${t.md5}`);
      }
      assert.ok(expected.length > 100_000, `${expected.length} transactions`);
      const res = await run(r, [path]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, expected.join("\n") + "\n");
      const tail = await run(r, ["--tail", "5", path]);
      assert.equal(tail.stdout, expected.slice(-5).join("\n") + "\n");
      for (const workers of ["0", "2"]) {
        assert.equal((await run(r, ["--workers", workers, path])).stdout, res.stdout, workers);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(`${r.name}: partial transaction at end of file is a warning`, async () => {
    const dir = Deno.makeTempDirSync();
    try {
      const bytes = Deno.readFileSync(MARIADB);
      Deno.writeFileSync(`${dir}/live`, bytes.subarray(0, 1000));
      const res = await run(r, [`${dir}/live`]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(res.stdout.trimEnd().split("\n").map((l) => l.split(",")[0]), ["702"]);
      assert.equal(
        res.stderr,
        `prm_binlog_parser: warning: ${dir}/live: offset 702: partial transaction of 298 bytes at end of file left out\n`,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(`${r.name}: unreadable file (as user nobody)`, async (t) => {
    const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
    if (Deno.uid() !== 0 || !setpriv) {
      await t.step({ name: "skipped: needs root and setpriv", ignore: true, fn: () => {} });
      return;
    }
    const dir = Deno.makeTempDirSync();
    try {
      Deno.chmodSync(dir, 0o777);
      Deno.writeFileSync(`${dir}/secret`, Deno.readFileSync(MARIADB), { mode: 0o600 });
      Deno.chmodSync(`${dir}/secret`, 0o600);
      Deno.mkdirSync(`${dir}/denodir`, { mode: 0o777 });
      Deno.chmodSync(`${dir}/denodir`, 0o777);
      const [cmd, a] = r.cmd([`${dir}/secret`]);
      const out = await new Deno.Command(setpriv, {
        args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", cmd, ...a],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", DENO_DIR: `${dir}/denodir`, HOME: dir },
      }).output();
      const res = {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
      assertOneLineError(res, 3, /secret: cannot open: permission denied/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}
