/**
 * Issue 12, "Root-safe agent": the launchers and the self-extracting files, run as root and as
 * unprivileged users made up for the test (setpriv with unused uids: a victim and an attacker).
 *
 * - Root's runs of the installed agent and parser use nothing under a world-writable folder: every
 *   folder the old launchers used as DENO_DIR (`${TMPDIR:-/tmp}/prm-deno-<uid>`), made first by
 *   the attacker in a private /tmp, stays empty (old code: Deno wrote its caches there, and loaded
 *   V8 code from there).
 * - They refuse a cache folder that is not root's, is writable by others, is a link, or lies below a
 *   folder others can write; another user's run keeps no cache on disk.
 * - The self-extracting form unpacks per user into `${XDG_CACHE_HOME:-~/.cache}/prm` (0700), never
 *   into /tmp (old code: `${TMPDIR:-/tmp}/prm-<uid>/<digest>`, where the attacker's `deno` ran as
 *   the victim), refuses a cache folder the attacker made or others can write, and concurrent first
 *   runs all succeed without deleting a copy another run uses.
 * - The agent sees only its OCF_* / HA_* / PCMK_* / __OCF_ACTION / TZ variables, the parser none of
 *   the caller's, and the launchers' helpers (stat, mkdir, id) nothing but PATH and LC_ALL.
 * - The install refuses folders others can write, or a cache folder another user made first.
 */
import assert from "node:assert/strict";
import {
  assertMetaData,
  asUser,
  describe,
  DIST,
  ensureBuilt,
  freeUids,
  install,
  removeScratch,
  ROOT,
  run,
  runAs,
  scratch,
  userFolder,
} from "./install_harness.ts";

const [VICTIM, ATTACKER] = freeUids(2);
const SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const FIXTURE = `${ROOT}/tests/fixtures/mysql/mariadb-bin.000001`;
/**
 * Arguments that keep a parser run alive, running Deno, until the test reads its output: the
 * parser refuses a FIFO as input, so a run is held by its output instead, over 64 KiB (a pipe's
 * buffer) written at the end to a pipe nobody reads yet.
 */
const BLOCKING_ARGS = [
  "--json",
  ...Array(20).fill(`${ROOT}/tests/fixtures/mysql/bug27213339-bin.000001`),
];

/** What the parser prints for {@link BLOCKING_ARGS} (the source, run directly). */
async function blockingOutput(): Promise<string> {
  const r = await run(Deno.execPath(), ["run", "-A", `${ROOT}/binlog.ts`, ...BLOCKING_ARGS]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.length > 64 * 1024, "the output fills a pipe");
  return r.stdout;
}

/** The environment Pacemaker gives a monitor of a stopped instance living under `dir`. */
function monitorEnv(dir: string): Record<string, string> {
  return {
    PATH: SYSTEM_PATH,
    OCF_ROOT: "/usr/lib/ocf",
    OCF_RESOURCE_INSTANCE: "p_sec",
    OCF_RESKEY_datadir: `${dir}/data`,
    OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
    OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
    OCF_RESKEY_CRM_meta_interval: "10000",
    OCF_RESKEY_CRM_meta_timeout: "20000",
    HA_RSCTMP: `${dir}/state`,
  };
}

/** `KEY=VALUE` words for bash, quoted. */
function assignments(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}='${v.replaceAll("'", `'\\''`)}'`).join(" ");
}

/**
 * Runs `script` in bash in new mount and pid namespaces whose /tmp, /var/tmp, /dev/shm and
 * /var/cache are fresh tmpfs (world-writable but /var/cache): the namespaces, their mounts and
 * every process started in them end with bash.
 */
async function inPrivateTmp(script: string) {
  const setup = [
    "set -u",
    // Room for a few unpacked Deno runtimes (~100 MB each), as the old header put them in /tmp.
    "for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o mode=1777,size=1g prm-sec $d; done",
    "mount -t tmpfs -o mode=0755,size=1m prm-sec /var/cache",
  ].join("\n");
  return await run("unshare", [
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--mount-proc",
    "bash",
    "-c",
    `${setup}\n${script}`,
  ]);
}

