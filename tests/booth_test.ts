// The pure parts of the two-site mode: booth.conf rendering and parsing, the ticket state codec,
// the booth door's calls (with a fake runner standing in for crm_ticket and geostore) and when
// the promoted node stores its coordinates at the other site. The real daemons run in
// tests/lab/geo_lab_test.ts.
import assert from "node:assert/strict";
import { Booth, GEOSTORE_MAX_MS, parseTicketState } from "../booth.ts";
import {
  type BoothConfig,
  boothConfigProblems,
  parseBoothConfig,
  renderBoothConfig,
} from "../booth_conf.ts";
import { Budget } from "../budget.ts";
import type { ToolResult } from "../cib.ts";
import { SHARE_REFRESH_MS, SHARE_RETRY_MS, shareDue } from "../geo.ts";
import { Logger } from "../ocf.ts";

const CONFIG: BoothConfig = {
  port: 9929,
  sites: ["10.213.7.90", "10.213.8.90"],
  arbitrators: ["10.213.9.15"],
  authfile: "/etc/booth/authkey",
  tickets: [{ name: "ticket-mysql", expire: 10, acquireAfter: 2, timeout: 1, retries: 3 }],
};

Deno.test("booth.conf renders and parses back to the same model", () => {
  const text = renderBoothConfig(CONFIG);
  assert.match(text, /^site = 10\.213\.7\.90$/m);
  assert.match(text, /^arbitrator = 10\.213\.9\.15$/m);
  assert.match(text, /^ticket = "ticket-mysql"$/m);
  assert.match(text, /^ {4}acquire-after = 2$/m);
  const parsed = parseBoothConfig(text);
  assert.ok("config" in parsed);
  assert.deepEqual(parsed.config, CONFIG);
});

Deno.test("booth.conf: booth's own rules are enforced", () => {
  assert.deepEqual(boothConfigProblems(CONFIG), []);
  const bad = (patch: Partial<BoothConfig>) => boothConfigProblems({ ...CONFIG, ...patch });
  assert.match(bad({ arbitrators: [] }).join(), /at least three members/);
  assert.match(bad({ sites: ["10.213.7.90", "10.213.7.90"] }).join(), /must differ/);
  assert.match(bad({ sites: ["east", "10.213.8.90"] }).join(), /not an IP address/);
  const t = CONFIG.tickets[0];
  // timeout * (retries + 1) = 1 * 6 = 6 is not shorter than the renewal, half of 10.
  assert.match(bad({ tickets: [{ ...t, retries: 5 }] }).join(), /must be shorter than the renewal/);
  assert.match(bad({ tickets: [{ ...t, retries: 2 }] }).join(), /at least 3/);
  assert.match(bad({ tickets: [{ ...t, name: "a b" }] }).join(), /name/);
  assert.throws(() => renderBoothConfig({ ...CONFIG, arbitrators: [] }), /three members/);
});

