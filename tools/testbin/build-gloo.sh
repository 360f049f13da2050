#!/usr/bin/env bash
# Builds the real Gloo control plane (github.com/solo-io/gloo/projects/gloo/cmd, the `gloo` pod's binary)
# from its Go module into the testbin cache, pinned by the wrapper module tools/testbin/gloo (which repeats
# Gloo's own `replace` directives; go.sum committed, so every build is of the same sources). Idempotent: a
# binary already in the cache is not built again. Prints GLOO=<path> on stdout (with the argument `envoyinit`:
# ENVOYINIT=<path>, Gloo's Envoy image entrypoint); progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GLOO_MOD="$TESTBIN_DIR/gloo"
# The version comes from the wrapper go.mod, so bumping it there also moves the cache key.
GLOO_VERSION="$(awk '($1 == "github.com/solo-io/gloo" && $2 ~ /^v/) || ($1 == "require" && $2 == "github.com/solo-io/gloo") { print ($1 == "require") ? $3 : $2; exit }' "$GLOO_MOD/go.mod")"
[[ -n "$GLOO_VERSION" ]] || { log "cannot read the Gloo version from $GLOO_MOD/go.mod"; exit 1; }

GLOO_DIR="$TESTBIN_CACHE/gloo-$GLOO_VERSION"
GLOO="$GLOO_DIR/gloo"

begin_build gloo
if [[ "${1:-gloo}" == envoyinit ]]; then
  # Gloo's Envoy image runs `envoyinit`: it reads the bootstrap (/etc/envoy/envoy.yaml), fills in the pod's
  # downward-API values and execs Envoy with it and its own arguments. Built (on request only: the demo does not
  # need it) so that tests run the bootstrap `proxycontroller manifests` renders as that image does, with the
  # Envoy from PyPI (the image itself is not pulled).
  ENVOYINIT="$GLOO_DIR/envoyinit"
  if [[ ! -x "$ENVOYINIT" ]]; then
    go_build "$GLOO_MOD" github.com/solo-io/gloo/projects/envoyinit/cmd "$ENVOYINIT"
  else
    log "envoyinit $GLOO_VERSION cached"
  fi
  echo "ENVOYINIT=$ENVOYINIT"
  exit 0
fi
if [[ ! -x "$GLOO" ]]; then
  # As Gloo's Makefile does (CGO_ENABLED=0, version stamped by the linker; no "v" prefix).
  go_build "$GLOO_MOD" github.com/solo-io/gloo/projects/gloo/cmd "$GLOO" \
    "-X github.com/solo-io/gloo/pkg/version.Version=${GLOO_VERSION#v}"
else
  log "gloo $GLOO_VERSION cached"
fi

echo "GLOO=$GLOO"
