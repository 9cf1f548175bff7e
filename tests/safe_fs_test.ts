/**
 * safe_fs.ts against a hostile owner of the folder: the `nobody` user plants links where root is
 * about to write, as a `mysql` user could in its datadir.
 */
import assert from "node:assert/strict";
import {
  chownNoFollow,
  privateDir,
  readBoundedFile,
  replaceFile,
  trustedDir,
  UnsafePathError,
  writeExclusive,
} from "../safe_fs.ts";

const NOBODY = 65534;

/** A root-owned 0700 folder outside any world-writable one, removed afterwards. */
async function withRootDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  Deno.mkdirSync("/var/lib/prm-tests", { recursive: true, mode: 0o711 });
  Deno.chmodSync("/var/lib/prm-tests", 0o711); // others may pass through, not list or write
  const dir = Deno.makeTempDirSync({ dir: "/var/lib/prm-tests", prefix: "safe-fs-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Runs a shell command as nobody. */
function asNobody(script: string): void {
  const out = new Deno.Command("setpriv", {
    args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "/bin/sh", "-c", script],
  }).outputSync();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("trustedDir refuses folders another user could write or own", async () => {
  await withRootDir((dir) => {
    trustedDir(dir);
    assert.throws(() => trustedDir("/tmp"), UnsafePathError);
    const tmpChild = Deno.makeTempDirSync({ prefix: "prm-safe-fs-" });
    try {
      assert.throws(() => trustedDir(tmpChild), UnsafePathError);
    } finally {
      Deno.removeSync(tmpChild);
    }
    Deno.mkdirSync(`${dir}/theirs`);
    Deno.chownSync(`${dir}/theirs`, NOBODY, NOBODY);
    assert.throws(() => trustedDir(`${dir}/theirs`), UnsafePathError);
    Deno.mkdirSync(`${dir}/open`, { mode: 0o777 });
    Deno.chmodSync(`${dir}/open`, 0o777);
    assert.throws(() => trustedDir(`${dir}/open`), UnsafePathError);
    privateDir(`${dir}/mine/deeper`);
    assert.equal(Deno.statSync(`${dir}/mine/deeper`).mode! & 0o777, 0o700);
  });
});

Deno.test("a file written into another user's folder never goes through their link", async () => {
  await withRootDir((dir) => {
    const victim = `${dir}/victim`;
    Deno.writeTextFileSync(victim, "root's secret\n", { mode: 0o600 });
    const theirs = `${dir}/datadir`;
    Deno.mkdirSync(theirs);
    Deno.chownSync(theirs, NOBODY, NOBODY);
    Deno.chmodSync(dir, 0o711); // nobody may enter, not list
    asNobody(`ln -s ${victim} ${theirs}/prm-init.sql`);
    writeExclusive(`${theirs}/prm-init.sql`, "CREATE USER ...\n", {
      mode: 0o600,
      owner: { uid: NOBODY, gid: NOBODY },
    });
    assert.equal(Deno.readTextFileSync(victim), "root's secret\n");
    const victimInfo = Deno.statSync(victim);
    assert.deepEqual([victimInfo.uid, victimInfo.mode! & 0o777], [0, 0o600]);
    const made = Deno.lstatSync(`${theirs}/prm-init.sql`);
    assert.ok(made.isFile);
    assert.deepEqual([made.uid, made.mode! & 0o777], [NOBODY, 0o600]);
    // A rename over their link replaces the link, never the target.
    asNobody(`rm -f ${theirs}/mark && ln -s ${victim} ${theirs}/mark`);
    replaceFile(`${theirs}/mark`, "mysql-bin.000002\n", { mode: 0o644 });
    assert.equal(Deno.readTextFileSync(victim), "root's secret\n");
    assert.equal(Deno.readTextFileSync(`${theirs}/mark`), "mysql-bin.000002\n");
    // Handing a folder over refuses a link put in its place.
    asNobody(`ln -s ${dir} ${theirs}/run`);
    assert.throws(() => chownNoFollow(`${theirs}/run`, { uid: NOBODY }));
    assert.equal(Deno.statSync(dir).uid, 0);
  });
});

Deno.test("bounded reads refuse FIFOs, oversized files and, when asked, links", async () => {
  await withRootDir((dir) => {
    const fifo = `${dir}/fifo`;
    new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
    const t0 = Date.now();
    assert.deepEqual(readBoundedFile(fifo, 100), { ok: false, why: "not-regular" });
    assert.ok(Date.now() - t0 < 1_000);
    Deno.writeTextFileSync(`${dir}/big`, "x".repeat(101));
    assert.deepEqual(readBoundedFile(`${dir}/big`, 100), { ok: false, why: "too-large" });
    assert.deepEqual(readBoundedFile(`${dir}/missing`, 100), { ok: false, why: "missing" });
    Deno.writeTextFileSync(`${dir}/small`, "12345\n");
    const small = readBoundedFile(`${dir}/small`, 100);
    assert.deepEqual(small.ok && small.text, "12345\n");
    Deno.symlinkSync(`${dir}/small`, `${dir}/link`);
    assert.equal(readBoundedFile(`${dir}/link`, 100, { noFollow: true }).ok, false);
    assert.equal(readBoundedFile(`${dir}/link`, 100).ok, true);
  });
});
