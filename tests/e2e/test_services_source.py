"""Services as a source, proven on the test API server with the real Gloo in Kubernetes mode (no discovery: no
Upstream is made for the Service) and a real Envoy: a Service whose endpoint is the petstore in a
network-namespace test host (the API server refuses loopback endpoints) is routed by the seed's curl
(`Host: default-petstore-8080`) through Gloo's `kube` destination; an Upstream of the same Service wins (its
route answers, the Service port's does not); deleting the Service removes its route. The controller runs as
its own service account under the RBAC `proxycontroller manifests` renders for `sources: [upstreams, services]`.

Gloo 1.22.1 resolves a `kube` destination from core/v1 Endpoints (projects/gloo/pkg/plugins/kubernetes/eds.go
lists Endpoints, not EndpointSlices); the testbin has no controller-manager, so they are written by hand."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.codecs import from_dict
from lightkube.resources.core_v1 import Endpoints, Service

from proxycontroller.config import ControllerConfig
from proxycontroller.install.manifests import render_rbac
from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.netns import NamespaceHost, NetnsError, namespace_host
from proxycontroller.testing.servers.petstore import NAME_HEADER, PETS_BODY, PETS_PATH, petstore_process
from proxycontroller.testing.servers.processes import ManagedProcess, free_port, http_ready, running
from proxycontroller.testing.servers.traffic import answer, get, wait_for_status
from tests.e2e.kube_fixtures import KubeGloo, ProxyCR, UpstreamCR, wait_for_proxy_state

pytestmark = pytest.mark.e2e

PROXY = "my-cool-proxy"
NAMESPACE = "default"
SERVICE = "petstore"
HOST = "default-petstore-8080"  # the seed's curl: the name Gloo's discovery would give the Upstream
UPSTREAM = "petstore-upstream"
OTHER = "shop"
OTHER_HOST = "default-shop-8080"
PETSTORE_PORT = 8080  # inside the test host's own network namespace: free
SOURCES = ("upstreams", "services")


@pytest.fixture(scope="module")
def test_host() -> Iterator[NamespaceHost]:
    try:
        with namespace_host() as host:
            yield host
    except NetnsError as error:
        pytest.fail(f"cannot make the test host's network namespace: {error}", pytrace=False)


@pytest.fixture(scope="module")
def petstore_in_host(test_host: NamespaceHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The petstore (named `netns`, in NAME_HEADER) listening on the test host's address; yields that address."""
    inner = petstore_process(
        tmp_path_factory.mktemp("petstore") / "petstore.log", PETSTORE_PORT, test_host.address, "netns"
    )
    process = ManagedProcess("petstore", test_host.command(inner.args), inner.log_path, env=inner.env)
    with running(process, http_ready(f"http://{test_host.address}:{PETSTORE_PORT}{PETS_PATH}"), timeout=60):
        yield test_host.address


def service_objects(address: str, name: str = SERVICE) -> list[dict[str, Any]]:
    """A Service without selector (Gloo would look its pods up otherwise) and its Endpoints, by hand."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": PETSTORE_PORT, "protocol": "TCP"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "http", "port": PETSTORE_PORT}]}],
        },
    ]


def kube_upstream_cr() -> Any:
    """An Upstream of the same Service port (as Gloo's discovery would write one, under another name)."""
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": UPSTREAM, "namespace": NAMESPACE},
            "spec": {"kube": {"serviceName": SERVICE, "serviceNamespace": NAMESPACE, "servicePort": 8080}},
        }
    )


def routes_of(admin: Client) -> dict[str, Any]:
    """Each virtual host's name and its one route's destination, as the controller wrote them."""

    proxy: Any = admin.get(ProxyCR, PROXY, namespace="gloo-system")
    spec = proxy.to_dict()["spec"]
    hosts = spec["listeners"][0]["httpListener"].get("virtualHosts") or []
    return {h["name"]: h["routes"][0]["routeAction"]["single"] for h in hosts}


