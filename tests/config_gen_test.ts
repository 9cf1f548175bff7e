// Tests of `mysql_prm config` (config_gen.ts).
//
// Unit tests parse the generated crm and pcs texts back into constraint lists and compare them with
// hand-written expectations. The offline tests feed both forms to the real tools (crmsh with
// CIB_file, pcs -f, crm_verify) on a CIB file with three nodes, check that both forms give the same
// configuration, and let crm_simulate place the resources for several node states (which node is
// readable, which holds the highest promotion score, the master failing).
//
// The tools need the agent's meta-data for ocf:prm:mysql_prm. When the real agent is installed it is
// used; otherwise a placeholder that prints meta-data only is bind-mounted over
// /usr/lib/ocf/resource.d inside a private mount namespace (unshare), so the host's directory is
// never touched.
import { ipFamily } from "../position.ts";
import assert from "node:assert/strict";
import {
  AGENT_PARAMETERS,
  BOOTH_TICKET_PARAMETER,
  generateConfig,
  MODE_PARAMETER,
  parseConfigArgs,
  PROMOTED_SCORE,
  SEMI_SYNC_PARAMETER,
} from "../config_gen.ts";
import { parseBoothConfig } from "../booth_conf.ts";
import { configMain, type ConfigMainIo } from "../config_cli.ts";
import { generateTwoSiteConfig, parseTwoSiteArgs } from "../config_sites.ts";
import { exists } from "../scripts/fs.ts";
import { isIP } from "node:net";

Deno.test("ipFamily agrees with node:net's isIP on addresses and near misses", () => {
  const cases = [
    "1.2.3.4",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "::",
    "::1",
    "fe80::1",
    "2001:db8::8a2e:370:7334",
    "2001:0db8:0000:0000:0000:ff00:0042:8329",
    "1::2::3",
    "::ffff:1.2.3.4",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::",
    "::1:2:3:4:5:6:7",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "12345::",
    "g::1",
    ":1",
    "1:",
    ":::",
    "abc",
    "",
  ];
  for (const c of cases) assert.equal(ipFamily(c), isIP(c), JSON.stringify(c));
});

const BASE_ARGS = [
  "--node",
  "db1=10.213.7.11",
  "--node",
  "db2=10.213.7.12",
  "--node",
  "db3=10.213.7.13",
  "--writer-vip",
  "10.213.7.100/24",
  "--reader-vip",
  "10.213.7.101/24",
  "--reader-vip",
  "10.213.7.102/24",
  "--credentials-file",
  "/etc/mysql/prm.cnf",
];

function runMain(args: string[]): { code: number; stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  const io: ConfigMainIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
  };
  const code = configMain(args, io);
  return { code, stdout, stderr };
}

// ---------------------------------------------------------------------------------------------
// Parsing the generated texts back.

/** crm shell statements: comments dropped, continuation lines joined, words split (with quotes). */
function crmStatements(text: string): string[][] {
  const joined = text.split("\n").filter((l) => !l.startsWith("#")).join("\n").replaceAll(
    "\\\n",
    " ",
  );
  return joined.split("\n").filter((l) => l.trim() !== "").map(splitWords);
}

/** Splits a line into words; double or single quotes group words and are removed. */
function splitWords(line: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let current = "";
  let last = -1;
  for (const m of line.matchAll(re)) {
    const piece = m[1] ?? m[2] ?? m[3];
    if (last === m.index && current !== "") {
      current += piece;
    } else {
      if (current !== "" || last >= 0) words.push(current);
      current = piece;
    }
    last = m.index! + m[0].length;
  }
  if (last >= 0) words.push(current);
  return words;
}

/** The crm constraints in one normalized form per line. */
function crmConstraints(text: string): string[] {
  const out: string[] = [];
  for (const w of crmStatements(text)) {
    if (w[0] === "colocation") {
      const score = w[2].replace(/:$/, "").replace(/^inf$/, "INFINITY");
      out.push(`colocation ${w[1]}: ${w[3]} with ${w[4]} score=${score}`);
    } else if (w[0] === "order") {
      out.push(`order ${w[1]}: ${w[3]} then ${w[4]} kind=${w[2].replace(/:$/, "")}`);
    } else if (w[0] === "location" && w[3] === "rule") {
      const score = w[4].replace(/:$/, "").replace(/^-inf$/, "-INFINITY");
      out.push(`location ${w[1]}: ${w[2]} rule score=${score} ${w.slice(5).join(" ")}`);
    } else if (w[0] === "location") {
      const score = w[3].replace(/:$/, "").replace(/^-inf$/, "-INFINITY");
      out.push(`location ${w[1]}: ${w[2]} node=${w[4]} score=${score}`);
    }
  }
  return out.sort();
}

/** The pcs script's `pcs -f "$CIB"` commands, continuation lines joined. */
function pcsCommands(text: string): string[][] {
  const joined = text.split("\n").filter((l) => !l.startsWith("#")).join("\n").replaceAll(
    "\\\n",
    " ",
  );
  return joined.split("\n").filter((l) => l.startsWith('pcs -f "$CIB" ')).map((l) =>
    splitWords(l).slice(3)
  );
}

/** The pcs constraints in the same normalized form as {@linkcode crmConstraints}. */
function pcsConstraints(text: string): string[] {
  const out: string[] = [];
  for (const w of pcsCommands(text)) {
    if (w[0] !== "constraint") continue;
    const opts = new Map(
      w.filter((x) => /^[a-z-]+=/.test(x)).map((x) => {
        const i = x.indexOf("=");
        return [x.slice(0, i), x.slice(i + 1)] as [string, string];
      }),
    );
    if (w[1] === "colocation") {
      // colocation add A with [ROLE] B score=S id=ID
      const plain = w.slice(3).filter((x) => !x.includes("="));
      const [a, , maybeRole, maybeB] = plain;
      const with_ = maybeB === undefined ? maybeRole : `${maybeB}:${maybeRole}`;
      out.push(`colocation ${opts.get("id")}: ${a} with ${with_} score=${opts.get("score")}`);
    } else if (w[1] === "order") {
      // order ACTION A then ACTION B kind=K id=ID
      out.push(
        `order ${opts.get("id")}: ${w[3]}:${w[2]} then ${w[6]}:${w[5]} kind=${opts.get("kind")}`,
      );
    } else if (w[1] === "location" && w[3] === "rule") {
      const expr = w.slice(4).filter((x) => !/^[a-z-]+=/.test(x)).map((x) => x);
      // pcs writes "ATTR lt number 1", crm "ATTR number:lt 1": bring both to the crm form.
      const crmExpr: string[] = [];
      for (let i = 0; i < expr.length; i++) {
        if (["lt", "gte", "gt", "lte", "eq", "ne"].includes(expr[i]) && expr[i + 1] === "number") {
          crmExpr.push(`number:${expr[i]}`);
          i++;
        } else crmExpr.push(expr[i]);
      }
      out.push(
        `location ${opts.get("constraint-id")}: ${w[2]} rule score=${opts.get("score")} ${
          crmExpr.join(" ")
        }`,
      );
    } else if (w[1] === "location" && w[3] === "avoids") {
      out.push(`location l_${w[2]}_not_on_${w[4]}: ${w[2]} node=${w[4]} score=-INFINITY`);
    }
  }
  return out.sort();
}

