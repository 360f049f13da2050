"""Gloo in Kubernetes mode for the end-to-end tests, outside any cluster, everything on loopback.

What the real Gloo 1.22.1 needs to run against the test API server (`KubeTestCluster`), found by running it:

- more of the CRDs of Gloo's Helm chart (its Go module's `install/helm/gloo/crds/`) than the four the controller
  tests install: at start Gloo makes a "list check" on each kind it has a client for (AuthConfigs,
  RateLimitConfigs, and for the gateway translator inside it Gateways, VirtualServices, RouteTables, Matchable
  HTTP/TCP gateways, VirtualHostOptions, RouteOptions) and exits if one is missing (`GLOO_KUBE_CRDS`). The
  chart's other CRDs (GatewayParameters, DirectResponses, HttpListenerOptions, ListenerOptions) are not needed,
  and every CRD costs the API server seconds to install;
- a Settings object `gloo-system/default` with the Kubernetes config/secret/artifact sources, every bind address
  on loopback and `gateway.persistProxySpec: true` (so it reads the Proxy our controller writes);
- a Service in gloo-system labelled `gloo: gloo` with a port named `grpc-xds`: in Kubernetes mode Gloo looks its
  own Service up at start and exits ("failed to find Gloo service") without it. Gloo only reads the Service's
  name and port (to tell deployed proxies where xDS is); it is headless here, so no virtual IP is allocated;
- a kubeconfig with rights on all of that (the admin's here), which Gloo also uses for its leader-election Lease
  gloo-system/gloo.

Gloo's liveness port 8765 is fixed in its code, so `start_gloo_kube` waits a while for the port to come free
(the directory-mode tests start and stop a Gloo of their own per test).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Service

from proxycontroller.testing.servers.apiserver import (
    CONTROLLER_PERMISSIONS,
    KubeBinaries,
    KubeTestCluster,
    controller_rbac_manifest,
    find_repo_root,
    gloo_crd_files,
)
from proxycontroller.testing.servers.gloo import (
    GLOO_SYSTEM,
    GlooPorts,
    fixed_ports_in_use,
    gloo_kube_process,
    gloo_ready,
    kube_settings,
)
from proxycontroller.testing.servers.processes import ManagedProcess

FIELD_MANAGER = "e2e-kube"
GLOO_SERVICE = "gloo"
# Gloo finds its own Service by this label and the xDS port in it by this port name (pkg/utils/kubeutils/names.go).
GLOO_SERVICE_LABELS = {"gloo": "gloo"}
GLOO_XDS_PORT_NAME = "grpc-xds"

SettingsCR = create_namespaced_resource("gloo.solo.io", "v1", "Settings", "settings")
UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ProxyCR = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")


# The CRD manifests (in Gloo's chart) Gloo 1.22.1 in Kubernetes mode cannot start without; found by starting it
# with fewer, one "list check failed: the server could not find the requested resource" at a time.
GLOO_KUBE_CRDS = (
    "gloo.solo.io_v1_Proxy.yaml",
    "gloo.solo.io_v1_Upstream.yaml",
    "gloo.solo.io_v1_UpstreamGroup.yaml",
    "gloo.solo.io_v1_Settings.yaml",
    "enterprise.gloo.solo.io_v1_AuthConfig.yaml",
    "ratelimit_config.yaml",
    "gateway.solo.io_v1_Gateway.yaml",
    "gateway.solo.io_v1_MatchableHttpGateway.yaml",
    "gateway.solo.io_v1_MatchableTcpGateway.yaml",
    "gateway.solo.io_v1_VirtualService.yaml",
    "gateway.solo.io_v1_RouteTable.yaml",
    "gateway.solo.io_v1_VirtualHostOption.yaml",
    "gateway.solo.io_v1_RouteOption.yaml",
)


def gloo_kube_crd_files(repo_root: Path | None = None) -> list[Path]:
    """The CRD manifests Gloo needs in Kubernetes mode, from Gloo's Go module."""
    crd_dir = gloo_crd_files(repo_root)[0].parent
    files = [crd_dir / name for name in GLOO_KUBE_CRDS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"Gloo CRDs not found: {', '.join(missing)}")
    return files


