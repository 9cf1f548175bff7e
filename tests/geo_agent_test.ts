/**
 * The agent's two-site paths (geo.ts, booth.ts) against a real mariadbd, with Pacemaker's tools,
 * crm_ticket and geostore replaced by the file-backed fakes of fake_pacemaker.ts: never a master
 * without the ticket, the coordinates stored at the other site (once, not at every monitor), the
 * stale attributes of a newly active site forgotten, a demote for a lost ticket storing its final
 * position there, and validate-all's booth checks. tests/lab/geo_lab_test.ts runs the real
 * daemons.
 */
import assert from "node:assert/strict";
import { renderBoothConfig } from "../booth_conf.ts";
import { decodeCoordinates } from "../position.ts";
import { OCF } from "../ocf.ts";
import { AgentSetup, assertCode } from "./agent_harness.ts";

const TICKET = "ticket-mysql";
const MONITOR_PROMOTED = {
  OCF_RESKEY_CRM_meta_interval: "2000",
  OCF_RESKEY_CRM_meta_role: "Promoted",
};

Deno.test("two sites with fake booth tools: the ticket rules promote, what crosses, demote", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "prm-geo-agent-" });
  const boothConfig = `${dir}/booth.conf`;
  await Deno.writeTextFile(
    boothConfig,
    renderBoothConfig({
      port: 9929,
      sites: ["10.0.1.90", "10.0.2.90"],
      arbitrators: ["10.0.3.15"],
      tickets: [{ name: TICKET, expire: 10, acquireAfter: 2, timeout: 1, retries: 3 }],
    }),
  );
  try {
    await using s = await AgentSetup.create({
      prefix: "prm-geo-",
      clone: true,
      pacemaker: true,
      myCnf: ["log_slave_updates = ON"],
      params: { booth_ticket: TICKET, booth_config: boothConfig },
      timeoutMs: 20_000,
    });
    const names = s.names;

    await t.step(
      "start at a site without the ticket: read-only, its stale master forgotten",
      async () => {
        // What this site published when it last held the ticket.
        s.setReplInfo("nodeA|mysql-bin.000001|4");
        s.cluster.setTicket(TICKET, undefined);
        assertCode(await s.run("start"), OCF.SUCCESS);
        assert.equal(await s.readOnly(), 1);
        assert.equal(s.replInfo(), undefined, "a standby site's own REPL_INFO is deleted");
      },
    );

    await t.step("promote without the ticket is refused: never a master without it", async () => {
      s.cluster.setTicket(TICKET, { granted: "false" });
      const r = await s.run("promote");
      assertCode(r, OCF.ERR_GENERIC);
      assert.match(r.exitReason ?? "", new RegExp(`does not hold booth ticket ${TICKET}`));
      assert.equal(await s.readOnly(), 1);
    });

    await t.step(
      "with the ticket: promoted; the coordinates go to the other site once",
      async () => {
        // What the other site stored here while it was active: stale once this site is.
        s.cluster.setTicket(TICKET, {
          granted: "true",
          [names.replInfo]: "nodeB|mysql-bin.000009|4",
          [names.final]: "nodeB|mysql-bin.000009|400",
        });
        assertCode(await s.run("promote"), OCF.SUCCESS);
        assert.equal(await s.readOnly(), 0);
        const published = s.replInfo();
        assert.ok(published !== undefined && decodeCoordinates(published)?.host === "nodeA");
        assertCode(await s.run("monitor", MONITOR_PROMOTED), OCF.RUNNING_PROMOTED);
        assert.deepEqual(s.cluster.otherSite(TICKET), { [names.replInfo]: published });
        assert.deepEqual(s.cluster.ticketAttributes(TICKET), { granted: "true" });
        const stores = s.cluster.calls("geostore").length;
        assert.equal(stores, 1);
        assertCode(await s.run("monitor", MONITOR_PROMOTED), OCF.RUNNING_PROMOTED);
        assert.equal(s.cluster.calls("geostore").length, stores, "nothing due: no WAN call");
      },
    );

    await t.step("ticket revoked: demote stores the final position at the other site", async () => {
      s.cluster.setTicket(TICKET, { granted: "false" });
      assertCode(await s.run("demote"), OCF.SUCCESS);
      assert.equal(await s.readOnly(), 1);
      const final = decodeCoordinates(s.cluster.otherSite(TICKET)[names.final] ?? "");
      assert.equal(final?.host, "nodeA");
      assert.equal(
        s.privateAttribute("final"),
        s.cluster.otherSite(TICKET)[names.final],
        "the same final position for this site's replicas and the other site's",
      );
      assert.equal(s.replInfo(), undefined, "the site without the ticket forgets its master");
    });

    await t.step(
      "validate-all: the booth configuration must exist and name the ticket",
      async () => {
        assertCode(await s.run("validate-all"), OCF.SUCCESS);
        const missing = await s.run("validate-all", {
          OCF_RESKEY_booth_config: `${dir}/none.conf`,
        });
        assertCode(missing, OCF.ERR_INSTALLED);
        const other = await s.run("validate-all", { OCF_RESKEY_booth_ticket: "ticket-other" });
        assertCode(other, OCF.ERR_CONFIGURED);
        assert.match(other.exitReason ?? "", /has no ticket ticket-other/);
        const bad = await s.run("validate-all", { OCF_RESKEY_booth_ticket: "no such" });
        assertCode(bad, OCF.ERR_CONFIGURED);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
