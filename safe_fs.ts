/**
 * Files the agent writes as root, written so that no other user can turn them against the host.
 *
 * Two kinds of folder:
 *
 * - **Folders of the agent's own** (the state directory `HA_RSCTMP`, `/var/lib/prm`): used only
 *   after {@link trustedDir} checked that the folder and every folder above it belong to root
 *   (or the running user) and that no other user may write to any of them. A folder under
 *   `/tmp` fails that check, so nothing another user could have created first is ever used.
 * - **Folders another user owns** (the datadir belongs to `mysql`): a file is created there only
 *   exclusively and without following a link ({@link writeExclusive}: O_CREAT|O_EXCL|O_NOFOLLOW;
 *   an existing entry of that name is unlinked first, which never follows a link), handed to its
 *   new owner through the open descriptor (fchown), never by path, and renamed into place
 *   ({@link replaceFile}): rename replaces a link, it does not write through it.
 *
 * Reads of files a person or another user could have placed are bounded in size and refuse
 * anything but a regular file ({@link readBoundedFile}): a FIFO would hang the action.
 *
 * @module
 */

import * as libc from "./libc.ts";

/**
 * The agent's own folder on every host (root, 0700): salvage files, and the working copies of a
 * new master's binary logs during a resync. Never a folder under /tmp: another user could
 * create it first.
 */
export const AGENT_DATA_DIR = "/var/lib/prm";

/** Thrown when a folder or file is not safe to use. */
export class UnsafePathError extends Error {
  /** The path found unsafe. */
  readonly path: string;
  /** Makes the error. */
  constructor(path: string, why: string) {
    super(`Unsafe path ${path}: ${why}`);
    this.name = "UnsafePathError";
    this.path = path;
  }
}

