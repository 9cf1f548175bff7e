/**
 * Two sites with booth (issue 15), on the two-site lab (sites.ts): site east (prm1, prm2) and
 * site west (prm3, prm4), each its own Pacemaker cluster loaded with `mysql_prm config --site`'s
 * crm form (boothd with its site address, the clone with booth_ticket, rsc_ticket loss-policy
 * demote, fencing by the lab's fence loop), real boothd daemons at both sites and on the
 * arbitrator (prm5), 20 ms each way between locations (tc netem).
 *
 * One bring-up, then in order (each step starts from where the previous one left the lab):
 * 1. the ticket granted to east: east promotes, west's nodes replicate from east's master;
 * 2. switchover east → west with `booth revoke` / `booth grant` under a writer: nothing lost;
 * 3. arbitrator loss: nothing moves, writes go on;
 * 4. power loss of the active site (west): east acquires the ticket after its expiry and
 *    promotes its most advanced node; west comes back as a standby site (rows it acknowledged
 *    and never sent are kept out with a salvage file, repaired the documented way);
 * 5. inter-site link cut of the active site (east): east demotes when its ticket expires (never
 *    two writable masters), west acquires and promotes; once the link is back, east's nodes
 *    holding what they took meanwhile are kept out, the others follow west.
 *
 * Needs the agent installed (`deno task build && deno task install`) and no other lab up.
 */
import assert from "node:assert/strict";
import { generateTwoSiteConfig, parseTwoSiteArgs } from "../../config_sites.ts";
import {
  boot,
  boothList,
  crmMon,
  cutSiteLink,
  down,
  dump,
  exec,
  exitReasons,
  healSiteLink,
  type Lab,
  LAB_TICKET,
  LAB_TICKET_TIMING,
  labConfigFlags,
  labIsUp,
  nodeAddress,
  nodeRunning,
  powerCut,
  replicaStatus,
  roundTripMs,
  sql,
  STATE_DIR,
  ticketGrantedAt,
  ticketState,
  up,
  waitFor,
} from "./lab.ts";
import { agentLines, consistent, repairKeptOut, RSC, TABLE, Writer } from "./scenario.ts";
import { labMemoryMb, site, siteWriterVip } from "./sites.ts";

const CLONE = `${RSC}-clone`;
/**
 * The writers pause this long between writes (about 60 rows/s here): at full speed (750 rows/s)
 * a site cut off for a ticket's lifetime takes more writes than the 2,000-transaction tail the
 * errant analysis examines, and its salvage file could not name where the new master resumes.
 */
const PACE_MS = 10;

/** `mysql_prm config` flags of the two-site lab. */
function geoArgs(lab: Lab): string[] {
  const sites = lab.sites!;
  return [
    ...sites.flatMap((s) => ["--site", `${s.name}=${site(s.name).boothAddress}/24`]),
    "--arbitrator",
    nodeAddress(lab.arbitrator!),
    "--ticket",
    LAB_TICKET,
    "--ticket-expire",
    String(LAB_TICKET_TIMING.expire),
    "--acquire-after",
    String(LAB_TICKET_TIMING.acquireAfter),
    "--booth-timeout",
    String(LAB_TICKET_TIMING.timeout),
    "--booth-retries",
    String(LAB_TICKET_TIMING.retries),
    ...sites.flatMap((s) => s.nodes.flatMap((n) => ["--node", `${n}=${nodeAddress(n)}@${s.name}`])),
    ...sites.flatMap((s) => ["--writer-vip", `${siteWriterVip(s.name)}/24@${s.name}`]),
    ...labConfigFlags(),
    "--format",
    "crm",
  ];
}

