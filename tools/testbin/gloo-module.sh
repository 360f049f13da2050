#!/usr/bin/env bash
# Prints the directory of Gloo's Go module (source of its CRDs and sample files), downloading it if needed.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
GLOO_VERSION="${GLOO_VERSION:-v1.22.1}"
need_go "the Gloo module download"
"$GO_BIN" mod download -json "github.com/solo-io/gloo@${GLOO_VERSION}" \
  | "${PYTHON:-python3}" -c 'import json,sys; d=json.load(sys.stdin); print(d["Dir"]) if "Dir" in d else sys.exit("go mod download: "+d.get("Error","no Dir"))'
