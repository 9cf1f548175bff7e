/**
 * The shell the launchers and the self-extracting header share: how they clear the environment,
 * how they check a cache folder, and how they start Deno.
 *
 * The agent runs as root under Pacemaker, so these rules hold for every launcher:
 *
 * - Nothing under a folder another user can write: a cache folder and every folder above it must be
 *   real folders (no links) owned by root or by the running user, and none may be writable by group
 *   or others, not even a sticky one like /tmp (the project's rule for root: no path there at all).
 *   Deno's DENO_DIR holds caches it trusts (V8's code cache is checked on the source length only),
 *   so whoever can write there runs code as the next user of it.
 * - Every child gets an explicit environment: the helpers (`stat`, `mkdir`, `tar`, ...) only PATH
 *   and LC_ALL; the program what it needs (the agent its OCF_* / HA_* / PCMK_* variables, which may
 *   hold passwords) plus PATH and Deno's own settings. The environment is cleared by unsetting
 *   variables in the shell, never by `env -i NAME=VALUE`, which would put the values on a command
 *   line.
 *
 * @module
 */

import { type Program, shellQuote } from "./programs.ts";

/** PATH of every process a launcher starts: system folders only, none a user can write. */
export const CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * DENO_DIR of a run that keeps no cache on disk: nobody can create anything under /dev/null, so
 * Deno keeps its caches in memory (measured: ~25 ms more per start, see the README).
 */
export const NO_DISK_CACHE = "/dev/null/prm";

/**
 * Deno's runtime settings for prm's programs, run from a bundle or compiled into a binary. A small
 * young generation keeps the parser's peak RSS well under its 150 MB budget on binlogs of many
 * small transactions, at the same CPU time (measured: 128 MB -> 80 MB).
 */
export const DENO_RUNTIME_ARGS: readonly string[] = [
  "--allow-all",
  "--no-prompt",
  "--v8-flags=--max-semi-space-size=8",
];

/**
 * Deno's arguments for one of prm's bundles, before the bundle's path. V8's code cache stays on:
 * it lives in the checked cache folder (DENO_DIR), which Deno trusts as a whole anyway, and saves
 * 3-5 ms of a 35-50 ms start (measured, README).
 */
export const DENO_RUN_ARGS: readonly string[] = [
  "run",
  "--no-config",
  "--no-lock",
  ...DENO_RUNTIME_ARGS,
];

/**
 * The first lines of a launcher: `#!/bin/sh`, a comment, the program's prelude, and a switch to
 * /bin/sh when bash runs the file (ocf-tester calls `bash AGENT ACTION`): bash passes variables
 * whose names are not shell names (`BASH_FUNC_f%%`, `a-b`) on to its children and cannot unset
 * them, while dash drops them.
 */
export function shellHead(program: Pick<Program, "prelude">, comment: string): string {
  return [
    "#!/bin/sh",
    `# ${comment}`,
    ...(program.prelude ? [program.prelude] : []),
    'if [ -n "${BASH_VERSION:-}" ] && [ -z "${PRM_SH:-}" ]; then',
    '  PRM_SH=1 exec /bin/sh "$0" "$@"',
    "fi",
  ].join("\n");
}

/** What the shell functions need of a program. */
export type ShellProgram = Pick<Program, "name" | "passEnv" | "refusedCode">;

/**
 * Shell functions for `program`'s launcher:
 *
 * - `prm_fail TEXT`: says TEXT on stderr and exits with the program's `refusedCode`.
 * - `prm_clear_env [keep]`: unsets every exported variable (with `keep`, all but the program's
 *   `passEnv`).
 * - `prm_helper_env`: the environment of a helper, in a subshell that then runs it.
 * - `prm_check_dir DIR`: 0 when DIR is a safe cache folder (see the module doc), 1 when it is not
 *   (`prm_why` says why), 2 when it or a folder above it cannot be seen; sets `prm_owner`.
 */
