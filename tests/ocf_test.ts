import assert from "node:assert/strict";
import { clonePromotableProblems, codeName, Logger, OCF, parseRole, readContext } from "../ocf.ts";
import {
  type AgentParams,
  helpText,
  metadataXml,
  PARAM_DEFAULTS,
  PARAMS,
  parseCredentialsFile,
  parseReplicationOptions,
  resolveCredentials,
  resolveParams,
} from "../params.ts";
import { piecesOf } from "./secret_pieces.ts";

Deno.test("readContext reads the monitor context Pacemaker passes", () => {
  const ctx = readContext({
    OCF_RESOURCE_INSTANCE: "p_mysql",
    OCF_RESKEY_CRM_meta_clone: "2",
    OCF_RESKEY_CRM_meta_role: "Unpromoted",
    OCF_RESKEY_CRM_meta_interval: "3000",
    OCF_RESKEY_CRM_meta_timeout: "30000",
    OCF_RESKEY_CRM_meta_promoted_max: "1",
    OCF_RESKEY_CRM_meta_on_node: "prm2",
    OCF_RESKEY_crm_feature_set: "3.16.1",
    OCF_RESKEY_socket: "/run/mysqld/mysqld.sock",
    OCF_CHECK_LEVEL: "10",
  }, { action: "monitor" });
  assert.equal(ctx.action, "monitor");
  assert.equal(ctx.resource, "p_mysql");
  assert.equal(ctx.cloneNumber, 2);
  assert.equal(ctx.role, "Unpromoted");
  assert.equal(ctx.intervalMs, 3000);
  assert.equal(ctx.timeoutMs, 30000);
  assert.equal(ctx.checkLevel, 10);
  assert.equal(ctx.promotable, true);
  assert.equal(ctx.nodeName, "prm2");
  assert.deepEqual(ctx.params, { socket: "/run/mysqld/mysqld.sock" });
  assert.equal(ctx.notify, undefined);
});

Deno.test("readContext strips a :N suffix and defaults when not cloned", () => {
  const ctx = readContext({ OCF_RESOURCE_INSTANCE: "p_mysql:1" }, { action: "start" });
  assert.equal(ctx.resource, "p_mysql");
  assert.equal(ctx.cloneNumber, 1);
  assert.equal(ctx.promotable, false);
  assert.equal(ctx.timeoutMs, 20000);
  assert.equal(ctx.intervalMs, 0);
  const plain = readContext({ OCF_RESOURCE_INSTANCE: "db" }, { action: "start" });
  assert.equal(plain.cloneNumber, undefined);
  assert.equal(plain.promotable, false);
  assert.equal(readContext({ OCF_RESKEY_CRM_meta_master_max: "1" }).promotable, true);
  assert.equal(readContext({ OCF_RESKEY_CRM_meta_promotable: "true" }).promotable, true);
});

Deno.test("parseRole accepts both vocabularies", () => {
  assert.equal(parseRole("Promoted"), "Promoted");
  assert.equal(parseRole("Master"), "Promoted");
  assert.equal(parseRole("Slave"), "Unpromoted");
  assert.equal(parseRole("unpromoted"), "Unpromoted");
  assert.equal(parseRole("Started"), undefined);
  assert.equal(parseRole(undefined), undefined);
});

Deno.test("notify lists pair unames with resources and prefer the new names", () => {
  const p = "OCF_RESKEY_CRM_meta_notify_";
  const ctx = readContext({
    OCF_RESOURCE_INSTANCE: "p_mysql",
    [`${p}type`]: "post",
    [`${p}operation`]: "promote",
    [`${p}promote_uname`]: "prm2 ",
    [`${p}promote_resource`]: "p_mysql:1",
    [`${p}active_uname`]: "prm1 prm2 prm3",
    [`${p}active_resource`]: "p_mysql:0 p_mysql:1 p_mysql:2",
    [`${p}promoted_uname`]: "",
    [`${p}master_uname`]: "prm9",
    [`${p}slave_uname`]: "prm1 prm3",
    [`${p}slave_resource`]: "p_mysql:0",
  });
  const n = ctx.notify!;
  assert.equal(n.type, "post");
  assert.equal(n.operation, "promote");
  assert.deepEqual(n.promote, [{ uname: "prm2", resource: "p_mysql:1" }]);
  assert.deepEqual(n.active.map((e) => e.resource), ["p_mysql:0", "p_mysql:1", "p_mysql:2"]);
  // promoted_uname is set (empty, as in post-promote): it wins over master_uname.
  assert.deepEqual(n.promoted, []);
  // unpromoted_* unset: fall back to slave_*; missing resources pair with "".
  assert.deepEqual(n.unpromoted, [
    { uname: "prm1", resource: "p_mysql:0" },
    { uname: "prm3", resource: "" },
  ]);
});