/** What BASE_ARGS must produce, written out by hand. */
const EXPECTED_CONSTRAINTS = [
  "colocation col_vip_reader_2_away_from_vip_reader_1: vip_reader_2 with vip_reader_1 score=-200",
  "colocation col_vip_writer_on_promoted: vip_writer with p_mysql-clone:Promoted score=INFINITY",
  "location l_st_db1_not_on_db1: st_db1 node=db1 score=-INFINITY",
  "location l_st_db2_not_on_db2: st_db2 node=db2 score=-INFINITY",
  "location l_st_db3_not_on_db3: st_db3 node=db3 score=-INFINITY",
  "location loc_vip_reader_1_away_from_master: vip_reader_1 rule score=-500 master-p_mysql number:gte 1000",
  "location loc_vip_reader_1_prefer_readable: vip_reader_1 rule score=10000 readable number:gte 1",
  "location loc_vip_reader_1_readable: vip_reader_1 rule score=-INFINITY not_defined readable or readable number:lt 1",
  "location loc_vip_reader_2_away_from_master: vip_reader_2 rule score=-500 master-p_mysql number:gte 1000",
  "location loc_vip_reader_2_prefer_readable: vip_reader_2 rule score=10000 readable number:gte 1",
  "location loc_vip_reader_2_readable: vip_reader_2 rule score=-INFINITY not_defined readable or readable number:lt 1",
  "order ord_promote_before_vip_writer: p_mysql-clone:promote then vip_writer:start kind=Mandatory",
].sort();

// ---------------------------------------------------------------------------------------------
// Unit tests.

Deno.test("parseConfigArgs: defaults and values", () => {
  const o = parseConfigArgs(BASE_ARGS);
  assert.deepEqual(o.nodes, [
    { name: "db1", address: "10.213.7.11" },
    { name: "db2", address: "10.213.7.12" },
    { name: "db3", address: "10.213.7.13" },
  ]);
  assert.deepEqual(o.writerVip, { address: "10.213.7.100", prefix: 24 });
  assert.equal(o.readerVips.length, 2);
  assert.equal(o.mode, "position");
  assert.equal(o.semiSync, false);
  assert.equal(o.monitorPromotedMs, 5000);
  assert.equal(o.monitorUnpromotedMs, 7000);
  assert.equal(o.resource, "p_mysql");
  assert.equal(o.format, "both");
  assert.equal(o.lab, false);
  const v6 = parseConfigArgs([
    "--node",
    "a=fd00::11",
    "--node",
    "b=fd00::12",
    "--writer-vip",
    "fd00::100/64",
    "--credentials-file",
    "/c.cnf",
    "--monitor-interval-promoted",
    "2500ms",
    "--monitor-interval-unpromoted",
    "1min",
  ]);
  assert.deepEqual(v6.writerVip, { address: "fd00::100", prefix: 64 });
  assert.equal(v6.monitorPromotedMs, 2500);
  assert.equal(v6.monitorUnpromotedMs, 60000);
});

Deno.test("crm form: exactly the expected constraints", () => {
  const { crm } = generateConfig(parseConfigArgs(BASE_ARGS));
  assert.deepEqual(crmConstraints(crm), EXPECTED_CONSTRAINTS);
});

Deno.test("pcs form: exactly the expected constraints", () => {
  const { pcs } = generateConfig(parseConfigArgs(BASE_ARGS));
  assert.deepEqual(pcsConstraints(pcs), EXPECTED_CONSTRAINTS);
});

Deno.test("crm form: clone, operations, VIPs, defaults", () => {
  const { crm } = generateConfig(
    parseConfigArgs([...BASE_ARGS, "--mode", "gtid", "--semi-sync", "--vip-nic", "eth0"]),
  );
  const statements = crmStatements(crm);
  const mysql = statements.find((w) => w[0] === "primitive" && w[1] === "p_mysql")!;
  assert.equal(mysql[2], "ocf:prm:mysql_prm");
  const ops: string[] = [];
  for (let i = 0; i < mysql.length; i++) {
    if (mysql[i] !== "op") continue;
    const end = mysql.indexOf("op", i + 1);
    ops.push(mysql.slice(i + 1, end < 0 ? undefined : end).join(" "));
  }
  assert.deepEqual(ops, [
    "start interval=0s timeout=900s",
    "stop interval=0s timeout=600s",
    "promote interval=0s timeout=300s",
    "demote interval=0s timeout=120s",
    "notify interval=0s timeout=300s",
    "monitor interval=5s role=Promoted timeout=30s",
    "monitor interval=7s role=Unpromoted timeout=30s",
  ]);
  const params = mysql.slice(mysql.indexOf("params") + 1, mysql.indexOf("op"));
  assert.deepEqual(params, [
    "credentials_file=/etc/mysql/prm.cnf",
    `${MODE_PARAMETER}=gtid`,
    `${SEMI_SYNC_PARAMETER}=true`,
  ]);
  const clone = statements.find((w) => w[0] === "clone")!;
  assert.deepEqual(clone, [
    "clone",
    "p_mysql-clone",
    "p_mysql",
    "meta",
    "promotable=true",
    "notify=true",
    "promoted-max=1",
    "promoted-node-max=1",
    "clone-node-max=1",
  ]);
  const writer = statements.find((w) => w[1] === "vip_writer")!;
  assert.deepEqual(writer.slice(0, 7), [
    "primitive",
    "vip_writer",
    "ocf:heartbeat:IPaddr2",
    "params",
    "ip=10.213.7.100",
    "cidr_netmask=24",
    "nic=eth0",
  ]);
  // Reader VIPs are tied to nothing but node attributes and each other (see READER_SCORES).
  assert.ok(
    !statements.some((w) =>
      w[0] === "colocation" && w[3].startsWith("vip_reader") &&
      !w[4].startsWith("vip_reader")
    ),
  );
  assert.deepEqual(statements.find((w) => w[0] === "rsc_defaults"), [
    "rsc_defaults",
    "rsc-options:",
    "resource-stickiness=100",
    "migration-threshold=3",
    "failure-timeout=600s",
  ]);
  assert.ok(statements.some((w) => w[0] === "op_defaults"));
  assert.match(crm, /GTID mode: MariaDB needs log_slave_updates=ON/);
  // The defaults (position, no semi-sync) are left to the agent.
  const plain = generateConfig(parseConfigArgs(BASE_ARGS));
  for (const text of [plain.crm, plain.pcs]) {
    assert.ok(!text.includes(`${MODE_PARAMETER}=`));
    assert.ok(!text.includes(`${SEMI_SYNC_PARAMETER}=`));
  }
});

Deno.test("reader_attribute and resource name flow into the rules and the clone", () => {
  const { crm, pcs } = generateConfig(
    parseConfigArgs([...BASE_ARGS, "--param", "reader_attribute=rd", "--resource", "db"]),
  );
  const c = crmConstraints(crm);
  assert.ok(
    c.includes(
      "location loc_vip_reader_1_readable: vip_reader_1 rule score=-INFINITY not_defined rd or rd number:lt 1",
    ),
  );
  assert.ok(
    c.includes(
      "colocation col_vip_writer_on_promoted: vip_writer with db-clone:Promoted score=INFINITY",
    ),
  );
  assert.ok(c.includes(
    "location loc_vip_reader_2_away_from_master: vip_reader_2 rule score=-500 master-db number:gte 1000",
  ));
  assert.deepEqual(pcsConstraints(pcs), c);
});

Deno.test("values with spaces are quoted for crm and for sh", () => {
  const { crm, pcs } = generateConfig(
    parseConfigArgs([
      ...BASE_ARGS,
      "--param",
      "additional_parameters=--skip-name-resolve --port=3307",
    ]),
  );
  assert.match(crm, / additional_parameters="--skip-name-resolve --port=3307"/);
  assert.match(pcs, / 'additional_parameters=--skip-name-resolve --port=3307'/);
  const create = pcsCommands(pcs).find((w) => w[0] === "resource" && w[2] === "p_mysql")!;
  assert.ok(create.includes("additional_parameters=--skip-name-resolve --port=3307"));
});

