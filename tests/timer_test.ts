/** timer.ts: a timer fires once after its time, a cancelled one never, and sleep waits. */
import assert from "node:assert/strict";
import { after, sleep } from "../timer.ts";

Deno.test("after fires once, no sooner than asked", async () => {
  const t0 = performance.now();
  let fired = 0;
  let at = 0;
  after(30, () => {
    fired++;
    at = performance.now() - t0;
  });
  await sleep(120);
  assert.equal(fired, 1);
  assert.ok(at >= 29, `fired after ${at} ms`);
});

Deno.test("a cancelled timer never fires; cancelling twice or after firing is harmless", async () => {
  let fired = 0;
  const t = after(20, () => fired++);
  t.cancel();
  t.cancel();
  const u = after(10, () => fired += 10);
  await sleep(80);
  u.cancel();
  assert.equal(fired, 10);
});

Deno.test("nonsense delays run as soon as possible", async () => {
  const seen: number[] = [];
  for (const ms of [Number.NaN, -5, 0, Infinity]) after(ms, () => seen.push(ms));
  await sleep(30);
  assert.deepEqual(seen.map(String).sort(), ["-5", "0", "Infinity", "NaN"]);
});