Deno.test("launcher: root's runs use no folder another user made first under /tmp", async () => {
  await ensureBuilt();
  const dir = await scratch("sec-tmp-");
  try {
    const inst = await install(dir);
    await Deno.mkdir(`${dir}/state`, { mode: 0o700 });
    const attacker = asUser(ATTACKER).join(" ");
    // Every DENO_DIR the old launchers used for root: ${TMPDIR:-/tmp}/prm-deno-0, here with TMPDIR
    // unset, /tmp/t (a world-writable TMPDIR) and /var/tmp.
    const planted = ["/tmp/prm-deno-0", "/tmp/t/prm-deno-0", "/var/tmp/prm-deno-0"];
    const env = assignments(monitorEnv(dir));
    const r = await inPrivateTmp([
      "mkdir -m 1777 /tmp/t",
      ...planted.map((p) => `${attacker} mkdir -m 0777 ${p}`),
      `env -i ${env} ${inst.agent} meta-data >/dev/null; echo "exit meta-data $?"`,
      `env -i ${env} ${inst.agent} monitor; echo "exit monitor $?"`,
      `env -i ${env} TMPDIR=/tmp/t ${inst.agent} meta-data >/dev/null; echo "exit meta-data-tmpdir $?"`,
      `env -i ${env} TMPDIR=/var/tmp ${inst.agent} monitor; echo "exit monitor-vartmp $?"`,
      `env -i PATH=${SYSTEM_PATH} ${inst.parser} ${FIXTURE} >/dev/null; echo "exit parser $?"`,
      `env -i PATH=${SYSTEM_PATH} TMPDIR=/tmp/t ${inst.parser} ${FIXTURE} >/dev/null; echo "exit parser-tmpdir $?"`,
      "find /tmp /var/tmp /dev/shm -mindepth 1 -printf 'entry %U %p\\n'",
    ].join("\n"));
    const lines = r.stdout.trim().split("\n");
    const exits = Object.fromEntries(
      lines.filter((l) => l.startsWith("exit ")).map((l) => l.split(" ").slice(1)),
    );
    assert.deepEqual(exits, {
      "meta-data": "0",
      "monitor": "7",
      "meta-data-tmpdir": "0",
      "monitor-vartmp": "7",
      "parser": "0",
      "parser-tmpdir": "0",
    }, r.stdout + r.stderr);
    // Nothing but the attacker's folders, and nothing in them.
    const entries = lines.filter((l) => l.startsWith("entry ")).map((l) => l.split(" ").slice(1));
    assert.deepEqual(
      entries.map(([, p]) => p).sort(),
      ["/tmp/t", ...planted].sort(),
      `root's runs made or wrote something under /tmp, /var/tmp or /dev/shm:\n${r.stdout}`,
    );
    for (const [uid, p] of entries) {
      assert.equal(Number(uid), p === "/tmp/t" ? 0 : ATTACKER, p);
    }
    // Root's caches, V8's code cache included, are in the install's own folder instead.
    const cached = [...Deno.readDirSync(inst.cache)].map((e) => e.name);
    for (const cache of ["dep_analysis_cache", "v8_code_cache"]) {
      assert.ok(cached.some((n) => n.startsWith(cache)), `${cache}: ${cached.join(" ")}`);
    }
  } finally {
    await removeScratch(dir);
  }
});

