/**
 * `mysql_prm status`: parsing Pacemaker's XML, building and rendering the report (pure), and the
 * command line (help, usage errors, a missing cluster) through the agent's main().
 */
import assert from "node:assert/strict";
import {
  buildReport,
  collectStatus,
  type NodeProbe,
  renderText,
  STATUS_HELP,
  statusLogin,
} from "../status.ts";
import { parseClusterView, unmanagedReason } from "../cluster_view.ts";
import { findAll, parseXml } from "../pcmk_xml.ts";
import { CIB, CRM_MON, replica } from "./status_fixtures.ts";
import { main } from "../agent.ts";
import { AGENT_PATH, runAgent } from "./agent_harness.ts";
import { FakePacemaker, NO_CLUSTER } from "./fake_pacemaker.ts";
import { freePort } from "./mariadb_server.ts";

Deno.test("parseXml decodes entities, skips declarations and nests elements", () => {
  const doc = parseXml(
    `<?xml version="1.0"?><!-- c --><a x="1 &amp; 2"><b y='&lt;z&gt;'/><b/></a>`,
  );
  assert.equal(doc.children.length, 1);
  assert.equal(doc.children[0].attrs.x, "1 & 2");
  assert.equal(findAll(doc, "b").length, 2);
  assert.equal(findAll(doc, "b")[0].attrs.y, "<z>");
});

Deno.test("parseClusterView: roles, scores, reader attribute, failures, quorum, fencing, params", () => {
  const v = parseClusterView(CRM_MON, CIB);
  assert.equal(v.resource, "p_mysql");
  assert.equal(v.clone, "ms_mysql");
  assert.equal(v.dc, "prm2");
  assert.equal(v.quorum, true);
  assert.equal(v.stonithEnabled, true);
  assert.deepEqual(v.fenceDevices, ["fence_lab"]);
  assert.equal(v.noQuorumPolicy, "stop");
  assert.deepEqual(v.replInfo, { host: "prm2", file: "mysql-bin.000002", pos: 1234 });
  assert.equal(v.params.replication_port, "3307");
  assert.deepEqual(
    v.nodes.map((n) => [n.name, n.online, n.role, n.score, n.readable]),
    [
      ["prm1", false, "stopped", undefined, undefined],
      ["prm2", true, "promoted", 1000, "1"],
      ["prm3", true, "unpromoted", 100, "0"],
    ],
  );
  // Only the resource's own failures, with the exit reason decoded.
  assert.equal(v.nodes[2].failures.length, 1);
  assert.equal(v.nodes[2].failures[0].exitReason, 'Evicting outdated replica: lagging & "late"');
});

Deno.test("parseClusterView: a failed instance, legacy role names, unknown resource", () => {
  const mon = CRM_MON.replace(
    'role="Unpromoted" active="true" orphaned="false" blocked="false" managed="true" failed="false"',
    'role="Slave" active="true" orphaned="false" blocked="false" managed="true" failed="true"',
  )
    .replace('role="Promoted"', 'role="Master"');
  const v = parseClusterView(mon, CIB);
  assert.equal(v.nodes[1].role, "promoted");
  assert.equal(v.nodes[2].role, "failed");
  assert.throws(() => parseClusterView(CRM_MON, CIB, "p_other"), /No mysql_prm resource "p_other"/);
  assert.throws(
    () => parseClusterView(CRM_MON, CIB.replace('type="mysql_prm"', 'type="mysql"')),
    /No ocf:\*:mysql_prm resource/,
  );
});

Deno.test("buildReport: heartbeat lag beside Seconds_Behind_Master, unreachable rows, errors", () => {
  const v = parseClusterView(CRM_MON, CIB);
  const probes = new Map<string, NodeProbe>([
    ["prm1", { unreachable: "node offline" }],
    [
      "prm2",
      {
        readOnly: false,
        binlog: { file: "mysql-bin.000002", pos: 9000 },
        gtid: "0-2-7",
      },
    ],
    [
      "prm3",
      {
        readOnly: true,
        binlog: { file: "mysql-bin.000001", pos: 400 },
        gtid: "0-2-5",
        replica: replica({ secondsBehind: 0 }),
        heartbeatLag: 12.345,
      },
    ],
  ]);
  const r = buildReport(v, probes);
  assert.deepEqual(r.master, {
    raw: "prm2|mysql-bin.000002|1234",
    host: "prm2",
    file: "mysql-bin.000002",
    pos: 1234,
  });
  assert.deepEqual(r.heartbeat, { table: "percona.heartbeat", intervalSeconds: 1 });
  assert.equal(r.maxSlaveLag, 5);
  const [n1, n2, n3] = r.rows;
  assert.equal(n1.state, "offline");
  assert.equal(n1.readOnly, undefined);
  assert.match(n1.error, /MySQL unreachable: node offline/);
  assert.equal(n2.readOnly, false);
  assert.equal(n2.binlog, "mysql-bin.000002:9000");
  assert.equal(n2.replication, "");
  assert.equal(n3.lag, 12.345);
  assert.equal(n3.lagSource, "heartbeat");
  assert.equal(n3.secondsBehindMaster, 0);
  assert.equal(n3.replication, "prm2 io=Yes sql=Yes");
  assert.match(n3.error, /p_mysql_monitor_3000 error: Evicting outdated replica/);

  const text = renderText(r);
  assert.match(text, /DC prm2, quorum \(no-quorum-policy=stop\), stonith-enabled=true/);
  assert.match(text, /fence devices: fence_lab/);
  assert.match(text, /Published master \(p_mysql_REPL_INFO\): prm2 mysql-bin.000002:1234/);
  assert.match(text, /lag from heartbeat percona.heartbeat every 1s, max_slave_lag 5s/);
  const lines = text.split("\n");
  const header = lines.find((l) => l.startsWith("NODE"))!;
  assert.ok(header.includes("LAST ERROR"));
  const row3 = lines.find((l) => l.startsWith("prm3"))!;
  assert.match(row3, /unpromoted\s+on\s+mysql-bin.000001:400\s+0-2-5\s+prm2 io=Yes sql=Yes/);
  assert.match(row3, /12\.3s hb \(SBM 0\)\s+0\s+100/);
  const row1 = lines.find((l) => l.startsWith("prm1"))!;
  assert.match(row1, /offline\s+stopped\s+\?/);
});

