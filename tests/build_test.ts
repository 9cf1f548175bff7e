// Tests what `deno task build` and `deno task install` produce: the shipped launchers, the
// self-extracting files, and an install into a scratch OCF_ROOT and PREFIX.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  assertMetaData,
  DIST as dist,
  ensureBuilt,
  install,
  removeScratch,
  run,
  runAs,
  scratch,
} from "./install_harness.ts";

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
  const dir = await scratch("install-");
  try {
    const inst = await install(dir);
    assert.equal((await Deno.stat(inst.agent)).mode! & 0o777, 0o755);
    assert.equal((await Deno.stat(inst.parser)).mode! & 0o777, 0o755);
    assert.equal(await Deno.readLink(`${dir}/usr/sbin/mysql_prm`), inst.agent);
    // The installed launcher must not depend on the repository: it runs the installed Deno.
    const launcher = await Deno.readTextFile(inst.agent);
    assert.ok(launcher.includes(`${inst.libDir}/deno`), launcher);
    assert.ok(launcher.includes(`prm_cache=${inst.cache}\n`), launcher);
    assert.ok(!launcher.includes(`${dist}/`), "installed launcher points into dist/");
    assertMetaData(await run("bash", [inst.agent, "meta-data"]), "installed agent");
    // ocf-tester also runs meta-data as user nobody.
    const nobody = Number((await run("id", ["-u", "nobody"])).stdout.trim());
    assertMetaData(await runAs(nobody, "bash", [inst.agent, "meta-data"]), "as nobody");
    const help = await run(inst.parser, ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    // The runs above left the bundles' code cache in the log of Deno's cache database; a second
    // install over the first is idempotent, empties that log into the database, and leaves no
    // temporary file behind.
    const log = `${inst.cache}/v8_code_cache_v2-wal`;
    assert.ok((await Deno.stat(log)).size > 0, "the runs wrote the code cache's log");
    await install(dir);
    const left = await Deno.stat(log).then((i) => i.size, () => 0);
    assert.equal(left, 0, "the install emptied the code cache's log");
    // Deno opens the database again afterwards: the table it keeps its entries in is still there.
    const db = new DatabaseSync(`${inst.cache}/v8_code_cache_v2`, { readOnly: true });
    try {
      assert.equal(typeof db.prepare("SELECT count(*) AS n FROM codecache").get()?.n, "number");
    } finally {
      db.close();
    }
    assertMetaData(await run("bash", [inst.agent, "meta-data"]), "after the second install");
    for (
      const folder of [
        inst.libDir,
        `${dir}/usr/bin`,
        `${dir}/usr/sbin`,
        `${dir}/ocf/resource.d/prm`,
      ]
    ) {
      const names = [...Deno.readDirSync(folder)].map((e) => e.name);
      assert.ok(!names.some((n) => n.includes(".prm-")), `${folder}: ${names.join(" ")}`);
    }
  } finally {
    await removeScratch(dir);
  }
});

Deno.test("build: self-extracting programs run with nothing but /bin/sh", async () => {
  await ensureBuilt({ sfx: true });
  const dir = await scratch("sfx-");
  try {
    const cache = `${dir}/cache`;
    // A bare PATH, as Pacemaker gives agents, and a fresh cache: the first run unpacks.
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", PRM_CACHE_DIR: cache };
    for (let i = 0; i < 2; i++) {
      assertMetaData(
        await run(`${dist}/sfx/mysql_prm`, ["meta-data"], { clearEnv: true, env }),
        `sfx run ${i + 1}`,
      );
    }
    const help = await run(`${dist}/sfx/prm_binlog_parser`, ["--help"], { clearEnv: true, env });
    assert.equal(help.code, 0, help.stderr);
    const unpacked = [...Deno.readDirSync(cache)].map((e) => e.name);
    assert.equal(unpacked.length, 2, `one copy per program: ${unpacked.join(" ")}`);
  } finally {
    await removeScratch(dir);
  }
});
