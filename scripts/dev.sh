#!/usr/bin/env bash
# Entry point for a fresh machine: installs the pinned Deno from the npm registry and the Debian
# packages the tests need, then runs one deno task. Usage: bash scripts/dev.sh TASK [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# shellcheck source=scripts/ensure_deno.sh
. "$root/scripts/ensure_deno.sh"

task=${1:-test}
shift || true
case "$task" in
  test)
    bash "$root/scripts/ensure_packages.sh"
    "$DENO" task check
    "$DENO" task build --sfx
    # Lab scenarios run the agent as Pacemaker does: installed as ocf:prm:mysql_prm.
    "$DENO" task install
    # The last line is the plain "N passed, N failed" summary CI reads.
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    set +e
    "$DENO" task test "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
    passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
    failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
    echo "${passed:-0} passed, ${failed:-1} failed"
    exit "$rc"
    ;;
  demo)
    bash "$root/scripts/ensure_packages.sh"
    # The lab's nodes run the installed agent: show the code of this checkout.
    "$DENO" task build
    "$DENO" task install
    exec "$DENO" task demo "$@"
    ;;
  *)
    exec "$DENO" task "$task" "$@"
    ;;
esac
