# Shared by the scripts in this directory. Source it; don't run it.

# Builds outside the clone so repeated runs on one machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bottlebar/target}"
SIDECAR_TARGET="$(uname -m)-unknown-linux-gnu"
export BOTTLEBAR_SIDECAR_BIN="${BOTTLEBAR_SIDECAR_BIN:-$CARGO_TARGET_DIR/$SIDECAR_TARGET/release/bottlebar-sidecar}"
export BOTTLEBAR_TESTKIT_BIN="${BOTTLEBAR_TESTKIT_BIN:-$CARGO_TARGET_DIR/$SIDECAR_TARGET/release/bottlebar-testkit}"

# Cargo decides whether a build is fresh by file times, not by where the
# sources are: crates built from another checkout sharing this target
# directory (CI's clone, say) pass for this one's, with that checkout's
# paths compiled in (`env!("CARGO_MANIFEST_DIR")`: a test then reads files
# that are not there). So when the checkout using the directory changes,
# the workspace's own sources are touched, and only they are rebuilt.
bottlebar_checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
if [ "$(cat "$CARGO_TARGET_DIR/.bottlebar-checkout" 2>/dev/null)" != "$bottlebar_checkout" ]; then
  if [ -d "$CARGO_TARGET_DIR" ]; then
    find "$bottlebar_checkout"/{core,cli,sidecar,tests,src-tauri} -name '*.rs' -not -path '*/target/*' \
      -exec touch {} +
  fi
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$bottlebar_checkout" > "$CARGO_TARGET_DIR/.bottlebar-checkout"
fi

# Each step says how far into its script it starts (a cold run's time, by step).
say() { printf '\033[1m==> [%ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $*"
  fi
}

# The MCP Inspector's CLI, installed by scripts/test-tools (the supervise
# conformance test runs it).
export BOTTLEBAR_MCP_INSPECTOR="${BOTTLEBAR_MCP_INSPECTOR:-${XDG_CACHE_HOME:-$HOME/.cache}/bottlebar/mcp-inspector/node_modules/@modelcontextprotocol/inspector-cli/build/index.js}"

# The Debian image the tests build the agent templates on (made here by
# scripts/make-debian-base; no registry involved).
export BOTTLEBAR_DEBIAN_BASE="${BOTTLEBAR_DEBIAN_BASE:-bottlebar-local/debian:bookworm}"
