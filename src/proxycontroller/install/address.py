"""`proxycontroller url`: the address of a Proxy's Envoy, from its Service and the cluster's Nodes, as
`glooctl proxy url` finds it.

In order: the load balancer's ingress (IP, else host name) and the Service port; else a node's address
(ExternalIP, else InternalIP: nodes in name order, the first that has one) and the node port; else the cluster
IP and the Service port, which only the cluster's own network reaches (the caller says so). The scheme is https
for a TLS listener (a port `proxycontroller manifests` names `https-<port>`, or one with appProtocol https).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

NODE_ADDRESS_TYPES = ("ExternalIP", "InternalIP")


class AddressError(ValueError):
    """The Service cannot give an address; one line naming it."""


class PortNotFound(AddressError):
    """The port asked for is not one of the Service's."""


@dataclass(frozen=True)
class EnvoyAddress:
    url: str
    # Set when the address is not reachable from everywhere: said on stderr, not printed with the URL.
    note: str | None = None


def _host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:  # a host name
        return host


def _choose_port(service: dict[str, Any], port: int | None, where: str) -> dict[str, Any]:
    ports: list[dict[str, Any]] = (service.get("spec") or {}).get("ports") or []
    if not ports:
        raise AddressError(f"Service {where} has no ports")
    if port is None:
        return ports[0]
    for candidate in ports:
        if candidate.get("port") == port:
            return candidate
    known = ", ".join(str(candidate.get("port")) for candidate in ports)
    raise PortNotFound(f"Service {where} has no port {port} (its ports: {known})")


def _scheme(port: dict[str, Any]) -> str:
    name = str(port.get("name") or "")
    tls = name == "https" or name.startswith("https-") or port.get("appProtocol") == "https"
    return "https" if tls else "http"


def _node_address(nodes: list[dict[str, Any]]) -> str | None:
    ordered = sorted(nodes, key=lambda node: str((node.get("metadata") or {}).get("name") or ""))
    for kind in NODE_ADDRESS_TYPES:
        for node in ordered:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == kind and address.get("address"):
                    return str(address["address"])
    return None


def envoy_address(service: dict[str, Any], nodes: list[dict[str, Any]], port: int | None = None) -> EnvoyAddress:
    """The URL of `service` (a Service as the API returns it) for `port` (a Service port; None: its first);
    `nodes`: the cluster's Nodes (only read for a node port). AddressError if there is none."""
    meta = service.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    spec = service.get("spec") or {}
    chosen = _choose_port(service, port, where)
    scheme = _scheme(chosen)
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in ingress:
        host = entry.get("ip") or entry.get("hostname")
        if host:
            return EnvoyAddress(f"{scheme}://{_host(str(host))}:{chosen['port']}")
    pending = " (its load balancer has no address yet)" if spec.get("type") == "LoadBalancer" else ""
    node_port = chosen.get("nodePort")
    if node_port:
        node = _node_address(nodes)
        if node is not None:
            return EnvoyAddress(f"{scheme}://{_host(node)}:{node_port}")
        pending += " (no Node has an ExternalIP or InternalIP for its node port)"
    cluster_ip = spec.get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        raise AddressError(f"Service {where} has no address{pending}: no load balancer, node port or cluster IP")
    url = f"{scheme}://{_host(str(cluster_ip))}:{chosen['port']}"
    return EnvoyAddress(url, f"Service {where}{pending}: {url} is its cluster IP, reachable only inside the cluster")
