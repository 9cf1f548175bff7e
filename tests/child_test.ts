import assert from "node:assert/strict";
import { Budget } from "../budget.ts";
import { MINIMAL_ENV, NOT_FOUND, runChild, TIMED_OUT } from "../child.ts";

Deno.test("a child sees only the minimal environment and what the caller names", async () => {
  Deno.env.set("OCF_RESKEY_replication_passwd", "s3cret-in-the-agent-env");
  try {
    const r = await runChild(["/usr/bin/env"], { budget: Budget.ofMs(5_000), env: { X: "1" } });
    assert.equal(r.code, 0);
    const seen = Object.fromEntries(r.stdout.split("\n").map((l) => l.split("=", 2)));
    assert.deepEqual(seen, { ...MINIMAL_ENV, X: "1" });
    assert.doesNotMatch(r.stdout, /s3cret/);
  } finally {
    Deno.env.delete("OCF_RESKEY_replication_passwd");
  }
});

Deno.test("a child past its budget is stopped, SIGKILL when it ignores SIGTERM, code 124", async () => {
  const t0 = Date.now();
  const r = await runChild(["/bin/sh", "-c", "trap '' TERM; sleep 30"], {
    budget: Budget.ofMs(300),
    graceMs: 200,
  });
  const took = Date.now() - t0;
  assert.equal(r.code, TIMED_OUT);
  assert.equal(r.timedOut, true);
  assert.ok(took < 3_000, `took ${took} ms`);
});

Deno.test("a missing program is 127, output is bounded, stdin is empty", async () => {
  const missing = await runChild(["/nonexistent/tool"], { budget: Budget.ofMs(1_000) });
  assert.equal(missing.code, NOT_FOUND);
  const big = await runChild(["/bin/sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x; cat"], {
    budget: Budget.ofMs(10_000),
    maxOutputBytes: 1000,
  });
  assert.equal(big.code, 0);
  assert.equal(big.stdout.length, 1000);
  const noTime = await runChild(["/bin/true"], { budget: Budget.ofMs(0) });
  assert.equal(noTime.code, TIMED_OUT);
});
