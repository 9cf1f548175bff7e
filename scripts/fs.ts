/**
 * File-system helpers shared by the build/install scripts and their tests.
 *
 * @module
 */

/** Whether `path` exists (following symlinks); false on any stat error. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
