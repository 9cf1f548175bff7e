import assert from "node:assert/strict";
import {
  coldStartAtStart,
  coldStartState,
  decideRecovery,
  FAILURE_RECORD_MS,
  type RecoveryInput,
  withinRecovery,
} from "../recovery.ts";

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;

function input(over: Partial<RecoveryInput> = {}): RecoveryInput {
  return {
    failure: { kind: "crashed", at: NOW - 3_000 },
    lastMaster: true,
    tryRestart: true,
    windowMs: HOUR,
    now: NOW,
    ...over,
  };
}

Deno.test("decideRecovery: a crashed last master is restarted in place once per window", () => {
  assert.equal(decideRecovery(input()).decision, "in-place");
  assert.equal(
    decideRecovery(input({ failure: { kind: "failed", at: NOW } })).decision,
    "in-place",
  );
  // Long ago: in place again.
  assert.equal(decideRecovery(input({ lastInPlaceAt: NOW - HOUR - 1 })).decision, "in-place");
  // Within the window: a crash loop fails over.
  const loop = decideRecovery(input({ lastInPlaceAt: NOW - 40_000 }));
  assert.equal(loop.decision, "failover");
  assert.match(loop.reason, /40 s ago.*crash loop/);
  // Exactly at the window's end: in place.
  assert.equal(decideRecovery(input({ lastInPlaceAt: NOW - HOUR })).decision, "in-place");
});

Deno.test("decideRecovery: failover when the option is off, the disk is full or another master is published", () => {
  assert.equal(decideRecovery(input({ tryRestart: false })).decision, "failover");
  assert.equal(
    decideRecovery(input({ failure: { kind: "disk-full", at: NOW } })).decision,
    "failover",
  );
  assert.equal(decideRecovery(input({ lastMaster: false })).decision, "failover");
});

Deno.test("decideRecovery: no failure, or a stale or future record, decides nothing", () => {
  assert.equal(decideRecovery(input({ failure: undefined })).decision, undefined);
  assert.equal(
    decideRecovery(input({ failure: { kind: "crashed", at: NOW - FAILURE_RECORD_MS - 1 } }))
      .decision,
    undefined,
  );
  assert.equal(
    decideRecovery(input({ failure: { kind: "crashed", at: NOW + 60_000 } })).decision,
    undefined,
  );
  // A clock that went back past the last restart does not count as within the window.
  assert.equal(decideRecovery(input({ lastInPlaceAt: NOW + 10_000 })).decision, "in-place");
});

Deno.test("coldStartAtStart: only a missing published master of another node makes a replica wait", () => {
  const base = { self: "b", now: NOW, masterPresent: false };
  assert.deepEqual(coldStartAtStart({ ...base, published: "a" }), { since: NOW, master: "a" });
  // A brand-new cluster: nothing published, nothing to wait for.
  assert.equal(coldStartAtStart({ ...base, published: undefined }), undefined);
  // The node itself was the master: it is the one the others wait for.
  assert.equal(coldStartAtStart({ ...base, published: "b" }), undefined);
  // The master runs: an ordinary replica restart.
  assert.equal(coldStartAtStart({ ...base, published: "a", masterPresent: true }), undefined);
});

Deno.test("coldStartState: waits until the master is back, another is published, or the timeout", () => {
  const wait = { since: NOW, master: "a" };
  const at = (ms: number, over: { published?: string; masterPresent?: boolean } = {}) =>
    coldStartState({
      wait,
      published: "published" in over ? over.published : "a",
      masterPresent: over.masterPresent ?? false,
      timeoutMs: 60_000,
      now: NOW + ms,
    });
  assert.equal(at(0).waiting, true);
  assert.match(at(30_000).reason, /30 of 60 s/);
  assert.equal(at(59_999).waiting, true);
  const over = at(60_000);
  assert.equal(over.waiting, false);
  assert.match(over.reason, /cold_start_timeout/);
  assert.equal(at(5_000, { masterPresent: true }).waiting, false);
  assert.equal(at(5_000, { published: "c" }).waiting, false);
  // An unreadable REPL_INFO is no reason to stop waiting.
  assert.equal(at(5_000, { published: undefined }).waiting, true);
});

Deno.test("withinRecovery: a decision lasts as long as a failure record, never from the future", () => {
  assert.equal(withinRecovery(NOW - 1_000, NOW), true);
  assert.equal(withinRecovery(NOW - FAILURE_RECORD_MS, NOW), true);
  assert.equal(withinRecovery(NOW - FAILURE_RECORD_MS - 1, NOW), false);
  assert.equal(withinRecovery(NOW + 1, NOW), false);
});