Deno.test("buildReport: without heartbeat, SBM NULL and replication errors show", () => {
  const v = parseClusterView(
    CRM_MON,
    CIB.replace('name="heartbeat" value="true"', 'name="heartbeat" value="false"'),
  );
  const r = buildReport(
    v,
    new Map([[
      "prm3",
      {
        readOnly: true,
        replica: replica({
          ioRunning: "Connecting",
          secondsBehind: null,
          lastIoErrno: 2003,
          lastIoError: "Can't connect to server on 'prm2'",
        }),
      },
    ]]),
  );
  assert.equal(r.heartbeat, undefined);
  const row = r.rows[2];
  assert.equal(row.lag, undefined);
  assert.equal(row.secondsBehindMaster, null);
  assert.match(row.error, /IO 2003: Can't connect/);
  assert.match(renderText(r), /Connecting sql=Yes\s+mysql-bin.000002:5000\s+NULL/);
  // A row for a node never probed says so rather than crashing.
  assert.match(r.rows[1].error, /not probed/);
  assert.match(renderText(r), /lag from Seconds_Behind_Master/);
});

Deno.test("renderText warns loudly without fencing or quorum, and on a malformed REPL_INFO", () => {
  const mon = CRM_MON.replace('stonith-enabled="true"', 'stonith-enabled="false"').replace(
    'with_quorum="true"',
    'with_quorum="false"',
  );
  const v = parseClusterView(mon, CIB.replace("prm2|mysql-bin.000002|1234", "garbage"));
  const text = renderText(buildReport(v, new Map()));
  assert.match(text, /NO QUORUM/);
  assert.match(text, /NO FENCING/);
  assert.match(text, /malformed "garbage"/);
});

Deno.test("statusLogin: the credentials file wins over the parameters", () => {
  assert.deepEqual(
    statusLogin(
      { test_user: "u", test_passwd: "p" },
      "[client]\nuser = prm\npassword = 's3cr#t'\n",
    ),
    { user: "prm", password: "s3cr#t" },
  );
  assert.deepEqual(statusLogin({ test_user: "u", test_passwd: "p" }), { user: "u", password: "p" });
  assert.deepEqual(statusLogin({}), { user: "root", password: "" });
});

Deno.test("collectStatus: Pacemaker unreachable is an error; offline nodes are not probed", async () => {
  await using pcmk = await FakePacemaker.create();
  pcmk.fault("crm_mon", NO_CLUSTER.crm_mon);
  await assert.rejects(collectStatus({ runner: pcmk.runner }), /crm_mon failed \(exit 102\)/);
  pcmk.fault("crm_mon", undefined);
  // A port nothing listens on: taken from the kernel, then released.
  const port = freePort();
  const cib = CIB.replace(/<nvpair[^>]*credentials_file[^>]*\/>/, "").replace(
    'name="replication_port" value="3307"',
    `name="replication_port" value="${port}"`,
  );
  pcmk.setXml({ crmMon: CRM_MON, cib });
  // prm2/prm3 point at a closed port: their rows say unreachable; prm1 is offline.
  const r = await collectStatus({
    runner: pcmk.runner,
    addresses: { prm2: "127.0.0.1", prm3: "127.0.0.1" },
    timeoutMs: 1_000,
  }).catch((e) => e as Error);
  if (r instanceof Error) throw r;
  assert.match(r.rows[0].error, /node offline/);
  assert.equal(r.rows.length, 3);
  for (const row of r.rows.slice(1)) assert.ok(row.error !== "", JSON.stringify(row));
  // crm_mon and cibadmin once per try; the private promotion records and this node's name.
  assert.deepEqual(pcmk.calls().map((c) => c.tool).sort(), [
    "attrd_updater",
    "cibadmin",
    "cibadmin",
    "crm_mon",
    "crm_mon",
    "crm_node",
  ]);
});

Deno.test("mysql_prm status/config --help and usage errors through main()", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    assert.equal(await main(["status", "--help"]), 0);
    assert.equal(out.join("\n").trim(), STATUS_HELP.trim());
    assert.equal(await main(["status", "--bogus"]), 2);
    assert.match(err.join("\n"), /see mysql_prm status --help/);
    assert.equal(await main(["status", "--address", "nonsense"]), 2);
    out.length = 0;
    assert.equal(await main(["--help"]), 0);
    assert.match(
      out.join("\n"),
      /mysql_prm status \[--format text\|json\|openmetrics\|prometheus\]/,
    );
    assert.match(out.join("\n"), /heartbeat_interval \[integer\] \(default: 1\)/);
  } finally {
    console.log = log;
    console.error = error;
  }
});

