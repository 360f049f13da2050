"""Run the Envoy of a kgateway Gateway ourselves, in the test host's network namespace, as its pod would run it.

kgateway binds every Gateway listener to 0.0.0.0 (its listener translator hard-codes it: in a pod that is the
pod's own network). So this Envoy runs inside the network namespace of `netns.py`, where 0.0.0.0 means that
namespace's loopback and its veth address, reachable from this machine only. It reaches kgateway's xDS server,
and we reach its admin interface, through Unix sockets in the file system (not bound to any network). The
bootstrap is the one kgateway's deployer renders into the proxy's ConfigMap (pkg/kgateway/helm/envoy), reduced
to what a self-managed Envoy needs: the node's `role` names the Gateway, `cluster` and the local cluster are
"<gateway>.<namespace>", and everything else comes over one ADS stream.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxycontroller.install.envoy import ads_config_source, ads_dynamic_resources, xds_cluster
from proxycontroller.testing.servers.envoy import envoy_args, parse_config_dump, ready_check
from proxycontroller.testing.servers.kgateway import proxy_role
from proxycontroller.testing.servers.netns import NamespaceHost
from proxycontroller.testing.servers.processes import ManagedProcess, running


def gateway_envoy_bootstrap(
    *, gateway_name: str, gateway_namespace: str, xds_socket: Path, admin_socket: Path
) -> dict[str, Any]:
    local_cluster = f"{gateway_name}.{gateway_namespace}"
    return {
        "node": {
            "id": local_cluster,
            "cluster": local_cluster,
            "metadata": {"role": proxy_role(gateway_name, gateway_namespace)},
        },
        "cluster_manager": {"local_cluster_name": local_cluster},
        "layered_runtime": {
            "layers": [
                {"name": "static_layer", "static_layer": {"envoy.restart_features.use_eds_cache_for_ads": True}},
                {"name": "admin_layer", "admin_layer": {}},
            ]
        },
        "static_resources": {
            "clusters": [
                {
                    "name": local_cluster,
                    "connect_timeout": "0.25s",
                    "type": "EDS",
                    "eds_cluster_config": {"eds_config": ads_config_source(initial_fetch_timeout="1s")},
                },
                xds_cluster({"pipe": {"path": str(xds_socket)}}),
            ]
        },
        "dynamic_resources": ads_dynamic_resources(initial_fetch_timeout="0s"),
        "admin": {"address": {"pipe": {"path": str(admin_socket)}}},
    }


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def admin_get(admin_socket: Path, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET an Envoy admin endpoint over its Unix socket; (status, body)."""
    connection = _UnixHTTPConnection(admin_socket, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass(frozen=True)
class GatewayEnvoy:
    process: ManagedProcess
    admin_socket: Path
    host: NamespaceHost

    def url(self, port: int, path: str = "/") -> str:
        """A URL on this Envoy's listener `port` (at the namespace's address; reachable only from this machine)."""
        return f"http://{self.host.address}:{port}{path}"

    def config_dump(self) -> dict[str, Any]:
        return parse_config_dump(*admin_get(self.admin_socket, "/config_dump"))


@contextlib.contextmanager
def start_gateway_envoy(
    envoy_binary: Path,
    host: NamespaceHost,
    work_dir: Path,
    *,
    gateway_name: str,
    gateway_namespace: str,
    xds_socket: Path,
    timeout: float = 60.0,
) -> Iterator[GatewayEnvoy]:
    """Start Envoy for the Gateway inside `host`'s namespace, wait for admin `/ready`, stop it on exit."""
    work_dir.mkdir(parents=True, exist_ok=True)
    admin_socket = work_dir / f"envoy-{gateway_namespace}-{gateway_name}-admin.sock"
    admin_socket.unlink(missing_ok=True)
    bootstrap_path = work_dir / f"envoy-{gateway_namespace}-{gateway_name}.json"
    bootstrap = gateway_envoy_bootstrap(
        gateway_name=gateway_name, gateway_namespace=gateway_namespace, xds_socket=xds_socket, admin_socket=admin_socket
    )
    bootstrap_path.write_text(json.dumps(bootstrap, indent=2))
    args = host.command(envoy_args(envoy_binary, bootstrap_path))
    process = ManagedProcess(name="envoy", args=args, log_path=work_dir / f"envoy-{gateway_name}.log")
    with running(process, ready_check(lambda: admin_get(admin_socket, "/ready", timeout=1.0)), timeout):
        yield GatewayEnvoy(process=process, admin_socket=admin_socket, host=host)
