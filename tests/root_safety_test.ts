/**
 * The agent runs as root on every database host: the defects a review found, each as a regression test
 * against a real mariadbd (the shared harness) and the fake Pacemaker tools. The `mysql` user
 * (the server's own) plants links where root writes; Pacemaker's tools hang; the server freezes;
 * the credentials file is unusable. Each action must stay within its operation timeout and never
 * write through a link it did not create, nor log in as anybody but the configured login.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { MysqlClient } from "../mysql.ts";
import { processAlive } from "../mysqld.ts";
import { markHistoryStart, resyncReplica } from "../resync_agent.ts";
import {
  type MariadbServer,
  setupReplication,
  startMariadb,
  stopAll,
  waitForCatchUp,
} from "./mariadb_server.ts";
import { fetchBinlogFile } from "../remote_binlog.ts";
import { Budget } from "../budget.ts";
import { AgentSetup, assertCode, describeRun, killAndWait } from "./agent_harness.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const MYSQL_UID = Number(
  Deno.readTextFileSync("/etc/passwd").split("\n").find((l) => l.startsWith("mysql:"))
    ?.split(":")[2],
);

/** Runs a shell command as the server's user, the one who owns the datadir. */
function asMysql(script: string): void {
  const out = new Deno.Command("setpriv", {
    args: ["--reuid=mysql", "--regid=mysql", "--clear-groups", "/bin/sh", "-c", script],
  }).outputSync();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** A root-owned 0600 file a link may point at, with its content. */
function victim(dir: string): { path: string; check(): void } {
  const path = `${dir}/root-secret`;
  Deno.writeTextFileSync(path, "root:only\n", { mode: 0o600 });
  Deno.chmodSync(path, 0o600);
  return {
    path,
    check() {
      assert.equal(Deno.readTextFileSync(path), "root:only\n", "the target was written through");
      const st = Deno.statSync(path);
      assert.deepEqual([st.uid, st.mode! & 0o777], [0, 0o600], "the target changed hands");
    },
  };
}

Deno.test("defect 3: the init file with the logins is never written through the mysql user's link", async () => {
  await using s = await AgentSetup.create({ prefix: "rs-init-", resource: "rs_init" });
  const target = victim(s.dir);
  // The datadir exists, empty, and belongs to mysql, who plants a link at the init file's name.
  Deno.mkdirSync(s.datadir, { mode: 0o750 });
  Deno.chownSync(s.datadir, MYSQL_UID, null);
  asMysql(`ln -s ${target.path} ${s.datadir}/prm-init.sql`);
  const r = await s.run("start");
  assertCode(r, OCF.SUCCESS);
  target.check();
  // The logins were created all the same, and the file holding their passwords is gone.
  assert.equal(await s.readOnly(), 0);
  assert.throws(() => Deno.lstatSync(`${s.datadir}/prm-init.sql`), Deno.errors.NotFound);
  assertCode(await s.run("stop"), OCF.SUCCESS);
});

Deno.test("defect 4: the history mark is never written through a link in the datadir", async () => {
  await using s = await AgentSetup.create({ prefix: "rs-mark-", resource: "rs_mark" });
  assertCode(await s.run("start"), OCF.SUCCESS);
  const target = victim(s.dir);
  asMysql(
    `ln -s ${target.path} ${s.datadir}/prm_history_start && ` +
      `ln -s ${target.path} ${s.datadir}/prm_history_start.tmp`,
  );
  const client = await MysqlClient.connect({
    socket: s.socket,
    user: s.client.user,
    password: s.client.password,
  });
  try {
    const mark = await markHistoryStart(client);
    assert.ok(mark !== undefined);
    target.check();
    const st = Deno.lstatSync(`${s.datadir}/prm_history_start`);
    assert.ok(st.isFile, "the link was replaced by a file of the agent's own");
    assert.equal(Deno.readTextFileSync(`${s.datadir}/prm_history_start`).trim(), mark);
  } finally {
    await client.close();
  }
  assertCode(await s.run("stop"), OCF.SUCCESS);
});

Deno.test("defect 6: an unusable credentials file means no login at all, never root's", async () => {
  await using s = await AgentSetup.create({
    prefix: "rs-creds-",
    resource: "rs_creds",
    clone: true,
    pacemaker: true,
  });
  assertCode(await s.run("start"), OCF.SUCCESS);
  Deno.chmodSync(s.credentialsFile, 0o644);
  const monitor = await s.run("monitor", { OCF_RESKEY_CRM_meta_interval: "5000" });
  assertCode(monitor, OCF.ERR_PERM);
  assert.ok(monitor.exitReason?.includes(s.credentialsFile), describeRun(monitor));
  // A post-promote naming another master: without the configured login, nothing is repointed
  // (before, it ran CHANGE MASTER as root with an empty replication user).
  s.setReplInfo("nodeB|mysql-bin.000001|4");
  const notify = await s.run(
    "notify",
    s.notify("post", "promote", { promote: ["nodeB"], active: ["nodeA", "nodeB"] }),
  );
  assertCode(notify, OCF.SUCCESS);
  assert.deepEqual(await s.query("SHOW SLAVE STATUS"), [], "no replication was set up");
  Deno.removeSync(s.credentialsFile);
  const missing = await s.run("monitor", { OCF_RESKEY_CRM_meta_interval: "5000" });
  assertCode(missing, OCF.ERR_INSTALLED);
  assert.ok(missing.exitReason?.includes(s.credentialsFile), describeRun(missing));
  // stop still stops the server, by its pid.
  const pid = s.serverPid()!;
  assertCode(await s.run("stop"), OCF.SUCCESS);
  assert.equal(processAlive(pid), false, "the server was stopped");
});

Deno.test("defect 5: with crm_attribute hung every action returns before its timeout", async () => {
  const timeoutMs = 8_000;
  await using s = await AgentSetup.create({
    prefix: "rs-hung-",
    resource: "rs_hung",
    clone: true,
    pacemaker: true,
  });
  assertCode(await s.run("start"), OCF.SUCCESS);
  const short = { OCF_RESKEY_CRM_meta_timeout: String(timeoutMs) };
  s.cluster.fault("crm_attribute", { kind: "hang", ignoreTerm: true });
  s.cluster.fault("attrd_updater", { kind: "hang", ignoreTerm: true });
  const actions: [string, Record<string, string>][] = [
    ["monitor", { OCF_RESKEY_CRM_meta_interval: "5000" }],
    ["notify", s.notify("pre", "promote", { promote: ["nodeA"], active: ["nodeA", "nodeB"] })],
    ["promote", {}],
    ["monitor", { OCF_RESKEY_CRM_meta_interval: "5000", OCF_RESKEY_CRM_meta_role: "Promoted" }],
    ["demote", {}],
    ["notify", s.notify("post", "promote", { promote: ["nodeB"], active: ["nodeA", "nodeB"] })],
    ["stop", {}],
    ["start", {}],
  ];
  for (const [action, env] of actions) {
    const r = await s.run(action, { ...env, ...short });
    assert.ok(r.ms < timeoutMs, `${action} took ${r.ms} ms of ${timeoutMs}\n${describeRun(r)}`);
    console.log(`  ${action} with hung tools: ${r.ms} ms -> ${r.code}`);
  }
  s.cluster.fault("crm_attribute", undefined);
  s.cluster.fault("attrd_updater", undefined);
  assertCode(await s.run("stop"), OCF.SUCCESS);
});

Deno.test("defects 5 and 8: a frozen server never holds an action past its timeout", async () => {
  const timeoutMs = 8_000;
  await using s = await AgentSetup.create({
    prefix: "rs-frozen-",
    resource: "rs_frozen",
    clone: true,
    pacemaker: true,
    params: { unresponsive_timeout: "5" },
  });
  const short = { OCF_RESKEY_CRM_meta_timeout: String(timeoutMs) };
  assertCode(await s.run("start"), OCF.SUCCESS);
  assertCode(await s.run("promote"), OCF.SUCCESS);
  const pid = s.serverPid()!;
  Deno.kill(pid, "SIGSTOP");
  try {
    const promoted = {
      ...short,
      OCF_RESKEY_CRM_meta_interval: "5000",
      OCF_RESKEY_CRM_meta_role: "Promoted",
    };
    // Not answering: degraded at first, failed once unresponsive_timeout has passed.
    const first = await s.run("monitor", promoted);
    assertCode(first, OCF.DEGRADED_PROMOTED);
    assert.ok(first.ms < timeoutMs, describeRun(first));
    let last = first;
    const t0 = Date.now();
    while (last.code === OCF.DEGRADED_PROMOTED && Date.now() - t0 < 30_000) {
      last = await s.run("monitor", promoted);
      assert.ok(last.ms < timeoutMs, describeRun(last));
    }
    assertCode(last, OCF.ERR_GENERIC);
    assert.match(last.exitReason ?? "", /unresponsive_timeout/);
    for (
      const [action, env] of [
        ["demote", {}],
        ["notify", s.notify("pre", "promote", { promote: ["nodeB"], active: ["nodeA", "nodeB"] })],
      ] as const
    ) {
      const r = await s.run(action, { ...env, ...short });
      assert.ok(r.ms < timeoutMs, `${action} took ${r.ms} ms\n${describeRun(r)}`);
    }
    // stop kills a frozen server at once (it cannot act on SIGTERM) and succeeds.
    const stop = await s.run("stop", short);
    assertCode(stop, OCF.SUCCESS);
    assert.ok(stop.ms < timeoutMs, describeRun(stop));
  } finally {
    try {
      Deno.kill(pid, "SIGCONT");
    } catch {
      // Gone: killed by the stop.
    }
  }
  await killAndWait([pid]);
});

Deno.test("defect 13: post_promote_script gets a minimal environment, no password", async () => {
  const dir = trustedTempDir("rs-script-");
  try {
    const script = `${dir}/after-promote`;
    Deno.writeTextFileSync(script, `#!/bin/sh\nenv > ${dir}/env.txt\n`, { mode: 0o755 });
    Deno.chmodSync(script, 0o755);
    await using s = await AgentSetup.create({
      prefix: "rs-env-",
      resource: "rs_env",
      clone: true,
      pacemaker: true,
      params: { post_promote_script: script, test_passwd: "cib-held-secret-1" },
    });
    assertCode(await s.run("start"), OCF.SUCCESS);
    assertCode(await s.run("promote"), OCF.SUCCESS);
    const env = Object.fromEntries(
      Deno.readTextFileSync(`${dir}/env.txt`).trim().split("\n").map((l) => l.split("=", 2)),
    );
    assert.deepEqual(Object.keys(env).sort(), [
      "LC_ALL",
      "OCF_RESOURCE_INSTANCE",
      "PATH",
      "PRM_MASTER_FILE",
      "PRM_MASTER_POS",
      "PRM_NODE",
      "PRM_RESOURCE",
      "PWD",
    ]);
    assertCode(await s.run("stop"), OCF.SUCCESS);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a malformed REPL_INFO is logged once, not at every monitor", async () => {
  await using s = await AgentSetup.create({
    prefix: "rs-repl-",
    resource: "rs_repl",
    clone: true,
    pacemaker: true,
  });
  assertCode(await s.run("start"), OCF.SUCCESS);
  s.setReplInfo("db1|-hevil.000001|4");
  const monitor = { OCF_RESKEY_CRM_meta_interval: "5000" };
  const warnings = (r: { lines: string[] }) => r.lines.filter((l) => l.startsWith("WARNING"));
  const first = await s.run("monitor", monitor);
  assertCode(first, OCF.SUCCESS);
  assert.equal(warnings(first).length, 1, describeRun(first));
  const second = await s.run("monitor", monitor);
  assertCode(second, OCF.SUCCESS);
  assert.deepEqual(warnings(second), [], describeRun(second));
  assert.deepEqual(await s.query("SHOW SLAVE STATUS"), [], "never followed");
  assertCode(await s.run("stop"), OCF.SUCCESS);
});

Deno.test("defect 10: a binlog name is passed to mariadb-binlog after --, never as an option", async () => {
  const dir = trustedTempDir("rs-args-");
  try {
    const tool = `${dir}/fake-binlog`;
    Deno.writeTextFileSync(
      tool,
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/argv\nexit 1\n`,
      { mode: 0o755 },
    );
    Deno.chmodSync(tool, 0o755);
    await assert.rejects(fetchBinlogFile("mysql-bin.000002", {
      host: "127.0.0.1",
      user: "repl",
      password: "x",
      binlogTool: tool,
      dir,
      budget: Budget.ofMs(5_000),
    }));
    const argv = Deno.readTextFileSync(`${dir}/argv`).trim().split("\n");
    assert.deepEqual(argv.slice(-2), ["--", "mysql-bin.000002"]);
    assert.ok(!argv.some((a) => a.includes("password=x")), "no password on the command line");
    await assert.rejects(
      fetchBinlogFile("-hevil.000001", {
        host: "127.0.0.1",
        user: "repl",
        password: "x",
        binlogTool: tool,
        dir,
        budget: Budget.ofMs(5_000),
      }),
      TypeError,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "defect 11: a corrupt event length in the relay log never sends a replica back",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const baseDir = trustedTempDir("rs-len-");
  const servers: MariadbServer[] = [];
  try {
    const m = await startMariadb({ serverId: 1, baseDir, binlogFormat: "ROW" });
    servers.push(m);
    const r = await startMariadb({
      serverId: 2,
      baseDir,
      binlogFormat: "ROW",
      logSlaveUpdates: true,
    });
    servers.push(r);
    await m.query("CREATE DATABASE d; CREATE TABLE d.t (k INT PRIMARY KEY)");
    await setupReplication(r, m);
    for (let k = 1; k <= 200; k++) await m.query("INSERT INTO d.t VALUES (?)", [k]);
    await waitForCatchUp(r, m);
    await r.query("STOP SLAVE IO_THREAD");
    // Everything was applied. Now a length in the middle of the newest relay log reads 1,000,000:
    // read as it stands, the log's "last" transactions would be older than what the node
    // applied, and the replica would be sent back over them.
    const relay = r.relayLogFiles().at(-1)!;
    const name = relay.slice(relay.lastIndexOf("/") + 1);
    const events = await r.query<{ Pos: number | string; Event_type: string }[]>(
      `SHOW RELAYLOG EVENTS IN '${name}'`,
    );
    const xids = events.filter((e) => e.Event_type === "Xid");
    const at = Number(events[events.indexOf(xids[Math.floor(xids.length / 2)]) + 1].Pos);
    const original = Deno.readFileSync(relay);
    const [row] = await m.query<{ File: string; Position: string }[]>("SHOW MASTER STATUS");
    const resync = async () => {
      const client = await MysqlClient.connect({ socket: r.socket, user: "root", password: "" });
      try {
        return await resyncReplica(client, {
          host: "127.0.0.1",
          port: m.port,
          user: "repl",
          password: m.replicationPassword,
          newestFile: row.File,
        }, {
          log: { info: () => {}, warn: () => {} },
          budget: Budget.ofMs(60_000),
          workDir: baseDir,
        });
      } finally {
        await client.close();
      }
    };
    // The size alone: its log_pos contradicts it, the parser calls the log corrupt.
    const sizeOnly = original.slice();
    const view = new DataView(sizeOnly.buffer);
    const size = view.getUint32(at + 9, true);
    const logPos = view.getUint32(at + 13, true);
    view.setUint32(at + 9, 1_000_000, true);
    Deno.writeFileSync(relay, sizeOnly);
    const corrupt = await resync();
    assert.equal(
      corrupt.kind === "refused" && corrupt.cause,
      "corrupt-log",
      JSON.stringify(corrupt),
    );
    // Size and log_pos both rewritten, so that it reads as a torn tail: the server's own view (its
    // SQL thread stands past that point) refuses it.
    const both = sizeOnly.slice();
    new DataView(both.buffer).setUint32(at + 13, logPos - size + 1_000_000, true);
    Deno.writeFileSync(relay, both);
    const torn = await resync();
    assert.equal(torn.kind === "refused" && torn.cause, "tail-mismatch", JSON.stringify(torn));
    Deno.writeFileSync(relay, original);
  } finally {
    await stopAll(servers);
    Deno.removeSync(baseDir, { recursive: true });
  }
});
