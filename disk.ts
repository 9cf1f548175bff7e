/**
 * The disk-full guard: how full the filesystem holding the datadir is, and whether that counts as
 * full for `disk_full_threshold`. A replica on a nearly full disk may stop applying any moment
 * (and a master on one stops committing): it is never promoted and serves no reads, and a master
 * in that state hands over to a replica that received all it committed (lifecycle.ts).
 *
 * The rule is df's: used = total - free, usage = used / (used + available to unprivileged
 * users), so the root reserve counts as used, as the server (running as its own user) sees it.
 *
 * @module
 */

import { statvfs } from "./libc.ts";

/** What statfs says, in blocks. */
export interface FsBlocks {
  /** Block size in bytes. */
  bsize: number;
  /** Total blocks. */
  blocks: number;
  /** Free blocks (root included). */
  bfree: number;
  /** Blocks available to unprivileged users. */
  bavail: number;
}

/** A filesystem's use. */
export interface DiskUsage {
  /** Percent used as df shows it (0-100, rounded up as df does). */
  usedPercent: number;
  /** Bytes available to the server. */
  availableBytes: number;
}

/**
 * The use of a filesystem by df's rule (pure).
 *
 * @example
 * ```ts
 * const u = diskUsage({ bsize: 4096, blocks: 100, bfree: 10, bavail: 5 });
 * console.assert(u.usedPercent === 95); // 90 used of 95 usable
 * ```
 */
export function diskUsage(fs: FsBlocks): DiskUsage {
  const used = Math.max(0, fs.blocks - fs.bfree);
  const usable = used + Math.max(0, fs.bavail);
  const usedPercent = usable === 0 ? 100 : Math.ceil((used * 100) / usable);
  return { usedPercent, availableBytes: Math.max(0, fs.bavail) * fs.bsize };
}

/** True when `usage` reaches `thresholdPercent` (0 turns the check off). */
export function isNearlyFull(usage: DiskUsage, thresholdPercent: number): boolean {
  return thresholdPercent > 0 && usage.usedPercent >= thresholdPercent;
}

/** The use of the filesystem holding `path`, or undefined when it cannot be read. */
export function filesystemUsage(path: string): DiskUsage | undefined {
  try {
    const s = statvfs(path);
    return diskUsage({ bsize: s.frsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail });
  } catch {
    return undefined;
  }
}

/** How a nearly full datadir reads in a log line or an exit reason. */
export function describeFull(usage: DiskUsage, thresholdPercent: number): string {
  return `datadir filesystem ${usage.usedPercent}% full (disk_full_threshold ${thresholdPercent}%, ${
    Math.floor(usage.availableBytes / 1024 / 1024)
  } MiB left)`;
}

/**
 * The filesystem use of `path` when it reaches `thresholdPercent`, else undefined (also when it
 * cannot be read: the guard never fails a node on a statfs error; 0 turns the guard off).
 */
export function nearlyFullAt(path: string, thresholdPercent: number): DiskUsage | undefined {
  const usage = filesystemUsage(path);
  return usage !== undefined && isNearlyFull(usage, thresholdPercent) ? usage : undefined;
}