Deno.test("booth.conf parser: comments, quotes, defaults, and what it refuses", () => {
  const parsed = parseBoothConfig(
    '# a comment\ntransport="UDP"\nsite="10.0.0.1"\nsite = 10.0.0.2 # east\n' +
      "arbitrator=10.0.0.3\nticket=tk\n  expire = 600\n  weights = 1,2,3\n",
  );
  assert.ok("config" in parsed);
  assert.deepEqual(parsed.config.sites, ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(parsed.config.tickets.map((t) => [t.name, t.expire]), [["tk", 600]]);
  assert.ok("error" in parseBoothConfig("site 10.0.0.1\n"));
  assert.ok("error" in parseBoothConfig("ticket = a\nexpire = soon\n"));
  assert.ok("error" in parseBoothConfig("x".repeat(70_000)));
});

Deno.test("ticket state: granted, attributes, escapes; junk and other tickets are ignored", () => {
  const t = parseTicketState(
    'State XML:\n\n<ticket_state id="tk" granted="true" last-granted="1796392236" owner="1" ' +
      'p_mysql_REPL_INFO="prm3|mysql-bin.000002|344" note="a&amp;b&quot;c"/>',
    "tk",
  );
  assert.equal(t.granted, true);
  assert.deepEqual([...t.attributes], [
    ["p_mysql_REPL_INFO", "prm3|mysql-bin.000002|344"],
    ["note", 'a&b"c'],
  ]);
  assert.equal(
    parseTicketState('<ticket_state id="tk" granted="true" standby="true"/>', "tk").granted,
    false,
  );
  assert.equal(parseTicketState('<ticket_state id="tk" granted="false"/>', "tk").granted, false);
  const other = parseTicketState('<ticket_state id="tk2" granted="true" a="1"/>', "tk");
  assert.equal(other.granted, false);
  assert.equal(other.attributes.size, 0);
  assert.equal(parseTicketState("rubbish", "tk").granted, false);
  const long = parseTicketState(
    `<ticket_state id="tk" granted="true" a="${"x".repeat(200)}"/>`,
    "tk",
  );
  assert.equal(long.attributes.has("a"), false);
});

function fakeBooth(answers: Record<string, ToolResult>) {
  const calls: { cmd: string; args: string[]; timeoutMs: number }[] = [];
  const runner = (cmd: string, args: string[], timeoutMs: number): Promise<ToolResult> => {
    calls.push({ cmd, args, timeoutMs });
    return Promise.resolve(answers[cmd] ?? { code: 1, stdout: "", stderr: "no answer" });
  };
  const lines: string[] = [];
  const booth = new Booth("ticket-mysql", {
    config: "/etc/booth/booth.conf",
    log: new Logger("t", { sink: (l) => lines.push(l) }),
    budget: Budget.ofMs(30_000),
    runner,
  });
  return { booth, calls, lines };
}

Deno.test("Booth reads the ticket once per action; 105 means never granted here", async () => {
  const ok = fakeBooth({
    crm_ticket: {
      code: 0,
      stdout: '<ticket_state id="ticket-mysql" granted="false" p_REPL_INFO="prm3|b.000001|4"/>',
      stderr: "",
    },
  });
  const a = await ok.booth.ticketState();
  const b = await ok.booth.ticketState();
  assert.equal(a, b);
  assert.equal(ok.calls.length, 1);
  assert.deepEqual(ok.calls[0].args, ["-t", "ticket-mysql", "-q"]);
  assert.ok(
    a.state === "known" && !a.granted && a.attributes.get("p_REPL_INFO") === "prm3|b.000001|4",
  );
  ok.booth.refresh();
  await ok.booth.ticketState();
  assert.equal(ok.calls.length, 2);

  const none = fakeBooth({ crm_ticket: { code: 105, stdout: "", stderr: "No such device" } });
  const n = await none.booth.ticketState();
  assert.ok(n.state === "known" && !n.granted && n.attributes.size === 0);

  const down = fakeBooth({ crm_ticket: { code: 102, stdout: "", stderr: "Not connected" } });
  assert.equal((await down.booth.ticketState()).state, "unknown");
});

Deno.test("Booth stores at the other site with geostore, bounded, and refuses unsafe values", async () => {
  const f = fakeBooth({ geostore: { code: 0, stdout: "", stderr: "" } });
  assert.equal(await f.booth.storeAtOtherSite("p_REPL_INFO", "prm1|mysql-bin.000003|4"), true);
  assert.deepEqual(f.calls[0].args, [
    "set",
    "-c",
    "/etc/booth/booth.conf",
    "-t",
    "ticket-mysql",
    "-s",
    "other",
    "p_REPL_INFO",
    "prm1|mysql-bin.000003|4",
  ]);
  assert.ok(f.calls[0].timeoutMs <= GEOSTORE_MAX_MS);
  assert.equal(await f.booth.storeAtOtherSite("p_REPL_INFO", undefined), true);
  assert.equal(f.calls[1].args[0], "delete");
  assert.equal(await f.booth.storeAtOtherSite("x", "a'b"), false);
  assert.equal(await f.booth.storeAtOtherSite("x", "a b"), false);
  assert.equal(f.calls.length, 2, "unsafe values never reach a command line");

  const cut = fakeBooth({
    geostore: { code: 124, stdout: "", stderr: "no answer within 4000 ms" },
  });
  assert.equal(await cut.booth.storeAtOtherSite("p_REPL_INFO", "prm1|mysql-bin.000003|4"), false);
  assert.ok(cut.lines.some((l) => /retrying later/.test(l)));
  assert.throws(() =>
    new Booth("bad name", { config: "/x", log: new Logger("t"), budget: Budget.ofMs(1) })
  );
});

Deno.test("the coordinates go to the other site when changed, refreshed, or retried after a failure", () => {
  const now = 1_000_000;
  assert.equal(shareDue(undefined, "a", now), true);
  assert.equal(shareDue({ value: "a", ok: true, at: now - 1 }, "b", now), true);
  assert.equal(shareDue({ value: "a", ok: true, at: now - 1 }, "a", now), false);
  assert.equal(shareDue({ value: "a", ok: true, at: now - SHARE_REFRESH_MS }, "a", now), true);
  assert.equal(shareDue({ value: "a", ok: false, at: now - 1 }, "a", now), false);
  assert.equal(shareDue({ value: "a", ok: false, at: now - SHARE_RETRY_MS }, "a", now), true);
});
