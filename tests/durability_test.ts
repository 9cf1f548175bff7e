import assert from "node:assert/strict";
import { type DurabilityInput, durabilityOf } from "../durability.ts";

function input(over: Partial<DurabilityInput> = {}): DurabilityInput {
  return {
    semiSync: false,
    connectedReplicas: 2,
    expectReplicas: true,
    replicaReasons: [undefined, undefined],
    maxLagSeconds: 60,
    ...over,
  };
}

Deno.test("durabilityOf: healthy replicas, no risk", () => {
  assert.equal(durabilityOf(input()).risk, undefined);
  assert.equal(
    durabilityOf(input({ semiSync: true, semiSyncStatus: { Rpl_semi_sync_master_status: "ON" } }))
      .risk,
    undefined,
  );
  // One replica lags, the other holds the commits.
  assert.equal(durabilityOf(input({ replicaReasons: ["lagging", undefined] })).risk, undefined);
});

Deno.test("durabilityOf: semi-sync fell back (MariaDB and MySQL 8 names)", () => {
  for (const name of ["Rpl_semi_sync_master_status", "Rpl_semi_sync_source_status"]) {
    const d = durabilityOf(input({ semiSync: true, semiSyncStatus: { [name]: "OFF" } }));
    assert.equal(d.risk, "semi-sync-fallback", name);
    assert.match(d.reason, /fell back to asynchronous/);
  }
  // semi_sync off: the server's semi-sync variables are not this agent's business.
  assert.equal(
    durabilityOf(input({ semiSyncStatus: { Rpl_semi_sync_master_status: "OFF" } })).risk,
    undefined,
  );
});

Deno.test("durabilityOf: no replica connected, or every connected one lagging", () => {
  assert.equal(durabilityOf(input({ connectedReplicas: 0 })).risk, "no-replica");
  assert.equal(
    durabilityOf(input({ replicaReasons: ["lagging", "lagging"] })).risk,
    "replicas-lagging",
  );
  // A broken replica is not connected: the lagging one is all there is.
  assert.equal(
    durabilityOf(input({ connectedReplicas: 1, replicaReasons: ["lagging", "sql-broken"] })).risk,
    "replicas-lagging",
  );
  // A clone of one (or a new master whose replicas are being repointed) expects none.
  assert.equal(
    durabilityOf(input({ connectedReplicas: 0, expectReplicas: false })).risk,
    undefined,
  );
});
