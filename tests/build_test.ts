// Tests what `deno task build` and `deno task install` produce: the shipped launchers, the
// self-extracting files, and an install into a scratch OCF_ROOT and PREFIX.
import assert from "node:assert/strict";
import { exists } from "../scripts/fs.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const dist = `${root}/dist`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Result> {
  const out = await new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function ensureBuilt(): Promise<void> {
  if (await exists(`${dist}/mysql_prm`) && await exists(`${dist}/prm_binlog_parser`)) return;
  const r = await run(Deno.execPath(), ["run", "-A", `${root}/scripts/build.ts`]);
  assert.equal(r.code, 0, `build failed: ${r.stderr}`);
}

function assertMetaData(r: Result, how: string): void {
  assert.equal(r.code, 0, `${how}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stdout, /<resource-agent name="mysql_prm"/, how);
  assert.match(r.stdout, /<\/resource-agent>/, how);
}

Deno.test("build: launchers run the bundled programs", async () => {
  await ensureBuilt();
  for (const name of ["mysql_prm", "prm_binlog_parser"]) {
    const text = await Deno.readTextFile(`${dist}/${name}`);
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.ok(
      text.includes(`${dist}/lib/${name}.js`),
      "launcher names its bundle by absolute path",
    );
  }
  // ocf-tester calls agents as `bash AGENT ACTION`.
  assertMetaData(await run("bash", [`${dist}/mysql_prm`, "meta-data"]), "bash dist/mysql_prm");
  const help = await run(`${dist}/prm_binlog_parser`, ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /END_POS/);
});

Deno.test("build: the agent's launcher answers the notifications the agent ignores", async () => {
  await ensureBuilt();
  const env = (type: string, operation: string) => ({
    OCF_RESOURCE_INSTANCE: "p_mysql",
    OCF_RESKEY_CRM_meta_notify: "true",
    OCF_RESKEY_CRM_meta_notify_type: type,
    OCF_RESKEY_CRM_meta_notify_operation: operation,
    OCF_RESKEY_CRM_meta_promoted_max: "1",
    OCF_RESKEY_CRM_meta_clone_max: "3",
  });
  // Answered by the shell: success and not a word from the agent (which logs every action).
  for (const [type, op] of [["pre", "stop"], ["post", "demote"], ["pre", "start"]]) {
    const r = await run("bash", [`${dist}/mysql_prm`, "notify"], { env: env(type, op) });
    assert.equal(r.code, 0, `${type}-${op}: ${r.stderr}`);
    assert.equal(r.stderr, "", `${type}-${op} is answered without starting the agent`);
  }
  // The two the agent acts on reach it (here it cannot reach a cluster, and says so; a
  // notification still never fails).
  for (const op of ["pre", "post"]) {
    const r = await run("bash", [`${dist}/mysql_prm`, "notify"], { env: env(op, "promote") });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /mysql_prm\(p_mysql\)\[notify\]/, `${op}-promote reaches the agent`);
  }
});

Deno.test("build: the bundles carry no reference to the source tree", async () => {
  await ensureBuilt();
  for (const name of ["mysql_prm", "prm_binlog_parser"]) {
    const js = await Deno.readTextFile(`${dist}/lib/${name}.js`);
    assert.ok(!/from\s+["']\.\.?\//.test(js), `${name}.js still imports a relative module`);
    assert.ok(!/from\s+["'](npm|jsr):/.test(js), `${name}.js still imports a registry module`);
  }
});

Deno.test("install: agent under OCF_ROOT, parser under PREFIX, runnable by nobody", async () => {
  await ensureBuilt();
  const scratch = await Deno.makeTempDir({ prefix: "prm-install-" });
  try {
    await Deno.chmod(scratch, 0o755);
    const env = { OCF_ROOT: `${scratch}/ocf`, PREFIX: `${scratch}/usr` };
    const r = await run(Deno.execPath(), ["run", "-A", `${root}/scripts/install.ts`], { env });
    assert.equal(r.code, 0, r.stderr);
    const agent = `${scratch}/ocf/resource.d/prm/mysql_prm`;
    const parser = `${scratch}/usr/bin/prm_binlog_parser`;
    assert.equal((await Deno.stat(agent)).mode! & 0o777, 0o755);
    assert.equal((await Deno.stat(parser)).mode! & 0o777, 0o755);
    assert.equal(await Deno.readLink(`${scratch}/usr/sbin/mysql_prm`), agent);
    // The installed launcher must not depend on the repository: it runs the installed Deno.
    const launcher = await Deno.readTextFile(agent);
    assert.ok(launcher.includes(`${scratch}/usr/lib/prm/deno`), launcher);
    assert.ok(!launcher.includes(root), "installed launcher points into the source tree");
    assertMetaData(await run("bash", [agent, "meta-data"]), "installed agent");
    // ocf-tester also runs meta-data as user nobody.
    assertMetaData(
      await run("setpriv", [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "bash",
        agent,
        "meta-data",
      ], { cwd: "/" }),
      "installed agent as nobody",
    );
    const help = await run(parser, ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    // A second install over the first is idempotent.
    const again = await run(Deno.execPath(), ["run", "-A", `${root}/scripts/install.ts`], { env });
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});

Deno.test("build: self-extracting programs run with nothing but /bin/sh", async () => {
  if (!await exists(`${dist}/sfx/mysql_prm`)) {
    const r = await run(Deno.execPath(), ["run", "-A", `${root}/scripts/build.ts`, "--sfx"]);
    assert.equal(r.code, 0, r.stderr);
  }
  const cache = await Deno.makeTempDir({ prefix: "prm-sfx-cache-" });
  try {
    // A bare PATH, as Pacemaker gives agents, and a fresh cache: the first run unpacks.
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", PRM_CACHE_DIR: cache };
    for (let i = 0; i < 2; i++) {
      assertMetaData(
        await run("/usr/bin/env", ["-i", ...envPairs(env), `${dist}/sfx/mysql_prm`, "meta-data"]),
        `sfx run ${i + 1}`,
      );
    }
    const help = await run("/usr/bin/env", [
      "-i",
      ...envPairs(env),
      `${dist}/sfx/prm_binlog_parser`,
      "--help",
    ]);
    assert.equal(help.code, 0, help.stderr);
    const unpacked = [...Deno.readDirSync(cache)].map((e) => e.name);
    assert.ok(unpacked.length >= 1, "the cache holds the unpacked runtime");
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

function envPairs(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
