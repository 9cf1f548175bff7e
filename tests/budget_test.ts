import assert from "node:assert/strict";
import { Budget, BudgetExpiredError, delay, marginFor, waitUntil } from "../budget.ts";

Deno.test("an operation's budget is its timeout less a tenth, at most 5 s", () => {
  assert.equal(marginFor(20_000), 2_000);
  assert.equal(marginFor(120_000), 5_000);
  const now = 1_000_000;
  assert.equal(Budget.forOperation(30_000, now).deadline, now + 27_000);
});

Deno.test("slices never reach past their parent", () => {
  const parent = Budget.ofMs(10_000);
  const left = parent.remainingMs();
  assert.ok(parent.slice({ maxMs: 2_000 }).remainingMs() <= 2_000);
  assert.ok(parent.slice({ fraction: 0.25 }).remainingMs() <= left * 0.25 + 1);
  assert.ok(parent.slice({ reserveMs: 9_000 }).remainingMs() <= 1_000 + 1);
  assert.ok(parent.slice({ maxMs: 50_000 }).deadline <= parent.deadline);
  // A floor, but never past the parent.
  const short = Budget.ofMs(300);
  assert.ok(short.slice({ fraction: 0.1, minMs: 1_000 }).deadline <= short.deadline);
  assert.equal(parent.cap(500), 500);
  assert.ok(short.cap(10_000) <= 300);
});

Deno.test("an expired budget says so and throws a typed error on check", async () => {
  const b = Budget.ofMs(0);
  await delay(5);
  assert.equal(b.expired(), true);
  assert.equal(b.remainingMs(), 0);
  assert.throws(() => b.check("reading"), BudgetExpiredError);
});

Deno.test("waitUntil probes until a value, the deadline or abandon", async () => {
  let n = 0;
  const got = await waitUntil(() => Promise.resolve(++n >= 3 ? n : undefined), {
    budget: Budget.ofMs(2_000),
    intervalMs: 5,
  });
  assert.equal(got, 3);
  const t0 = Date.now();
  const none = await waitUntil(() => Promise.resolve(undefined), {
    budget: Budget.ofMs(100),
    intervalMs: 20,
  });
  assert.equal(none, undefined);
  assert.ok(Date.now() - t0 < 1_000);
  let probes = 0;
  await waitUntil(() => Promise.resolve(++probes && undefined), {
    budget: Budget.ofMs(5_000),
    intervalMs: 5,
    abandon: () => probes >= 2,
  });
  assert.equal(probes, 2);
  // Even an expired budget gets one fresh answer.
  assert.equal(await waitUntil(() => Promise.resolve(7), { budget: Budget.ofMs(0) }), 7);
});
