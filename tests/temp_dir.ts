/**
 * Temporary directories for tests whose files the agent uses as root (its state folder, the fake
 * Pacemaker tools): under a folder that root owns and no other user may write to, since a root
 * daemon must not trust a path below /tmp (another user could have created it first).
 * PRM_TEST_DIR names another such folder; the default is /run/prm-tests.
 *
 * @module
 */

function root(): string {
  return Deno.env.get("PRM_TEST_DIR") || "/run/prm-tests";
}

/**
 * Creates a new directory (mode 0755, so that a server running as mysql reaches its files in it)
 * under the tests' root folder, creating that (0755) first when missing.
 *
 * @example
 * ```ts
 * const dir = await makeTestDir("prm-agent-");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function makeTestDir(prefix: string): Promise<string> {
  const base = root();
  try {
    await Deno.mkdir(base, { mode: 0o755 });
    await Deno.chmod(base, 0o755);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const dir = await Deno.makeTempDir({ dir: base, prefix });
  await Deno.chmod(dir, 0o755);
  return dir;
}
