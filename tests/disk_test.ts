import assert from "node:assert/strict";
import { describeFull, diskUsage, filesystemUsage, isNearlyFull, nearlyFullAt } from "../disk.ts";
import { trustedTempDir } from "./trusted_dir.ts";

Deno.test("diskUsage follows df: the root reserve counts as used", () => {
  // 100 blocks, 10 free of which 5 usable by the server: 90 used of 95 usable.
  const u = diskUsage({ bsize: 4096, blocks: 100, bfree: 10, bavail: 5 });
  assert.equal(u.usedPercent, 95);
  assert.equal(u.availableBytes, 5 * 4096);
  // Rounded up as df rounds: 1 block of 300 used is 1%.
  assert.equal(diskUsage({ bsize: 1024, blocks: 300, bfree: 299, bavail: 299 }).usedPercent, 1);
  assert.equal(diskUsage({ bsize: 1024, blocks: 300, bfree: 300, bavail: 300 }).usedPercent, 0);
  // Nothing usable at all: full.
  assert.equal(diskUsage({ bsize: 4096, blocks: 0, bfree: 0, bavail: 0 }).usedPercent, 100);
  assert.equal(diskUsage({ bsize: 4096, blocks: 100, bfree: 3, bavail: 0 }).usedPercent, 100);
});

Deno.test("isNearlyFull: at or above the threshold; 0 turns the guard off", () => {
  const u = (usedPercent: number) => ({ usedPercent, availableBytes: 0 });
  assert.equal(isNearlyFull(u(96), 97), false);
  assert.equal(isNearlyFull(u(97), 97), true);
  assert.equal(isNearlyFull(u(100), 97), true);
  assert.equal(isNearlyFull(u(100), 0), false);
  assert.match(
    describeFull({ usedPercent: 98, availableBytes: 3 * 1024 * 1024 }, 97),
    /98% full \(disk_full_threshold 97%, 3 MiB left\)/,
  );
});

Deno.test("filesystemUsage reads a real filesystem and answers undefined for a missing path", () => {
  const dir = trustedTempDir("prm-disk-");
  try {
    const u = filesystemUsage(dir);
    assert.ok(u !== undefined);
    assert.ok(u.usedPercent >= 0 && u.usedPercent <= 100, JSON.stringify(u));
    assert.ok(u.availableBytes > 0);
    assert.equal(filesystemUsage(`${dir}/missing/deeper`), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("nearlyFullAt: the usage once the threshold is reached, never on a statfs error", () => {
  const dir = trustedTempDir("prm-disk-");
  try {
    const u = filesystemUsage(dir)!;
    // A threshold at or below the real use is reached; one above it, or 0 (off), is not.
    const reached = Math.max(1, Math.floor(u.usedPercent));
    if (u.usedPercent >= 1) assert.ok(nearlyFullAt(dir, reached) !== undefined);
    assert.equal(nearlyFullAt(dir, 0), undefined);
    if (u.usedPercent < 100) assert.equal(nearlyFullAt(dir, 100), undefined);
    assert.equal(nearlyFullAt(`${dir}/missing`, 1), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
