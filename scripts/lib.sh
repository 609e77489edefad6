# Shared by the scripts in this directory. Source it; don't run it.

# Builds outside the clone so repeated runs on one machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bottlebar/target}"
SIDECAR_TARGET="$(uname -m)-unknown-linux-gnu"
export BOTTLEBAR_SIDECAR_BIN="${BOTTLEBAR_SIDECAR_BIN:-$CARGO_TARGET_DIR/$SIDECAR_TARGET/release/bottlebar-sidecar}"
export BOTTLEBAR_TESTKIT_BIN="${BOTTLEBAR_TESTKIT_BIN:-$CARGO_TARGET_DIR/$SIDECAR_TARGET/release/bottlebar-testkit}"

# Each step says how far into its script it starts (a cold run's time, by step).
say() { printf '\033[1m==> [%ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $*"
  fi
}

# The Debian image the tests build the agent templates on (made here by
# scripts/make-debian-base; no registry involved).
export BOTTLEBAR_DEBIAN_BASE="${BOTTLEBAR_DEBIAN_BASE:-bottlebar-local/debian:bookworm}"