Deno.test("launcher: refuses a cache folder that is not root's, is writable by others or is a link", async (t) => {
  await ensureBuilt();
  const dir = await scratch("sec-refuse-");
  try {
    const inst = await install(dir);
    assert.deepEqual(await describe(inst.cache), { uid: 0, mode: 0o700, kind: "dir" });
    const metaData = () =>
      run(inst.agent, ["meta-data"], { clearEnv: true, env: { PATH: SYSTEM_PATH } });
    const help = () => run(inst.parser, ["--help"], { clearEnv: true, env: { PATH: SYSTEM_PATH } });
    assertMetaData(await metaData(), "root, installed as made");

    const refused = async (why: RegExp) => {
      const a = await metaData();
      assert.equal(a.code, 5, `the agent must refuse (OCF_ERR_INSTALLED): ${a.code} ${a.stderr}`);
      assert.equal(a.stdout, "");
      assert.match(a.stderr, /^mysql_prm: refusing to run with an unsafe cache folder: /);
      assert.match(a.stderr, why);
      const p = await help();
      assert.equal(p.code, 1, `the parser must refuse: ${p.code} ${p.stderr}`);
      assert.match(p.stderr, /^prm_binlog_parser: refusing to run with an unsafe cache folder: /);
      assert.match(p.stderr, why);
    };
    await t.step("owned by another user", async () => {
      await Deno.chown(inst.cache, ATTACKER, ATTACKER);
      await refused(new RegExp(`${inst.cache} is owned by uid ${ATTACKER}, not by root`));
      await Deno.chown(inst.cache, 0, 0);
    });
    await t.step("writable by its group, or by anyone", async () => {
      for (const mode of [0o770, 0o777, 0o1777]) {
        await Deno.chmod(inst.cache, mode);
        await refused(
          new RegExp(`${inst.cache} is writable by other users \\(mode 0?${mode.toString(8)}\\)`),
        );
      }
      await Deno.chmod(inst.cache, 0o700);
    });
    await t.step("below a folder others can write, even a sticky one", async () => {
      for (const mode of [0o777, 0o1777, 0o775]) {
        await Deno.chmod(inst.cacheBase, mode);
        await refused(new RegExp(`${inst.cacheBase} is writable by other users`));
      }
      await Deno.chmod(inst.cacheBase, 0o755);
    });
    await t.step("a link, even to a folder of root's", async () => {
      await Deno.rename(inst.cache, `${inst.cache}.real`);
      await Deno.symlink(`${inst.cache}.real`, inst.cache);
      await refused(new RegExp(`${inst.cache} is not a folder`));
      await Deno.remove(inst.cache);
      await Deno.rename(`${inst.cache}.real`, inst.cache);
    });
    await t.step("another user's run keeps no cache on disk", async () => {
      const before = [...Deno.readDirSync(inst.cache)].map((e) => e.name).sort();
      const probe = `${inst.libDir}/mysql_prm.js`;
      const saved = await Deno.readTextFile(probe);
      // The installed launcher, with a bundle that reports its DENO_DIR.
      await Deno.writeTextFile(probe, "console.log(Deno.env.get('DENO_DIR'))\n");
      try {
        const r = await runAs(ATTACKER, inst.agent, [], {
          clearEnv: true,
          env: { PATH: SYSTEM_PATH },
        });
        assert.equal(r.code, 0, r.stderr);
        const denoDir = r.stdout.trim();
        assert.notEqual(denoDir, inst.cache);
        const mk = await runAs(ATTACKER, "mkdir", ["-p", denoDir]);
        assert.notEqual(mk.code, 0, `${denoDir}: a DENO_DIR this user could make`);
      } finally {
        await Deno.writeTextFile(probe, saved);
      }
      assertMetaData(
        await runAs(ATTACKER, inst.agent, ["meta-data"], {
          clearEnv: true,
          env: { PATH: SYSTEM_PATH },
        }),
        "meta-data as another user",
      );
      assert.deepEqual([...Deno.readDirSync(inst.cache)].map((e) => e.name).sort(), before);
    });
    await t.step("an emptied /var/cache: root's run makes the folder again, 0700", async () => {
      await Deno.remove(inst.cacheBase, { recursive: true });
      assertMetaData(await metaData(), "root, cache folder gone");
      assert.deepEqual(await describe(inst.cache), { uid: 0, mode: 0o700, kind: "dir" });
      assert.ok([...Deno.readDirSync(inst.cache)].length > 0, "the new folder is used");
    });
  } finally {
    await removeScratch(dir);
  }
});

