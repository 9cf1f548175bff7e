/** redact.ts: every run of four or more characters of a secret goes, and nothing else. */
import assert from "node:assert/strict";
import { REDACTED, redactSecrets } from "../redact.ts";
import { piecesOf } from "./secret_pieces.ts";

const PASSWORD = "Tr0ub4dor'and-SECRET-tail";

Deno.test("a quoted tail, a cut-short prefix and the whole secret are redacted", () => {
  const cases: [string, string][] = [
    [
      "You have an error in your SQL syntax; ... near 'and-SECRET-tail', MASTER_LOG_FILE='x' at line 1",
      // The quote before "and" is the secret's own.
      "You have an error in your SQL syntax; ... near ***', MASTER_LOG_FILE='x' at line 1",
    ],
    [
      "String 'Tr0ub4dor'and-SECRET-tailTr0ub4dor'and...' is too long for MASTER_PASSWORD",
      "String '***...' is too long for MASTER_PASSWORD",
    ],
    [`connect with ${PASSWORD} failed`, "connect with *** failed"],
    // Three characters of the secret stay: they are in ordinary words everywhere.
    ["tai and Tr0 stay", "tai and Tr0 stay"],
    // Two runs separated by other text are two redactions.
    ["x SECRET y Tr0ub4 z", "x *** y *** z"],
  ];
  for (const [text, expected] of cases) {
    const out = redactSecrets(text, [PASSWORD]);
    assert.equal(out, expected);
    for (const piece of piecesOf(PASSWORD)) assert.ok(!out.includes(piece), `${piece} in ${out}`);
  }
});

Deno.test("short secrets go where whole, several secrets at once, nothing else changes", () => {
  assert.equal(redactSecrets("pw is ab, abc", ["ab"]), `pw is ${REDACTED}, ${REDACTED}c`);
  assert.equal(redactSecrets("one=alpha-1 two=beta-22", ["alpha-1", "beta-22"]), "one=*** two=***");
  assert.equal(redactSecrets("no secret here", [PASSWORD, ""]), "no secret here");
  assert.equal(redactSecrets("", [PASSWORD]), "");
  // A repetitive secret against a long repetitive line: one run, no blow-up.
  const line = "a".repeat(20_000);
  assert.equal(redactSecrets(`x${line}y`, ["a".repeat(64)]), "x***y");
  assert.equal(redactSecrets("abcdef", ["bcde"], { minPiece: 2 }), "a***f");
});