Deno.test("one reader VIP, or none: no reader-reader constraints, writer constraints kept", () => {
  const args = BASE_ARGS.filter((a, i) =>
    !(a === "--reader-vip" || BASE_ARGS[i - 1] === "--reader-vip")
  );
  const none = crmConstraints(generateConfig(parseConfigArgs(args)).crm);
  assert.deepEqual(none.filter((c) => c.includes("vip_reader")), []);
  assert.ok(none.some((c) => c.startsWith("colocation col_vip_writer_on_promoted")));
  const one = crmConstraints(
    generateConfig(parseConfigArgs([...args, "--reader-vip", "10.213.7.101"])).crm,
  );
  assert.equal(one.filter((c) => c.includes("vip_reader")).length, 3);
});

Deno.test("stonith-enabled=false only with --lab, and never with a real fence agent", () => {
  const combos: string[][] = [
    [],
    ["--format", "crm"],
    ["--format", "pcs"],
    ["--fence-agent", "fence_virsh", "--fence-param", "ip=192.0.2.1"],
    ["--mode", "gtid", "--semi-sync"],
  ];
  for (const extra of combos) {
    const r = runMain([...BASE_ARGS, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /stonith-enabled=false/, extra.join(" "));
    assert.match(r.stdout, /stonith-enabled=true/);
    assert.match(r.stdout, /FENCING/);
  }
  const lab = generateConfig(parseConfigArgs([...BASE_ARGS, "--lab"]));
  for (const text of [lab.crm, lab.pcs]) {
    assert.match(text, /stonith-enabled=false/);
    assert.doesNotMatch(text, /stonith-enabled=true/);
    assert.match(text, /FENCING IS DISABLED/);
    assert.doesNotMatch(text, /st_db1/);
  }
  const labFenced = generateConfig(
    parseConfigArgs([...BASE_ARGS, "--lab", "--fence-agent", "fence_prm_lab"]),
  );
  assert.match(labFenced.crm, /stonith-enabled=true/);
  assert.doesNotMatch(labFenced.crm + labFenced.pcs, /stonith-enabled=false/);
});

Deno.test("fence devices: placeholders by default, per-node parameters with --fence-param", () => {
  const { crm } = generateConfig(parseConfigArgs(BASE_ARGS));
  const st = crmStatements(crm).filter((w) => w[0] === "primitive" && w[1].startsWith("st_"));
  assert.deepEqual(st.map((w) => w[1]), ["st_db1", "st_db2", "st_db3"]);
  assert.ok(st[0].includes("stonith:fence_ipmilan"));
  assert.ok(st[0].includes("pcmk_host_list=db1"));
  assert.ok(st[0].some((w) => w.includes("CHANGE_ME")));
  assert.match(crm, /FENCING IS A PLACEHOLDER/);

  const real = generateConfig(parseConfigArgs([
    ...BASE_ARGS,
    "--fence-agent",
    "fence_ipmilan",
    "--fence-param",
    "username=admin",
    "--fence-param",
    "db2:ip=10.1.0.12",
  ]));
  const st2 = crmStatements(real.crm).filter((w) => w[0] === "primitive" && w[1].startsWith("st_"));
  const paramsOf = (w: string[]) => w.slice(w.indexOf("params") + 1, w.indexOf("op"));
  assert.deepEqual(paramsOf(st2[0]), ["pcmk_host_list=db1", "username=admin"]);
  assert.deepEqual(paramsOf(st2[1]), ["pcmk_host_list=db2", "username=admin", "ip=10.1.0.12"]);
  assert.doesNotMatch(real.crm, /CHANGE_ME/);
  const pcsSt = pcsCommands(real.pcs).filter((w) => w[0] === "stonith");
  assert.deepEqual(pcsSt[1].slice(0, 7), [
    "stonith",
    "create",
    "st_db2",
    "fence_ipmilan",
    "pcmk_host_list=db2",
    "username=admin",
    "ip=10.1.0.12",
  ]);
});

Deno.test("bad flags: a clear error and exit status 2", () => {
  const without = (flag: string) => {
    const i = BASE_ARGS.indexOf(flag);
    return [...BASE_ARGS.slice(0, i), ...BASE_ARGS.slice(i + 2)];
  };
  const nodes2 = ["--node", "db1=10.0.0.11", "--node", "db2=10.0.0.12"];
  const rest = ["--writer-vip", "10.0.0.100/24", "--credentials-file", "/etc/mysql/prm.cnf"];
  const cases: [string[], RegExp][] = [
    [
      [...nodes2, "--writer-vip", "10.0.0.300/24", "--credentials-file", "/c"],
      /not an IPv4 or IPv6 address/,
    ],
    [
      [...nodes2, "--writer-vip", "vip.example.com", "--credentials-file", "/c"],
      /not an IPv4 or IPv6 address/,
    ],
    [
      [...nodes2, "--writer-vip", "10.0.0.100/33", "--credentials-file", "/c"],
      /prefix length must be a number from 1 to 32/,
    ],
    [[...nodes2, "--writer-vip", "10.0.0.100/x", "--credentials-file", "/c"], /prefix length/],
    [[...nodes2, ...rest, "--reader-vip", "10.0.0.1/24/1"], /--reader-vip .*prefix length/],
    [
      ["--node", "db1=10.0.0.11", "--node", "db2=host2", ...rest],
      /"host2" is not an IPv4 or IPv6 address/,
    ],
    [["--node", "db1=10.0.0.11", "--node", "db2", ...rest], /expected NAME=ADDRESS/],
    [
      ["--node", "db1=10.0.0.11", "--node", "DB1=10.0.0.12", ...rest],
      /Node name DB1 is given twice/,
    ],
    [
      ["--node", "db1=10.0.0.11", "--node", "db2=10.0.0.11", ...rest],
      /Nodes db1 and db2 have the same address/,
    ],
    [
      ["--node", "a=fd00::1", "--node", "b=fd00:0:0::0:1", ...rest],
      /Nodes a and b have the same address/,
    ],
    [["--node", "db1=10.0.0.11", ...rest], /At least two --node.*got 1/],
    [rest, /At least two --node.*got 0/],
    [
      [...nodes2, "--writer-vip", "10.0.0.12/24", "--credentials-file", "/c"],
      /is the address of node db2/,
    ],
    [
      [...nodes2, ...rest, "--reader-vip", "10.0.0.11"],
      /--reader-vip 10.0.0.11 is the address of node db1/,
    ],
    [[...nodes2, ...rest, "--reader-vip", "10.0.0.100"], /VIP 10.0.0.100 is given twice/],
    [[
      ...nodes2,
      ...rest,
      "--monitor-interval-promoted",
      "5s",
      "--monitor-interval-unpromoted",
      "5000ms",
    ], /must differ/],
    [[...nodes2, ...rest, "--monitor-interval-promoted", "7"], /must differ/],
    [[...nodes2, ...rest, "--monitor-interval-promoted", "fast"], /expected a duration/],
    [[...nodes2, ...rest, "--monitor-interval-promoted", "500ms"], /at least 1s/],
    [
      [...nodes2, ...rest, "--param", "no_such=1"],
      /mysql_prm has no such parameter; known parameters: binary/,
    ],
    [
      [...nodes2, ...rest, "--param", "replication_passwd=secret"],
      /passwords do not belong in the CIB.*--credentials-file/,
    ],
    [[...nodes2, ...rest, "--param", "test_passwd=secret"], /passwords do not belong in the CIB/],
    [[...nodes2, ...rest, "--param", "credentials_file=/x"], /use --credentials-file instead/],
    [[...nodes2, ...rest, "--param", `${MODE_PARAMETER}=gtid`], /use --mode instead/],
    [
      [...nodes2, ...rest, "--param", "max_slave_lag=1", "--param", "max_slave_lag=2"],
      /given twice/,
    ],
    [[...nodes2, ...rest, "--param", "max_slave_lag"], /expected KEY=VALUE/],
    [[...nodes2, ...rest, "--param", 'test_table="x"'], /must not contain quotes/],
    [[...nodes2, ...rest, "--param", "post_promote_script=$(reboot)"], /must not contain/],
    [[...nodes2, ...rest, "--no-such-flag"], /Unknown option '--no-such-flag'/],
    [[...nodes2, ...rest, "stray"], /positional|Unexpected argument/i],
    [without("--writer-vip"), /--writer-vip ADDRESS\[\/PREFIX\] is required/],
    [without("--credentials-file"), /--credentials-file PATH is required/],
    [
      [...nodes2, "--writer-vip", "10.0.0.100", "--credentials-file", "prm.cnf"],
      /must be an absolute path/,
    ],
    [[...nodes2, ...rest, "--mode", "binlog"], /--mode must be gtid or position/],
    [[...nodes2, ...rest, "--format", "xml"], /--format must be crm, pcs or both/],
    [[...nodes2, ...rest, "--resource", "1bad"], /not a valid resource name/],
    [[...nodes2, ...rest, "--fence-param", "ip=1.2.3.4"], /--fence-param needs --fence-agent/],
    [[...nodes2, ...rest, "--fence-agent", "ipmi"], /not a fence agent name/],
    [
      [...nodes2, ...rest, "--fence-agent", "fence_x", "--fence-param", "db9:ip=1.2.3.4"],
      /db9 is not one of the --node names/,
    ],
    [
      [...nodes2, ...rest, "--fence-agent", "fence_x", "--fence-param", "pcmk_host_list=a"],
      /set per device/,
    ],
    [[...nodes2, ...rest, "--vip-nic", "eth0; rm"], /not an interface name/],
  ];
  for (const [args, pattern] of cases) {
    const r = runMain(args);
    assert.equal(r.code, 2, `exit status for ${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "", `nothing on stdout for ${args.join(" ")}`);
    assert.match(r.stderr, pattern, `message for ${args.join(" ")}`);
    assert.match(r.stderr, /^mysql_prm config: [A-Z-]/, "sentence case");
  }
});

Deno.test("--help explains every flag with an example", () => {
  const r = runMain(["--help"]);
  assert.equal(r.code, 0);
  for (
    const flag of [
      "--node",
      "--writer-vip",
      "--reader-vip",
      "--vip-nic",
      "--credentials-file",
      "--mode",
      "--semi-sync",
      "--monitor-interval-promoted",
      "--monitor-interval-unpromoted",
      "--resource",
      "--param",
      "--fence-agent",
      "--fence-param",
      "--format",
      "--lab",
      "--help",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`^  (-h, )?${flag} `, "m"), flag);
  }
  assert.ok(r.stdout.includes("Example:\n  mysql_prm config --node db1="));
  assert.equal(runMain(["-h"]).code, 0);
});

Deno.test("--format selects the printed form", () => {
  const crm = runMain([...BASE_ARGS, "--format", "crm"]).stdout;
  const pcs = runMain([...BASE_ARGS, "--format", "pcs"]).stdout;
  const both = runMain(BASE_ARGS).stdout;
  assert.doesNotMatch(crm, /pcs -f/);
  assert.ok(pcs.startsWith("#!/bin/sh\n"));
  assert.doesNotMatch(pcs, /^primitive /m);
  assert.ok(both.includes(crm) && both.includes(pcs));
});

// ---------------------------------------------------------------------------------------------
// Offline validation with the real tools.

const INSTALLED_AGENT = "/usr/lib/ocf/resource.d/prm/mysql_prm";

/** Meta-data of a placeholder agent that knows the parameters config_gen.ts may write. */
function placeholderAgent(): string {
  const params = [...AGENT_PARAMETERS, MODE_PARAMETER, SEMI_SYNC_PARAMETER].map((name) =>
    `<parameter name="${name}"><longdesc lang="en">${name}</longdesc>` +
    `<shortdesc lang="en">${name}</shortdesc><content type="string"/></parameter>`
  ).join("\n");
  return `#!/bin/sh
# Placeholder for tests/config_gen_test.ts: meta-data only.
[ "$1" = meta-data ] || exit 3
cat <<'XML'
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="mysql_prm" version="0.0">
<version>1.1</version>
<longdesc lang="en">Placeholder of mysql_prm for configuration tests.</longdesc>
<shortdesc lang="en">Placeholder</shortdesc>
<parameters>
${params}
</parameters>
<actions>
<action name="start" timeout="900s"/>
<action name="stop" timeout="600s"/>
<action name="promote" timeout="300s"/>
<action name="demote" timeout="120s"/>
<action name="notify" timeout="300s"/>
<action name="monitor" timeout="30s" interval="5s" role="Promoted"/>
<action name="monitor" timeout="30s" interval="7s" role="Unpromoted"/>
<action name="meta-data" timeout="5s"/>
<action name="validate-all" timeout="30s"/>
</actions>
</resource-agent>
XML
`;
}

/** A temporary directory with tool runners that see an ocf:prm:mysql_prm agent. */
interface Workspace {
  dir: string;
  usesPlaceholder: boolean;
  run(cmd: string[], env?: Record<string, string>): Promise<{ code: number; out: string }>;
}

/** Names of the parameters in the installed agent's meta-data, or undefined if not installed. */
async function installedAgentParameters(): Promise<string[] | undefined> {
  if (!(await exists(INSTALLED_AGENT))) return undefined;
  const r = await new Deno.Command("crm_resource", {
    args: ["--show-metadata", "ocf:prm:mysql_prm"],
    stdin: "null",
  }).output();
  if (r.code !== 0) return undefined;
  const xml = parseXml(new TextDecoder().decode(r.stdout));
  return findAll(xml, "parameter").map((p) => p.attrs.name);
}

/**
 * A workspace that uses the installed agent when its meta-data has every parameter in `needs`,
 * and the placeholder otherwise.
 */
async function workspace(needs: string[] = []): Promise<Workspace> {
  const installed = await installedAgentParameters();
  const usesPlaceholder = installed === undefined || needs.some((n) => !installed.includes(n));
  console.log(
    usesPlaceholder
      ? `  (using a meta-data placeholder for ocf:prm:mysql_prm in a mount namespace: ${
        installed === undefined
          ? "the agent is not installed"
          : `the installed agent lacks ${needs.filter((n) => !installed.includes(n)).join(", ")}`
      })`
      : `  (using the installed agent ${INSTALLED_AGENT})`,
  );
  const dir = await Deno.makeTempDir({ prefix: "prm_config_test_" });
  if (usesPlaceholder) {
    try {
      const rd = `${dir}/resource.d`;
      const cp = await new Deno.Command("cp", { args: ["-a", "/usr/lib/ocf/resource.d", rd] })
        .output();
      assert.equal(cp.code, 0, new TextDecoder().decode(cp.stderr));
      await Deno.remove(`${rd}/prm`, { recursive: true }).catch(() => {});
      await Deno.mkdir(`${rd}/prm`);
      await Deno.writeTextFile(`${rd}/prm/mysql_prm`, placeholderAgent(), { mode: 0o755 });
    } catch (error) {
      await Deno.remove(dir, { recursive: true });
      throw error;
    }
  }
  async function run(cmd: string[], env: Record<string, string> = {}) {
    const argv = usesPlaceholder
      ? [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /usr/lib/ocf/resource.d && exec "$@"',
        `${dir}/resource.d`,
        ...cmd,
      ]
      : cmd;
    const result = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: { ...env, NO_COLOR: "1" },
      cwd: dir,
      stdin: "null",
    }).output();
    const out = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
    return { code: result.code, out };
  }
  return { dir, usesPlaceholder, run };
}

/** A CIB with three online, quorate nodes and no resources. */
function skeletonCib(names: string[]): string {
  const nodes = names.map((n, i) => `      <node id="${i + 1}" uname="${n}"/>`).join("\n");
  const states = names.map((n, i) =>
    `    <node_state id="${
      i + 1
    }" uname="${n}" in_ccm="true" crmd="online" join="member" expected="member"/>`
  ).join("\n");
  return `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config/>
    <nodes>
${nodes}
    </nodes>
    <resources/>
    <constraints/>
  </configuration>
  <status>
${states}
  </status>
</cib>
`;
}

/** A minimal XML element tree, enough for CIB and crm_mon output (no CDATA, no entities). */
interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

function parseXml(text: string): XmlElement {
  const root: XmlElement = { name: "#root", attrs: {}, children: [] };
  const stack = [root];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/g;
  for (const m of text.replace(/<\?[^>]*\?>|<!--[\s\S]*?-->/g, "").matchAll(tag)) {
    if (m[1] === "/") {
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of m[3].matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      attrs[a[1]] = a[2].replaceAll("&quot;", '"').replaceAll("&lt;", "<").replaceAll(
        "&gt;",
        ">",
      ).replaceAll("&amp;", "&");
    }
    const el: XmlElement = { name: m[2], attrs, children: [] };
    stack[stack.length - 1].children.push(el);
    if (m[4] !== "/") stack.push(el);
  }
  return root;
}

function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    out.push(...findAll(c, name));
  }
  return out;
}