/** The caller's environment in the env tests: some to pass, some not, some not shell names. */
const CALLER_ENV: Record<string, string> = {
  OCF_ROOT: "/usr/lib/ocf",
  OCF_RESOURCE_INSTANCE: "p_env",
  OCF_RESKEY_replication_passwd: "s3cret-repl",
  OCF_RESKEY_CRM_meta_timeout: "20000",
  HA_RSCTMP: "/run/resource-agents",
  HA_debug: "0",
  PCMK_debug: "mysql_prm",
  __OCF_ACTION: "monitor",
  TZ: "Europe/Paris",
  PATH: "/tmp/evil:/usr/bin:/bin",
  HOME: "/root",
  TMPDIR: "/tmp",
  DENO_DIR: "/tmp/prm-deno-0",
  DENO_V8_FLAGS: "--max-old-space-size=1",
  NODE_OPTIONS: "--require=/tmp/evil.js",
  API_TOKEN: "s3cret-token",
  MULTI: "one\nexport OCF_FAKE=1",
  "BASH_FUNC_evil%%": "() { :; }",
  "not-a-name": "s3cret-odd",
};
const AGENT_GETS = [
  "OCF_ROOT",
  "OCF_RESOURCE_INSTANCE",
  "OCF_RESKEY_replication_passwd",
  "OCF_RESKEY_CRM_meta_timeout",
  "HA_RSCTMP",
  "HA_debug",
  "PCMK_debug",
  "__OCF_ACTION",
  "TZ",
];

Deno.test("launcher: the agent and the parser see only what is meant to pass", async () => {
  await ensureBuilt();
  const dir = await scratch("sec-env-");
  try {
    const inst = await install(dir);
    // The installed launchers, with bundles that print their environment.
    const probe = "console.log(JSON.stringify(Deno.env.toObject()))\n";
    for (const name of ["mysql_prm", "prm_binlog_parser"]) {
      await Deno.writeTextFile(`${inst.libDir}/${name}.js`, probe);
    }
    const ours = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      DENO_DIR: inst.cache,
      DENO_NO_UPDATE_CHECK: "1",
    };
    const agentWants = {
      ...Object.fromEntries(AGENT_GETS.map((k) => [k, CALLER_ENV[k]])),
      ...ours,
    };
    // Pacemaker runs the file (its #! line); ocf-tester runs `bash AGENT ACTION`.
    for (const how of [[], ["bash"], ["sh"]]) {
      for (const [launcher, wants] of [[inst.agent, agentWants], [inst.parser, ours]] as const) {
        const cmd = [...how, launcher];
        const r = await run(cmd[0], cmd.slice(1), { clearEnv: true, env: CALLER_ENV });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), wants, cmd.join(" "));
      }
    }
  } finally {
    await removeScratch(dir);
  }
});

const hasStrace = (() => {
  try {
    return Deno.statSync("/usr/bin/strace").isFile;
  } catch {
    return false;
  }
})();

/**
 * Runs `cmd` under strace and returns each successful execve line, with its environment (-v), one
 * file per process (-ff) so that no line is split by another's.
 */
async function traceExecs(dir: string, cmd: string[], env: Record<string, string>) {
  const trace = `${dir}/trace`;
  const args = ["-ff", "-qq", "-v", "-s", "4096", "-e", "trace=execve", "-o", trace, ...cmd];
  const r = await run("strace", args, { clearEnv: true, env });
  const execs: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.startsWith("trace.")) continue;
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    execs.push(...text.split("\n").filter((l) => /^execve\(.* = 0$/.test(l)));
  }
  return { r, execs };
}

/**
 * Asserts that every program started in `execs` but those in `callers` (started with the caller's
 * environment: strace's own starts) and Deno got exactly PATH and LC_ALL, and that Deno got none
 * of the caller's secrets but the agent's own.
 */
