/**
 * Speed and memory benchmark of prm_binlog_parser on a large row-based MariaDB binlog.
 *
 * Usage: deno run -A bench/binlog_bench.ts [--runs N] [--regenerate] [--size-mb M] [--baseline REV]
 *
 * The binlog (one file, at least 400 MB, with one transaction over 32 MB) is generated once from a
 * throwaway MariaDB server and cached in $PRM_BENCH_DIR (default /var/tmp/prm-bench). Each tool
 * then runs N times (default 5, round-robin) on the same file with the page cache warm; the median
 * wall time, the median CPU time (user + system, all threads) and the peak RSS are reported as a
 * markdown table with the acceptance verdicts. Exits 1 when a verdict fails.
 *
 * The parser is measured as it runs by default (hashing workers on a machine with 2 CPUs or more)
 * and, for reference, with `--workers 0` (one thread). On a machine shared with other work the
 * wall times of the multi-threaded run vary with the load: the CPU column shows the work done.
 *
 * With `--baseline REV` (a commit or branch, e.g. `main`), the parser of that revision is measured
 * in the same run, its rounds alternating with the working tree's: both are bundled and run the
 * way the installed launcher runs them (scripts/build.ts), so that only the code differs.
 *
 * About the workload and the mysqlbinlog target: the generated workload is an OLTP mix (small
 * autocommit inserts of 1-8 rows of a few hundred bytes, updates with before and after images,
 * deletes, a few two-statement transactions, row format with MariaDB's ANNOTATE_ROWS events) plus
 * the one large transaction. mysqlbinlog's cost is mostly per event (it decodes and prints every
 * event: about 2 us each here), MD5's is per byte; so how much faster than mysqlbinlog a parser
 * that hashes most bytes can be depends on the event sizes. The bench prints md5sum's own speed-up
 * over mysqlbinlog on the file: with a single thread, the parser cannot beat it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startMariadb } from "../tests/mariadb_server.ts";
import { extractRevision, REPO } from "./git_tree.ts";

const MB = 1024 * 1024;
const CACHE_VERSION = 2;

interface Manifest {
  version: number;
  size: number;
  mtimeMs: number;
}

/** A parser to run: command, arguments, and what it is. */
interface ParserCommand {
  cmd: string;
  args: string[];
  label: string;
}

/** The parser to measure: the built launcher when present, else the sources. */
function parserCommand(): ParserCommand {
  const env = Deno.env.get("PRM_BINLOG_PARSER");
  if (env) {
    return env.endsWith(".ts")
      ? { cmd: Deno.execPath(), args: ["run", "-A", env], label: `deno run -A ${env}` }
      : { cmd: env, args: [], label: env };
  }
  const dist = `${REPO}dist/prm_binlog_parser`;
  try {
    const st = Deno.statSync(dist);
    if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) {
      return { cmd: dist, args: [], label: `${dist} (built launcher)` };
    }
  } catch {
    // Not built: measure the sources.
  }
  return {
    cmd: Deno.execPath(),
    args: ["run", "-A", `${REPO}binlog.ts`],
    label: `deno run -A ${REPO}binlog.ts (sources; dist/ not built)`,
  };
}

/**
 * The parser of the tree at `tree`, bundled into `out` and run the way the launcher of
 * scripts/build.ts runs the bundle (same Deno, same V8 flags).
 */
async function bundledParser(tree: string, out: string, label: string): Promise<ParserCommand> {
  const built = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=deno",
      "--config",
      `${tree}/deno.json`,
      "-o",
      out,
      `${tree}/binlog.ts`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!built.success) {
    throw new Error(
      `deno bundle ${tree}/binlog.ts failed: ${new TextDecoder().decode(built.stderr)}`,
    );
  }
  return {
    cmd: Deno.execPath(),
    args: [
      "run",
      "--allow-all",
      "--no-config",
      "--no-lock",
      "--no-prompt",
      "--v8-flags=--max-semi-space-size=8",
      out,
    ],
    label,
  };
}

