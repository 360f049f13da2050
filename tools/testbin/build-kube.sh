#!/usr/bin/env bash
# Builds the real kube-apiserver (k8s.io/kubernetes) and etcd + etcdctl (go.etcd.io/etcd) from their Go modules
# into the testbin cache, pinned by the wrapper modules tools/testbin/kube and tools/testbin/etcd (go.sum
# committed, so every build is of the same sources). Idempotent: a binary already in the cache is not built
# again. Prints KUBE_APISERVER=, ETCD= and ETCDCTL= lines on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Versions come from the wrapper modules, so bumping go.mod also moves the cache key.
module_version() { # <wrapper dir> <module path>
  awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { v = ($1 == m) ? $2 : $3; print v; exit }' "$1/go.mod"
}
KUBE_MOD="$TESTBIN_DIR/kube"
ETCD_MOD="$TESTBIN_DIR/etcd"
KUBE_VERSION="$(module_version "$KUBE_MOD" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$ETCD_MOD" go.etcd.io/etcd/server/v3)"
[[ -n "$KUBE_VERSION" && -n "$ETCD_VERSION" ]] || { log "cannot read versions from the wrapper go.mod files"; exit 1; }

KUBE_DIR="$TESTBIN_CACHE/kube-apiserver-$KUBE_VERSION"
ETCD_DIR="$TESTBIN_CACHE/etcd-$ETCD_VERSION"

# One build at a time per cache (two test sessions starting together would otherwise both build; the
# machine has few cores). flock is in util-linux; without it the rename below still keeps results whole.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TESTBIN_CACHE/.build-kube.lock"
  flock 9
fi

# go_build <wrapper module dir> <package> <output path> [extra -ldflags...]
# Builds into a temporary file next to the output and renames it, so an interrupted build never leaves a
# file that a later run would take as done (a leftover temporary file is removed on exit).
BUILD_TMP=""
BUILD_PID=""
cleanup() {
  if [[ -n "$BUILD_PID" ]]; then kill -INT "$BUILD_PID" 2>/dev/null || true; wait "$BUILD_PID" 2>/dev/null || true; fi
  if [[ -n "$BUILD_TMP" ]]; then rm -f "$BUILD_TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go_build() {
  local dir="$1" pkg="$2" out="$3"
  shift 3
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

KUBE_APISERVER="$KUBE_DIR/kube-apiserver"
if [[ ! -x "$KUBE_APISERVER" ]]; then
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  # Stamp the real version (what `kube-apiserver --version` and /version report) as the Kubernetes
  # release build does; unstamped it would call itself v0.0.0-master.
  go_build "$KUBE_MOD" k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_APISERVER" \
    "-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION" \
    "-X k8s.io/component-base/version.gitMajor=1" \
    "-X k8s.io/component-base/version.gitMinor=$minor" \
    "-X k8s.io/component-base/version.gitTreeState=clean"
else
  log "kube-apiserver $KUBE_VERSION cached"
fi

ETCD="$ETCD_DIR/etcd"
ETCDCTL="$ETCD_DIR/etcdctl"
if [[ ! -x "$ETCD" ]]; then
  go_build "$ETCD_MOD" go.etcd.io/etcd/server/v3 "$ETCD"
else
  log "etcd $ETCD_VERSION cached"
fi
if [[ ! -x "$ETCDCTL" ]]; then
  go_build "$ETCD_MOD" go.etcd.io/etcd/etcdctl/v3 "$ETCDCTL"
else
  log "etcdctl $ETCD_VERSION cached"
fi

echo "KUBE_APISERVER=$KUBE_APISERVER"
echo "ETCD=$ETCD"
echo "ETCDCTL=$ETCDCTL"