function nvpairs(el: XmlElement | undefined): string[] {
  return el ? findAll(el, "nvpair").map((n) => `${n.attrs.name}=${n.attrs.value}`).sort() : [];
}

/**
 * The configuration section of a CIB in a form that ignores generated ids and the order of
 * attributes, so that the CIBs built by crmsh and by pcs can be compared.
 */
function cibModel(xml: string): string[] {
  const cib = parseXml(xml);
  const out: string[] = [];
  const configuration = findAll(cib, "configuration")[0];
  const props = findAll(configuration, "cluster_property_set").flatMap((s) => nvpairs(s));
  out.push(`property ${props.join(" ")}`);
  for (const p of findAll(configuration, "primitive")) {
    const kind = [p.attrs.class, p.attrs.provider, p.attrs.type].filter((x) => x).join(":");
    const inst = nvpairs(p.children.find((c) => c.name === "instance_attributes"));
    const meta = nvpairs(p.children.find((c) => c.name === "meta_attributes"));
    const ops = findAll(p, "op").map((o) =>
      `${o.attrs.name}/${o.attrs.interval}/${o.attrs.role ?? ""}/${o.attrs.timeout}`
    ).sort();
    out.push(`primitive ${p.attrs.id} ${kind} params ${inst.join(" ")} meta ${meta.join(" ")}`);
    for (const op of ops) out.push(`op ${p.attrs.id} ${op}`);
  }
  for (const c of findAll(configuration, "clone")) {
    const meta = nvpairs(c.children.find((x) => x.name === "meta_attributes"));
    out.push(
      `clone ${c.attrs.id} ${c.children.find((x) => x.name === "primitive")?.attrs.id} ${
        meta.join(" ")
      }`,
    );
  }
  for (const c of findAll(configuration, "rsc_colocation")) {
    const role = (r: string | undefined) => (r && r !== "Started" ? `:${r}` : "");
    out.push(
      `colocation ${c.attrs.rsc}${role(c.attrs["rsc-role"])} with ${c.attrs["with-rsc"]}${
        role(c.attrs["with-rsc-role"])
      } ${c.attrs.score}`,
    );
  }
  for (const o of findAll(configuration, "rsc_order")) {
    out.push(
      `order ${o.attrs.first}:${o.attrs["first-action"]} then ${o.attrs.then}:${
        o.attrs["then-action"]
      } ${o.attrs.kind}`,
    );
  }
  for (const l of findAll(configuration, "rsc_location")) {
    if (l.attrs.node) {
      out.push(`location ${l.attrs.rsc} ${l.attrs.node} ${l.attrs.score}`);
      continue;
    }
    for (const r of findAll(l, "rule")) {
      const exprs = findAll(r, "expression").map((e) =>
        `${e.attrs.attribute} ${e.attrs.operation}${e.attrs.type ? `/${e.attrs.type}` : ""}${
          e.attrs.value !== undefined ? ` ${e.attrs.value}` : ""
        }`
      );
      const op = exprs.length > 1 ? ` ${r.attrs["boolean-op"]}` : "";
      out.push(
        `location ${l.attrs.id} ${l.attrs.rsc} rule ${r.attrs.score}${op}: ${exprs.join(", ")}`,
      );
    }
  }
  for (const g of findAll(configuration, "group")) {
    out.push(
      `group ${g.attrs.id} ${
        g.children.filter((c) => c.name === "primitive").map((c) => c.attrs.id).join(" ")
      }`,
    );
  }
  for (const t of findAll(configuration, "rsc_ticket")) {
    out.push(
      `ticket ${t.attrs.id} ${t.attrs.ticket} ${t.attrs.rsc}:${t.attrs["rsc-role"]} ${
        t.attrs["loss-policy"]
      }`,
    );
  }
  for (const section of ["rsc_defaults", "op_defaults"]) {
    out.push(`${section} ${findAll(configuration, section).flatMap((s) => nvpairs(s)).join(" ")}`);
  }
  return out.sort();
}

