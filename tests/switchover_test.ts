/**
 * `mysql_prm switchover`: the checks (pure, on Pacemaker's XML of a 3-node cluster), the duration
 * syntax, and the command line's usage errors and help through the agent's main().
 */
import assert from "node:assert/strict";
import { parseClusterView } from "../cluster_view.ts";
import { buildReport, type NodeProbe } from "../status.ts";
import { parseDuration, planSwitchover, type RefusalCode, SWITCHOVER_HELP } from "../switchover.ts";
import { main } from "../agent.ts";
import { CIB, CRM_MON, replica } from "./status_fixtures.ts";

/** prm1 back online as a healthy replica of prm2, like prm3; both candidates. */
const MON3 = CRM_MON
  .replace(
    'name="prm1" id="1" online="false"',
    'name="prm1" id="1" online="true"',
  )
  .replace(
    '<resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>',
    '<resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Unpromoted" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1"><node name="prm1" id="1" cached="true"/></resource>',
  )
  .replace(
    "<node_attributes>",
    '<node_attributes><node name="prm1"><attribute name="master-p_mysql" value="100"/><attribute name="readable" value="1"/></node>',
  )
  .replace(/<failures>[\s\S]*<\/failures>/, "<failures/>");

function probes(over: Record<string, Partial<NodeProbe>> = {}): Map<string, NodeProbe> {
  const base: Record<string, NodeProbe> = {
    prm1: {
      readOnly: true,
      gtid: "0-2-7",
      flavour: "mariadb",
      replica: replica({ secondsBehind: 1 }),
    },
    prm2: { readOnly: false, gtid: "0-2-7", flavour: "mariadb" },
    prm3: {
      readOnly: true,
      gtid: "0-2-7",
      flavour: "mariadb",
      replica: replica({ secondsBehind: 0 }),
    },
  };
  return new Map(Object.entries(base).map(([k, v]) => [k, { ...v, ...over[k] }]));
}

function plan(
  mon: string,
  cib: string,
  options: { to?: string; maxLagSeconds?: number; probes?: Map<string, NodeProbe> } = {},
) {
  const view = parseClusterView(
    mon,
    cib.replace('name="heartbeat" value="true"', 'name="heartbeat" value="false"'),
  );
  const report = buildReport(view, options.probes ?? probes());
  return planSwitchover(view, report, {
    to: options.to,
    maxLagSeconds: options.maxLagSeconds ?? 5,
  });
}

function codes(r: ReturnType<typeof plan>): RefusalCode[] {
  return r.ok ? [] : r.refusals.map((x) => x.code);
}

Deno.test("switchover checks: the best candidate is chosen, --to is honoured", () => {
  const best = plan(MON3, CIB);
  assert.ok(best.ok, JSON.stringify(best));
  // Same score: the one lagging less.
  assert.deepEqual(best.plan.from, "prm2");
  assert.equal(best.plan.to, "prm3");
  const asked = plan(MON3, CIB, { to: "prm1" });
  assert.ok(asked.ok);
  assert.equal(asked.plan.to, "prm1");
  assert.match(asked.plan.why, /--to/);
});

Deno.test("switchover checks: every cluster-wide refusal has its code", () => {
  const noFence = CRM_MON.replace('stonith-enabled="true"', 'stonith-enabled="false"');
  assert.deepEqual(
    codes(plan(noFence.replace(/<failures>[\s\S]*<\/failures>/, ""), CIB)).slice(0, 1),
    ["no-fencing"],
  );
  assert.ok(codes(plan(CRM_MON, CIB)).includes("failed-actions"), "prm3 has a failed monitor");
  const noQuorum = MON3.replace('with_quorum="true"', 'with_quorum="false"');
  assert.deepEqual(codes(plan(noQuorum, CIB)), ["no-quorum"]);
  const maint = MON3.replace('maintenance-mode="false"', 'maintenance-mode="true"');
  assert.deepEqual(codes(plan(maint, CIB)), ["unmanaged"]);
  const moved = CIB.replace(
    "<constraints>",
    '<constraints><rsc_location id="cli-prefer-ms_mysql" rsc="ms_mysql" role="Promoted" node="prm1" score="INFINITY"/>',
  );
  assert.deepEqual(codes(plan(MON3, moved)), ["move-pending"]);
  const plain = CIB.replace('name="promotable" value="true"', 'name="promotable" value="false"');
  assert.deepEqual(codes(plan(MON3, plain)), ["not-promotable-clone"]);
  const noMaster = MON3.replace('role="Promoted"', 'role="Unpromoted"');
  assert.deepEqual(codes(plan(noMaster, CIB)), ["no-master"]);
});

