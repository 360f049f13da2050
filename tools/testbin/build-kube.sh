#!/usr/bin/env bash
# Builds the real kube-apiserver and kubectl (k8s.io/kubernetes) and etcd + etcdctl (go.etcd.io/etcd) from their Go modules
# into the testbin cache, pinned by the wrapper modules tools/testbin/kube and tools/testbin/etcd (go.sum
# committed, so every build is of the same sources). Idempotent: a binary already in the cache is not built
# again. Prints KUBE_APISERVER=, KUBECTL=, ETCD= and ETCDCTL= lines on stdout; progress goes to stderr.
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

begin_build kube
minor="${KUBE_VERSION#v1.}"
minor="${minor%%.*}"

KUBE_APISERVER="$KUBE_DIR/kube-apiserver"
if [[ ! -x "$KUBE_APISERVER" ]]; then
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

# kubectl of the same release: tests apply what `proxycontroller manifests` renders with the user's own tool.
KUBECTL="$KUBE_DIR/kubectl"
if [[ ! -x "$KUBECTL" ]]; then
  go_build "$KUBE_MOD" k8s.io/kubernetes/cmd/kubectl "$KUBECTL" \
    "-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION" \
    "-X k8s.io/component-base/version.gitMajor=1" \
    "-X k8s.io/component-base/version.gitMinor=$minor" \
    "-X k8s.io/component-base/version.gitTreeState=clean"
else
  log "kubectl $KUBE_VERSION cached"
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
echo "KUBECTL=$KUBECTL"
echo "ETCD=$ETCD"
echo "ETCDCTL=$ETCDCTL"