/** Builds a CIB file from the crm form (crmsh on CIB_file) and from the pcs form (its script). */
function buildBoth(ws: Workspace, args: string[]): Promise<{ crmCib: string; pcsCib: string }> {
  const options = parseConfigArgs(args);
  return buildFrom(ws, generateConfig(options), options.nodes.map((n) => n.name));
}

/** Builds a CIB file from each of the given forms, for a cluster of `names`. */
async function buildFrom(
  ws: Workspace,
  { crm, pcs }: { crm: string; pcs: string },
  names: string[],
): Promise<{ crmCib: string; pcsCib: string }> {
  // The pcs script edits an existing CIB file in place: each build starts from a fresh copy.
  await Deno.remove(`${ws.dir}/pcs-work.xml`).catch(() => {});
  await Deno.writeTextFile(`${ws.dir}/prm.crm`, crm);
  await Deno.writeTextFile(`${ws.dir}/prm-pcs.sh`, pcs);
  await Deno.writeTextFile(`${ws.dir}/crm-cib.xml`, skeletonCib(names));
  await Deno.writeTextFile(`${ws.dir}/pcs-cib.xml`, skeletonCib(names));

  const c = await ws.run(["crm", "configure", "load", "update", `${ws.dir}/prm.crm`], {
    CIB_file: `${ws.dir}/crm-cib.xml`,
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  });
  assert.equal(c.code, 0, `crm configure load failed:\n${c.out}`);
  assert.doesNotMatch(c.out, /ERROR/, `crm configure load reported errors:\n${c.out}`);

  // The pcs script runs as on a live cluster: CIB_file makes its cibadmin --query and
  // cibadmin --replace read and write pcs-cib.xml as if it were the cluster's CIB.
  const p = await ws.run(["sh", `${ws.dir}/prm-pcs.sh`, `${ws.dir}/pcs-work.xml`], {
    CIB_file: `${ws.dir}/pcs-cib.xml`,
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  });
  assert.equal(p.code, 0, `pcs script failed:\n${p.out}`);
  assert.doesNotMatch(p.out, /Error|Deprecat/i, `pcs script reported problems:\n${p.out}`);
  assert.match(p.out, /Configuration pushed from/);

  for (const file of ["crm-cib.xml", "pcs-cib.xml"]) {
    const v = await ws.run(["crm_verify", "--xml-file", `${ws.dir}/${file}`, "-V"]);
    assert.equal(v.code, 0, `crm_verify ${file}:\n${v.out}`);
  }
  return {
    crmCib: await Deno.readTextFile(`${ws.dir}/crm-cib.xml`),
    pcsCib: await Deno.readTextFile(`${ws.dir}/pcs-cib.xml`),
  };
}