function readManifest(dir: string, file: string, minSize: number): Manifest | undefined {
  try {
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`)) as Manifest;
    const st = Deno.statSync(file);
    if (m.version !== CACHE_VERSION || st.size !== m.size || st.mtime?.getTime() !== m.mtimeMs) {
      return undefined;
    }
    if (m.size < minSize) return undefined;
    const head = new Uint8Array(4);
    const f = Deno.openSync(file);
    try {
      f.readSync(head);
    } finally {
      f.close();
    }
    if (head.join(",") !== "254,98,105,110") return undefined;
    return m;
  } catch {
    return undefined;
  }
}

/** Generates a row-based binlog of at least minSize bytes from a real MariaDB. */
async function generate(dir: string, file: string, minSize: number): Promise<Manifest> {
  console.error(`Generating a binlog of at least ${(minSize / MB).toFixed(0)} MB in ${dir} ...`);
  const t0 = performance.now();
  const server = await startMariadb({
    serverId: 1,
    baseDir: dir,
    binlogFormat: "ROW",
    maxBinlogSize: 1024 * 1024 * 1024,
    innodbBufferPoolSize: "256M",
  });
  try {
    await server.query("CREATE DATABASE bench");
    await server.query(
      "CREATE TABLE bench.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer INT, " +
        "status VARCHAR(20), note VARCHAR(600), items TEXT, amount DECIMAL(12,2), " +
        "created DATETIME, updated TIMESTAMP) ENGINE=InnoDB",
    );
    await server.query(
      "CREATE TABLE bench.blobs (id INT AUTO_INCREMENT PRIMARY KEY, payload LONGTEXT) ENGINE=InnoDB",
    );
    // OLTP-like transactions (what a busy master logs): small inserts of 1-8 rows of a few hundred
    // bytes, updates with before/after images, deletes, and multi-statement transactions.
    // Autocommit makes each statement outside START TRANSACTION its own transaction.
    await server.query(`
      CREATE PROCEDURE bench.gen(n INT)
      BEGIN
        DECLARE i INT DEFAULT 0;
        DECLARE base BIGINT DEFAULT 0;
        WHILE i < n DO
          INSERT INTO bench.orders (customer, status, note, items, amount, created)
            SELECT FLOOR(RAND() * 100000), ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'closed'),
              LEFT(REPEAT(MD5(RAND()), 7), 20 + FLOOR(RAND() * 200)),
              LEFT(REPEAT(SHA2(RAND(), 256), 4), 40 + FLOOR(RAND() * 200)),
              RAND() * 1000, NOW()
            FROM bench.seq_1_to_8 WHERE seq <= 1 + (i % 8);
          SET base = LAST_INSERT_ID();
          UPDATE bench.orders SET status = 'paid', amount = amount + 1
            WHERE id BETWEEN base AND base + (i % 3);
          IF i % 3 = 0 THEN
            START TRANSACTION;
            INSERT INTO bench.orders (customer, status, note, items, amount, created)
              VALUES (i, 'new', MD5(i), SHA2(i, 256), i / 100, NOW());
            UPDATE bench.orders SET note = MD5(RAND()) WHERE id = base;
            COMMIT;
          END IF;
          IF i % 4 = 0 THEN
            DELETE FROM bench.orders WHERE id = base - 50;
          END IF;
          SET i = i + 1;
        END WHILE;
      END`);
    await server.query("USE bench");
    let size = 0;
    let bigDone = false;
    while (size < minSize) {
      await server.query("CALL bench.gen(5000)");
      if (!bigDone && size > minSize / 2) {
        // One transaction above 32 MB in the middle of the file.
        await server.query(
          "INSERT INTO bench.blobs (payload) SELECT REPEAT(MD5(seq), 1875) FROM bench.seq_1_to_700",
        );
        bigDone = true;
      }
      const [st] = await server.query<{ Position: string | number }[]>("SHOW MASTER STATUS");
      size = Number(st.Position);
      console.error(`  ${(size / MB).toFixed(0)} MB`);
    }
    const files = server.binlogFiles();
    if (files.length !== 1) throw new Error(`Expected one binlog file, got ${files.length}`);
    await server.query("FLUSH BINARY LOGS");
    await server.stop({ keepDir: true });
    await Deno.rename(files[0], file);
    const st = Deno.statSync(file);
    const manifest: Manifest = {
      version: CACHE_VERSION,
      size: st.size,
      mtimeMs: st.mtime!.getTime(),
    };
    Deno.writeTextFileSync(`${dir}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    console.error(
      `Generated ${(st.size / MB).toFixed(0)} MB in ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s`,
    );
    return manifest;
  } finally {
    await server.stop();
  }
}