def test_a_service_is_routed_through_gloos_kube_destination_and_an_upstream_of_it_wins(
    kube_gloo: KubeGloo, admin: Client, petstore_in_host: str, tmp_path: Path
) -> None:
    config = ControllerConfig.model_validate({"namespaces": ["*"], "sources": list(SOURCES)})
    for obj in render_rbac(config):  # the RBAC the renderer derives from sources: services too
        admin.apply(from_dict(obj), force=True)
    # A second Service stays all along: Gloo serves no listener without a virtual host (no 404 to see then).
    for obj in [*service_objects(petstore_in_host), *service_objects(petstore_in_host, OTHER)]:
        admin.apply(from_dict(obj), force=True)
    listener_port = free_port()
    controller_config = {
        "namespaces": [NAMESPACE],
        "sources": list(SOURCES),
        # The API server's own Service default/kubernetes would be routed too: excluded by its target's name.
        "proxies": [
            {
                "exclude": ["default-kubernetes-*"],
                "listeners": [{"bindAddress": "127.0.0.1", "bindPort": listener_port}],
            }
        ],
    }
    url = f"http://127.0.0.1:{listener_port}{PETS_PATH}"
    backend = ["--kubeconfig", str(kube_gloo.cluster.controller_kubeconfig)]

    with controller_process(tmp_path / "controller", backend, controller_config) as (controller, _):

        def logs(*more: tuple[str, str]) -> str:
            parts = [("gloo", kube_gloo.process.log_tail()), ("controller", controller.log_tail()), *more]
            return "".join(f"\n--- {name}:\n{tail}" for name, tail in parts)

        try:
            wait_for_proxy_state(admin, PROXY, (1, "Accepted"), timeout=60, alive=kube_gloo.process.running)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}{logs()}") from None
        assert routes_of(admin) == {
            HOST: {"kube": {"ref": {"name": SERVICE, "namespace": NAMESPACE}, "port": 8080}},
            OTHER_HOST: {"kube": {"ref": {"name": OTHER, "namespace": NAMESPACE}, "port": 8080}},
        }

        with start_envoy(tmp_path / "envoy", xds_port=kube_gloo.xds_port, proxy_name=PROXY) as envoy:
            try:
                # The seed's curl, to a Service: no Upstream exists.
                assert wait_for_status(url, HOST, 200, timeout=90) == PETS_BODY
                assert answer(url, HOST).header(NAME_HEADER) == "netns"  # the petstore in the test host
                assert get(url, "unknown.example")[0] == 404

                # An Upstream of the same Service port appears: it wins. Its route answers, the Service's goes.
                admin.create(kube_upstream_cr())
                assert wait_for_status(url, UPSTREAM, 200, timeout=60) == PETS_BODY
                wait_for_status(url, HOST, 404, timeout=60)
                assert set(routes_of(admin)) == {UPSTREAM, OTHER_HOST}
                assert "Upstream default/petstore-upstream routes the same service" in controller.log_tail(200)

                # It goes: the Service is routed again.
                admin.delete(UpstreamCR, UPSTREAM, namespace=NAMESPACE)
                assert wait_for_status(url, HOST, 200, timeout=60) == PETS_BODY
                wait_for_status(url, UPSTREAM, 404, timeout=60)

                # The Service goes: its route goes.
                admin.delete(Service, SERVICE, namespace=NAMESPACE)
                wait_for_status(url, HOST, 404, timeout=60)
                assert set(routes_of(admin)) == {OTHER_HOST}
                assert get(url, OTHER_HOST)[0] == 200
            except AssertionError as error:
                raise AssertionError(f"{error}{logs(('envoy', envoy.process.log_tail()))}") from None
            finally:
                with contextlib.suppress(ApiError):
                    admin.delete(UpstreamCR, UPSTREAM, namespace=NAMESPACE)
                for name in (SERVICE, OTHER):
                    with contextlib.suppress(ApiError):
                        admin.delete(Service, name, namespace=NAMESPACE)
                    with contextlib.suppress(ApiError):
                        admin.delete(Endpoints, name, namespace=NAMESPACE)
        assert controller.running(), controller.log_tail()
