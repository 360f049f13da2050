#!/usr/bin/env bash
# Builds every real server the tests need into the cache (idempotent; a second run is instant) and prints
# NAME=PATH lines. Usage: tools/testbin/build.sh [kube|gloo|envoyinit|kgateway|seed|all]
# `all` is what the tests need (kube, gloo, kgateway: the Gateway API tests' implementation, its Envoy and the
# Gateway API CRDs); `seed` (the walkthrough's Go controller, a benchmark baseline) is
# built only when asked for, by name.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
what="${1:-all}"
case "$what" in
  kube) "$here/build-kube.sh" ;;
  gloo) "$here/build-gloo.sh" ;;
  envoyinit) "$here/build-gloo.sh" envoyinit ;;
  kgateway) "$here/build-kgateway.sh" ;;
  seed) "$here/build-seed.sh" ;;
  all) "$here/build-kube.sh"; "$here/build-gloo.sh"; "$here/build-gloo.sh" envoyinit; "$here/build-kgateway.sh" ;;
  *) echo "usage: $0 [kube|gloo|envoyinit|kgateway|seed|all]" >&2; exit 2 ;;
esac