function ownUid(): number {
  return Deno.uid() ?? 0;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * Checks that `dir` exists, is a directory and that it and every folder above it are owned by
 * root or the running user and writable by nobody else (no sticky world-writable folder either).
 * Links on the way are followed (`/var/run` → `/run`), and the folders they lead to are checked.
 * Throws {@link UnsafePathError}.
 */
export function trustedDir(dir: string): void {
  if (!dir.startsWith("/")) throw new UnsafePathError(dir, "not an absolute path");
  let real: string;
  try {
    real = Deno.realPathSync(dir);
  } catch {
    throw new UnsafePathError(dir, "does not exist");
  }
  const me = ownUid();
  let path = "";
  for (const part of ["", ...real.split("/").filter((p) => p !== "")]) {
    path = part === "" ? "/" : `${path === "/" ? "" : path}/${part}`;
    const st = Deno.lstatSync(path);
    if (!st.isDirectory) throw new UnsafePathError(path, "not a directory");
    if (st.uid !== 0 && st.uid !== me) {
      throw new UnsafePathError(path, `owned by uid ${st.uid}, not by root`);
    }
    if (((st.mode ?? 0) & 0o022) !== 0) {
      throw new UnsafePathError(
        path,
        `mode ${((st.mode ?? 0) & 0o7777).toString(8)} lets other users write there`,
      );
    }
  }
}

/**
 * Makes sure `dir` is a private folder of the running user: created with `mode` (default 0700)
 * when missing (its parent must be trusted), else checked like {@link trustedDir}.
 */
export function privateDir(dir: string, mode = 0o700): void {
  try {
    Deno.lstatSync(dir);
  } catch {
    privateDirParent(dir);
    try {
      Deno.mkdirSync(dir, { mode });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  trustedDir(dir);
}

function privateDirParent(dir: string): void {
  const parent = parentOf(dir);
  try {
    Deno.lstatSync(parent);
  } catch {
    privateDir(parent, 0o755);
    return;
  }
  trustedDir(parent);
}

/** Owner to hand a new file to. */
export interface FileOwner {
  /** User id. */
  uid: number;
  /** Group id (unchanged when undefined). */
  gid?: number;
}

/** Options of {@link writeExclusive} and {@link replaceFile}. */
export interface WriteOptions {
  /** File mode. Default 0600. */
  mode?: number;
  /** Give the new file to this owner (through the descriptor). */
  owner?: FileOwner;
}

/** Removes the directory entry `path` (a file or a link, never what a link points to). */
export function removeEntry(path: string): boolean {
  try {
    const st = Deno.lstatSync(path);
    if (st.isDirectory) throw new UnsafePathError(path, "is a directory");
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    return false;
  }
  try {
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates `path` afresh and writes `data`: any existing entry of that name is unlinked, the file
 * is created with O_CREAT|O_EXCL|O_NOFOLLOW (so a link planted meanwhile makes it fail instead of
 * writing through it), given to `owner` through its descriptor, and synced.
 */
export function writeExclusive(path: string, data: string, options: WriteOptions = {}): void {
  removeEntry(path);
  const fd = libc.open(
    path,
    libc.O.WRONLY | libc.O.CREAT | libc.O.EXCL | libc.O.NOFOLLOW,
    options.mode ?? 0o600,
  );
  try {
    // The umask may have narrowed the mode asked for.
    libc.fchmod(fd, options.mode ?? 0o600);
    if (options.owner !== undefined) {
      libc.fchown(fd, options.owner.uid, options.owner.gid ?? -1);
    }
    libc.writeAll(fd, new TextEncoder().encode(data));
    libc.fsync(fd);
  } finally {
    libc.close(fd);
  }
}

/**
 * Replaces `path` atomically: writes a new file beside it ({@link writeExclusive}) and renames it
 * over `path` (a rename replaces a link, it never writes through it).
 */
export function replaceFile(path: string, data: string, options: WriteOptions = {}): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  writeExclusive(tmp, data, options);
  try {
    Deno.renameSync(tmp, path);
  } catch (err) {
    removeEntry(tmp);
    throw err;
  }
}

/**
 * Gives the directory `dir` to `owner` through a descriptor opened without following a link:
 * a link planted in its place makes this fail instead of handing over what it points to.
 */
export function chownNoFollow(dir: string, owner: FileOwner): void {
  const fd = libc.open(dir, libc.O.RDONLY | libc.O.DIRECTORY | libc.O.NOFOLLOW);
  try {
    libc.fchown(fd, owner.uid, owner.gid ?? -1);
  } finally {
    libc.close(fd);
  }
}

/**
 * The end of a log file another user writes: at most `maxBytes`, from `fromOffset` on when given
 * (what was written since), decoded; undefined when it cannot be read or is not a regular file.
 */
export function readTail(path: string, maxBytes: number, fromOffset = 0): string | undefined {
  let fd: number;
  try {
    fd = libc.open(path, libc.O.RDONLY | libc.O.NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = libc.fstat(fd);
    if (!st.isFile) return undefined;
    const start = Math.max(Math.min(fromOffset, st.size), st.size - maxBytes);
    const buf = new Uint8Array(st.size - start);
    let got = 0;
    while (got < buf.length) {
      const n = libc.pread(fd, buf.subarray(got), start + got);
      if (n <= 0) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got));
  } catch {
    return undefined;
  } finally {
    libc.close(fd);
  }
}

/** Why {@link readBoundedFile} gave no content. */
export type ReadRefusal = "missing" | "not-regular" | "too-large" | "unreadable";

/** Result of {@link readBoundedFile}. */
export type BoundedFile =
  | { ok: true; text: string; bytes: Uint8Array }
  | { ok: false; why: ReadRefusal };

/**
 * Reads a small text file another user or a person may have written: refuses a link's target
 * when `noFollow`, anything but a regular file (a FIFO would block), and files over `maxBytes`.
 */
export function readBoundedFile(
  path: string,
  maxBytes: number,
  options: { noFollow?: boolean } = {},
): BoundedFile {
  let fd: number;
  try {
    fd = libc.open(
      path,
      libc.O.RDONLY | libc.O.NONBLOCK | (options.noFollow ? libc.O.NOFOLLOW : 0),
    );
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { ok: false, why: code === "ENOENT" ? "missing" : "unreadable" };
  }
  try {
    const st = libc.fstat(fd);
    if (!st.isFile) return { ok: false, why: "not-regular" };
    if (st.size > maxBytes) return { ok: false, why: "too-large" };
    const buf = new Uint8Array(maxBytes + 1);
    let got = 0;
    for (;;) {
      const n = libc.pread(fd, buf.subarray(got), got);
      if (n <= 0) break;
      got += n;
      if (got > maxBytes) return { ok: false, why: "too-large" };
    }
    const bytes = buf.slice(0, got);
    return { ok: true, text: new TextDecoder().decode(bytes), bytes };
  } catch {
    return { ok: false, why: "unreadable" };
  } finally {
    libc.close(fd);
  }
}