/** Where crm_simulate put each resource: id (clone instances as ID:Promoted) to node names. */
interface Placement {
  promoted: string[];
  unpromoted: string[];
  at: Record<string, string[]>;
}

/** Where crm_simulate left the resources of a CIB file (read with crm_mon). */
async function readPlacement(ws: Workspace, file: string): Promise<Placement> {
  const mon = await ws.run(["crm_mon", "-1", "--output-as=xml"], { CIB_file: file });
  assert.equal(mon.code, 0, mon.out);
  const placement: Placement = { promoted: [], unpromoted: [], at: {} };
  for (const r of findAll(parseXml(mon.out), "resource")) {
    const nodes = r.children.filter((c) => c.name === "node").map((c) => c.attrs.name);
    if (r.attrs.id === "p_mysql") {
      if (r.attrs.role === "Promoted") placement.promoted.push(...nodes);
      if (r.attrs.role === "Unpromoted") placement.unpromoted.push(...nodes);
    } else if (r.attrs.role === "Started") {
      placement.at[r.attrs.id] = nodes;
    } else {
      placement.at[r.attrs.id] = [];
    }
  }
  placement.promoted.sort();
  placement.unpromoted.sort();
  return placement;
}

async function setAttribute(
  ws: Workspace,
  file: string,
  node: string,
  name: string,
  value: number,
) {
  // Permanent node attributes: the scheduler reads them like the agent's transient ones.
  const r = await ws.run(
    ["crm_attribute", "-N", node, "-n", name, "-v", String(value), "-l", "forever"],
    { CIB_file: file },
  );
  assert.equal(r.code, 0, r.out);
}

/**
 * Sets node attributes in a copy of the CIB and lets crm_simulate run the transitions, standing
 * in for the agent between them: a node it promoted gets the agent's promoted score
 * (PROMOTED_SCORE), as mysql_prm's promote does. With `failNodes`, those nodes then fail (and are
 * fenced in the simulation) and the cluster recovers. Returns where the resources are in the end.
 */
async function simulate(
  ws: Workspace,
  cibFile: string,
  attrs: Record<string, Record<string, number>>,
  failNodes: string[] = [],
): Promise<{ placement: Placement; log: string }> {
  let step = 0;
  let current = `${ws.dir}/sim0.xml`;
  await Deno.copyFile(cibFile, current);
  let log = "";
  for (const [node, values] of Object.entries(attrs)) {
    for (const [name, value] of Object.entries(values)) {
      await setAttribute(ws, current, node, name, value);
    }
  }
  const transition = async (extra: string[] = []) => {
    const next = `${ws.dir}/sim${++step}.xml`;
    const r = await ws.run(["crm_simulate", "-x", current, "-S", ...extra, "-O", next]);
    assert.equal(r.code, 0, r.out);
    log += `--- transition ${step} ${extra.join(" ")}\n${r.out}`;
    current = next;
  };
  const agentPromotes = async () => {
    for (const node of (await readPlacement(ws, current)).promoted) {
      await setAttribute(ws, current, node, "master-p_mysql", PROMOTED_SCORE);
    }
    await transition();
  };
  await transition();
  await agentPromotes();
  if (failNodes.length > 0) {
    await transition(failNodes.flatMap((n) => ["--node-fail", n]));
    await agentPromotes();
  }
  return { placement: await readPlacement(ws, current), log };
}

/** Runs crm_simulate on a built CIB and checks the placement with `expect`. */
async function checkPlacement(
  ws: Workspace,
  label: string,
  file: string,
  attrs: Record<string, Record<string, number>>,
  expect: (p: Placement) => void,
  fail: string[] = [],
): Promise<void> {
  const { placement, log } = await simulate(ws, file, attrs, fail);
  try {
    expect(placement);
  } catch (error) {
    throw new Error(
      `${label}: ${(error as Error).message}\nplacement: ${JSON.stringify(placement)}\n${log}`,
    );
  }
}

function score(n: number): Record<string, number> {
  return { "master-p_mysql": n };
}