Deno.test("Logger redacts secrets and writes exit reasons", () => {
  const lines: string[] = [];
  const log = new Logger("mysql_prm(p)[start]", { sink: (l) => lines.push(l) });
  log.secret("s3cr'et");
  log.secret("");
  log.info("connect with s3cr'et failed");
  log.debug("hidden");
  log.exitReason("bad s3cr'et\nsecond line");
  assert.deepEqual(lines, [
    "INFO: mysql_prm(p)[start]: connect with *** failed",
    "ocf-exit-reason:bad *** second line",
  ]);
  // A server error quoting the tail of a password: every piece of 4+ characters goes, also in
  // the escaped form a statement gave it.
  const password = "Tr0ub4dor'and-SECRET-tail";
  log.secret(password);
  const errorText = "You have an error in your SQL syntax; check the manual that corresponds " +
    "to your MariaDB server version for the right syntax to use near 'and-SECRET-tail', " +
    "MASTER_LOG_FILE='mysql-bin.000001' at line 1 [ER_PARSE_ERROR 1064]";
  log.error(`CHANGE MASTER failed: ${errorText}`);
  log.exitReason(`CHANGE MASTER failed: ${errorText}`);
  log.warn(`statement: MASTER_PASSWORD = 'Tr0ub4dor\\'and-SECRET-tail'`);
  for (const line of lines.slice(2)) {
    for (const piece of piecesOf(password)) assert.ok(!line.includes(piece), line);
  }
  assert.ok(lines[2].includes("near ***', MASTER_LOG_FILE='mysql-bin.000001'"), lines[2]);
  const dbg = new Logger("x", { sink: (l) => lines.push(l), debug: true });
  dbg.debug("shown");
  assert.equal(lines.at(-1), "DEBUG: x: shown");
  assert.equal(readContext({ PCMK_debug: "yes" }).debug, true);
  assert.equal(codeName(OCF.RUNNING_PROMOTED), "RUNNING_PROMOTED(8)");
});

Deno.test("resolveParams applies defaults and flags wrong values as configured", () => {
  const ok = resolveParams({});
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.params.replicationPort, 3306);
  assert.equal(ok.params.readerAttribute, "readable");
  assert.equal(ok.params.maxSlaveLag, 3600);
  assert.equal(ok.params.enableCreation, false);
  const bad = resolveParams({
    replication_port: "70000",
    max_slave_lag: "ten",
    enable_creation: "maybe",
    datadir: "relative/dir",
    replication_options: "MASTER_SSL=1; DROP TABLE x",
    test_table: "mysql.user; DROP",
    reader_attribute: "a b",
    test_passwd: "x\0y",
  });
  const messages = bad.problems.map((p) => p.message);
  assert.ok(bad.problems.every((p) => p.kind === "configured"));
  for (
    const name of [
      "replication_port",
      "max_slave_lag",
      "enable_creation",
      "datadir",
      "replication_options",
      "test_table",
      "reader_attribute",
    ]
  ) {
    assert.ok(messages.some((m) => m.includes(name)), `${name} flagged: ${messages.join(" / ")}`);
  }
  assert.ok(!messages.some((m) => m.includes("x\0y")));
});

