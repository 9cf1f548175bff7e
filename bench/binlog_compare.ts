/**
 * Compares prm_binlog_parser's output with that of another revision, byte for byte.
 *
 * Usage: deno run -A bench/binlog_compare.ts [--base REV] [--regenerate] [--keep DIR] [--no-bench]
 *
 * The base revision (default `main`) is extracted with `git archive` into a private temporary
 * directory and run from there; the working tree's `binlog.ts` is the other side. Both run on the
 * same cases, one after the other, and a case is identical when exit code, stdout and stderr are
 * the same bytes (what `cmp` compares). With `--keep DIR` both outputs of every case are written
 * there (`N.base.out`, `N.head.out`, `.err`), to look at with `cmp` or `diff`.
 *
 * The cases: every file of tests/fixtures/mysql and /work/shared/fixtures/mysql, the bench binlog
 * (bench/binlog_bench.ts generates it), and a corpus of real MariaDB 10.11 binlogs and relay logs
 * generated once (as tests/binlog_mariadb_test.ts does: a master and three replicas with CRC32,
 * checksums off and compressed events) and cached in $PRM_BENCH_DIR/corpus; each file alone in the
 * default, --json, --workers 0, --tail, --start-position and --no-verify-checksum modes, the file
 * sets as one stream, and copies cut inside transactions, events and headers (torn tails) and a
 * relay log stream whose first file is cut (corrupt).
 *
 * Exits 0 when every case is identical, 1 otherwise.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { stopAll } from "../tests/mariadb_server.ts";
import { replicatedWorkload } from "../tests/binlog_mariadb_test.ts";
import { extractRevision, REPO } from "./git_tree.ts";

const CORPUS_VERSION = 1;

interface Case {
  name: string;
  args: string[];
}

interface Result {
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** A parser to run: `deno run -A ENTRY` from its own tree. */
interface Side {
  label: string;
  entry: string;
}

async function run(side: Side, args: string[]): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", side.entry, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** First differing line of two outputs, for the report. */
function firstDifference(a: Uint8Array, b: Uint8Array): string {
  const la = new TextDecoder().decode(a).split("\n");
  const lb = new TextDecoder().decode(b).split("\n");
  let k = 0;
  while (k < la.length && k < lb.length && la[k] === lb[k]) k++;
  return `line ${k + 1}: base ${JSON.stringify(la[k]?.slice(0, 160))} head ${
    JSON.stringify(lb[k]?.slice(0, 160))
  }`;
}

interface Corpus {
  /** Named file sets (each file is also a case alone), oldest file first. */
  sets: Record<string, string[]>;
}

/** A master and three replicas, the workload of tests/binlog_mariadb_test.ts, files copied. */
async function generateCorpus(dir: string): Promise<Corpus> {
  console.error(`Generating the MariaDB corpus in ${dir} ...`);
  const servers = await replicatedWorkload();
  try {
    const [master, a, b, c] = servers;
    const sets: Record<string, string[]> = {};
    const copy = async (name: string, files: string[]) => {
      await Deno.mkdir(`${dir}/${name}`, { recursive: true });
      sets[name] = [];
      for (const f of files) {
        const to = `${dir}/${name}/${f.slice(f.lastIndexOf("/") + 1)}`;
        await Deno.copyFile(f, to);
        sets[name].push(to);
      }
    };
    await copy("master-binlog", master.binlogFiles());
    await copy("relay-crc32", a.relayLogFiles());
    await copy("binlog-crc32", a.binlogFiles());
    await copy("relay-nochecksum", b.relayLogFiles());
    await copy("binlog-nochecksum-row", b.binlogFiles());
    await copy("relay-compressed", c.relayLogFiles());
    await copy("binlog-compressed", c.binlogFiles());
    const corpus = { sets };
    await Deno.writeTextFile(
      `${dir}/manifest.json`,
      JSON.stringify({ version: CORPUS_VERSION, ...corpus }, null, 2) + "\n",
    );
    return corpus;
  } finally {
    await stopAll(servers);
  }
}

