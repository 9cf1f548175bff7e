/**
 * The lab's own tests: pure config builders, then ONE real bring-up that exercises every fault
 * primitive with its observed effect, fencing (asked for and triggered by the cluster), and a
 * teardown that must leave nothing behind.
 */

import assert from "node:assert/strict";
import { agentXml } from "./agent.ts";
import { corosyncConf, myCnf, seedCib } from "./configs.ts";
import {
  boot,
  canPing,
  cleanupLocked,
  crmMon,
  down,
  dump,
  exhaustConnections,
  existsSync,
  FENCE_AGENT_INSTALLED,
  fenceNode,
  fillDisk,
  freezeMysqld,
  heal,
  holderPid,
  isolate,
  killMysqld,
  labIsUp,
  mysqldPids,
  nodeAddress,
  nodeDir,
  onlineNodes,
  powerCut,
  recordedPids,
  run,
  scanHolders,
  sql,
  startMysqld,
  STATE_DIR,
  thawMysqld,
  unfillDisk,
  up,
  waitFor,
  withLabLock,
} from "./lab.ts";
import { pidAlive } from "./nodes.ts";
import { findAll, parseXml } from "./xml.ts";

/** How long to wait for a lab of someone else to go down (PRM_LAB_WAIT_MS, default 0). */
const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");