Deno.test("one table: every parameter has one typed field, defaults exported typed", () => {
  // One field per row, and the defaults are the rows' defaults, typed.
  assert.equal(Object.keys(PARAM_DEFAULTS).length, PARAMS.length);
  const typed: AgentParams = PARAM_DEFAULTS;
  // These lines are type checks as much as value checks (deno check fails on a wrong type).
  const port: number = typed.replicationPort;
  const semiSync: boolean = typed.semiSync;
  const mode: "position" | "gtid" = typed.replicationMode;
  const prefix: readonly string[] = typed.binaryPrefix;
  const table: string = typed.heartbeatTable;
  assert.deepEqual([port, semiSync, mode, prefix, table], [
    3306,
    false,
    "position",
    [],
    "percona.heartbeat",
  ]);
  assert.equal(PARAM_DEFAULTS.semiSyncTimeoutMs, 10_000);
  assert.equal(PARAM_DEFAULTS.testUser, "root");
  assert.deepEqual(PARAM_DEFAULTS.replicationOptions, []);
  assert.ok(Object.isFrozen(PARAM_DEFAULTS) && Object.isFrozen(PARAM_DEFAULTS.binaryPrefix));
  // Each text default reads back as its typed default.
  for (const p of PARAMS) {
    const { params } = resolveParams({ [p.name]: p.default });
    assert.deepEqual(params, PARAM_DEFAULTS, p.name);
  }
  const set = resolveParams({
    binary_prefix: " /usr/bin/numactl  --interleave=all ",
    semi_sync: "yes",
    semi_sync_timeout: "250",
    replication_mode: "gtid",
    replication_options: "SSL=1",
    additional_parameters: "--a  --b",
    heartbeat_interval: "x",
  });
  assert.deepEqual(set.params.binaryPrefix, ["/usr/bin/numactl", "--interleave=all"]);
  assert.equal(set.params.semiSync, true);
  assert.equal(set.params.semiSyncTimeoutMs, 250);
  assert.equal(set.params.replicationMode, "gtid");
  assert.deepEqual(set.params.replicationOptions, [{ key: "SSL", value: 1 }]);
  assert.deepEqual(set.params.additionalParameters, ["--a", "--b"]);
  // A wrong integer is a problem and leaves the default in force.
  assert.equal(set.params.heartbeatInterval, 1);
  assert.deepEqual(set.problems.map((p) => p.message), [
    'Parameter heartbeat_interval must be an integer, not "x"',
  ]);
});

Deno.test("replication_options parse into a validated set", () => {
  assert.deepEqual(
    parseReplicationOptions("MASTER_SSL=1, SSL_CA=/etc/ssl/ca.pem,source_connect_retry=5"),
    {
      options: [
        { key: "SSL", value: 1 },
        { key: "SSL_CA", value: "/etc/ssl/ca.pem" },
        { key: "CONNECT_RETRY", value: 5 },
      ],
    },
  );
  assert.deepEqual(parseReplicationOptions(""), { options: [] });
  for (
    const bad of [
      "SSL=2",
      "SSL_CA=relative",
      "SSL_CA=/x'y",
      "MASTER_HOST=evil",
      "SSL",
      "SSL=1,SSL=0",
      "SSL_CIPHER=a b",
    ]
  ) {
    assert.ok("error" in parseReplicationOptions(bad), bad);
  }
});

Deno.test("credentials file: [client] and [replication] override the parameters", () => {
  const file = parseCredentialsFile(`# comment
[client]
user = prm
password = "p'w d"
socket=/x
[replication]
user=repl
password='r=pw'
`);
  const { params } = resolveParams({ test_user: "t", test_passwd: "tp", replication_user: "u" });
  const c = resolveCredentials(params, file);
  assert.deepEqual(c.client, { user: "prm", password: "p'w d" });
  assert.deepEqual(c.replication, { user: "repl", password: "r=pw" });
  const none = resolveCredentials(params);
  assert.deepEqual(none.client, { user: "t", password: "tp" });
  assert.deepEqual(none.replication, { user: "u", password: "" });
});

