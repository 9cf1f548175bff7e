/**
 * The programs prm ships, shared by the build and install scripts.
 *
 * @module
 */

/** One shipped program: its installed name and its entry module. */
export interface Program {
  /** Installed name, e.g. `mysql_prm`. */
  name: string;
  /** Entry module, relative to the repository root. */
  entry: string;
}

/** Every shipped program. */
export const PROGRAMS: readonly Program[] = [
  { name: "mysql_prm", entry: "agent.ts" },
  { name: "prm_binlog_parser", entry: "binlog.ts" },
];

/** Quotes `value` for a POSIX shell, so that paths with spaces or quotes stay one word. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
