# Sourced: sets DENO to the project's pinned Deno, installing it from the npm registry when missing.
# Deno is pinned here and nowhere else.
PRM_DENO_VERSION=2.9.6
_prm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DENO="$_prm_root/.tools/deno"
if [ ! -x "$DENO" ] || [ "$("$DENO" --version 2>/dev/null | head -n 1 | cut -d' ' -f2)" != "$PRM_DENO_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is needed to install Deno $PRM_DENO_VERSION from the npm registry" >&2
    exit 1
  fi
  echo "Installing Deno $PRM_DENO_VERSION from the npm registry into .tools/ ..." >&2
  mkdir -p "$_prm_root/.tools/npm"
  npm install --silent --no-save --no-audit --no-fund --prefix "$_prm_root/.tools/npm" "deno@$PRM_DENO_VERSION" >&2
  _prm_bin=$(find "$_prm_root/.tools/npm/node_modules/@deno" -maxdepth 2 -type f -name deno | head -n 1)
  if [ -z "$_prm_bin" ]; then
    echo "error: the npm package deno@$PRM_DENO_VERSION did not bring a deno binary" >&2
    exit 1
  fi
  cp -f "$_prm_bin" "$DENO.tmp" && chmod 0755 "$DENO.tmp" && mv -f "$DENO.tmp" "$DENO"
fi
export DENO
export DENO_NO_UPDATE_CHECK=1
export PATH="$_prm_root/.tools:$PATH"