function assertHelpersClean(execs: string[], callers: string[], expected: string[]): void {
  const program = (l: string) => /^execve\("([^"]+)"/.exec(l)![1];
  const deno = execs.filter((l) => program(l).endsWith("/deno"));
  const helpers = execs.filter((l) => !callers.includes(program(l)) && !deno.includes(l));
  const names = helpers.map((l) => program(l).split("/").pop()!);
  for (const name of expected) assert.ok(names.includes(name), `${name}: ${names.join(" ")}`);
  for (const line of helpers) {
    const env = [.../\], \[(.*)\]\) = 0$/.exec(line)![1].matchAll(/"((?:[^"\\]|\\.)*)"/g)]
      .map((m) => m[1]).sort();
    assert.deepEqual(
      env,
      ["LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      line,
    );
  }
  assert.doesNotMatch(helpers.join("\n"), /s3cret/);
  assert.equal(deno.length, 1, execs.join("\n"));
  assert.doesNotMatch(deno[0], /s3cret-token|s3cret-odd/);
}

Deno.test({
  name: "launcher: its helpers (mkdir, stat) get nothing of the caller's environment",
  ignore: !hasStrace,
  fn: async () => {
    await ensureBuilt();
    const dir = await scratch("sec-helpers-");
    try {
      const inst = await install(dir);
      // Missing: the launcher makes it again (mkdir), then checks it (stat).
      await Deno.remove(inst.cache, { recursive: true }).catch(() => {});
      const { r, execs } = await traceExecs(dir, [inst.agent, "meta-data"], CALLER_ENV);
      assertMetaData(r, "agent under strace");
      assertHelpersClean(execs, [inst.agent], ["mkdir", "stat"]);
    } finally {
      await removeScratch(dir);
    }
  },
});

Deno.test({
  name: "sfx: its helpers (id, mkdir, stat, tar, ...) get nothing of the caller's environment",
  ignore: !hasStrace,
  fn: async () => {
    await ensureBuilt({ sfx: true });
    const dir = await scratch("sec-sfx-helpers-");
    try {
      const home = await userFolder(`${dir}/home`, VICTIM);
      const sfx = `${DIST}/sfx/mysql_prm`;
      const { r, execs } = await traceExecs(
        dir,
        [...asUser(VICTIM), sfx, "meta-data"],
        { ...CALLER_ENV, HOME: home },
      );
      assertMetaData(r, "sfx under strace");
      const setpriv = /^execve\("([^"]+)"/.exec(execs.find((l) => /setpriv"/.test(l))!)![1];
      assertHelpersClean(execs, [setpriv, sfx], ["id", "mkdir", "stat", "mktemp", "tar", "mv"]);
    } finally {
      await removeScratch(dir);
    }
  },
});

/** The digest the self-extracting `program` unpacks under. */
async function sfxDigest(program: string): Promise<string> {
  const file = await Deno.open(`${DIST}/sfx/${program}`);
  const head = new Uint8Array(16384);
  const n = await file.read(head) ?? 0;
  file.close();
  const text = new TextDecoder().decode(head.subarray(0, n));
  const m = /\b([0-9a-f]{16})\b/.exec(text.slice(0, text.indexOf("__ARCHIVE__")));
  assert.ok(m, "no digest in the header");
  return m[1];
}

/**
 * Writes a "deno" that leaves `marker` and fakes success (what the attacker plants where an old
 * header looked for its unpacked copy) and returns the attacker's commands that plant it with an
 * empty bundle in `folder`.
 */
async function evilCopy(dir: string, folder: string, marker: string): Promise<string[]> {
  const evil = `${dir}/evil-${crypto.randomUUID()}`;
  await Deno.writeTextFile(
    evil,
    `#!/bin/sh\necho "ran as $(id -u)" > ${marker}\n` +
      `echo '<resource-agent name="mysql_prm"></resource-agent>'\n`,
  );
  await Deno.chmod(evil, 0o755);
  const attacker = asUser(ATTACKER).join(" ");
  return [
    `${attacker} cp ${evil} ${folder}/deno`,
    `${attacker} touch ${folder}/mysql_prm.js`,
  ];
}