Deno.test("switchover checks: a target that is not ready is refused with the reason", () => {
  assert.deepEqual(codes(plan(MON3, CIB, { to: "prm2" })), ["target-is-master"]);
  assert.deepEqual(codes(plan(MON3, CIB, { to: "prm9" })), ["unknown-target"]);
  const lagging = probes({ prm1: { replica: replica({ secondsBehind: 30 }) } });
  assert.deepEqual(codes(plan(MON3, CIB, { to: "prm1", probes: lagging })), ["target-lagging"]);
  assert.ok(plan(MON3, CIB, { to: "prm1", probes: lagging, maxLagSeconds: 60 }).ok);
  const broken = probes({ prm1: { replica: replica({ sqlRunning: false }) } });
  assert.deepEqual(codes(plan(MON3, CIB, { to: "prm1", probes: broken })), [
    "target-not-replicating",
  ]);
  const errant = probes({ prm1: { gtid: "0-1-9" } });
  assert.deepEqual(codes(plan(MON3, CIB, { to: "prm1", probes: errant })), ["target-errant"]);
  const withReason = MON3.replace(
    '<attribute name="readable" value="1"/></node>',
    '<attribute name="readable" value="1"/><attribute name="prm-p_mysql-not-promotable" value="stale-master"/></node>',
  );
  assert.deepEqual(codes(plan(withReason, CIB, { to: "prm1" })), ["target-not-candidate"]);
  // No --to and nobody ready: one refusal that lists every node's reason.
  const none = probes({
    prm1: { replica: replica({ secondsBehind: 30 }) },
    prm3: { replica: replica({ ioRunning: "No" }) },
  });
  const r = plan(MON3, CIB, { probes: none });
  assert.deepEqual(codes(r), ["no-candidate"]);
  assert.ok(!r.ok && /prm1 lags 30 s/.test(r.refusals[0].message), JSON.stringify(r));
});

Deno.test("switchover durations: seconds, milliseconds, minutes; nothing else", () => {
  assert.equal(parseDuration("90"), 90_000);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("1500ms"), 1_500);
  assert.equal(parseDuration("2m"), 120_000);
  for (const bad of ["", "0", "-5", "1h", "1.5s", "PT5S", "5 s"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("mysql_prm switchover: --help, and bad input is exit 2 with a clear error", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    assert.equal(await main(["switchover", "--help"]), 0);
    assert.equal(out.join("\n").trim(), SWITCHOVER_HELP.trim());
    for (
      const [args, msg] of [
        [["--bogus"], /see mysql_prm switchover --help/],
        [["--timeout", "soon"], /--timeout takes a duration/],
        [["--max-lag", "1.5"], /--max-lag takes whole seconds/],
        [["--to", "a b"], /--to takes a node name/],
        [["--address", "x"], /--address takes NODE=ADDRESS/],
        [["extra"], /see mysql_prm switchover --help/],
      ] as const
    ) {
      err.length = 0;
      assert.equal(await main(["switchover", ...args]), 2, args.join(" "));
      assert.match(err.join("\n"), msg);
    }
  } finally {
    console.log = log;
    console.error = error;
  }
});
