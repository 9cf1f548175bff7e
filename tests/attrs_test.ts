import assert from "node:assert/strict";
import {
  attributeNames,
  decodePublishedPosition,
  decodeRefused,
  decodeReplInfo,
  decodeResumeOverride,
  encodePublishedPosition,
  encodeRefused,
  encodeReplInfo,
  SCORE,
} from "../attrs.ts";
import {
  decodeNotPromotable,
  decodePromotionRecord,
  encodePromotionRecord,
  NOT_PROMOTABLE,
} from "../attrs.ts";

Deno.test("every name of a resource comes from one place", () => {
  assert.deepEqual(attributeNames("p_mysql", "reader"), {
    resource: "p_mysql",
    replInfo: "p_mysql_REPL_INFO",
    promotion: "master-p_mysql",
    reader: "reader",
    position: "prm-p_mysql-pos",
    final: "prm-p_mysql-final",
    gtid: "prm-p_mysql-gtid",
    gtidFork: "prm-p_mysql-gtid-fork",
    refused: "prm-p_mysql-refused",
    resume: "prm-p_mysql-resume",
    notPromotable: "prm-p_mysql-not-promotable",
    promoted: "prm-p_mysql-promoted",
  });
  assert.equal(attributeNames("x").reader, "readable");
});

Deno.test("the scores keep the promoted node on top and a stepped-aside promotee last", () => {
  assert.ok(SCORE.PROMOTED > SCORE.BETTER_PEER);
  assert.ok(SCORE.BETTER_PEER > SCORE.REPLICA);
  assert.ok(SCORE.REPLICA > SCORE.REPAIRED_REPLICA);
  assert.ok(SCORE.REPAIRED_REPLICA > SCORE.IDLE);
  assert.ok(SCORE.IDLE > SCORE.STEPPED_ASIDE);
});

Deno.test("published positions: received coordinates or idle, nothing else", () => {
  const p = {
    idle: false as const,
    masterHost: "prm1",
    position: { file: "mysql-bin.000003", pos: 77 },
  };
  assert.equal(encodePublishedPosition(p), "prm1|mysql-bin.000003|77");
  assert.deepEqual(decodePublishedPosition("prm1|mysql-bin.000003|77"), p);
  assert.deepEqual(decodePublishedPosition(encodePublishedPosition({ idle: true })), {
    idle: true,
  });
  for (const bad of ["", "prm1|f|x", "prm1|a b.000001|3", "p;rm|f.000001|3", "prm1|f.000001|3|4"]) {
    assert.equal(decodePublishedPosition(bad), undefined, bad);
  }
});

Deno.test("REPL_INFO, refused marks and the operator's override decode strictly", () => {
  const info = { host: "prm2", file: "mysql-bin.000002", pos: 1234 };
  assert.deepEqual(decodeReplInfo(encodeReplInfo(info)), info);
  assert.equal(decodeReplInfo("db1|-hevil.000001|4"), undefined);
  assert.deepEqual(decodeRefused(encodeRefused({ steppedAside: true })), { steppedAside: true });
  assert.deepEqual(decodeRefused(encodeRefused({ steppedAside: false, code: 1 })), {
    steppedAside: false,
    code: 1,
  });
  assert.equal(decodeRefused("maybe"), undefined);
  assert.deepEqual(decodeResumeOverride("published"), { published: true });
  assert.deepEqual(decodeResumeOverride("mysql-bin.000004:120"), {
    published: false,
    position: { file: "mysql-bin.000004", pos: 120 },
  });
  for (const bad of [undefined, "", "mysql-bin.000004", "mysql-bin.000004:2", "-x.000001:120"]) {
    assert.equal(decodeResumeOverride(bad), undefined, String(bad));
  }
});

Deno.test("promotion records round-trip; anything else is refused", () => {
  const r = { atMs: 1_764_850_000_123, durationMs: 412 };
  assert.deepEqual(decodePromotionRecord(encodePromotionRecord(r)), r);
  for (
    const bad of [undefined, "", "1:2:3", "x:1", "-1:5", "1764850000123:", "9".repeat(16) + ":1"]
  ) {
    assert.equal(decodePromotionRecord(bad), undefined, String(bad));
  }
});

Deno.test("not-promotable reasons: every word decodes to itself, nothing else does", () => {
  for (const r of NOT_PROMOTABLE) assert.equal(decodeNotPromotable(` ${r}\n`), r);
  for (const bad of ["", "Kept-Out", "lagging; rm -rf", "healthy"]) {
    assert.equal(decodeNotPromotable(bad), undefined);
  }
});