Deno.test("sfx: unpacks per user into a private XDG cache, never into /tmp", async (t) => {
  await ensureBuilt({ sfx: true });
  const digest = await sfxDigest("mysql_prm");
  const dir = await scratch("sec-sfx-");
  try {
    const home = await userFolder(`${dir}/home`, VICTIM);
    const victim = asUser(VICTIM).join(" ");
    const attacker = asUser(ATTACKER).join(" ");
    const sfx = `${DIST}/sfx/mysql_prm`;

    await t.step(
      "with no cache folder of its own, not the one another user made in /tmp",
      async () => {
        // The old header fell back to ${TMPDIR:-/tmp}/prm-<uid>/<digest> when it could not make
        // /var/cache/prm (here a fresh, root-only /var/cache).
        // The attacker's folder lets the victim unpack beside the planted copy, as the old header
        // did (its rename then failed, and it ran the planted deno).
        const planted = `/tmp/prm-${VICTIM}/${digest}`;
        const r = await inPrivateTmp([
          `${attacker} mkdir -m 0777 /tmp/prm-${VICTIM}`,
          `${attacker} mkdir -m 0755 ${planted}`,
          ...await evilCopy(dir, planted, "/tmp/pwned"),
          `env -i PATH=${SYSTEM_PATH} HOME=${home} ${victim} ${sfx} meta-data > /tmp/out 2>/tmp/err; echo "exit $?"`,
          "cat /tmp/err >&2; grep -c '<parameter ' /tmp/out; cat /tmp/pwned 2>/dev/null || echo 'not pwned'",
        ].join("\n"));
        assert.match(r.stdout, /^exit 0\n/, r.stdout + r.stderr);
        assert.match(r.stdout, /\nnot pwned\n$/, `the attacker's deno ran: ${r.stdout}`);
        assert.ok(Number(r.stdout.split("\n")[1]) > 10, "real meta-data");
        for (const p of [`${home}/.cache`, `${home}/.cache/prm`, `${home}/.cache/prm/${digest}`]) {
          assert.deepEqual(await describe(p), { uid: VICTIM, mode: 0o700, kind: "dir" }, p);
        }
      },
    );

    await t.step("XDG_CACHE_HOME is respected", async () => {
      const xdg = await userFolder(`${dir}/xdg`, VICTIM);
      const r = await runAs(VICTIM, sfx, ["meta-data"], {
        clearEnv: true,
        env: { PATH: SYSTEM_PATH, HOME: home, XDG_CACHE_HOME: xdg },
      });
      assertMetaData(r, "sfx with XDG_CACHE_HOME");
      assert.deepEqual(await describe(`${xdg}/prm/${digest}`), {
        uid: VICTIM,
        mode: 0o700,
        kind: "dir",
      });
    });

    await t.step("refuses a cache folder another user made, or can reach", async () => {
      const shared = `${dir}/shared`;
      await Deno.mkdir(shared);
      await Deno.chmod(shared, 0o1777);
      const theirs = `${dir}/theirs`;
      const mine = await userFolder(`${dir}/mine`, VICTIM);
      await Deno.chmod(mine, 0o755); // so that the attacker can reach the prm folder in it
      const cases = [
        // XDG_CACHE_HOME in a sticky world-writable folder, where the attacker made prm first.
        { xdg: shared, why: `${shared} is writable by other users` },
        // XDG_CACHE_HOME a folder of the attacker's.
        { xdg: theirs, why: `${theirs} is owned by uid ${ATTACKER}` },
        // The victim's own XDG_CACHE_HOME, with a prm folder of the attacker's in it.
        { xdg: mine, why: `${mine}/prm is owned by uid ${ATTACKER}` },
      ];
      for (const [i, { xdg, why }] of cases.entries()) {
        const planted = `${xdg}/prm/${digest}`;
        const marker = `${shared}/pwned-${i}`;
        const mk = await run("bash", [
          "-c",
          [
            // Made by root for the attacker here (no home of theirs is writable by them).
            xdg === mine ? `mkdir -m 0755 ${xdg}/prm && chown ${ATTACKER} ${xdg}/prm` : "",
            xdg === theirs ? `mkdir -m 0755 ${xdg} && chown ${ATTACKER} ${xdg}` : "",
            `${attacker} mkdir -p -m 0755 ${planted}`,
            ...await evilCopy(dir, planted, marker),
          ].join("\n"),
        ]);
        assert.equal(mk.code, 0, mk.stderr);
        const r = await runAs(VICTIM, sfx, ["meta-data"], {
          clearEnv: true,
          env: { PATH: SYSTEM_PATH, HOME: home, XDG_CACHE_HOME: xdg },
        });
        const pwned = await Deno.readTextFile(marker).catch(() => "");
        assert.equal(pwned, "", `the attacker's deno ran: ${pwned}`);
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /^mysql_prm: refusing to use the cache folder /);
        assert.match(r.stderr, new RegExp(why));
      }
    });

    await t.step("refuses its own cache folder once others can write it", async () => {
      for (const mode of [0o770, 0o777]) {
        await Deno.chmod(`${home}/.cache/prm`, mode);
        const r = await runAs(VICTIM, sfx, ["meta-data"], {
          clearEnv: true,
          env: { PATH: SYSTEM_PATH, HOME: home },
        });
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /prm is writable by other users/);
      }
      await Deno.chmod(`${home}/.cache/prm`, 0o700);
    });
  } finally {
    await removeScratch(dir);
  }
});