Deno.test({
  name: "real tools: both forms load (crmsh, pcs -f + cibadmin), pass crm_verify, build the same " +
    "CIB, and crm_simulate places the VIPs where the rules say",
  async fn() {
    const ws = await workspace();
    try {
      const args = [
        ...BASE_ARGS,
        "--param",
        "additional_parameters=--skip-name-resolve --port=3307",
        "--param",
        "max_slave_lag=60",
      ];
      const { crmCib, pcsCib } = await buildBoth(ws, args);
      const crmModel = cibModel(crmCib);
      assert.deepEqual(cibModel(pcsCib), crmModel);
      // Spot checks on what the real tools made of the text.
      assert.ok(crmModel.includes("colocation vip_writer with p_mysql-clone:Promoted INFINITY"));
      assert.ok(crmModel.includes("order p_mysql-clone:promote then vip_writer:start Mandatory"));
      assert.ok(crmModel.includes("colocation vip_reader_2 with vip_reader_1 -200"));
      assert.ok(
        crmModel.includes(
          "location loc_vip_reader_1_away_from_master vip_reader_1 rule -500: master-p_mysql gte/number 1000",
        ),
      );
      assert.ok(
        crmModel.includes(
          "location loc_vip_reader_1_readable vip_reader_1 rule -INFINITY or: readable not_defined, readable lt/number 1",
        ),
      );
      assert.ok(
        crmModel.includes(
          "location loc_vip_reader_1_prefer_readable vip_reader_1 rule 10000: readable gte/number 1",
        ),
      );
      assert.ok(crmModel.includes("op p_mysql monitor/5s/Promoted/30s"));
      assert.ok(crmModel.includes("op p_mysql monitor/7s/Unpromoted/30s"));
      assert.ok(
        crmModel.includes(
          "clone p_mysql-clone p_mysql clone-node-max=1 notify=true promotable=true promoted-max=1 promoted-node-max=1",
        ),
      );
      assert.ok(
        crmModel.some((l) => l.includes("additional_parameters=--skip-name-resolve --port=3307")),
      );
      assert.ok(crmModel.some((l) => /^property .*stonith-enabled=true/.test(l)));

      for (const [form, cib] of [["crm", crmCib], ["pcs", pcsCib]]) {
        const file = `${ws.dir}/${form}-built.xml`;
        await Deno.writeTextFile(file, cib);
        const check = (
          what: string,
          attrs: Record<string, Record<string, number>>,
          expect: (p: Placement) => void,
          fail: string[] = [],
        ) => checkPlacement(ws, `${form} form, ${what}`, file, attrs, expect, fail);

        // Every node readable: writer with the highest score, readers on the two others.
        await check("all readable", {
          db1: { ...score(150), readable: 1 },
          db2: { ...score(100), readable: 1 },
          db3: { ...score(100), readable: 1 },
        }, (p) => {
          assert.deepEqual(p.promoted, ["db1"]);
          assert.deepEqual(p.unpromoted, ["db2", "db3"]);
          assert.deepEqual(p.at.vip_writer, ["db1"]);
          assert.deepEqual([...p.at.vip_reader_1, ...p.at.vip_reader_2].sort(), ["db2", "db3"]);
          for (const n of ["db1", "db2", "db3"]) assert.notDeepEqual(p.at[`st_${n}`], [n]);
        });

        // db3 not readable (0) and db2 readable: both readers on db2, none with the writer.
        await check("db3 readable=0", {
          db1: { ...score(150), readable: 1 },
          db2: { ...score(100), readable: 1 },
          db3: { ...score(100), readable: 0 },
        }, (p) => {
          assert.deepEqual(p.at.vip_writer, ["db1"]);
          assert.deepEqual(p.at.vip_reader_1, ["db2"]);
          assert.deepEqual(p.at.vip_reader_2, ["db2"]);
        });

        // A missing attribute counts as not readable; the writer follows the promoted node.
        await check("db1 readable undefined, db2 highest score", {
          db1: { ...score(10) },
          db2: { ...score(150), readable: 1 },
          db3: { ...score(100), readable: 1 },
        }, (p) => {
          assert.deepEqual(p.promoted, ["db2"]);
          assert.deepEqual(p.at.vip_writer, ["db2"]);
          assert.deepEqual(p.at.vip_reader_1, ["db3"]);
          assert.deepEqual(p.at.vip_reader_2, ["db3"]);
        });

        // The reader VIPs never sway the election: the best-scored node is promoted even though
        // no reader VIP may run there (with a colocation to the writer VIP, db2 won this).
        await check("election ignores the readers", {
          db1: { ...score(150), readable: 0 },
          db2: { ...score(149), readable: 1 },
          db3: { ...score(149), readable: 1 },
        }, (p) => {
          assert.deepEqual(p.promoted, ["db1"]);
          assert.deepEqual(p.at.vip_writer, ["db1"]);
          assert.deepEqual([...p.at.vip_reader_1, ...p.at.vip_reader_2].sort(), ["db2", "db3"]);
        });

        // Only the master readable: the finite scores let the readers share its node.
        await check("only the master readable", {
          db1: { ...score(150), readable: 1 },
          db2: { ...score(100), readable: 0 },
          db3: { ...score(100) },
        }, (p) => {
          assert.deepEqual(p.at.vip_writer, ["db1"]);
          assert.deepEqual(p.at.vip_reader_1, ["db1"]);
          assert.deepEqual(p.at.vip_reader_2, ["db1"]);
        });

        // Nothing readable: the readers stop rather than serve from a replica that is behind.
        await check("nothing readable", {
          db1: { ...score(150), readable: 0 },
          db2: { ...score(100), readable: 0 },
          db3: { ...score(100), readable: 0 },
        }, (p) => {
          assert.deepEqual(p.promoted, ["db1"]);
          assert.deepEqual(p.at.vip_writer, ["db1"]);
          assert.deepEqual(p.at.vip_reader_1, []);
          assert.deepEqual(p.at.vip_reader_2, []);
        });

        // The master's node fails (fenced in the simulation): db2 is promoted, the writer follows,
        // the reader that was on db2 leaves the new master for db3, nothing stays on db1.
        await check("master node fails", {
          db1: { ...score(150), readable: 1 },
          db2: { ...score(120), readable: 1 },
          db3: { ...score(100), readable: 1 },
        }, (p) => {
          assert.deepEqual(p.promoted, ["db2"]);
          assert.deepEqual(p.unpromoted, ["db3"]);
          assert.deepEqual(p.at.vip_writer, ["db2"]);
          assert.deepEqual(p.at.vip_reader_1, ["db3"]);
          assert.deepEqual(p.at.vip_reader_2, ["db3"]);
        }, ["db1"]);
      }
    } finally {
      await Deno.remove(ws.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "real tools: GTID mode and semi-sync parameters load in both forms",
  async fn() {
    const ws = await workspace([MODE_PARAMETER, SEMI_SYNC_PARAMETER]);
    try {
      const { crmCib, pcsCib } = await buildBoth(ws, [
        ...BASE_ARGS,
        "--mode",
        "gtid",
        "--semi-sync",
        "--reader-vip",
        "10.213.7.103/24",
      ]);
      const model = cibModel(crmCib);
      assert.deepEqual(cibModel(pcsCib), model);
      const mysql = model.find((l) => l.startsWith("primitive p_mysql "))!;
      assert.match(mysql, new RegExp(` ${MODE_PARAMETER}=gtid `));
      assert.match(mysql, new RegExp(` ${SEMI_SYNC_PARAMETER}=true `));
      // Three readers: three reader-reader pairs.
      assert.equal(
        model.filter((l) => /^colocation vip_reader_\d with vip_reader_\d -200$/.test(l)).length,
        3,
      );
    } finally {
      await Deno.remove(ws.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "real tools: the --lab form loads with fencing off and still places the writer",
  async fn() {
    const ws = await workspace();
    try {
      const { crmCib, pcsCib } = await buildBoth(ws, [...BASE_ARGS, "--lab"]);
      const model = cibModel(crmCib);
      assert.deepEqual(cibModel(pcsCib), model);
      assert.ok(model.some((l) => /^property .*stonith-enabled=false/.test(l)));
      assert.ok(!model.some((l) => l.includes("stonith:")));
      await Deno.writeTextFile(`${ws.dir}/lab-built.xml`, pcsCib);
      await checkPlacement(ws, "lab form", `${ws.dir}/lab-built.xml`, {
        db1: { ...score(10), readable: 1 },
        db2: { ...score(20), readable: 1 },
        db3: { ...score(100), readable: 1 },
      }, (p) => {
        assert.deepEqual(p.promoted, ["db3"]);
        assert.deepEqual(p.at.vip_writer, ["db3"]);
        assert.deepEqual([...p.at.vip_reader_1, ...p.at.vip_reader_2].sort(), ["db1", "db2"]);
      });
    } finally {
      await Deno.remove(ws.dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// The two-site form (booth).

const TWO_SITE_ARGS = [
  "--site",
  "east=10.213.7.90/24",
  "--site",
  "west=10.213.8.90/24",
  "--arbitrator",
  "10.213.9.15",
  "--node",
  "db1=10.213.7.11@east",
  "--node",
  "db2=10.213.7.12@east",
  "--node",
  "db3=10.213.8.13@west",
  "--node",
  "db4=10.213.8.14@west",
  "--writer-vip",
  "10.213.7.100/24@east",
  "--writer-vip",
  "10.213.8.100/24@west",
  "--reader-vip",
  "10.213.8.101/24@west",
  "--credentials-file",
  "/etc/mysql/prm.cnf",
  "--fence-agent",
  "fence_ipmilan",
  "--fence-param",
  "db3:ip=10.0.9.13",
];

Deno.test("two-site form: booth.conf, each site's own nodes and VIPs, the ticket on the promoted role", () => {
  const options = parseTwoSiteArgs(TWO_SITE_ARGS);
  const out = generateTwoSiteConfig(options);
  const booth = parseBoothConfig(out.booth);
  assert.ok("config" in booth);
  assert.deepEqual(booth.config.sites, ["10.213.7.90", "10.213.8.90"]);
  assert.deepEqual(booth.config.arbitrators, ["10.213.9.15"]);
  assert.deepEqual(booth.config.tickets.map((t) => [t.name, t.expire, t.acquireAfter]), [
    ["ticket-mysql", 60, 10],
  ]);
  assert.equal(booth.config.authfile, "/etc/booth/authkey");
  assert.deepEqual(out.sites.map((s) => s.site), ["east", "west"]);
  const [east, west] = out.sites;
  // The same constraints as one site of the same nodes, and the ticket on the promoted role.
  const oneSite = generateConfig(parseConfigArgs([
    ...["--node", "db1=10.213.7.11", "--node", "db2=10.213.7.12"],
    ...["--writer-vip", "10.213.7.100/24", "--credentials-file", "/etc/mysql/prm.cnf"],
  ]));
  assert.deepEqual(crmConstraints(east.crm), crmConstraints(oneSite.crm));
  assert.match(
    east.crm,
    /^rsc_ticket tkt_p_mysql_promoted ticket-mysql: p_mysql-clone:Promoted loss-policy=demote$/m,
  );
  assert.match(east.crm, /^primitive st_db1 stonith:fence_ipmilan/m);
  assert.doesNotMatch(east.crm, /st_db3|db3=|10\.213\.8\.100/);
  assert.match(east.crm, /^# {5}10\.213\.8\.13 {2}db3$/m, "the other site's names for /etc/hosts");
  assert.match(west.crm, /params pcmk_host_list=db3 ip=10\.0\.9\.13/);
  assert.doesNotMatch(west.crm, /pcmk_host_list=db4 ip=/, "a node's fence parameter stays its own");
  for (const s of out.sites) {
    assert.match(
      s.crm,
      /params credentials_file=\/etc\/mysql\/prm\.cnf booth_ticket=ticket-mysql /,
    );
    assert.match(s.crm, /^group g_booth booth_ip booth_site$/m);
    assert.match(s.crm, /^primitive booth_site ocf:pacemaker:booth-site/m);
    assert.match(
      s.pcs,
      /constraint ticket add ticket-mysql Promoted p_mysql-clone loss-policy=demote id=tkt_p_mysql_promoted/,
    );
    assert.match(s.pcs, /--group g_booth/);
  }
  assert.match(east.crm, /params ip=10\.213\.7\.90 cidr_netmask=24/);
  assert.match(west.crm, /params ip=10\.213\.8\.90 cidr_netmask=24/);
});

Deno.test("two-site form: bad flags are refused with exit status 2", () => {
  const without = (flag: string, value?: string) => {
    const out: string[] = [];
    for (let i = 0; i < TWO_SITE_ARGS.length; i += 2) {
      if (TWO_SITE_ARGS[i] === flag && (value === undefined || TWO_SITE_ARGS[i + 1] === value)) {
        continue;
      }
      out.push(TWO_SITE_ARGS[i], TWO_SITE_ARGS[i + 1]);
    }
    return out;
  };
  const cases: [string[], RegExp][] = [
    [without("--site", "west=10.213.8.90/24"), /exactly two --site/],
    [without("--arbitrator"), /--arbitrator ADDRESS is required/],
    [
      [...without("--node", "db4=10.213.8.14@west"), "--node", "db4=10.213.8.14"],
      /ends with @SITE/,
    ],
    [
      [...without("--node", "db4=10.213.8.14@west"), "--node", "db4=10.213.8.14@north"],
      /ends with @SITE/,
    ],
    [without("--node", "db4=10.213.8.14@west"), /site west: At least two --node/],
    [without("--writer-vip", "10.213.8.100/24@west"), /site west: --writer-vip/],
    [
      [...without("--node", "db4=10.213.8.14@west"), "--node", "db1=10.213.8.14@west"],
      /must differ across both sites/,
    ],
    [[...TWO_SITE_ARGS, "--ticket-expire", "4"], /must be shorter than the renewal/],
    [[...TWO_SITE_ARGS, "--ticket", "a b"], /not a ticket name/],
    [
      [...TWO_SITE_ARGS, "--param", "booth_ticket=x"],
      /--param booth_ticket: use --site and --ticket/,
    ],
    [[...without("--arbitrator"), "--arbitrator", "10.213.7.11"], /must differ across both sites/],
    [[...TWO_SITE_ARGS, "--only", "north"], /--only north/],
  ];
  for (const [args, message] of cases) {
    const r = runMain(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}`);
    assert.match(r.stderr, message);
  }
  const booth = runMain([...TWO_SITE_ARGS, "--only", "booth"]);
  assert.equal(booth.code, 0);
  assert.ok(booth.stdout.startsWith("# booth.conf"));
  const west = runMain([...TWO_SITE_ARGS, "--only", "west", "--format", "pcs"]);
  assert.ok(west.stdout.startsWith("#!/bin/sh\n"));
  assert.doesNotMatch(west.stdout, /st_db1/);
});

Deno.test({
  name: "real tools: each site's two forms load, build the same CIB, and crm_simulate promotes " +
    "only where the ticket is granted and demotes when it is revoked",
  async fn() {
    const ws = await workspace([BOOTH_TICKET_PARAMETER]);
    try {
      const out = generateTwoSiteConfig(parseTwoSiteArgs(TWO_SITE_ARGS));
      for (const [i, s] of out.sites.entries()) {
        const names = i === 0 ? ["db1", "db2"] : ["db3", "db4"];
        const { crmCib, pcsCib } = await buildFrom(ws, s, names);
        const model = cibModel(crmCib);
        assert.deepEqual(cibModel(pcsCib), model, `site ${s.site}: crm and pcs build the same CIB`);
        assert.ok(
          model.includes("ticket tkt_p_mysql_promoted ticket-mysql p_mysql-clone:Promoted demote"),
        );
        assert.ok(model.includes("group g_booth booth_ip booth_site"));
        // The scheduler's view: no ticket, no master; granted, the best node; revoked, demoted.
        const file = `${ws.dir}/${s.site}-built.xml`;
        await Deno.writeTextFile(file, crmCib);
        for (const n of names) {
          await setAttribute(ws, file, n, "master-p_mysql", n === names[0] ? 150 : 100);
        }
        const step = async (from: string, to: string, extra: string[]) => {
          const r = await ws.run(["crm_simulate", "-x", from, "-S", ...extra, "-O", to]);
          assert.equal(r.code, 0, r.out);
          return await readPlacement(ws, to);
        };
        const none = await step(file, `${ws.dir}/t1.xml`, []);
        assert.deepEqual(none.promoted, [], `site ${s.site}: promoted without the ticket`);
        assert.deepEqual(none.unpromoted, names);
        assert.equal(none.at.booth_site?.length, 1, "boothd runs without the ticket");
        assert.deepEqual(none.at.booth_ip, none.at.booth_site, "boothd runs with its address");
        const granted = await step(`${ws.dir}/t1.xml`, `${ws.dir}/t2.xml`, [
          "--ticket-grant",
          "ticket-mysql",
        ]);
        assert.deepEqual(granted.promoted, [names[0]]);
        await setAttribute(ws, `${ws.dir}/t2.xml`, names[0], "master-p_mysql", PROMOTED_SCORE);
        const revoked = await step(`${ws.dir}/t2.xml`, `${ws.dir}/t3.xml`, [
          "--ticket-revoke",
          "ticket-mysql",
        ]);
        assert.deepEqual(revoked.promoted, [], "revoked: demoted");
        assert.deepEqual(revoked.unpromoted, names, "revoked: still running, read-only replicas");
        const standby = await step(`${ws.dir}/t2.xml`, `${ws.dir}/t4.xml`, [
          "--ticket-standby",
          "ticket-mysql",
        ]);
        assert.deepEqual(standby.promoted, [], "ticket in standby: demoted");
      }
    } finally {
      await Deno.remove(ws.dir, { recursive: true });
    }
  },
});