Deno.test("mysql_prm config --help prints its usage (the agent program, as installed runs it)", async () => {
  const r = await runAgent(["config", "--help"], { env: { PATH: AGENT_PATH } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Usage: mysql_prm config/);
});

Deno.test("the not-promotable reason shows in the text, the JSON rows and the view", () => {
  const mon = CRM_MON.replace(
    '<attribute name="readable" value="0"/>',
    '<attribute name="readable" value="0"/><attribute name="prm-p_mysql-not-promotable" value="errant-transactions"/>',
  );
  const v = parseClusterView(mon, CIB);
  assert.equal(v.nodes[2].notPromotable, "errant-transactions");
  const r = buildReport(v, new Map());
  assert.equal(r.rows[2].notPromotable, "errant-transactions");
  assert.equal(r.rows[1].notPromotable, undefined);
  const text = renderText(r);
  assert.ok(text.split("\n").find((l) => l.startsWith("NODE"))!.includes("NOT PROMOTABLE"));
  assert.match(
    text.split("\n").find((l) => l.startsWith("prm3"))!,
    /\s100\s+errant-transactions\s/,
  );
  // An unknown word (a newer agent) is shown as it is, bounded, never dropped.
  const odd = parseClusterView(
    mon.replace('value="errant-transactions"', 'value="new-reason"'),
    CIB,
  );
  assert.equal(buildReport(odd, new Map()).rows[2].notPromotable, "new-reason");
});

Deno.test("unmanagedReason: maintenance-mode, node maintenance, resource maintenance, is-managed", () => {
  const cib = (props: string, meta: string, nodes = "<nodes/>", defaults = "") =>
    parseXml(`<cib><configuration><crm_config><cluster_property_set id="o">${props}
      </cluster_property_set></crm_config>${nodes}<resources><clone id="ms"><meta_attributes id="m">
      ${meta}</meta_attributes><primitive id="p_mysql" class="ocf" type="mysql_prm"/></clone>
      </resources>${defaults}</configuration></cib>`);
  const nv = (n: string, v: string) => `<nvpair id="${n}" name="${n}" value="${v}"/>`;
  const opts = { resource: "p_mysql", node: "prm1" };
  assert.equal(unmanagedReason(cib("", ""), opts), undefined);
  assert.equal(unmanagedReason(cib(nv("maintenance-mode", "true"), ""), opts), "maintenance-mode");
  assert.equal(unmanagedReason(cib("", nv("is-managed", "false")), opts), "unmanaged");
  assert.equal(unmanagedReason(cib("", nv("maintenance", "true")), opts), "resource-maintenance");
  const nodes = `<nodes><node id="1" uname="prm1"><instance_attributes id="n1">${
    nv("maintenance", "on")
  }</instance_attributes></node></nodes>`;
  assert.equal(unmanagedReason(cib("", "", nodes), opts), "node-maintenance");
  assert.equal(unmanagedReason(cib("", "", nodes), { ...opts, node: "prm2" }), undefined);
  // rsc_defaults apply unless the clone says otherwise.
  const defaults = `<rsc_defaults><meta_attributes id="d">${
    nv("is-managed", "false")
  }</meta_attributes></rsc_defaults>`;
  assert.equal(unmanagedReason(cib("", "", "<nodes/>", defaults), opts), "unmanaged");
  assert.equal(
    unmanagedReason(cib("", nv("is-managed", "true"), "<nodes/>", defaults), opts),
    undefined,
  );
});

Deno.test("mysql_prm status --format: a bad format or a contradiction is a usage error", async () => {
  const err: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    assert.equal(await main(["status", "--format", "yaml"]), 2);
    assert.match(err.join("\n"), /--format takes text, json, openmetrics, prometheus, not "yaml"/);
    assert.equal(await main(["status", "--json", "--format", "openmetrics"]), 2);
  } finally {
    console.error = error;
  }
});