/** Waits until `pid` runs a program called `name` (or ends); returns /proc/PID/exe. */
async function waitExe(pid: number, name: string, deadline: number): Promise<string> {
  let exe = "";
  while (Date.now() < deadline) {
    try {
      exe = await Deno.readLink(`/proc/${pid}/exe`);
    } catch {
      return "(ended)";
    }
    if (exe.replace(/ \(deleted\)$/, "").endsWith(`/${name}`)) return exe;
    await new Promise((r) => setTimeout(r, 50));
  }
  return `(still ${exe})`;
}

Deno.test("sfx: concurrent first runs all succeed, and none deletes a copy another uses", async () => {
  await ensureBuilt({ sfx: true });
  const digest = await sfxDigest("prm_binlog_parser");
  const dir = await scratch("sec-sfx-race-");
  const children: Deno.ChildProcess[] = [];
  try {
    const xdg = await userFolder(`${dir}/xdg`, VICTIM);
    const runs = 3;
    // Each run waits, running the unpacked Deno, until the test reads its output.
    for (let i = 0; i < runs; i++) {
      children.push(
        new Deno.Command("setpriv", {
          args: [...asUser(VICTIM).slice(1), `${DIST}/sfx/prm_binlog_parser`, ...BLOCKING_ARGS],
          clearEnv: true,
          env: { PATH: SYSTEM_PATH, HOME: dir, XDG_CACHE_HOME: xdg },
          cwd: "/",
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      );
    }
    const deadline = Date.now() + 120_000;
    const exes = await Promise.all(children.map((c) => waitExe(c.pid, "deno", deadline)));
    const copy = `${xdg}/prm/${digest}`;
    for (const exe of exes) assert.equal(exe, `${copy}/deno`, `runs: ${exes.join(", ")}`);
    const expected = await blockingOutput();
    const outs = await Promise.all(children.map((c) => c.output()));
    for (const out of outs) {
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal(new TextDecoder().decode(out.stdout), expected);
    }
    // One copy, in place; the losers' own copies are gone.
    assert.deepEqual([...Deno.readDirSync(`${xdg}/prm`)].map((e) => e.name), [digest]);
    assert.deepEqual(await describe(copy), { uid: VICTIM, mode: 0o700, kind: "dir" });
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // Already ended.
      }
      await c.status;
      await c.stdout.cancel().catch(() => {});
      await c.stderr.cancel().catch(() => {});
    }
    await removeScratch(dir);
  }
});

