/**
 * The programs prm ships, shared by the build and install scripts.
 *
 * @module
 */

import { NOTIFICATIONS_ACTED_ON } from "../agent.ts";
import { EXIT_CODES } from "../binlog.ts";
import { OCF } from "../ocf.ts";

/** One shipped program: its installed name and its entry module. */
export interface Program {
  /** Installed name, e.g. `mysql_prm`. */
  name: string;
  /** Entry module, relative to the repository root. */
  entry: string;
  /** Shell lines a launcher runs before it starts Deno (may answer and exit). */
  prelude?: string;
  /**
   * Shell `case` patterns of the variables the program is given from its caller's environment;
   * every other variable is unset before it starts.
   */
  passEnv: readonly string[];
  /** Exit code of a launcher that refuses to run (an unsafe cache folder, say). */
  refusedCode: number;
}

/**
 * The agent's launcher answers the notifications the agent does not act on itself: starting
 * Deno costs about 150 ms a call, and a failover waits for several rounds of them.
 */
function agentPrelude(): string {
  return [
    'if [ "${1:-}" = notify ]; then',
    '  case "${OCF_RESKEY_CRM_meta_notify_type:-}-${OCF_RESKEY_CRM_meta_notify_operation:-}" in',
    `  ${NOTIFICATIONS_ACTED_ON.join("|")}) ;;`,
    "  *) exit 0 ;;",
    "  esac",
    "fi",
  ].join("\n");
}

/** Every shipped program. */
export const PROGRAMS: readonly Program[] = [
  {
    name: "mysql_prm",
    entry: "agent.ts",
    prelude: agentPrelude(),
    // What Pacemaker and ocf-tester give an agent (OCF_RESKEY_* holds its parameters, passwords
    // included), Pacemaker's debug switches, and the server's time zone (mysqld.ts passes TZ on).
    passEnv: ["OCF_*", "HA_*", "PCMK_*", "__OCF_ACTION", "TZ"],
    // A broken install: Pacemaker stops trying the resource on this node.
    refusedCode: OCF.ERR_INSTALLED,
  },
  {
    name: "prm_binlog_parser",
    entry: "binlog.ts",
    passEnv: [],
    refusedCode: EXIT_CODES.internal,
  },
];

/** Quotes `value` for a POSIX shell, so that paths with spaces or quotes stay one word. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
