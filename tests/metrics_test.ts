/**
 * `mysql_prm status --format openmetrics|prometheus`: the metrics text, checked with real parsers
 * of both formats (Debian's `promtool check metrics` from the prometheus package, and the
 * Prometheus Python client's OpenMetrics and text parsers from python3-prometheus-client), and
 * the figures read back from what the parsers understood.
 */
import assert from "node:assert/strict";
import { renderMetrics } from "../metrics.ts";
import { buildReport, type NodeProbe } from "../status.ts";
import { parseClusterView } from "../cluster_view.ts";
import { CIB, CRM_MON, replica } from "./status_fixtures.ts";

const PYTHON = "/usr/bin/python3";

function report() {
  // prm3 lags by heartbeat and is not promotable; prm2 was promoted 0.4 s after its pre-promote.
  const mon = CRM_MON.replace(
    '<attribute name="readable" value="0"/>',
    '<attribute name="readable" value="0"/><attribute name="prm-p_mysql-not-promotable" value="lagging"/>',
  );
  const v = parseClusterView(mon, CIB);
  const probes = new Map<string, NodeProbe>([
    ["prm1", { unreachable: "node offline" }],
    ["prm2", { readOnly: false, binlog: { file: "mysql-bin.000002", pos: 9000 }, gtid: "0-2-7" }],
    [
      "prm3",
      {
        readOnly: true,
        binlog: { file: "mysql-bin.000001", pos: 400 },
        gtid: "0-2-5",
        replica: replica({ secondsBehind: 3 }),
        heartbeatLag: 12.345,
      },
    ],
  ]);
  return buildReport(v, probes, {
    promotions: new Map([["prm2", { atMs: 1_764_850_000_250, durationMs: 412 }]]),
    local: { node: "prm2", salvageFiles: 2 },
  });
}

async function run(argv: string[], stdin: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
    clearEnv: true,
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** The samples a Python parser understood: "name{sorted labels}" → value. */
async function parsedBy(parser: "openmetrics" | "text", text: string) {
  const mod = parser === "openmetrics"
    ? "prometheus_client.openmetrics.parser"
    : "prometheus_client.parser";
  const script = `
import json, sys
from ${mod} import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f'{k}={v}' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = [fam.type, fam.unit if hasattr(fam, "unit") else "", s.value]
print(json.dumps(out))
`;
  const r = await run([PYTHON, "-c", script], text);
  return { code: r.code, out: r.out, samples: r.code === 0 ? JSON.parse(r.out) : {} };
}

Deno.test("prometheus format: promtool check metrics accepts it, lint included", async () => {
  const text = renderMetrics(report(), { format: "prometheus" });
  const r = await run(["promtool", "check", "metrics"], text);
  assert.equal(r.code, 0, `${r.out}\n${text}`);
  assert.equal(r.out.trim(), "", "no lint complaint");
  // The control: promtool is a real parser (a sample with a broken label set is refused).
  const bad = await run(["promtool", "check", "metrics"], `${text}mysql_prm_x{node="a} 1\n`);
  assert.notEqual(bad.code, 0, bad.out);
});

Deno.test("openmetrics format: the OpenMetrics parser reads every figure back", async () => {
  const text = renderMetrics(report(), { format: "openmetrics" });
  assert.ok(text.endsWith("# EOF\n"));
  const p = await parsedBy("openmetrics", text);
  assert.equal(p.code, 0, `${p.out}\n${text}`);
  const s = p.samples as Record<string, [string, string, number]>;
  const at = (k: string) => s[k]?.[2];
  assert.equal(at("mysql_prm_role{node=prm2,resource=p_mysql,role=promoted}"), 1);
  assert.equal(at("mysql_prm_role{node=prm2,resource=p_mysql,role=unpromoted}"), 0);
  assert.equal(at("mysql_prm_role{node=prm3,resource=p_mysql,role=unpromoted}"), 1);
  assert.equal(at("mysql_prm_read_only{node=prm3,resource=p_mysql}"), 1);
  assert.equal(
    at("mysql_prm_read_only{node=prm1,resource=p_mysql}"),
    undefined,
    "unknown: left out",
  );
  assert.equal(at("mysql_prm_mysql_up{node=prm1,resource=p_mysql}"), 0);
  assert.equal(
    at("mysql_prm_replication_lag_seconds{node=prm3,resource=p_mysql,source=heartbeat}"),
    12.345,
  );
  assert.equal(
    at(
      "mysql_prm_replication_lag_seconds{node=prm3,resource=p_mysql,source=seconds_behind_master}",
    ),
    3,
  );
  assert.deepEqual(
    s["mysql_prm_replication_lag_seconds{node=prm3,resource=p_mysql,source=heartbeat}"].slice(0, 2),
    ["gauge", "seconds"],
  );
  assert.equal(at("mysql_prm_replication_io_running{node=prm3,resource=p_mysql}"), 1);
  assert.equal(at("mysql_prm_replication_sql_running{node=prm3,resource=p_mysql}"), 1);
  assert.equal(at("mysql_prm_promotion_score{node=prm2,resource=p_mysql}"), 1000);
  assert.equal(at("mysql_prm_promotion_score{node=prm3,resource=p_mysql}"), 100);
  assert.equal(at("mysql_prm_readable{node=prm3,resource=p_mysql}"), 0);
  assert.equal(at("mysql_prm_not_promotable{node=prm3,reason=lagging,resource=p_mysql}"), 1);
  assert.equal(
    at("mysql_prm_last_promotion_timestamp_seconds{node=prm2,resource=p_mysql}"),
    1_764_850_000.25,
  );
  assert.equal(at("mysql_prm_last_promotion_duration_seconds{node=prm2,resource=p_mysql}"), 0.412);
  assert.equal(at("mysql_prm_salvage_files{node=prm2,resource=p_mysql}"), 2);
  assert.equal(at("mysql_prm_failed_operations{node=prm3,resource=p_mysql}"), 1);
  assert.equal(at("mysql_prm_cluster_quorum{}"), 1);
  assert.equal(at("mysql_prm_cluster_fencing_enabled{}"), 1);
  // The control: the same text without its "# EOF" is not OpenMetrics.
  const bad = await parsedBy("openmetrics", text.replace("# EOF\n", ""));
  assert.notEqual(bad.code, 0);
});

Deno.test("prometheus format: the text parser reads the same samples as the OpenMetrics one", async () => {
  const prom = await parsedBy("text", renderMetrics(report(), { format: "prometheus" }));
  const om = await parsedBy("openmetrics", renderMetrics(report(), { format: "openmetrics" }));
  assert.equal(prom.code, 0, prom.out);
  const values = (s: Record<string, [string, string, number]>) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v[2]]));
  assert.deepEqual(values(prom.samples), values(om.samples));
});

Deno.test("label values are escaped: a hostile node name stays one label", async () => {
  const r = report();
  r.rows[0].node = 'a"b\\c\nd';
  const p = await parsedBy("openmetrics", renderMetrics(r, { format: "openmetrics" }));
  assert.equal(p.code, 0, p.out);
  assert.ok(
    Object.keys(p.samples).includes('mysql_prm_node_online{node=a"b\\c\nd,resource=p_mysql}'),
  );
});
