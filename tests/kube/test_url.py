"""`proxycontroller url` against the real API server: Services of type LoadBalancer (the test writes the load
balancer's address into the status, as a cloud controller would), NodePort (with a Node object the test registers,
as a kubelet would) and ClusterIP, and its one-line errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Service
from lightkube.types import PatchType

from proxycontroller.testing.servers.apiserver import KubeTestCluster

NAMESPACE = "url-tests"
NODE = "url-test-node"


def url(cluster: KubeTestCluster, *args: str, namespace: str | None = NAMESPACE) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "proxycontroller"
    where = ["-n", namespace] if namespace is not None else []
    return subprocess.run(
        [str(script), "url", "--kubeconfig", str(cluster.admin_kubeconfig), *where, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def envoy_service(name: str, kind: str, ports: list[tuple[str, int]]) -> Service:
    return Service(
        metadata=ObjectMeta(name=name, namespace=NAMESPACE),
        spec=ServiceSpec(
            type=kind,
            selector={"gloo": name},
            ports=[ServicePort(name=port_name, port=port, protocol="TCP") for port_name, port in ports],
        ),
    )


@pytest.fixture(scope="module")
def services(kube_cluster: KubeTestCluster) -> Iterator[dict[str, Any]]:
    """The three kinds of Service (and a Node), created as `proxycontroller manifests` names their ports; removed
    afterwards (the API server is shared by the session)."""
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="url-tests")
    created: dict[str, Any] = {}
    try:
        admin.apply(Namespace(metadata=ObjectMeta(name=NAMESPACE)), force=True)
        lb = admin.create(envoy_service("lb-proxy", "LoadBalancer", [("http-8080", 8080), ("https-8443", 8443)]))
        admin.patch(
            Service.Status,
            "lb-proxy",
            {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}},
            namespace=NAMESPACE,
            patch_type=PatchType.MERGE,
        )
        created["lb"] = lb
        created["nodeport"] = admin.create(envoy_service("np-proxy", "NodePort", [("http-8080", 8080)]))
        created["clusterip"] = admin.create(envoy_service("ci-proxy", "ClusterIP", [("http-8080", 8080)]))
        admin.create(Node(metadata=ObjectMeta(name=NODE)))
        addresses = [{"type": "InternalIP", "address": "192.0.2.7"}, {"type": "Hostname", "address": NODE}]
        admin.patch(Node.Status, NODE, {"status": {"addresses": addresses}}, patch_type=PatchType.MERGE)
        yield created
    finally:
        for name in ("lb-proxy", "np-proxy", "ci-proxy"):
            with contextlib.suppress(ApiError):
                admin.delete(Service, name, namespace=NAMESPACE)
        with contextlib.suppress(ApiError):
            admin.delete(Node, NODE)
        admin.close()


def test_load_balancer_address_and_tls_port(kube_cluster: KubeTestCluster, services: dict[str, Any]) -> None:
    result = url(kube_cluster, "--proxy", "lb-proxy")
    assert (result.returncode, result.stdout, result.stderr) == (0, "http://203.0.113.10:8080\n", "")
    tls = url(kube_cluster, "--proxy", "lb-proxy", "--port", "8443")
    assert (tls.returncode, tls.stdout) == (0, "https://203.0.113.10:8443\n")


def test_the_namespace_from_the_configuration(
    kube_cluster: KubeTestCluster, services: dict[str, Any], tmp_path: Path
) -> None:
    """With --config, the Envoy is looked for where `manifests` put it (here deployment.envoy.namespace)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"proxies: [{{name: lb-proxy}}]\ndeployment: {{envoy: {{namespace: {NAMESPACE}}}}}\n")
    result = url(kube_cluster, "--config", str(config), "--proxy", "lb-proxy", namespace=None)
    assert (result.returncode, result.stdout, result.stderr) == (0, "http://203.0.113.10:8080\n", "")
    other = url(kube_cluster, "--config", str(config), "--proxy", "np-proxy", namespace=None)
    assert (other.returncode, other.stdout) == (2, "")
    assert other.stderr == f"error: {config}: no managed Proxy 'np-proxy' (its Proxies: lb-proxy)\n"


def test_node_port_on_the_nodes_address(kube_cluster: KubeTestCluster, services: dict[str, Any]) -> None:
    node_port = services["nodeport"].spec.ports[0].nodePort
    assert node_port  # allocated by the API server
    result = url(kube_cluster, "--proxy", "np-proxy")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"http://192.0.2.7:{node_port}\n", "")


def test_cluster_ip_with_a_note(kube_cluster: KubeTestCluster, services: dict[str, Any]) -> None:
    cluster_ip = services["clusterip"].spec.clusterIP
    result = url(kube_cluster, "--proxy", "ci-proxy")
    assert (result.returncode, result.stdout) == (0, f"http://{cluster_ip}:8080\n")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("note: ")
    assert "reachable only inside the cluster" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--proxy", "no-such-proxy"], 1, f"no Service {NAMESPACE}/no-such-proxy"),
        (["--proxy", "lb-proxy", "--port", "9999"], 2, f"Service {NAMESPACE}/lb-proxy has no port 9999"),
    ],
)
def test_errors_are_one_line(
    kube_cluster: KubeTestCluster, services: dict[str, Any], args: list[str], code: int, says: str
) -> None:
    result = url(kube_cluster, *args)
    assert result.returncode == code
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
