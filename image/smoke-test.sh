#!/usr/bin/env bash
# Builds the controller's image from ./Containerfile with no registry at hand, runs it the way the cluster
# manifests do (non-root, read-only root filesystem, every capability dropped, no privilege escalation) and
# checks that it starts, writes its Proxy and that its HEALTHCHECK (/healthz) passes.
# The Containerfile's default base (python:3.11-slim) cannot be pulled on machines without a registry, so the
# base here is Debian bookworm's own python3 (3.11) made into a root filesystem by mmdebstrap from Debian
# packages and imported into podman; it is cached by its package list under ~/.cache/proxycontroller/image.
# Needs root, mmdebstrap, podman and runc (Debian packages). Usage: image/smoke-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "image: $*" >&2; }

for tool in mmdebstrap podman runc; do
  command -v "$tool" >/dev/null || { log "missing $tool: apt-get install mmdebstrap podman runc"; exit 1; }
done

CACHE="${PROXYCONTROLLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxycontroller}/image"
PACKAGES="python3,python3-venv,ca-certificates"
BASE_TAR="$CACHE/bookworm-$(echo "$PACKAGES" | sha256sum | cut -c1-12).tar"
BASE_IMAGE="localhost/proxycontroller-base:bookworm-python3"
IMAGE="${IMAGE:-localhost/proxycontroller:dev}"
# crun refuses hosts with cgroup v1 and v2 controllers mixed ("hybrid mode"); runc runs there.
# Without CAP_SYS_RESOURCE podman's default rlimits cannot be set; these lower ones always can.
PODMAN_RUN=(--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

mkdir -p "$CACHE"
start=$SECONDS
if [[ ! -s "$BASE_TAR" ]]; then
  log "building the base root filesystem with mmdebstrap (minutes)"
  # Documentation and locales are no part of a runtime image.
  mmdebstrap --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --quiet --format=tar bookworm "$BASE_TAR.tmp" http://deb.debian.org/debian
  mv -f "$BASE_TAR.tmp" "$BASE_TAR"
fi
podman import --quiet --change 'CMD ["python3"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
log "base $BASE_IMAGE ready after $((SECONDS - start))s"

# Behind a TLS-intercepting egress, pip in the build needs this machine's CA bundle. It is mounted for the RUN
# steps only (pip reads /etc/pip.conf); nothing of it is committed to the image.
work="$(mktemp -d -t proxycontroller-image-XXXXXX)"
container="proxycontroller-smoke-$$"
cleanup() { podman rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
build_mounts=()
if [[ -n "${PIP_CERT:-}" && -r "$PIP_CERT" ]]; then
  printf '[global]\ncert = /run/host-ca.crt\n' > "$work/pip.conf"
  build_mounts=(-v "$PIP_CERT:/run/host-ca.crt:ro" -v "$work/pip.conf:/etc/pip.conf:ro")
fi
start=$SECONDS
podman build "${PODMAN_RUN[@]}" --network host --format docker --build-arg PYTHON_IMAGE="$BASE_IMAGE" \
  "${build_mounts[@]}" -t "$IMAGE" -f Containerfile . >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; log "podman build failed"; exit 1; }
log "built $IMAGE in $((SECONDS - start))s: $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes, user $(podman image inspect "$IMAGE" --format '{{.Config.User}}')"

# Gloo's directory layout with one upstream; the controller must write its Proxy next to it.
mkdir -p "$work/tree/upstreams/gloo-system"
cp examples/upstreams/gloo-system/default-petstore-8080.yaml "$work/tree/upstreams/gloo-system/"
chown -R 65532:65532 "$work/tree"
# No network: the container's own loopback, so its probe port cannot collide with anything on this machine.
podman run "${PODMAN_RUN[@]}" -d --name "$container" --network none --read-only --cap-drop ALL \
  --security-opt no-new-privileges --health-interval disable -v "$work/tree:/config" "$IMAGE" run --config-dir /config \
  >/dev/null 2>"$work/run.err" || { cat "$work/run.err" >&2; log "podman run failed"; exit 1; }
healthy=""
for _ in $(seq 60); do
  # The image's own HEALTHCHECK command, run on demand inside the container (its timer is off: it needs systemd).
  if podman healthcheck run "$container" >/dev/null 2>&1; then healthy=1; break; fi
  [[ "$(podman inspect "$container" --format '{{.State.Running}}')" == true ]] || break
  sleep 0.5
done
if [[ -z "$healthy" ]]; then
  podman logs "$container" 2>&1 | tail -20 >&2
  log "the container never passed its HEALTHCHECK"
  exit 1
fi
answer="$(podman exec "$container" python3 -c \
  "import urllib.request as u; r = u.urlopen('http://127.0.0.1:9091/healthz'); print(r.status, r.read().decode().strip())")"
uid="$(podman exec "$container" id -u)"
proxy="$work/tree/proxies/gloo-system/my-cool-proxy.yaml"
for _ in $(seq 20); do [[ -s "$proxy" ]] && break; sleep 0.5; done
[[ "$answer" == "200 ok" ]] || { log "/healthz answered: $answer"; exit 1; }
[[ "$uid" == 65532 ]] || { log "runs as uid $uid, not 65532"; exit 1; }
grep -q default-petstore-8080 "$proxy" || { log "no Proxy routing default-petstore-8080 in $proxy"; exit 1; }
log "ok: uid $uid, read-only root, no capabilities; HEALTHCHECK passed, /healthz: $answer; Proxy written"