interface Measure {
  wall: number;
  /** User + system CPU seconds (NaN when unknown). */
  cpu: number;
  rssKb: number;
  code: number;
}

async function haveGnuTime(): Promise<boolean> {
  try {
    await Deno.stat("/usr/bin/time");
    return true;
  } catch {
    const out = await new Deno.Command("apt-get", {
      args: ["install", "-y", "-q", "time"],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
    return out?.success === true;
  }
}

/** Peak RSS by polling VmHWM (used only when GNU time is unavailable). */
function vmHwmKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function measureOnce(cmd: string, args: string[], gnuTime: boolean): Promise<Measure> {
  if (gnuTime) {
    const rssFile = await Deno.makeTempFile({ prefix: "prm-bench-rss-" });
    try {
      const t0 = performance.now();
      const out = await new Deno.Command("/usr/bin/time", {
        args: ["-f", "%M %U %S", "-o", rssFile, cmd, ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
      const wall = (performance.now() - t0) / 1000;
      const last = Deno.readTextFileSync(rssFile).trim().split("\n").pop() ?? "";
      const [rssKb, user, sys] = last.split(" ").map(Number);
      if (!out.success) {
        console.error(new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join("\n"));
      }
      return { wall, cpu: user + sys, rssKb, code: out.code };
    } finally {
      await Deno.remove(rssFile).catch(() => {});
    }
  }
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
  let rssKb = 0;
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  while (!done) {
    rssKb = Math.max(rssKb, vmHwmKb(child.pid));
    await new Promise((r) => setTimeout(r, 5));
  }
  const s = await status;
  return { wall: (performance.now() - t0) / 1000, cpu: NaN, rssKb, code: s.code };
}

/** Number of events in a binlog file (walks the event headers). */
function countEvents(file: string): number {
  const f = Deno.openSync(file);
  try {
    const buf = new Uint8Array(4 * MB);
    let have = 0;
    let at = 4; // offset in the file of the next event
    let base = 0; // offset in the file of buf[0]
    let n = 0;
    while (true) {
      const k = f.readSync(buf.subarray(have));
      if (k === null || k === 0) return n;
      have += k;
      while (at + 19 <= base + have) {
        const o = at - base;
        const size =
          (buf[o + 9] | (buf[o + 10] << 8) | (buf[o + 11] << 16) | (buf[o + 12] << 24)) >>>
          0;
        if (size < 19) return n;
        n++;
        at += size;
      }
      // Keep the partial header at the end, if any; skip whole chunks inside a large event.
      const keep = Math.max(0, base + have - at);
      buf.copyWithin(0, have - keep, have);
      base += have - keep;
      have = keep;
      if (at > base + have) {
        f.seekSync(at, Deno.SeekMode.Start);
        base = at;
        have = 0;
      }
    }
  } finally {
    f.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Row {
  tool: string;
  wall: number;
  cpu: number;
  rssMb: number;
}

interface Tool {
  tool: string;
  cmd: string;
  args: string[];
}

/**
 * Runs every tool once per round, rounds repeated `runs` times: on a shared machine, load that
 * comes and goes then hits all tools alike instead of one tool's whole series.
 */
async function measureAll(
  tools: Tool[],
  options: { runs: number; gnuTime: boolean },
): Promise<Row[]> {
  const walls = tools.map(() => [] as number[]);
  const cpus = tools.map(() => [] as number[]);
  const rss = tools.map(() => 0);
  for (let i = 0; i < options.runs; i++) {
    for (const [k, t] of tools.entries()) {
      const m = await measureOnce(t.cmd, t.args, options.gnuTime);
      if (m.code !== 0) throw new Error(`${t.tool} exited with code ${m.code}`);
      walls[k].push(m.wall);
      cpus[k].push(m.cpu);
      rss[k] = Math.max(rss[k], m.rssKb);
    }
  }
  return tools.map((t, k) => {
    console.error(`  ${t.tool}: ${walls[k].map((w) => w.toFixed(3)).join(" ")} s`);
    return { tool: t.tool, wall: median(walls[k]), cpu: median(cpus[k]), rssMb: rss[k] / 1024 };
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "5" },
      regenerate: { type: "boolean", default: false },
      "size-mb": { type: "string", default: "420" },
      baseline: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno run -A bench/binlog_bench.ts [--runs N] [--regenerate] [--size-mb M] " +
        "[--baseline REV]",
    );
    return 0;
  }
  const work = await Deno.makeTempDir({ prefix: "prm-bench-" });
  try {
    await Deno.chmod(work, 0o700);
    return await bench(values, work);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

async function bench(
  values: { runs: string; regenerate: boolean; "size-mb": string; baseline?: string },
  work: string,
): Promise<number> {
  const runs = Number(values.runs);
  const minSize = Number(values["size-mb"]) * MB;
  const dir = Deno.env.get("PRM_BENCH_DIR") ?? "/var/tmp/prm-bench";
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}/bench-bin.000001`;
  let manifest = values.regenerate ? undefined : readManifest(dir, file, minSize);
  if (!manifest) manifest = await generate(dir, file, minSize);
  else console.error(`Reusing ${file}`);
  const sizeMb = manifest.size / MB;

  let parser = parserCommand();
  let base: ParserCommand | undefined;
  if (values.baseline !== undefined) {
    parser = await bundledParser(REPO, `${work}/head.js`, "working tree, bundled");
    const tree = await extractRevision(values.baseline);
    try {
      base = await bundledParser(tree, `${work}/base.js`, `${values.baseline}, bundled`);
    } finally {
      await Deno.remove(tree, { recursive: true }).catch(() => {});
    }
  }
  const gnuTime = await haveGnuTime();
  const loadAverage = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  // Warm the page cache and check that the parser runs cleanly on this file.
  await new Deno.Command("cat", { args: [file], stdout: "null" }).output();
  const check = await new Deno.Command(parser.cmd, {
    args: [...parser.args, file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!check.success) {
    console.error(`The parser failed on ${file}: ${new TextDecoder().decode(check.stderr).trim()}`);
    return 2;
  }
  const ends = new TextDecoder().decode(check.stdout).split("\n").filter((l) => l).map((l) =>
    Number(l.split(",")[0])
  );
  const transactions = ends.length;
  // Transactions are contiguous in a binlog, so consecutive end positions bound their sizes.
  let largest = 0;
  for (let k = 1; k < ends.length; k++) largest = Math.max(largest, ends[k] - ends[k - 1]);

  console.error(`Measuring (${runs} rounds, median) ...`);
  const parserRuns = (p: ParserCommand, suffix: string): Tool[] => [
    { tool: `prm_binlog_parser FILE${suffix}`, cmd: p.cmd, args: [...p.args, file] },
    {
      tool: `prm_binlog_parser --workers 0 FILE (one thread)${suffix}`,
      cmd: p.cmd,
      args: [...p.args, "--workers", "0", file],
    },
    {
      tool: `prm_binlog_parser --tail 3000 FILE${suffix}`,
      cmd: p.cmd,
      args: [...p.args, "--tail", "3000", file],
    },
  ];
  const rows = await measureAll([
    { tool: "md5sum FILE", cmd: "md5sum", args: [file] },
    ...parserRuns(parser, ""),
    { tool: "mysqlbinlog FILE > /dev/null", cmd: "mysqlbinlog", args: ["--no-defaults", file] },
    ...(base !== undefined ? parserRuns(base, ` [${values.baseline}]`) : []),
  ], { runs, gnuTime });
  const [md5, prm, single, tail, mysqlbinlog] = rows;
  const baseRows = rows.slice(5);

  const events = countEvents(file);
  console.log(
    `Binlog: ${file}, ${sizeMb.toFixed(1)} MB, ${transactions} transactions, largest ${
      (largest / MB).toFixed(1)
    } MB, ${events} events (${(manifest.size / events).toFixed(0)} bytes on average)`,
  );
  console.log(`CPUs: ${navigator.hardwareConcurrency}; load average before: ${loadAverage}`);
  console.log(`Parser measured: ${parser.label}${base ? `; baseline: ${base.label}` : ""}`);
  console.log(
    `Peak RSS from ${
      gnuTime ? "/usr/bin/time -f %M" : "polling VmHWM"
    }; ${runs} runs, median wall time.`,
  );
  console.log("");
  console.log("| tool | wall s | CPU s | MB/s | ratio vs md5sum | peak RSS MB |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.tool} | ${r.wall.toFixed(3)} | ${r.cpu.toFixed(2)} | ${
        (sizeMb / r.wall).toFixed(0)
      } | ${(r.wall / md5.wall).toFixed(2)} | ${r.rssMb.toFixed(1)} |`,
    );
  }
  const verdicts = [
    {
      name: `parser <= 1.2x md5sum (${(prm.wall / md5.wall).toFixed(2)}x; goal 1.0x)`,
      ok: prm.wall <= 1.2 * md5.wall,
    },
    {
      name: `parser >= 4x faster than mysqlbinlog (${(mysqlbinlog.wall / prm.wall).toFixed(2)}x)`,
      ok: mysqlbinlog.wall >= 4 * prm.wall,
    },
    {
      name: `parser peak RSS < 150 MB (${
        Math.max(prm.rssMb, single.rssMb, tail.rssMb).toFixed(1)
      } MB)`,
      ok: Math.max(prm.rssMb, single.rssMb, tail.rssMb) < 150,
    },
  ];
  console.log("");
  for (const v of verdicts) console.log(`- ${v.ok ? "PASS" : "FAIL"}: ${v.name}`);
  console.log(
    `- info: --tail 3000 takes ${(tail.wall / prm.wall * 100).toFixed(0)}% of a full run`,
  );
  console.log(
    `- info: one thread: ${(single.wall / md5.wall).toFixed(2)}x md5sum, ${
      (mysqlbinlog.wall / single.wall).toFixed(2)
    }x faster than mysqlbinlog`,
  );
  console.log(
    `- info: md5sum itself is ${
      (mysqlbinlog.wall / md5.wall).toFixed(2)
    }x faster than mysqlbinlog on this file (mysqlbinlog: ${
      (mysqlbinlog.wall / events * 1e6).toFixed(2)
    } us per event)`,
  );
  for (const [k, b] of baseRows.entries()) {
    const h = [prm, single, tail][k];
    console.log(
      `- info: ${h.tool}: ${(h.wall / b.wall).toFixed(3)}x the wall time and ${
        (h.cpu / b.cpu).toFixed(3)
      }x the CPU time of ${values.baseline}`,
    );
  }
  return verdicts.every((v) => v.ok) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