@contextlib.contextmanager
def gloo_kube_cluster(
    workdir: Path, binaries: KubeBinaries, repo_root: Path | None = None
) -> Iterator[KubeTestCluster]:
    """The test API server with the CRDs Gloo needs and the controller's least-privilege RBAC, as rendered."""
    root = repo_root or find_repo_root()
    cluster = KubeTestCluster(
        workdir,
        binaries,
        crd_files=gloo_kube_crd_files(root),
        manifests=[controller_rbac_manifest(workdir)],
        controller_permissions=CONTROLLER_PERMISSIONS,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def admin_client(cluster: KubeTestCluster) -> Client:
    return Client(KubeConfig.from_file(cluster.admin_kubeconfig), field_manager=FIELD_MANAGER)


def gloo_service(ports: GlooPorts, namespace: str = GLOO_SYSTEM) -> Service:
    """The Service Gloo looks itself up by in Kubernetes mode (headless: no cluster IP is allocated)."""
    return Service(
        metadata=ObjectMeta(name=GLOO_SERVICE, namespace=namespace, labels=dict(GLOO_SERVICE_LABELS)),
        spec=ServiceSpec(
            clusterIP="None",
            ports=[ServicePort(name=GLOO_XDS_PORT_NAME, port=ports.xds, targetPort=ports.xds, protocol="TCP")],
        ),
    )


def wait_for_fixed_ports(timeout: float = 180.0, interval: float = 1.0) -> None:
    """Wait until no other Gloo holds the fixed liveness/admin ports (another engineer's short run)."""
    deadline = time.monotonic() + timeout
    while busy := fixed_ports_in_use():
        if time.monotonic() > deadline:
            raise RuntimeError(f"port(s) {busy} still in use after {timeout:.0f}s: another Gloo is running")
        time.sleep(interval)


@dataclass(frozen=True)
class KubeGloo:
    """A running Gloo reading its Settings and every resource from the test API server."""

    process: ManagedProcess
    ports: GlooPorts
    cluster: KubeTestCluster
    settings: Mapping[str, Any]

    @property
    def xds_port(self) -> int:
        return self.ports.xds


@contextlib.contextmanager
def start_gloo_kube(
    binary: Path,
    cluster: KubeTestCluster,
    work_dir: Path,
    *,
    refresh_rate: str = "1s",
    timeout: float = 120.0,
) -> Iterator[KubeGloo]:
    """Create Gloo's Settings and Service in gloo-system, start Gloo (as admin) against the cluster, wait until its
    xDS and validation servers listen, yield it, and stop it also when the block raises."""
    ports = GlooPorts.free()
    settings = kube_settings(ports, refresh_rate=refresh_rate)
    client = admin_client(cluster)
    try:
        client.apply(SettingsCR.from_dict(settings), force=True)
        client.apply(gloo_service(ports), force=True)
    finally:
        client.close()
    work_dir.mkdir(parents=True, exist_ok=True)
    wait_for_fixed_ports()
    process = gloo_kube_process(binary, cluster.admin_kubeconfig, work_dir / "gloo.log", cwd=work_dir)
    process.start()
    try:
        process.wait_ready(gloo_ready(ports), timeout)
        yield KubeGloo(process=process, ports=ports, cluster=cluster, settings=settings)
    finally:
        process.stop()


def static_upstream_cr(name: str, port: int, namespace: str = GLOO_SYSTEM, host: str = "127.0.0.1") -> Any:
    """An Upstream CR with one static host (loopback: the API server refuses loopback in Endpoints)."""
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"static": {"hosts": [{"addr": host, "port": port}]}},
        }
    )


def delete_upstream(client: Client, name: str, namespace: str = GLOO_SYSTEM) -> None:
    with contextlib.suppress(ApiError):
        client.delete(UpstreamCR, name, namespace=namespace)


def proxy_status(client: Client, name: str, namespace: str = GLOO_SYSTEM, reporter: str = GLOO_SYSTEM) -> Any:
    """`status.statuses.<reporter>` of the Proxy CR as the API server stores it (None while absent)."""
    try:
        proxy: Any = client.get(ProxyCR, name, namespace=namespace)  # a generic resource: untyped to_dict()
        raw: dict[str, Any] = proxy.to_dict()
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise
    status = raw.get("status")
    statuses = status.get("statuses") if isinstance(status, dict) else None
    return statuses.get(reporter) if isinstance(statuses, dict) else None


def wait_for_proxy_state(
    client: Client,
    name: str,
    expected: tuple[int | str, ...] = (1, "Accepted"),
    *,
    namespace: str = GLOO_SYSTEM,
    timeout: float = 60.0,
    alive: Callable[[], bool] | None = None,
) -> Any:
    """Poll the Proxy CR until Gloo's `state` is one of `expected` (1 = Accepted); the status it found."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = proxy_status(client, name, namespace)
        if isinstance(last, dict) and last.get("state") in expected:
            return last
        if alive is not None and not alive():
            raise RuntimeError(f"Gloo exited while waiting for a verdict on Proxy {namespace}/{name} (last: {last})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Proxy {namespace}/{name}: no state in {expected} after {timeout:.0f}s (last: {last})")
        time.sleep(0.2)