Deno.test("lab configs: corosync quorum by node count, multi-line node blocks", () => {
  const two = corosyncConf(["prm1", "prm2"]);
  assert.match(two, /two_node: 1/);
  assert.match(two, /node \{\n\s+ring0_addr: 10\.213\.7\.11\n/);
  const three = corosyncConf(["prm1", "prm2", "prm3"]);
  assert.doesNotMatch(three, /two_node/);
  assert.equal(three.match(/nodeid:/g)?.length, 3);
  assert.match(myCnf("prm2"), /server-id = 2\n/);
  assert.match(myCnf("prm2"), /bind-address = 10\.213\.7\.12,10\.213\.7\.100,/);
  assert.match(myCnf("prm2"), /relay-log-purge = 0\n/);
  const cib = parseXml(seedCib(["prm1", "prm2", "prm3"]));
  const text = JSON.stringify(cib);
  assert.match(text, /"stonith-enabled","value":"true"/);
  assert.match(text, /"pcmk_host_list","value":"prm1 prm2 prm3"/);
});

Deno.test("lab agent XML: promotable clone, two monitors, writer VIP after promote, readers", () => {
  const x = agentXml({
    agent: "heartbeat",
    params: { binary: "/usr/sbin/mariadbd", replication_passwd: `a"b<c` },
    clones: 3,
    readerVips: 2,
  });
  const res = parseXml(`<r>${x.resources}</r>`);
  const clone = res.children[0].children[0];
  assert.equal(clone.name, "clone");
  const meta = Object.fromEntries(
    clone.children[0].children.map((n) => [n.attrs.name, n.attrs.value]),
  );
  assert.equal(meta.promotable, "true");
  assert.equal(meta.notify, "true");
  assert.equal(meta["clone-max"], "3");
  const prim = clone.children[1];
  assert.equal(prim.attrs.type, "mysql");
  const pw = prim.children[0].children.find((n) => n.attrs.name === "replication_passwd");
  assert.equal(pw?.attrs.value, `a"b<c`);
  const monitors = prim.children[1].children.filter((o) => o.attrs.name === "monitor");
  assert.deepEqual(monitors.map((m) => m.attrs.role).sort(), ["Promoted", "Unpromoted"]);
  assert.notEqual(monitors[0].attrs.interval, monitors[1].attrs.interval);
  assert.match(x.constraints, /with-rsc-role="Promoted"/);
  assert.match(x.constraints, /first-action="promote" then="vip_writer"/);
  assert.match(x.constraints, /attribute="readable" operation="lt" value="1"/);
  assert.match(x.resources, /10\.213\.7\.102/);
  assert.throws(() =>
    agentXml({ params: {}, clones: 3, promotedMonitorMs: 5, unpromotedMonitorMs: 5 })
  );
});

Deno.test("fence agent: metadata is valid XML naming port/plug; monitor fails without the loop", async () => {
  const agent = new URL("./fence_prm_lab", import.meta.url).pathname;
  const meta = await run(["bash", agent], { stdin: "action=metadata\n" });
  assert.equal(meta.code, 0);
  const lint = await run(["xmllint", "--noout", "-"], { stdin: meta.stdout });
  assert.equal(lint.code, 0, lint.stderr);
  const params = findAll(parseXml(meta.stdout), "parameter").map((p) => p.attrs.name);
  assert.ok(params.includes("port") && params.includes("plug"));
  const dir = await Deno.makeTempDir();
  try {
    const mon = await run(["bash", agent], { stdin: `action=monitor\nrequest_dir=${dir}\n` });
    assert.equal(mon.code, 1);
    const bad = await run(["bash", agent], { stdin: "action=explode\n" });
    assert.equal(bad.code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function pidNamespaceEmpty(nsLink: string): boolean {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${e.name}/ns/pid`) === nsLink && pidAlive(Number(e.name))) {
        return false;
      }
    } catch {
      // Gone.
    }
  }
  return true;
}

async function settledOffline(node: string, viewer: string): Promise<boolean> {
  const mon = await crmMon(viewer);
  const n = mon.nodes.find((x) => x.name === node);
  return !!n && !n.online && !n.unclean;
}

Deno.test({
  name: "lab: bring-up, every fault primitive, fencing, teardown leaves nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    let pids: number[] = [];
    const lab = await up({ nodes: 3, waitFreeMs: LAB_WAIT_MS });
    try {
      await t.step("bring-up: 3 nodes online in under 30 s, fence device started", async () => {
        console.log(`bring-up of 3 nodes: ${lab.bringUpMs} ms`);
        assert.ok(lab.bringUpMs < 30_000, `bring-up took ${lab.bringUpMs} ms`);
        for (const n of lab.nodes) {
          assert.deepEqual(await onlineNodes(n), ["prm1", "prm2", "prm3"]);
          const hn = await run(["nsenter", "-t", String(holderPid(n)), "-u", "hostname"]);
          assert.equal(hn.stdout.trim(), n);
        }
        const mon = await crmMon();
        assert.equal(mon.resources.find((r) => r.id === "fence_lab")?.role, "Started");
        assert.ok(existsSync(FENCE_AGENT_INSTALLED));
        await assert.rejects(up(), /already up/);
      });

      await t.step("MariaDB per node: own server-id, bound to its address", async () => {
        await Promise.all(lab.nodes.map((n) => startMysqld(n)));
        for (const [i, n] of lab.nodes.entries()) {
          const [row] = await sql(n, "SELECT @@server_id AS id, @@bind_address AS bind");
          assert.equal(Number(row.id), i + 1);
          assert.equal(String(row.bind).split(",")[0], nodeAddress(n));
        }
      });

      await t.step("kill-mysqld: the server is gone, connections refused", async () => {
        const killed = await killMysqld("prm1");
        assert.equal(killed.length, 1);
        assert.deepEqual(mysqldPids("prm1"), []);
        await assert.rejects(
          sql("prm1", "SELECT 1", { timeoutMs: 3000 }),
          /ECONNREFUSED|ECONNRESET/,
        );
        await startMysqld("prm1");
        assert.deepEqual(await sql("prm1", "SELECT 1 AS one"), [{ one: 1 }]);
      });

      await t.step("freeze-mysqld: a query times out; thaw: it answers", async () => {
        assert.equal(freezeMysqld("prm1").length, 1);
        try {
          await assert.rejects(sql("prm1", "SELECT 1", { timeoutMs: 1500 }), /ETIMEDOUT|timeout/i);
        } finally {
          thawMysqld("prm1");
        }
        assert.deepEqual(await sql("prm1", "SELECT 1 AS one", { timeoutMs: 5000 }), [{ one: 1 }]);
      });

      await t.step("exhaust-connections: a new unprivileged connection gets 1040", async () => {
        const held = await exhaustConnections("prm2");
        try {
          assert.equal(held.refusedWith.errno, 1040);
          assert.ok(held.count >= 30, `only ${held.count} connections`);
          await assert.rejects(
            sql("prm2", "SELECT 1", { user: "app" }),
            (e: { errno?: number }) => e.errno === 1040,
          );
        } finally {
          await held.release();
        }
        await waitFor(
          async () => (await sql("prm2", "SELECT 1 AS one", { user: "app" })).length === 1,
          { timeoutMs: 10_000, what: "an app connection after release" },
        );
      });

      await t.step("fill-disk: writes fail with table full; unfill: they succeed", async () => {
        await sql(
          "prm3",
          "CREATE TABLE test.fill (id INT AUTO_INCREMENT PRIMARY KEY, pad VARBINARY(8000))",
        );
        const written = await fillDisk("prm3");
        assert.ok(written > 100 * 1024 * 1024, `only ${written} bytes written`);
        try {
          const insert = "INSERT INTO test.fill (pad) VALUES (REPEAT('x', 7000))," +
            "(REPEAT('x', 7000)),(REPEAT('x', 7000)),(REPEAT('x', 7000))";
          let error: { errno?: number } | null = null;
          for (let i = 0; i < 5000 && !error; i++) {
            await sql("prm3", insert, { timeoutMs: 10_000 }).catch((e) => (error = e));
          }
          assert.ok(error, "no insert failed on a full disk");
          assert.ok(
            [1114, 1021, 3].includes((error as { errno?: number }).errno ?? 0),
            `unexpected error ${JSON.stringify(error)}`,
          );
        } finally {
          await unfillDisk("prm3");
        }
        await sql("prm3", "INSERT INTO test.fill (pad) VALUES ('after')");
        const [row] = await sql("prm3", "SELECT COUNT(*) AS n FROM test.fill WHERE pad = 'after'");
        assert.equal(Number(row.n), 1);
      });

      await t.step("power-cut: every process of the node gone, membership lost; boot", async () => {
        const holder = holderPid("prm2")!;
        const ns = Deno.readLinkSync(`/proc/${holder}/ns/pid`);
        await powerCut("prm2");
        assert.equal(holderPid("prm2"), null);
        await waitFor(() => pidNamespaceEmpty(ns), { timeoutMs: 10_000, what: "prm2 empty" });
        await waitFor(async () => !(await onlineNodes("prm1")).includes("prm2"), {
          timeoutMs: 30_000,
          what: "prm1 to see prm2 lost",
        });
        const t0 = performance.now();
        await boot("prm2");
        console.log(
          `power-cut prm2 → back online: boot took ${Math.round(performance.now() - t0)} ms`,
        );
        assert.deepEqual(await onlineNodes("prm1"), ["prm1", "prm2", "prm3"]);
        // Its disk survived the power cut: MariaDB starts on the same datadir.
        await startMysqld("prm2");
        assert.equal(Number((await sql("prm2", "SELECT @@server_id AS id"))[0].id), 2);
      });

      await t.step(
        "fencing: stonith_admin --reboot kills the node; boot brings it back",
        async () => {
          const r = await fenceNode("prm2");
          console.log(`stonith_admin --reboot prm2 (from ${r.via}): ${r.ms} ms`);
          assert.equal(holderPid("prm2"), null);
          assert.ok(existsSync(`${nodeDir("prm2")}/fenced`));
          await waitFor(() => settledOffline("prm2", "prm1"), {
            timeoutMs: 30_000,
            what: "prm2 offline and clean",
          });
          await boot("prm2");
          assert.deepEqual(await onlineNodes("prm3"), ["prm1", "prm2", "prm3"]);
        },
      );

      await t.step("isolate: no ping, lost, fenced by the cluster; heal + boot: back", async () => {
        await isolate("prm3");
        try {
          assert.equal(await canPing("prm3", nodeAddress("prm1")), false);
          assert.equal(await canPing("prm1", nodeAddress("prm3")), false);
          assert.equal(await canPing("prm1", nodeAddress("prm2")), true);
          await waitFor(async () => !(await onlineNodes("prm1")).includes("prm3"), {
            timeoutMs: 30_000,
            what: "prm1 to see prm3 lost",
          });
          // The majority fences the lost node through the host loop (out of band, like a PDU).
          await waitFor(() => holderPid("prm3") === null, {
            timeoutMs: 60_000,
            what: "prm3 fenced by the cluster",
          });
        } finally {
          await heal("prm3");
        }
        await boot("prm3");
        assert.equal(await canPing("prm3", nodeAddress("prm1")), true);
        assert.deepEqual(await onlineNodes("prm1"), ["prm1", "prm2", "prm3"]);
      });
    } catch (e) {
      await dump();
      throw e;
    } finally {
      pids = recordedPids();
      await down();
    }

    // Teardown leaves nothing behind.
    assert.ok(pids.length >= 4, `recorded PIDs: ${pids}`);
    for (const pid of pids) assert.equal(pidAlive(pid), false, `PID ${pid} still alive`);
    assert.deepEqual(scanHolders(), []);
    const netns = (await run(["ip", "netns", "list"])).stdout;
    assert.doesNotMatch(netns, /^prm-n\d/m);
    const links = (await run(["ip", "-o", "link", "show"])).stdout;
    assert.doesNotMatch(links, /prmbr0|prmv\d/);
    assert.equal(Deno.readTextFileSync("/proc/mounts").includes(STATE_DIR), false);
    assert.equal(existsSync(STATE_DIR), false);
    assert.equal(existsSync(FENCE_AGENT_INSTALLED), false);
  },
});

Deno.test({
  name: "lab: down clears leftovers of a crashed run (namespace, bridge, mount)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await waitFor(() => !labIsUp(), {
      timeoutMs: LAB_WAIT_MS + 1,
      what: "no lab up",
      onTimeout: null,
    });
    await withLabLock(async () => {
      if (labIsUp()) throw new Error(`A lab is up (${STATE_DIR}): not touching it`);
      await run(["ip", "netns", "add", "prm-n9"], { check: true });
      await run(["ip", "link", "add", "prmbr0", "type", "bridge"], { check: true });
      Deno.mkdirSync(`${STATE_DIR}/nodes/prm9/mysql-data`, { recursive: true });
      const data = `${STATE_DIR}/nodes/prm9/mysql-data`;
      await run(["mount", "-t", "tmpfs", "-o", "size=1m", "prmlab-data", data], { check: true });
      await cleanupLocked(() => {});
    });
    assert.doesNotMatch((await run(["ip", "netns", "list"])).stdout, /prm-n9/);
    assert.doesNotMatch((await run(["ip", "-o", "link", "show"])).stdout, /prmbr0/);
    assert.equal(Deno.readTextFileSync("/proc/mounts").includes(STATE_DIR), false);
    assert.equal(existsSync(STATE_DIR), false);
  },
});

Deno.test({
  name: "lab: a lab whose owning run was killed is a leftover, cleared by the next up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await waitFor(() => !labIsUp(), {
      timeoutMs: LAB_WAIT_MS + 1,
      what: "no lab up",
      onTimeout: null,
    });
    const lifecycle = new URL("./lifecycle.ts", import.meta.url).href;
    const owner = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { up } from ${JSON.stringify(lifecycle)}; await up({ nodes: 2 }); ` +
        `console.log("up"); await new Promise(() => {});`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let killed = false;
    try {
      const reader = owner.stdout.getReader();
      let out = "";
      const deadline = Date.now() + 120_000;
      while (!out.includes("up") && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      assert.ok(labIsUp(), "the lab is up while its owner runs");
      const left = recordedPids().filter(pidAlive);
      owner.kill("SIGKILL");
      await owner.status;
      killed = true;
      // The owner is gone, its nodes still run: a leftover, not a lab in use.
      assert.ok(left.some(pidAlive), "the killed run's lab processes still run");
      assert.equal(labIsUp(), false);
      const lab = await up({ nodes: 2 });
      try {
        for (const pid of left) assert.equal(pidAlive(pid), false, `leftover PID ${pid}`);
        assert.deepEqual((await onlineNodes(lab.nodes[0])).sort(), lab.nodes);
      } finally {
        await down();
      }
    } finally {
      if (!killed) {
        owner.kill("SIGKILL");
        await owner.status;
      }
      await down().catch(() => {});
    }
  },
});
