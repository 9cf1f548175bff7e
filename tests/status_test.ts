/**
 * `mysql_prm status`: parsing Pacemaker's XML, building and rendering the report (pure), and the
 * command line (help, usage errors, a missing cluster) through the agent's main().
 */
import assert from "node:assert/strict";
import {
  buildReport,
  collectStatus,
  findAll,
  type NodeProbe,
  parseClusterView,
  parseXml,
  renderText,
  STATUS_HELP,
  statusLogin,
} from "../status.ts";
import { main } from "../agent.ts";
import { AGENT_PATH, runAgent } from "./agent_harness.ts";
import { FakePacemaker, NO_CLUSTER } from "./fake_pacemaker.ts";
import { freePort } from "./mariadb_server.ts";

const CRM_MON = `<?xml version="1.0"?>
<pacemaker-result api-version="2.25" request="crm_mon -1 -A -r --output-as=xml">
  <summary>
    <stack type="corosync"/>
    <current_dc present="true" version="2.1.5" name="prm2" id="2" with_quorum="true"/>
    <nodes_configured number="3"/>
    <resources_configured number="6" disabled="0" blocked="0"/>
    <cluster_options stonith-enabled="true" symmetric-cluster="true" no-quorum-policy="stop" maintenance-mode="false" stop-all-resources="false"/>
  </summary>
  <nodes>
    <node name="prm1" id="1" online="false" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="false" is_dc="false" resources_running="0" type="member"/>
    <node name="prm2" id="2" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="true" resources_running="3" type="member"/>
    <node name="prm3" id="3" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="false" resources_running="2" type="member"/>
  </nodes>
  <resources>
    <resource id="fence_lab" resource_agent="stonith:fence_prm_lab" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="prm2" id="2" cached="true"/>
    </resource>
    <clone id="ms_mysql" multi_state="true" unique="false" managed="true" disabled="false" failed="false" failure_ignored="false">
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Promoted" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="prm2" id="2" cached="true"/>
      </resource>
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Unpromoted" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="prm3" id="3" cached="true"/>
      </resource>
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
    </clone>
    <resource id="vip_writer" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="prm2" id="2" cached="true"/>
    </resource>
  </resources>
  <node_attributes>
    <node name="prm2">
      <attribute name="master-p_mysql" value="1000"/>
      <attribute name="readable" value="1"/>
    </node>
    <node name="prm3">
      <attribute name="master-p_mysql" value="100"/>
      <attribute name="readable" value="0"/>
    </node>
  </node_attributes>
  <failures>
    <failure op_key="p_mysql_monitor_3000" node="prm3" exitstatus="error" exitreason="Evicting outdated replica: lagging &amp; &quot;late&quot;" exitcode="1" call="40" status="complete" last-rc-change="2026-11-22 09:00:01 +00:00" queued="0" exec="0" interval="3000" task="monitor"/>
    <failure op_key="vip_writer_monitor_5000" node="prm3" exitstatus="not running" exitreason="" exitcode="7" call="9" status="complete" last-rc-change="2026-11-22 09:00:02 +00:00" queued="0" exec="0" interval="5000" task="monitor"/>
  </failures>
  <status code="0" message="OK"/>
</pacemaker-result>
`;

const CIB =
  `<cib crm_feature_set="3.16.2" validate-with="pacemaker-3.9" epoch="12" num_updates="4" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="o-stonith" name="stonith-enabled" value="true"/>
      </cluster_property_set>
      <cluster_property_set id="mysql_replication">
        <nvpair id="mysql_replication-p_mysql_REPL_INFO" name="p_mysql_REPL_INFO" value="prm2|mysql-bin.000002|1234"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="fence_lab" class="stonith" type="fence_prm_lab"/>
      <clone id="ms_mysql">
        <primitive id="p_mysql" class="ocf" provider="prm" type="mysql_prm">
          <instance_attributes id="p_mysql-ia">
            <nvpair id="p_mysql-ia-cf" name="credentials_file" value="/etc/mysql/prm.cnf"/>
            <nvpair id="p_mysql-ia-hb" name="heartbeat" value="true"/>
            <nvpair id="p_mysql-ia-port" name="replication_port" value="3307"/>
            <nvpair id="p_mysql-ia-lag" name="max_slave_lag" value="5"/>
          </instance_attributes>
        </primitive>
      </clone>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
`;

function replica(over: Partial<NodeProbe["replica"]> = {}): NonNullable<NodeProbe["replica"]> {
  return {
    masterHost: "prm2",
    masterPort: 3307,
    ioRunning: "Yes",
    sqlRunning: true,
    lastIoErrno: 0,
    lastIoError: "",
    lastSqlErrno: 0,
    lastSqlError: "",
    secondsBehind: 0,
    masterLogFile: "mysql-bin.000002",
    readMasterLogPos: 5000,
    relayMasterLogFile: "mysql-bin.000002",
    execMasterLogPos: 5000,
    sqlState: "",
    gtidIoPos: "",
    relayLogFile: "relay-bin.000002",
    relayLogPos: 600,
    ...over,
  };
}

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
        serverId: 2,
        binlog: { file: "mysql-bin.000002", pos: 9000 },
        gtid: "0-2-7",
      },
    ],
    [
      "prm3",
      {
        readOnly: true,
        serverId: 3,
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
  assert.deepEqual(pcmk.calls().map((c) => c.tool).sort(), [
    "cibadmin",
    "cibadmin",
    "crm_mon",
    "crm_mon",
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
    assert.match(out.join("\n"), /mysql_prm status \[--json\]/);
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
