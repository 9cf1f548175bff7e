/**
 * `mysql_prm config` on the lab cluster: each generated form (crm shell, and the pcs script that
 * edits a CIB copy and pushes it with cibadmin) is loaded into a fresh 3-node lab with the real
 * agent; the cluster converges with the writer VIP on the promoted node and the reader VIPs on
 * readable nodes; then the master node is power-cut, the generated fence devices (the lab's own
 * fence_lab device is removed first) fence it, and the writer VIP follows the new master.
 *
 * Needs the agent installed (`deno task build && deno task install`) and no other lab up.
 */
import assert from "node:assert/strict";
import { generateConfig, parseConfigArgs } from "../../config_gen.ts";
import {
  crmMon,
  down,
  dump,
  exec,
  type Lab,
  labConfigFlags,
  labIsUp,
  type MonStatus,
  NET_PREFIX,
  powerCut,
  sqlAt,
  STATE_DIR,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

const CLONE = "p_mysql-clone";
const READERS = ["vip_reader_1", "vip_reader_2"];

/** `mysql_prm config` flags for the lab, with the generated fence devices driving its fence loop. */
function labArgs(lab: Lab, format: "crm" | "pcs"): string[] {
  return [
    ...lab.nodes.flatMap((n) => ["--node", `${n}=${lab.addresses[n]}`]),
    "--writer-vip",
    `${WRITER_VIP}/24`,
    "--reader-vip",
    `${NET_PREFIX}.101/24`,
    "--reader-vip",
    `${NET_PREFIX}.102/24`,
    ...labConfigFlags(),
    "--format",
    format,
  ];
}

/** Where each resource of interest runs, from one crm_mon view. */
function placement(mon: MonStatus): {
  promoted: string[];
  unpromoted: string[];
  at: Record<string, string[]>;
} {
  const of = (role: string) =>
    mon.resources.filter((r) => r.parent === CLONE && r.role === role).flatMap((r) => r.nodes)
      .sort();
  const at: Record<string, string[]> = {};
  for (const r of mon.resources) {
    if (r.id.startsWith("vip_") || r.id.startsWith("st_")) {
      at[r.id] = r.role === "Started" ? r.nodes : [];
    }
  }
  return { promoted: of("Promoted"), unpromoted: of("Unpromoted"), at };
}

/** The node attribute `readable` of a node, as the cluster sees it (undefined when not set). */
async function readable(viewer: string, node: string): Promise<number | undefined> {
  const r = await exec(viewer, [
    "crm_attribute",
    "--node",
    node,
    "--name",
    "readable",
    "--lifetime",
    "reboot",
    "--query",
    "--quiet",
  ], { timeoutMs: 10_000 });
  const v = r.stdout.trim();
  return r.code === 0 && v !== "" ? Number(v) : undefined;
}

/** Loads one form into the lab from inside `node`. */
async function load(lab: Lab, node: string, format: "crm" | "pcs"): Promise<void> {
  const { crm, pcs } = generateConfig(parseConfigArgs(labArgs(lab, format)));
  if (format === "crm") {
    await exec(node, "cat >/run/prm-config.crm", { stdin: crm, check: true });
    const r = await exec(node, ["crm", "configure", "load", "update", "/run/prm-config.crm"], {
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `crm configure load: ${r.stdout}${r.stderr}`);
  } else {
    await exec(node, "cat >/run/prm-pcs.sh", { stdin: pcs, check: true });
    const r = await exec(node, ["sh", "/run/prm-pcs.sh", "/run/prm-cib.xml"], {
      timeoutMs: 300_000,
    });
    assert.equal(r.code, 0, `pcs script: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /Configuration pushed from \/run\/prm-cib.xml/);
  }
  // From here on only the generated devices can fence.
  const del = await exec(node, [
    "cibadmin",
    "--delete",
    "--xml-text",
    '<primitive id="fence_lab"/>',
  ], { timeoutMs: 30_000 });
  assert.equal(del.code, 0, `removing fence_lab: ${del.stderr}`);
}

async function scenario(format: "crm" | "pcs"): Promise<void> {
  if (labIsUp()) {
    throw new Error(`A lab is already up (${STATE_DIR}): this test needs the machine's lab`);
  }
  const lab = await up({ nodes: 3 });
  try {
    const viewer = lab.nodes[0];
    const t0 = Date.now();
    await load(lab, viewer, format);

    // Converged: one master, two replicas, the writer VIP on the master, both reader VIPs on
    // readable replicas (one each), every fence device off the node it fences.
    const first = await waitFor(async () => {
      const p = placement(await crmMon(viewer));
      if (p.promoted.length !== 1 || p.unpromoted.length !== 2) return false;
      if (p.at.vip_writer?.[0] !== p.promoted[0]) return false;
      if (READERS.some((r) => p.at[r]?.length !== 1)) return false;
      // Reader VIPs start on the master while it is the only readable node, and move once the
      // replicas turn readable: a view from before that move is not the converged placement.
      const readers = READERS.map((r) => p.at[r][0]).sort();
      if (JSON.stringify(readers) !== JSON.stringify(p.unpromoted)) return false;
      return p;
    }, { timeoutMs: 180_000, what: `${format} form converged with every VIP placed` });
    console.log(`[${format}] converged in ${Date.now() - t0} ms: ${JSON.stringify(first)}`);
    const master = first.promoted[0];
    for (const r of READERS) {
      const node = first.at[r][0];
      assert.ok((await readable(viewer, node) ?? 0) >= 1, `${r} on ${node}, which is not readable`);
    }
    if (
      (await readable(viewer, first.unpromoted[0]) ?? 0) >= 1 &&
      (await readable(viewer, first.unpromoted[1]) ?? 0) >= 1
    ) {
      assert.deepEqual(READERS.map((r) => first.at[r][0]).sort(), first.unpromoted);
    }
    for (const n of lab.nodes) assert.notDeepEqual(first.at[`st_${n}`], [n]);
    // Clients reach the master through the writer VIP (the first connections may race the
    // VIP's gratuitous ARP, hence the retries).
    const before = await waitFor(async () => {
      const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@read_only AS ro", {
        timeoutMs: 2_000,
      });
      const row = rows[0] as { h: string; ro: number };
      return row.h === master ? row : false;
    }, { timeoutMs: 30_000, what: `${format} form: the writer VIP reaching ${master}` });
    assert.equal(Number(before.ro), 0, `${master} behind the writer VIP is read-only`);

    // Power cut of the master: fenced by a generated device, the writer VIP follows.
    const t1 = Date.now();
    await powerCut(master);
    const survivor = lab.nodes.find((n) => n !== master)!;
    const second = await waitFor(async () => {
      const p = placement(await crmMon(survivor));
      if (p.promoted.length !== 1 || p.promoted[0] === master) return false;
      if (p.at.vip_writer?.[0] !== p.promoted[0]) return false;
      const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@read_only AS ro", {
        timeoutMs: 2_000,
      });
      const row = rows[0] as { h: string; ro: number };
      return row.h === p.promoted[0] && Number(row.ro) === 0 ? p : false;
    }, { timeoutMs: 120_000, what: `${format} form: writer VIP on a new master after power cut` });
    console.log(
      `[${format}] writer VIP on ${second.promoted[0]} ${Date.now() - t1} ms after the ` +
        `power cut of ${master}: ${JSON.stringify(second)}`,
    );
    for (const r of READERS) assert.notDeepEqual(second.at[r], [master]);
    // Once the surviving replica replicates from the new master and is readable again, the
    // reader VIPs leave the new master's node for it.
    const newMaster = second.promoted[0];
    const replica = lab.nodes.find((n) => n !== master && n !== newMaster)!;
    const t2 = Date.now();
    await waitFor(async () => {
      if ((await readable(survivor, replica) ?? 0) < 1) return false;
      const p = placement(await crmMon(survivor));
      return READERS.every((r) => p.at[r]?.[0] === replica) ? p : false;
    }, {
      timeoutMs: 90_000,
      what: `${format} form: reader VIPs on the readable replica ${replica}`,
    });
    console.log(`[${format}] reader VIPs on ${replica} ${Date.now() - t2} ms later`);
    // The fence loop stamps this file when it has power-cut a node for a fence request.
    const fenced = await Deno.stat(`${STATE_DIR}/nodes/${master}/fenced`).catch(() => null);
    assert.ok(
      fenced?.mtime && fenced.mtime.getTime() >= t1 - 1000,
      `${master} was not fenced through a generated device (fenced file: ${fenced?.mtime})`,
    );
  } catch (e) {
    await dump();
    throw e;
  } finally {
    await down();
  }
}

Deno.test({
  name: "mysql_prm config, crm form, on the lab: converge, VIPs placed, writer follows the master",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => scenario("crm"),
});

Deno.test({
  name: "mysql_prm config, pcs form, on the lab: converge, VIPs placed, writer follows the master",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => scenario("pcs"),
});
