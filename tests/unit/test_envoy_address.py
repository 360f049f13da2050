"""`proxycontroller url`'s choice of address, on Services as the API returns them (the same cases against the real
API server: tests/kube/test_url.py)."""

from __future__ import annotations

from typing import Any

import pytest

from proxycontroller.install.address import AddressError, PortNotFound, envoy_address


def service(kind: str, ports: list[dict[str, Any]], ingress: list[dict[str, str]] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "metadata": {"name": "my-cool-proxy", "namespace": "gloo-system"},
        "spec": {"type": kind, "clusterIP": "10.0.0.7", "ports": ports},
    }
    if ingress is not None:
        found["status"] = {"loadBalancer": {"ingress": ingress}}
    return found


def node(name: str, **addresses: str) -> dict[str, Any]:
    listed = [{"type": kind, "address": value} for kind, value in addresses.items()]
    return {"metadata": {"name": name}, "status": {"addresses": listed}}


HTTP = {"name": "http-8080", "port": 8080, "nodePort": 30080}
HTTPS = {"name": "https-8443", "port": 8443, "nodePort": 30443}


def test_load_balancer_ingress_ip_then_hostname() -> None:
    assert envoy_address(service("LoadBalancer", [HTTP], [{"ip": "203.0.113.9"}]), []).url == "http://203.0.113.9:8080"
    named = service("LoadBalancer", [HTTP], [{"hostname": "lb.example.com"}])
    assert envoy_address(named, []).url == "http://lb.example.com:8080"
    v6 = envoy_address(service("LoadBalancer", [HTTP, HTTPS], [{"ip": "2001:db8::1"}]), [], 8443)
    assert (v6.url, v6.note) == ("https://[2001:db8::1]:8443", None)


def test_node_port_on_an_external_address_before_an_internal_one() -> None:
    nodes = [node("a", InternalIP="192.168.0.1"), node("b", InternalIP="192.168.0.2", ExternalIP="198.51.100.2")]
    assert envoy_address(service("NodePort", [HTTP]), nodes).url == "http://198.51.100.2:30080"
    assert envoy_address(service("NodePort", [HTTP]), nodes[:1]).url == "http://192.168.0.1:30080"
    # A load balancer without an address yet: its node port.
    assert envoy_address(service("LoadBalancer", [HTTP], []), nodes[:1]).url == "http://192.168.0.1:30080"


def test_cluster_ip_with_a_note_that_only_the_cluster_reaches_it() -> None:
    address = envoy_address(service("ClusterIP", [{"name": "http-8080", "port": 8080}]), [])
    assert address.url == "http://10.0.0.7:8080"
    assert address.note is not None
    assert "reachable only inside the cluster" in address.note
    # A node port, but no node has an address: the cluster IP, and why.
    fallback = envoy_address(service("NodePort", [HTTP]), [node("a")])
    assert fallback.url == "http://10.0.0.7:8080"
    assert fallback.note is not None
    assert "no Node has an ExternalIP or InternalIP" in fallback.note


def test_a_port_that_is_not_there_and_a_headless_service_are_errors() -> None:
    with pytest.raises(PortNotFound, match=r"Service gloo-system/my-cool-proxy has no port 9090 \(its ports: 8080\)"):
        envoy_address(service("ClusterIP", [HTTP]), [], 9090)
    headless = service("ClusterIP", [{"name": "http-8080", "port": 8080}])
    headless["spec"]["clusterIP"] = "None"
    with pytest.raises(AddressError, match="has no address"):
        envoy_address(headless, [])