/** xmllint on `xml` given on its standard input (as ocf-tester does); the code and its words. */
async function xmllint(xml: string, args: string[], cwd?: string) {
  const child = new Deno.Command("xmllint", {
    args: [...args, "-"],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(xml));
  await w.close();
  const out = await child.output();
  return { code: out.code, text: new TextDecoder().decode(out.stderr) };
}

/** Pacemaker's OCF 1.1 schema: installed (Pacemaker 2.1.8+), else the copy kept for tests. */
function ocfSchema(): string {
  const installed = "/usr/share/pacemaker/api/ocf-ra-1.1.rng";
  try {
    Deno.statSync(installed);
    return installed;
  } catch {
    return new URL("./fixtures/pacemaker/ocf-ra-1.1.rng", import.meta.url).pathname;
  }
}

Deno.test("meta-data: OCF 1.1, every parameter, reloadable ones marked, roles Promoted/Unpromoted", () => {
  const xml = metadataXml("9.9");
  assert.match(xml, /<version>1\.1<\/version>/);
  for (const p of PARAMS) {
    assert.ok(xml.includes(`<parameter name="${p.name}"`), p.name);
    assert.ok(p.longdesc.length > 20 && p.shortdesc.length > 3, p.name);
    assert.equal(
      xml.includes(`<parameter name="${p.name}" unique="0" required="0" reloadable="1">`),
      p.reloadable === true,
      p.name,
    );
  }
  assert.match(xml, /<action name="monitor" timeout="30s" interval="5s" role="Promoted"/);
  assert.match(xml, /<action name="monitor" timeout="30s" interval="7s" role="Unpromoted"/);
  assert.doesNotMatch(xml, /role="(Master|Slave)"/);
  for (
    const a of [
      "start",
      "stop",
      "promote",
      "demote",
      "notify",
      "validate-all",
      "reload-agent",
      "meta-data",
    ]
  ) {
    assert.ok(xml.includes(`<action name="${a}"`), a);
  }
  // What a restart would change (mysqld's own command line and files) is never reloadable.
  for (const name of ["binary", "config", "datadir", "socket", "pid", "replication_mode"]) {
    assert.ok(!PARAMS.find((p) => p.name === name)!.reloadable, name);
  }
  assert.ok(helpText().includes("credentials_file [string]"));
  assert.ok(helpText().includes("max_slave_lag [integer] (default: 3600) (reloadable)"));
});

Deno.test("meta-data validates against Pacemaker's OCF 1.1 schema", async () => {
  const xml = metadataXml("9.9");
  const r = await xmllint(xml, ["--noout", "--relaxng", ocfSchema()]);
  assert.equal(r.code, 0, r.text);
  // The control: the schema is read (an attribute OCF 1.1 does not know is refused).
  const bad = await xmllint(xml.replace('reloadable="1"', 'reloadable="yes"'), [
    "--noout",
    "--relaxng",
    ocfSchema(),
  ]);
  assert.notEqual(bad.code, 0, bad.text);
});

Deno.test("meta-data passes ocf-tester's check (xmllint --valid with ra-api-1.dtd)", async () => {
  const xml = metadataXml("9.9");
  // Exactly as ocf-tester runs it: `xmllint --noout --valid -` in /usr/share/resource-agents.
  const dtdDir = "/usr/share/resource-agents";
  const r = await xmllint(xml, ["--noout", "--valid"], dtdDir);
  assert.equal(r.code, 0, r.text);
  // The internal DTD subset is what lets the OCF 1.0 DTD accept reload-agent and reloadable.
  const plain = xml.replace(
    /<!DOCTYPE[^[]*\[[^\]]*\]>/,
    '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
  );
  assert.notEqual(plain, xml);
  const refused = await xmllint(plain, ["--noout", "--valid"], dtdDir);
  assert.notEqual(refused.code, 0);
  assert.match(refused.text, /reload-agent|reloadable/);
});

Deno.test("clone shape: notify=true and promoted-max=1 are required of a promotable clone", () => {
  const ok = readContext({
    OCF_RESKEY_CRM_meta_promotable: "true",
    OCF_RESKEY_CRM_meta_notify: "true",
    OCF_RESKEY_CRM_meta_promoted_max: "1",
    OCF_RESKEY_CRM_meta_clone_node_max: "1",
  });
  assert.deepEqual(ok.cloneMeta, {
    notify: true,
    promotedMax: 1,
    promotedNodeMax: undefined,
    cloneNodeMax: 1,
  });
  assert.deepEqual(clonePromotableProblems(ok), []);
  const bad = readContext({
    OCF_RESKEY_CRM_meta_promotable: "true",
    OCF_RESKEY_CRM_meta_notify: "false",
    // The deprecated names are read when the new ones are missing.
    OCF_RESKEY_CRM_meta_master_max: "2",
    OCF_RESKEY_CRM_meta_master_node_max: "2",
  });
  const problems = clonePromotableProblems(bad);
  assert.deepEqual(problems.map((p) => p.kind), ["configured", "configured", "configured"]);
  assert.match(problems[0].message, /notify=true/);
  assert.match(problems[1].message, /promoted-max=2/);
  assert.match(problems[2].message, /promoted-node-max=2/);
  // notify unset counts as off; a plain resource is never asked.
  assert.match(
    clonePromotableProblems(readContext({ OCF_RESKEY_CRM_meta_promotable: "true" }))[0].message,
    /notify=true/,
  );
  assert.deepEqual(clonePromotableProblems(readContext({})), []);
});
