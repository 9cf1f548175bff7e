/**
 * Folders for tests that run the agent's code as root. The agent refuses to keep anything under a
 * world-writable folder such as /tmp (safe_fs.ts), so its state, salvage and working folders in
 * tests live under a root-owned folder instead: /var/lib/prm-tests (0711, so that the server's
 * user can pass through to a datadir inside).
 *
 * @module
 */

/** The parent of every test folder the agent writes in. */
export const TRUSTED_TEST_ROOT = "/var/lib/prm-tests";

/** Makes a fresh root-owned folder (0700 unless `mode`) under {@link TRUSTED_TEST_ROOT}. */
export function trustedTempDir(prefix = "test-", mode = 0o700): string {
  Deno.mkdirSync(TRUSTED_TEST_ROOT, { recursive: true, mode: 0o711 });
  Deno.chmodSync(TRUSTED_TEST_ROOT, 0o711);
  const dir = Deno.makeTempDirSync({ dir: TRUSTED_TEST_ROOT, prefix });
  Deno.chmodSync(dir, mode);
  return dir;
}