/** Loads a site's generated crm form into its cluster, then leaves fencing to its devices. */
async function loadSite(lab: Lab, name: string, crm: string): Promise<void> {
  const viewer = site(name).nodes[0];
  await exec(viewer, "cat >/run/prm-config.crm", { stdin: crm, check: true });
  const r = await exec(viewer, ["crm", "configure", "load", "update", "/run/prm-config.crm"], {
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, `crm configure load at ${name}: ${r.stdout}${r.stderr}`);
  const del = await exec(viewer, [
    "cibadmin",
    "--delete",
    "--xml-text",
    '<primitive id="fence_lab"/>',
  ]);
  assert.equal(del.code, 0, del.stderr);
  void lab;
}

/** The running node of a site that views it. */
function viewerOf(name: string): string {
  const v = site(name).nodes.find((n) => nodeRunning(n));
  if (v === undefined) throw new Error(`Every node of site ${name} is off`);
  return v;
}

/** The promoted node of a site, when it is writable. */
async function writableMaster(name: string): Promise<string | null> {
  const mon = await crmMon(viewerOf(name));
  const promoted = mon.resources.filter((r) => r.parent === CLONE && r.role === "Promoted")
    .flatMap((r) => r.nodes);
  if (promoted.length !== 1) return null;
  const [ro] = await sql(promoted[0], "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
  return Number(ro.ro) === 0 ? promoted[0] : null;
}

/** Nodes of the whole lab that accept writes right now (read_only off), reachable or not. */
async function writableNodes(nodes: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes.filter(nodeRunning)) {
    try {
      const [ro] = await sql(n, "SELECT @@global.read_only AS ro", { timeoutMs: 1_000 });
      if (Number(ro.ro) === 0) out.push(n);
    } catch {
      // Not answering: not taking writes either.
    }
  }
  return out;
}

/** True when every node of `nodes` replicates from `master` with both threads running. */
async function follow(nodes: string[], master: string): Promise<boolean> {
  for (const n of nodes.filter((x) => x !== master)) {
    const s = await replicaStatus(n).catch(() => null);
    if (s === null || s.Master_Host !== master) return false;
    if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return false;
  }
  return true;
}

/** Median wall time (ms) of `command` run `n` times inside `node` (what the agent's call costs). */
async function medianMs(node: string, command: string, n = 7): Promise<number> {
  const r = await exec(
    node,
    `for i in $(seq ${n}); do s=$(date +%s%N); ${command} >/dev/null 2>&1; ` +
      `e=$(date +%s%N); echo $(( (e - s) / 1000 )); done`,
    { timeoutMs: 120_000 },
  );
  const us = r.stdout.trim().split("\n").map(Number).sort((a, b) => a - b);
  return Math.round(us[Math.floor(us.length / 2)] / 100) / 10;
}

/** What a failing step prints: both sites' crm_mon, booth's view, replica status, logs. */
async function report(lab: Lab): Promise<void> {
  await dump({ lines: 40 });
  for (const n of lab.nodes) {
    console.error(`--- agent lines of ${n} (last 25) ---`);
    console.error(agentLines(n, /./).slice(-25).join("\n"));
  }
}

/**
 * Waits until every node of a site coming back without the ticket either replicates from
 * `master` or is kept out; returns node → exit reason ("" for a node that follows).
 */
async function fatesOf(
  lab: Lab,
  nodes: string[],
  master: string,
): Promise<Record<string, string>> {
  const fates: Record<string, string> = {};
  await waitFor(async () => {
    for (const n of nodes) {
      if (fates[n] !== undefined) continue;
      const reason = await keptOutReason(n, viewerOf(n));
      if (reason) fates[n] = reason;
      else if (await follow([n], master)) fates[n] = "";
    }
    return nodes.every((n) => fates[n] !== undefined) || null;
  }, {
    timeoutMs: 180_000,
    what: `${nodes.join(", ")} following ${master} or kept out`,
    onTimeout: () => report(lab),
  });
  return fates;
}

/** The exit reason of a node kept out (errant transactions, or a refused resync), if any. */
async function keptOutReason(node: string, viewer: string): Promise<string | undefined> {
  return (await exitReasons(node, { resource: RSC, viewer })).find((r) =>
    /^(Errant transactions|Resync refused)/.test(r)
  );
}

async function booth(args: string[]): Promise<string> {
  // From the arbitrator: it reaches every site, and it is a node with booth.conf.
  const r = await exec("prm5", ["booth", ...args, "-c", "/etc/booth/booth.conf"], {
    timeoutMs: 30_000,
  });
  return `${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`;
}

Deno.test({
  name: "two sites with booth: switchover, arbitrator loss, site power loss, inter-site link cut",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    assert.ok(!labIsUp() || Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? 0) > 0, "a lab is up");
    const waitFreeMs = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? 0);
    const t0 = Date.now();
    const lab = await up({ sites: [2, 2], waitFreeMs });
    const figures: Record<string, number | string> = { bringUpMs: lab.bringUpMs };
    const east = site("east").nodes;
    const west = site("west").nodes;
    const all = [...east, ...west];
    let key = 1;
    try {
      await t.step("WAN: 20 ms each way between sites, none within", async () => {
        const between = await roundTripMs("prm1", "prm3");
        const within = await roundTripMs("prm1", "prm2");
        figures.rttBetweenMs = between;
        figures.rttWithinMs = within;
        assert.ok(between >= 38 && between < 80, `round trip between sites ${between} ms`);
        assert.ok(within < 5, `round trip within a site ${within} ms`);
      });

      await t.step(
        "the ticket at east: east promotes, west replicates from east's master",
        async () => {
          const generated = generateTwoSiteConfig(parseTwoSiteArgs(geoArgs(lab)));
          assert.equal(
            generated.booth,
            Deno.readTextFileSync(`${STATE_DIR}/nodes/prm1/etc-booth/booth.conf`),
            "mysql_prm config prints the lab's booth.conf",
          );
          for (const s of generated.sites) await loadSite(lab, s.site, s.crm);
          // Nobody holds the ticket yet: nobody is promoted anywhere.
          await waitFor(async () => {
            for (const n of all) {
              const s = await sql(n, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 })
                .catch(() => null);
              if (s === null || Number(s[0].ro) !== 1) return null;
            }
            return true;
          }, {
            timeoutMs: 120_000,
            what: "every node running read-only",
            onTimeout: () => report(lab),
          });
          assert.deepEqual(await writableNodes(all), []);
          const tGrant = Date.now();
          const granted = await booth(["grant", "-s", site("east").boothAddress, LAB_TICKET]);
          assert.match(granted, /^0 /, granted);
          const master = await waitFor(() => writableMaster("east"), {
            timeoutMs: 90_000,
            what: "a writable master at east",
            onTimeout: () => report(lab),
          });
          await sql(master, `CREATE TABLE ${TABLE} (k INT PRIMARY KEY)`);
          await waitFor(() => follow(all, master).then((ok) => ok || null), {
            timeoutMs: 90_000,
            what: `every node replicating from ${master}`,
            onTimeout: () => report(lab),
          });
          figures.convergeAfterGrantMs = Date.now() - tGrant;
          // What two sites add to the agent's calls: a ticket read per unpromoted monitor, and
          // now and then a store at the other site across the WAN.
          figures.crmTicketReadMs = await medianMs(west[0], `crm_ticket -t ${LAB_TICKET} -q`);
          figures.geostoreMs = await medianMs(
            master,
            `geostore set -t ${LAB_TICKET} -s other prm-probe x`,
            5,
          );
          assert.equal(await writableMaster("west"), null);
          figures.labMemoryMb = await labMemoryMb();
        },
      );

      await t.step(
        "switchover east → west (booth revoke, grant): no acknowledged row lost",
        async () => {
          const old = (await writableMaster("east"))!;
          let target = siteWriterVip("east");
          const w = new Writer(key, () => target, PACE_MS).start();
          await waitFor(() => w.acked.length >= 50 || null, { timeoutMs: 30_000, what: "50 rows" });
          const tRevoke = Date.now();
          const revoked = await booth(["revoke", "-s", site("east").boothAddress, LAB_TICKET]);
          assert.match(revoked, /^0 /, revoked);
          // The documented procedure: the grant waits until the demote is over (Pacemaker shows
          // no master at east), when the old master has stored its final position at west.
          await waitFor(async () => {
            if ((await writableNodes(east)).length > 0) return null;
            const mon = await crmMon(viewerOf("east"));
            return !mon.resources.some((r) => r.parent === CLONE && r.role === "Promoted") || null;
          }, {
            timeoutMs: 60_000,
            what: "east demoted after the revoke",
            onTimeout: () => report(lab),
          });
          figures.switchoverDemoteMs = Date.now() - tRevoke;
          const granted = await booth(["grant", "-s", site("west").boothAddress, LAB_TICKET]);
          assert.match(granted, /^0 /, granted);
          const master = await waitFor(() => writableMaster("west"), {
            timeoutMs: 90_000,
            what: "a writable master at west",
            onTimeout: () => report(lab),
          });
          figures.switchoverWritableMs = Date.now() - tRevoke;
          // The final position crossed sites: the promotee waited for it before opening writes.
          const waited = agentLines(master, new RegExp(`Old master ${old} stopped writing at`));
          assert.ok(waited.length > 0, `${master} never saw ${old}'s final position`);
          target = siteWriterVip("west");
          await waitFor(() => w.acked.length >= 150 || null, {
            timeoutMs: 60_000,
            what: "rows at west",
          });
          key = await w.stop();
          await waitFor(() => follow(all, master).then((ok) => ok || null), {
            timeoutMs: 90_000,
            what: `every node, ${old} too, replicating from ${master}`,
            onTimeout: () => report(lab),
          });
          figures.switchoverAllFollowMs = Date.now() - tRevoke;
          const have = new Set(
            (await sql(master, `SELECT k FROM ${TABLE}`)).map((r) => Number(r.k)),
          );
          const lost = w.acked.filter((k) => !have.has(k));
          figures.switchoverAcked = w.acked.length;
          figures.switchoverLost = lost.length;
          assert.deepEqual(lost, [], "acknowledged rows missing after the switchover");
          await consistent(all, Date.now());
        },
      );

      await t.step("arbitrator loss: the ticket stays, writes go on", async () => {
        const master = (await writableMaster("west"))!;
        const w = new Writer(key, () => siteWriterVip("west"), PACE_MS).start();
        await powerCut("prm5");
        const tCut = Date.now();
        // Three ticket lifetimes: booth renews with the two sites' majority.
        while (Date.now() - tCut < 3 * LAB_TICKET_TIMING.expire * 1000) {
          assert.equal(await ticketGrantedAt(viewerOf("west")), true, await ticketState("prm3"));
          assert.equal(await writableMaster("west"), master);
          await new Promise((r) => setTimeout(r, 1_000));
        }
        key = await w.stop();
        assert.ok(w.acked.length > 100, `writes went on: ${w.acked.length}`);
        figures.arbitratorLossRows = w.acked.length;
        await boot("prm5");
        await waitFor(async () => /ticket-mysql/.test((await boothList("prm5")).stdout) || null, {
          timeoutMs: 30_000,
          what: "the arbitrator's boothd back",
        });
      });

      await t.step(
        "power loss of the active site: the other site takes over after the expiry",
        async () => {
          const oldMaster = (await writableMaster("west"))!;
          const w = new Writer(key, () => siteWriterVip("west"), PACE_MS).start();
          await waitFor(() => w.acked.length >= 100 || null, { timeoutMs: 30_000, what: "rows" });
          const tCut = Date.now();
          await Promise.all(west.map((n) => powerCut(n)));
          const ackedAtCut = w.acked.length;
          // Booth's part (the ticket expires at west's last renewal + expire, east acquires it
          // acquire-after later), then Pacemaker's and the agent's (promote).
          await waitFor(() => ticketGrantedAt(viewerOf("east")).then((g) => g || null), {
            timeoutMs: 120_000,
            intervalMs: 100,
            what: "the ticket granted to east",
            onTimeout: () => report(lab),
          });
          figures.siteFailoverTicketMs = Date.now() - tCut;
          const master = await waitFor(() => writableMaster("east"), {
            timeoutMs: 120_000,
            what: "east promoted after west's power loss",
            intervalMs: 100,
            onTimeout: () => report(lab),
          });
          figures.siteFailoverMs = Date.now() - tCut;
          key = await w.stop();
          const have = new Set(
            (await sql(master, `SELECT k FROM ${TABLE}`)).map((r) => Number(r.k)),
          );
          const lost = w.acked.filter((k) => !have.has(k));
          figures.siteLossAcked = ackedAtCut;
          figures.siteLossLost = lost.length;
          await waitFor(() => follow(east, master).then((ok) => ok || null), {
            timeoutMs: 60_000,
            what: `east's other node replicating from ${master}`,
            onTimeout: () => report(lab),
          });
          // West comes back as a standby site.
          const tBoot = Date.now();
          await Promise.all(west.map((n) => boot(n)));
          const fates = await fatesOf(lab, west, master);
          figures.siteRejoinMs = Date.now() - tBoot;
          assert.equal(
            await writableMaster("west"),
            null,
            "west never promotes without the ticket",
          );
          const keptOut = west.filter((n) => fates[n] !== "");
          figures.siteLossKeptOut = keptOut.join(" ") || "none";
          if (lost.length > 0) {
            assert.ok(
              fates[oldMaster] !== "",
              `${oldMaster} holds ${lost.length} lost rows: kept out`,
            );
          }
          for (const n of keptOut) {
            const salvage = await repairKeptOut(n, fates[n], master);
            for (const k of salvage.keys) assert.ok(!have.has(k));
          }
          await waitFor(() => follow(all, master).then((ok) => ok || null), {
            timeoutMs: 120_000,
            what: `every node replicating from ${master}`,
            onTimeout: () => report(lab),
          });
          await consistent(all, Date.now());
        },
      );

      await t.step(
        "link cut of the active site: it demotes at expiry, never two masters",
        async () => {
          const oldMaster = (await writableMaster("east"))!;
          const w = new Writer(key, () => siteWriterVip("east"), PACE_MS).start();
          await waitFor(() => w.acked.length >= 100 || null, { timeoutMs: 30_000, what: "rows" });
          const tCut = Date.now();
          await cutSiteLink("east");
          const ackedAtCut = w.acked.length;
          let eastReadOnlyMs = -1;
          let westWritableMs = -1;
          let overlap = 0;
          await waitFor(async () => {
            const writable = await writableNodes(all);
            if (
              writable.filter((n) => east.includes(n)).length > 0 &&
              writable.some((n) => west.includes(n))
            ) {
              overlap++;
            }
            const now = Date.now() - tCut;
            if (eastReadOnlyMs < 0 && !writable.some((n) => east.includes(n))) eastReadOnlyMs = now;
            if (westWritableMs < 0 && writable.some((n) => west.includes(n))) westWritableMs = now;
            return (eastReadOnlyMs >= 0 && westWritableMs >= 0) || null;
          }, {
            timeoutMs: 120_000,
            intervalMs: 100,
            what: "east demoted and west promoted",
            onTimeout: () => report(lab),
          });
          figures.linkCutEastReadOnlyMs = eastReadOnlyMs;
          figures.linkCutWestWritableMs = westWritableMs;
          assert.equal(overlap, 0, "a writable master at both sites at once");
          assert.ok(eastReadOnlyMs < westWritableMs, "east demoted before west opened writes");
          key = await w.stop();
          const master = (await writableMaster("west"))!;
          const have = new Set(
            (await sql(master, `SELECT k FROM ${TABLE}`)).map((r) => Number(r.k)),
          );
          const lost = w.acked.filter((k) => !have.has(k));
          figures.linkCutAcked = w.acked.length - ackedAtCut;
          figures.linkCutLost = lost.length;
          const tHeal = Date.now();
          await healSiteLink("east");
          const fates = await fatesOf(lab, east, master);
          figures.linkHealRejoinMs = Date.now() - tHeal;
          figures.linkCutKeptOut = east.filter((n) => fates[n] !== "").join(" ") || "none";
          if (lost.length > 0) assert.notEqual(fates[oldMaster], "", `${oldMaster} kept out`);
          for (const n of east.filter((x) => fates[x] !== "")) {
            const salvage = await repairKeptOut(n, fates[n], master);
            assert.ok(
              salvage.keys.every((k) => lost.includes(k)),
              "salvaged rows are the lost ones",
            );
          }
          await waitFor(() => follow(all, master).then((ok) => ok || null), {
            timeoutMs: 120_000,
            what: `every node replicating from ${master}`,
            onTimeout: () => report(lab),
          });
          await consistent(all, Date.now());
        },
      );
    } catch (e) {
      await report(lab).catch(() => {});
      throw e;
    } finally {
      figures.wallMs = Date.now() - t0;
      console.log(`geo figures: ${JSON.stringify(figures)}`);
      await down();
    }
  },
});