async function loadCorpus(dir: string, regenerate: boolean): Promise<Corpus> {
  if (!regenerate) {
    try {
      const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
      if (m.version === CORPUS_VERSION) return { sets: m.sets };
    } catch {
      // Not there yet.
    }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  return await generateCorpus(dir);
}

function fixtureFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && !e.name.startsWith("LICENSE") && !e.name.endsWith(".md"))
      .map((e) => `${dir}/${e.name}`).sort();
  } catch {
    return [];
  }
}

/**
 * The files of a corpus set compared alone: all of a short set; of a long one (the relay logs
 * rotate every 256 KiB) the first, the last, the largest and every 16th, since the whole set is
 * also compared as one stream.
 */
function sample(files: string[]): string[] {
  if (files.length <= 12) return files;
  let largest = files[0];
  for (const f of files) if (Deno.statSync(f).size > Deno.statSync(largest).size) largest = f;
  return [...new Set([files[0], ...files.filter((_, k) => k % 16 === 8), largest, files.at(-1)!])];
}

interface Tx {
  start: number;
  end_offset: number;
}

/** The transactions of `files` as the base prints them with --json (empty on failure). */
async function baseTransactions(base: Side, files: string[]): Promise<Tx[]> {
  const r = await run(base, ["--json", ...files]);
  if (r.code !== 0) return [];
  return new TextDecoder().decode(r.stdout).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      base: { type: "string", default: "main" },
      regenerate: { type: "boolean", default: false },
      keep: { type: "string" },
      "no-bench": { type: "boolean", default: false },
    },
  });
  const benchDir = Deno.env.get("PRM_BENCH_DIR") ?? "/var/tmp/prm-bench";
  const corpus = await loadCorpus(`${benchDir}/corpus`, values.regenerate);
  const baseDir = await extractRevision(values.base);
  const work = await Deno.makeTempDir({ prefix: "prm-compare-" });
  try {
    await Deno.chmod(work, 0o700);
    const base: Side = { label: values.base, entry: `${baseDir}/binlog.ts` };
    const head: Side = { label: "working tree", entry: `${REPO}binlog.ts` };
    const cases: Case[] = [];
    const single = [
      ...fixtureFiles(`${REPO}tests/fixtures/mysql`),
      ...fixtureFiles("/work/shared/fixtures/mysql"),
      ...Object.values(corpus.sets).flatMap(sample),
    ];
    for (const f of single) {
      const short = f.replace(REPO, "").replace(benchDir + "/", "");
      const modes = [
        [],
        ["--json"],
        ["--workers", "0"],
        ["--workers", "2"],
        ["--tail", "1"],
        ["--json", "--tail", "5"],
        ["--no-verify-checksum"],
      ];
      for (const m of modes) cases.push({ name: `${short} ${m.join(" ")}`, args: [...m, f] });
      const txs = await baseTransactions(base, [f]);
      for (const k of [1, Math.floor(txs.length / 2)]) {
        if (k < 1 || k >= txs.length) continue;
        const p = String(txs[k].start);
        cases.push({ name: `${short} --start-position ${p}`, args: ["--start-position", p, f] });
      }
    }
    // File sets as one stream.
    const sets: Record<string, string[]> = {
      ...corpus.sets,
      "fixtures vector+mariadb": [
        `${REPO}tests/fixtures/mysql/vector.binlog`,
        `${REPO}tests/fixtures/mysql/mariadb-bin.000001`,
      ],
    };
    for (const [name, files] of Object.entries(sets)) {
      for (
        const m of [[], ["--json"], ["--workers", "0"], ["--tail", "100"], [
          "--json",
          "--tail",
          "7",
        ]]
      ) {
        cases.push({
          name: `${name} (${files.length} files) ${m.join(" ")}`,
          args: [...m, ...files],
        });
      }
    }
    // Torn tails: copies cut inside a transaction, an event and a header, and at boundaries.
    const cutSources = [
      corpus.sets["master-binlog"].at(-2)!,
      corpus.sets["relay-crc32"].at(-1)!,
      corpus.sets["binlog-compressed"].at(-2)!,
      corpus.sets["binlog-nochecksum-row"].at(-2)!,
    ];
    for (const src of cutSources) {
      const txs = await baseTransactions(base, [src]);
      if (txs.length < 3) continue;
      const t = txs[Math.floor(txs.length / 2)];
      const bytes = await Deno.readFile(src);
      for (
        const at of [
          t.start,
          t.start + 5,
          t.start + 19,
          t.start + 30,
          t.end_offset - 1,
          t.end_offset,
        ]
      ) {
        const path = `${work}/cut-${at}-${src.slice(src.lastIndexOf("/") + 1)}`;
        await Deno.writeFile(path, bytes.subarray(0, at));
        for (const m of [[], ["--json"], ["--tail", "3"]]) {
          cases.push({ name: `${path.slice(work.length + 1)} ${m.join(" ")}`, args: [...m, path] });
        }
      }
    }
    // A relay log stream whose last file is cut inside a transaction (a torn tail), and one whose
    // first file is cut (corrupt: a truncated event in a file that is not the last one).
    const relay = corpus.sets["relay-crc32"];
    {
      const last = relay.at(-1)!;
      const txs = await baseTransactions(base, [last]);
      const bytes = await Deno.readFile(last);
      const at = txs.length > 0 ? txs[Math.floor(txs.length / 2)].start + 40 : bytes.length - 10;
      const path = `${work}/relay-last-cut`;
      await Deno.writeFile(path, bytes.subarray(0, at));
      const files = [...relay.slice(-3, -1), path];
      for (const m of [[], ["--json"], ["--tail", "4"]]) {
        cases.push({ name: `relay stream, last file cut ${m.join(" ")}`, args: [...m, ...files] });
      }
      const first = relay.at(-3)!;
      const firstBytes = await Deno.readFile(first);
      const firstCut = `${work}/relay-first-cut`;
      await Deno.writeFile(firstCut, firstBytes.subarray(0, firstBytes.length - 7));
      cases.push({ name: "relay stream, first file cut", args: [firstCut, ...relay.slice(-2)] });
    }
    if (!values["no-bench"]) {
      const bench = `${benchDir}/bench-bin.000001`;
      try {
        await Deno.stat(bench);
        for (
          const m of [[], ["--json"], ["--workers", "0"], ["--tail", "3000"], [
            "--start-position",
            "215000000",
          ]]
        ) {
          cases.push({ name: `bench binlog ${m.join(" ")}`, args: [...m, bench] });
        }
      } catch {
        console.error(`No bench binlog at ${bench} (run deno task bench once): left out`);
      }
    }

    console.error(`${cases.length} cases: ${base.label} vs ${head.label}`);
    let identical = 0;
    const differing: string[] = [];
    const exitCodes = new Map<number, number>();
    for (const [n, c] of cases.entries()) {
      const a = await run(base, c.args);
      const b = await run(head, c.args);
      exitCodes.set(a.code, (exitCodes.get(a.code) ?? 0) + 1);
      if (values.keep) {
        await Deno.mkdir(values.keep, { recursive: true });
        await Deno.writeFile(`${values.keep}/${n}.base.out`, a.stdout);
        await Deno.writeFile(`${values.keep}/${n}.head.out`, b.stdout);
        await Deno.writeFile(`${values.keep}/${n}.base.err`, a.stderr);
        await Deno.writeFile(`${values.keep}/${n}.head.err`, b.stderr);
      }
      if (a.code === b.code && same(a.stdout, b.stdout) && same(a.stderr, b.stderr)) {
        identical++;
        continue;
      }
      const what = a.code !== b.code
        ? `exit ${a.code} vs ${b.code}`
        : !same(a.stdout, b.stdout)
        ? `stdout ${firstDifference(a.stdout, b.stdout)}`
        : `stderr ${firstDifference(a.stderr, b.stderr)}`;
      differing.push(`#${n} ${c.name}: ${what}`);
      console.error(`DIFFERENT #${n} ${c.name}: ${what}`);
    }
    const codes = [...exitCodes].sort((x, y) => x[0] - y[0]).map(([k, v]) => `exit ${k}: ${v}`);
    console.log(
      `${cases.length} cases (${single.length} files alone, ${
        Object.keys(sets).length
      } file sets, torn and cut copies, the bench binlog): ${identical} identical, ${differing.length} different (base ${
        codes.join(", ")
      })`,
    );
    for (const d of differing) console.log(`- ${d}`);
    return differing.length === 0 ? 0 : 1;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    await Deno.remove(baseDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
