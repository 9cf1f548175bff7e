/**
 * A revision of this repository as a tree of files, for the benchmarks and comparisons that run
 * an older parser beside the working tree's.
 *
 * @module
 */

/** The repository's root directory. */
export const REPO = new URL("..", import.meta.url).pathname;

/**
 * Extracts revision `rev` (a commit, branch or tag) of the repository into a new private
 * directory (mode 0700) and returns its path; the caller removes it.
 *
 * @example
 * ```ts
 * const dir = await extractRevision("main");
 * // run `${dir}/binlog.ts`, then:
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function extractRevision(rev: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "prm-rev-" });
  try {
    await Deno.chmod(dir, 0o700);
    const archive = await new Deno.Command("git", {
      args: ["-C", REPO, "archive", "--format=tar", rev],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!archive.success) {
      throw new Error(`git archive ${rev} failed: ${new TextDecoder().decode(archive.stderr)}`);
    }
    const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
    const w = tar.stdin.getWriter();
    await w.write(archive.stdout);
    await w.close();
    if (!(await tar.status).success) throw new Error(`tar failed extracting ${rev}`);
    return dir;
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}
