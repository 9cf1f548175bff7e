/**
 * The few system calls the agent needs that Deno's own API does not offer: open with
 * O_NOFOLLOW/O_NONBLOCK/O_EXCL, fstat, pread/write/fsync, fchmod/fchown through a descriptor,
 * and statvfs — bound from the C library with Deno's FFI.
 *
 * Why not `node:fs`, which has them all: loading Deno's Node compatibility layer cost every agent
 * run about 16 ms of CPU (measured: a script importing `node:fs` 40.5 ms against 24.5 ms without
 * it, 20 runs each), which made a monitor cost as much CPU as ocf:heartbeat:mysql's
 * (`deno task bench:monitor`: 69 ms against 68). Opening the C library costs about 2 ms.
 *
 * Linux only (glibc, 64-bit): the flag values differ between x86_64 and aarch64 and are chosen
 * by architecture; struct statx is the same on every architecture, struct statvfs on every
 * 64-bit one.
 *
 * @module
 */

/** A failed system call, with its errno and the name Node's errors use (`ENOENT`, ...). */
export class SyscallError extends Error {
  /** The C errno. */
  readonly errno: number;
  /** `ENOENT`, `EEXIST`, `ELOOP`, ... or `E<errno>` for the others. */
  readonly code: string;
  /** Makes the error. */
  constructor(call: string, errno: number, path?: string) {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    super(`${call}${path === undefined ? "" : ` ${path}`}: ${code}`);
    this.name = "SyscallError";
    this.errno = errno;
    this.code = code;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  13: "EACCES",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  28: "ENOSPC",
  40: "ELOOP",
};

const ARCH_FLAGS = {
  x86_64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
  aarch64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
} as const;

function archFlags(): { O_DIRECTORY: number; O_NOFOLLOW: number } {
  const flags = ARCH_FLAGS[Deno.build.arch as keyof typeof ARCH_FLAGS];
  if (flags === undefined) throw new Error(`libc.ts: unsupported architecture ${Deno.build.arch}`);
  return flags;
}

/** open(2) flags, with the values of this machine's architecture. */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  CREAT: 0o100,
  EXCL: 0o200,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
  get DIRECTORY(): number {
    return archFlags().O_DIRECTORY;
  },
  get NOFOLLOW(): number {
    return archFlags().O_NOFOLLOW;
  },
} as const;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  fsync: { parameters: ["i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type SymbolName = keyof typeof SYMBOLS;

let symbols: Symbols | undefined;

/**
 * libc's functions, each bound on its first call: Deno binds every symbol of a dlopen at once, at
 * ~0.25 ms of CPU each, and a monitor needs half of them (measured: 5 symbols bound one by one
 * 26.6 ms per run against 27.2 ms for the 10 at once, 23.6 ms for none; median of 80 runs).
 */
function libc(): Symbols {
  if (symbols) return symbols;
  const bound: Partial<Record<SymbolName, unknown>> = {};
  const lazy = {} as Symbols;
  for (const name of Object.keys(SYMBOLS) as SymbolName[]) {
    Object.defineProperty(lazy, name, {
      get: () => bound[name] ??= Deno.dlopen("libc.so.6", { [name]: SYMBOLS[name] }).symbols[name],
    });
  }
  return symbols = lazy;
}

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) throw new SyscallError("path", 22, JSON.stringify(s));
  return new TextEncoder().encode(`${s}\0`);
}

/** open(2); throws {@link SyscallError}. */
export function open(path: string, flags: number, mode = 0): number {
  const fd = libc().open(cString(path), flags | O.CLOEXEC, mode);
  if (fd < 0) throw new SyscallError("open", errno(), path);
  return fd;
}

/** close(2), errors ignored (nothing useful can be done about them here). */
export function close(fd: number): void {
  libc().close(fd);
}

/** What {@link fstat} reports. */
export interface FileStat {
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
  /** Size in bytes. */
  size: number;
}

const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE_SIZE = 0x1 | 0x200;
const S_IFMT = 0o170000;

/** fstat through statx(2) (its struct is the same on every architecture). */
export function fstat(fd: number): FileStat {
  const buf = new Uint8Array(256);
  if (libc().statx(fd, cString(""), AT_EMPTY_PATH, STATX_TYPE_SIZE, buf) !== 0) {
    throw new SyscallError("statx", errno());
  }
  const view = new DataView(buf.buffer);
  const type = view.getUint16(28, true) & S_IFMT;
  return {
    isFile: type === 0o100000,
    isDirectory: type === 0o040000,
    size: Number(view.getBigUint64(40, true)),
  };
}

/** pread(2) into `buf` from `offset`: the bytes read (0 at the end). */
export function pread(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  const n = Number(libc().pread(fd, buf, BigInt(buf.length), BigInt(offset)));
  if (n < 0) throw new SyscallError("pread", errno());
  return n;
}

/** Writes all of `data` (write(2) until done). */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let done = 0;
  while (done < data.length) {
    const rest = data.subarray(done);
    const n = Number(libc().write(fd, rest, BigInt(rest.length)));
    if (n < 0) throw new SyscallError("write", errno());
    done += n;
  }
}

/** fsync(2). */
export function fsync(fd: number): void {
  if (libc().fsync(fd) !== 0) throw new SyscallError("fsync", errno());
}

/** fchmod(2). */
export function fchmod(fd: number, mode: number): void {
  if (libc().fchmod(fd, mode) !== 0) throw new SyscallError("fchmod", errno());
}

/** fchown(2); a gid of -1 leaves the group as it is. */
export function fchown(fd: number, uid: number, gid = -1): void {
  if (libc().fchown(fd, uid >>> 0, gid >>> 0) !== 0) throw new SyscallError("fchown", errno());
}

/** What {@link statvfs} reports (the fields df uses). */
export interface FsStat {
  /** Fragment size: the unit of the block counts. */
  frsize: number;
  /** Blocks in all. */
  blocks: number;
  /** Free blocks (root's reserve included). */
  bfree: number;
  /** Blocks free for an unprivileged user. */
  bavail: number;
}

/** statvfs(3) of the filesystem holding `path`. */
export function statvfs(path: string): FsStat {
  const buf = new Uint8Array(128);
  if (libc().statvfs(cString(path), buf) !== 0) throw new SyscallError("statvfs", errno(), path);
  const view = new DataView(buf.buffer);
  const field = (i: number) => Number(view.getBigUint64(i * 8, true));
  return { frsize: field(1), blocks: field(2), bfree: field(3), bavail: field(4) };
}
