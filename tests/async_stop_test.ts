/**
 * async_stop's other half on a real mariadbd, without Pacemaker: while the server of an
 * asynchronous stop is still shutting down, monitor reports it not running, and start waits for
 * it within the start timeout, then fails with a clear reason instead of starting a second server
 * on the same datadir; once the old process is gone, start succeeds.
 *
 * The "still shutting down" server is simulated by freezing it (SIGSTOP) and writing the agent's
 * state file as its stop action does (the pid of the server being stopped).
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { processAlive } from "../mysqld.ts";
import { AgentSetup, assertCode } from "./agent_harness.ts";

Deno.test("async_stop: monitor says not running, start waits for the old server then fails or goes on", async () => {
  await using s = await AgentSetup.create({
    prefix: "prm-async-stop-",
    resource: "as_mysql",
    serverId: 9,
    replication: false,
    params: { async_stop: "true" },
  });
  assertCode(await s.run("start"), OCF.SUCCESS);
  const pid = s.serverPid()!;
  // The server "is shutting down": frozen, and recorded as the async stop records it.
  Deno.kill(pid, "SIGSTOP");
  let waited = 0;
  try {
    s.writeAgentState({ stoppingPid: pid });
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
    // 15 s timeout: the agent keeps a margin and 10 s for itself, so it waits about 3.5 s.
    const refused = await s.run("start", { OCF_RESKEY_CRM_meta_timeout: "15000" });
    assertCode(refused, OCF.ERR_GENERIC);
    assert.match(refused.exitReason ?? "", new RegExp(`\\b${pid}\\b`), "names the old server");
    waited = refused.ms;
    assert.ok(waited >= 3_000, `start waited ${waited} ms for the old server`);
    assert.equal(s.serverPid(), pid, "no second server");
    assert.ok(processAlive(pid));
  } finally {
    // Now it really shuts down (SIGTERM waits until it runs again).
    Deno.kill(pid, "SIGTERM");
    Deno.kill(pid, "SIGCONT");
  }
  // Start waits for it and then starts a new server.
  assertCode(await s.run("start"), OCF.SUCCESS);
  assert.ok(!processAlive(pid));
  const pid2 = s.serverPid();
  assert.ok(pid2 !== undefined && pid2 !== pid, `new server pid ${pid2}`);
  assertCode(await s.run("monitor"), OCF.SUCCESS);
  console.log(`  start refused after waiting ${waited} ms; then started pid ${pid2}`);
  assertCode(await s.run("stop"), OCF.SUCCESS);
});
