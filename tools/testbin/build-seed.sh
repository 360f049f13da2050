#!/usr/bin/env bash
# Builds the seed (tools/seed: the walkthrough's Go controller, built against Gloo v1.22.1) into the testbin
# cache. Only benchmarks/controller_vs_seed.py needs it, and it runs this on demand: it is not part of
# `build.sh all`, so CI and scripts/setup never pay for it. The cache key is Gloo's version plus a hash of
# the seed's sources (main.go, go.mod, go.sum), so an edit there builds a new binary. Idempotent: a binary
# already in the cache is not built again. Prints SEED=<path> on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SEED_MOD="$(cd "$TESTBIN_DIR/../seed" && pwd)"
SEED_GLOO_VERSION="$(awk '$1 == "github.com/solo-io/gloo" && $2 ~ /^v/ { print $2; exit }' "$SEED_MOD/go.mod")"
[[ -n "$SEED_GLOO_VERSION" ]] || { log "cannot read the Gloo version from $SEED_MOD/go.mod"; exit 1; }
SEED_HASH="$(cat "$SEED_MOD/main.go" "$SEED_MOD/go.mod" "$SEED_MOD/go.sum" | sha256sum | cut -c1-12)"

SEED_DIR="$TESTBIN_CACHE/seed-gloo-$SEED_GLOO_VERSION-$SEED_HASH"
SEED="$SEED_DIR/seed"

begin_build seed
if [[ ! -x "$SEED" ]]; then
  log "the seed is built against github.com/solo-io/gloo@$SEED_GLOO_VERSION"
  go_build "$SEED_MOD" . "$SEED"
else
  log "seed (gloo $SEED_GLOO_VERSION, sources $SEED_HASH) cached"
fi

echo "SEED=$SEED"
