import assert from "node:assert/strict";
import { statfsSync } from "node:fs";
import * as libc from "../libc.ts";
import { readBoundedFile, writeExclusive } from "../safe_fs.ts";
import { trustedTempDir } from "./trusted_dir.ts";

Deno.test("libc: open, fstat, pread, O_EXCL, O_NOFOLLOW and FIFOs as node:fs did", () => {
  const dir = trustedTempDir("prm-libc-");
  try {
    const file = `${dir}/f`;
    Deno.writeTextFileSync(file, "hello world");
    const fd = libc.open(file, libc.O.RDONLY | libc.O.NONBLOCK);
    try {
      assert.deepEqual(libc.fstat(fd), { isFile: true, isDirectory: false, size: 11 });
      const buf = new Uint8Array(5);
      assert.equal(libc.pread(fd, buf, 6), 5);
      assert.equal(new TextDecoder().decode(buf), "world");
    } finally {
      libc.close(fd);
    }
    const dirFd = libc.open(dir, libc.O.RDONLY | libc.O.DIRECTORY | libc.O.NOFOLLOW);
    assert.equal(libc.fstat(dirFd).isDirectory, true);
    libc.close(dirFd);
    // Typed errors with Node's codes: callers decide on them.
    assert.throws(() => libc.open(`${dir}/missing`, libc.O.RDONLY), { code: "ENOENT" });
    assert.throws(
      () => libc.open(file, libc.O.WRONLY | libc.O.CREAT | libc.O.EXCL, 0o600),
      { code: "EEXIST" },
    );
    Deno.symlinkSync(file, `${dir}/link`);
    assert.throws(() => libc.open(`${dir}/link`, libc.O.RDONLY | libc.O.NOFOLLOW), {
      code: "ELOOP",
    });
    assert.equal(readBoundedFile(`${dir}/link`, 100, { noFollow: true }).ok, false);
    assert.equal(readBoundedFile(`${dir}/link`, 100).ok, true);
    // A FIFO neither blocks the open nor is read.
    new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).outputSync();
    assert.deepEqual(readBoundedFile(`${dir}/fifo`, 100), { ok: false, why: "not-regular" });
    assert.deepEqual(readBoundedFile(`${dir}/missing`, 100), { ok: false, why: "missing" });
    assert.deepEqual(readBoundedFile(file, 5), { ok: false, why: "too-large" });
    // writeExclusive never writes through a link planted at its name.
    writeExclusive(`${dir}/w`, "new", { mode: 0o640 });
    assert.equal(Deno.readTextFileSync(`${dir}/w`), "new");
    assert.equal(Deno.statSync(`${dir}/w`).mode! & 0o777, 0o640);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("libc: statvfs agrees with node:fs statfs", () => {
  const dir = trustedTempDir("prm-libc-");
  try {
    const ours = libc.statvfs(dir);
    const node = statfsSync(dir);
    assert.equal(ours.blocks * ours.frsize, Number(node.blocks) * Number(node.bsize));
    assert.ok(ours.bavail <= ours.bfree && ours.bfree <= ours.blocks, JSON.stringify(ours));
    assert.throws(() => libc.statvfs(`${dir}/missing`), { code: "ENOENT" });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