export function shellFunctions(program: ShellProgram): string {
  const keep = program.passEnv.length > 0 ? `    ${program.passEnv.join("|")}) continue ;;\n` : "";
  return `prm_fail() {
  printf '%s: %s\\n' ${shellQuote(program.name)} "$1" >&2
  exit ${program.refusedCode}
}
prm_nl='
'
prm_clear_env() {
  set -f
  prm_ifs=$IFS
  IFS=$prm_nl
  # A value holding a newline and "export X=" makes a line of its own here: unsetting such an X
  # is harmless, and every real variable starts a line.
  for prm_v in $(export -p); do
    case $prm_v in 'export '*) prm_v=\${prm_v#export } ;; *) continue ;; esac
    prm_v=\${prm_v%%=*}
    case $prm_v in ''|*[!A-Za-z0-9_]*) continue ;; esac
    [ "\${1:-}" = keep ] && case $prm_v in
${keep}    esac
    command unset "$prm_v" 2>/dev/null
  done
  IFS=$prm_ifs
  set +f
}
prm_helper_env() {
  prm_clear_env
  PATH=${CHILD_PATH}
  LC_ALL=C
  export PATH LC_ALL
}
prm_check_dir() {
  prm_why=
  prm_owner=
  prm_p=$1
  case $prm_p in /*) ;; *) prm_why="$1 is not an absolute path"; return 1 ;; esac
  case $prm_p in *"$prm_nl"*) prm_why="$1 has a newline in its name"; return 1 ;; esac
  set --
  while :; do
    set -- "$prm_p" "$@"
    [ "$prm_p" = / ] && break
    prm_p=\${prm_p%/*}
    [ -n "$prm_p" ] || prm_p=/
  done
  prm_out=$(prm_helper_env; exec stat -c '%u %f' -- "$@" 2>/dev/null) || return 2
  prm_rest="$prm_out$prm_nl"
  for prm_p in "$@"; do
    prm_line=\${prm_rest%%"$prm_nl"*}
    prm_rest=\${prm_rest#*"$prm_nl"}
    prm_owner=\${prm_line%% *}
    prm_mode=$((0x\${prm_line#* }))
    if [ $((prm_mode & 0170000)) -ne $((0040000)) ]; then
      prm_why="$prm_p is not a folder (a link or another file)"
      return 1
    fi
    if [ "$prm_owner" != 0 ] && [ ! -O "$prm_p" ]; then
      prm_why="$prm_p is owned by uid $prm_owner, not by root or by this user"
      return 1
    fi
    if [ $((prm_mode & 022)) -ne 0 ]; then
      prm_why="$prm_p is writable by other users (mode $(printf %04o $((prm_mode & 07777))))"
      return 1
    fi
  done
}`;
}

/**
 * The last lines of a launcher: clears the environment but the program's variables, sets PATH and
 * Deno's, and runs `argv` (shell words, already quoted) with the launcher's arguments.
 * `denoDir` is a shell word too (e.g. `"$prm_deno_dir"`).
 */
export function shellExec(argv: string, denoDir: string): string {
  return [
    "prm_clear_env keep",
    `PATH=${CHILD_PATH}`,
    `DENO_DIR=${denoDir}`,
    "DENO_NO_UPDATE_CHECK=1",
    "export PATH DENO_DIR DENO_NO_UPDATE_CHECK",
    `exec ${argv} "$@"`,
  ].join("\n");
}

/** What `checkFolder` found. */
export interface FolderCheck {
  /** `safe`: a cache folder by the rule above; `unsafe`: not (see `why`); `unseen`: missing. */
  status: "safe" | "unsafe" | "unseen";
  /** Why it is unsafe. */
  why: string;
  /** Uid of its owner, when seen. */
  owner?: number;
}

/**
 * Checks `path` by the launchers' own rule (their `prm_check_dir`, run by /bin/sh), so that the
 * install accepts exactly the folders the installed launchers will.
 *
 * @example
 * ```ts
 * import { checkFolder } from "./launcher_shell.ts";
 * const { status, why } = await checkFolder("/var/cache/prm/deno");
 * if (status !== "safe") console.error(why);
 * ```
 */
export async function checkFolder(path: string): Promise<FolderCheck> {
  const script = [
    shellFunctions({ name: "check", passEnv: [], refusedCode: 1 }),
    'prm_check_dir "$1"',
    "prm_rc=$?",
    'printf \'%s\\n%s\\n%s\' "$prm_rc" "$prm_owner" "$prm_why"',
  ].join("\n");
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", script, "sh", path],
    clearEnv: true,
    env: { PATH: CHILD_PATH },
    stdout: "piped",
    stderr: "null",
  }).output();
  const [rc, owner, ...why] = new TextDecoder().decode(out.stdout).split("\n");
  return {
    status: rc === "0" ? "safe" : rc === "1" ? "unsafe" : "unseen",
    why: why.join("\n"),
    owner: owner === "" || owner === undefined ? undefined : Number(owner),
  };
}