Deno.test("sfx: a later run never deletes the copy an earlier run is using", async () => {
  await ensureBuilt({ sfx: true });
  const dir = await scratch("sec-sfx-inuse-");
  try {
    const home = await userFolder(`${dir}/home`, VICTIM);
    // Run i writes into FIFO out$i, opened for reading on descriptor 3+i but not read until
    // every run was seen running Deno: until then each waits, its output not yet taken.
    const start = (i: number) =>
      `env -i PATH=${SYSTEM_PATH} HOME=${home} ${asUser(VICTIM).join(" ")} ` +
      `${DIST}/sfx/prm_binlog_parser ${BLOCKING_ARGS.join(" ")} > ${dir}/out${i} ` +
      `2> ${dir}/err${i} & p${i}=$!; exec ${3 + i}< ${dir}/out${i}`;
    // Until process $1 runs Deno; then prints /proc/$1/exe.
    const waitDeno = [
      "wait_deno() {",
      "  until case $(readlink /proc/$1/exe) in */deno|*'/deno (deleted)') true ;; *) false ;; esac; do",
      '    [ -e /proc/$1 ] && [ $SECONDS -lt 120 ] || { echo "exe $1 never deno"; return; }',
      "    sleep 0.05",
      "  done",
      '  echo "exe $(readlink /proc/$1/exe)"',
      "}",
    ].join("\n");
    const r = await inPrivateTmp([
      waitDeno,
      ...[1, 2, 3].map((i) => `mkfifo -m 0644 ${dir}/out${i}`),
      // One run unpacks and runs; two more start while it does.
      start(1),
      "wait_deno $p1",
      start(2),
      start(3),
      "wait_deno $p2",
      "wait_deno $p3",
      "wait_deno $p1",
      ...[1, 2, 3].map((i) => `cat <&${3 + i} > ${dir}/res${i}`),
      ...[1, 2, 3].map((i) => `wait $p${i}; echo "exit $?"; cat ${dir}/err${i}`),
    ].join("\n"));
    const copy = `${home}/.cache/prm/${await sfxDigest("prm_binlog_parser")}/deno`;
    const exes = r.stdout.split("\n").filter((l) => l.startsWith("exe "));
    assert.deepEqual(exes, Array(4).fill(`exe ${copy}`), r.stdout + r.stderr);
    const results = r.stdout.split("\n").filter((l) => !l.startsWith("exe ")).join("\n");
    assert.equal(results, "exit 0\nexit 0\nexit 0\n", r.stdout + r.stderr);
    const expected = await blockingOutput();
    for (const i of [1, 2, 3]) assert.equal(Deno.readTextFileSync(`${dir}/res${i}`), expected);
  } finally {
    await removeScratch(dir);
  }
});

Deno.test("install: refuses folders others can write, and a cache folder another user made", async () => {
  await ensureBuilt();
  const dir = await scratch("sec-install-");
  try {
    const installInto = (env: Record<string, string>) =>
      run(Deno.execPath(), ["run", "-A", `${ROOT}/scripts/install.ts`], { env });
    const open = `${dir}/open`;
    await Deno.mkdir(open);
    await Deno.chmod(open, 0o777);
    const base = {
      OCF_ROOT: `${dir}/ocf`,
      PREFIX: `${dir}/usr`,
      PRM_CACHE_DIR: `${dir}/cache`,
    };
    for (const env of [{ ...base, OCF_ROOT: `${open}/ocf` }, { ...base, PREFIX: `${open}/usr` }]) {
      const r = await installInto(env);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`${open} is writable by other users`));
    }
    // A cache folder (or the folder above it) made first by another user.
    for (const made of [`${dir}/theirs`, `${dir}/theirs2/deno`]) {
      await Deno.mkdir(made, { recursive: true });
      await Deno.chown(made, ATTACKER, ATTACKER);
      const cacheDir = made.endsWith("/deno") ? made.slice(0, -"/deno".length) : made;
      const r = await installInto({ ...base, PRM_CACHE_DIR: cacheDir });
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`${made}.*owned by uid ${ATTACKER}`));
    }
  } finally {
    await removeScratch(dir);
  }
});
