"""The harness itself, end to end: a Proxy file written by hand is read by the real Gloo (directory mode),
translated, served over xDS to a real Envoy, and traffic reaches the petstore; Gloo's verdict lands in the
Proxy file."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.gloo import GLOO_SYSTEM, Gloo, ProxyState, wait_for_proxy_status
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from tests.e2e.conftest import run_with_fresh_gloo

pytestmark = pytest.mark.e2e

UPSTREAM = "default-petstore-8080"
EXPECTED_PETS = [{"id": 1, "name": "Dog", "status": "available"}, {"id": 2, "name": "Cat", "status": "pending"}]


def static_upstream(name: str, port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": GLOO_SYSTEM},
        "static": {"hosts": [{"addr": "127.0.0.1", "port": port}]},
    }


def virtual_host(name: str, domains: list[str], upstream: str) -> dict[str, Any]:
    return {
        "name": name,
        "domains": domains,
        "routes": [
            {
                "matchers": [{"prefix": "/"}],
                "routeAction": {"single": {"upstream": {"name": upstream, "namespace": GLOO_SYSTEM}}},
            }
        ],
    }


def proxy(name: str, bind_port: int, virtual_hosts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": GLOO_SYSTEM},
        "listeners": [
            {
                "name": "http",
                "bindAddress": "127.0.0.1",
                "bindPort": bind_port,
                "httpListener": {"virtualHosts": virtual_hosts},
            }
        ],
    }


def get(url: str, host: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status), str(response.headers.get("Content-Type", "")), response.read()
    except urllib.error.HTTPError as error:
        return error.code, str(error.headers.get("Content-Type", "")), error.read()


def poll_get(url: str, host: str, timeout: float) -> tuple[int, str, bytes]:
    """GET until it answers 200 (Envoy learns the listener and cluster asynchronously over xDS)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = get(url, host)
            if last[0] == 200:
                return last
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.2)
    raise AssertionError(f"GET {url} (Host: {host}) never answered 200 within {timeout:.0f}s; last: {last!r}")


def test_traffic_flows_through_a_hand_written_proxy_file(gloo_binary: Path, petstore_port: int, tmp_path: Path) -> None:
    run_with_fresh_gloo(
        gloo_binary, tmp_path, lambda gloo, root: traffic_through_hand_written_proxy(gloo, petstore_port, root)
    )


def traffic_through_hand_written_proxy(gloo: Gloo, petstore_port: int, tmp_path: Path) -> None:
    gloo.tree.write("upstreams", static_upstream(UPSTREAM, petstore_port))
    listener_port = free_port()
    proxy_path = gloo.tree.write(
        "proxies", proxy("my-cool-proxy", listener_port, [virtual_host(UPSTREAM, [UPSTREAM], UPSTREAM)])
    )

    # Gloo reads Proxies straight from the directory but Upstreams through a polling watch, so its first
    # verdict may be a Warning (upstream not found yet); it converges to Accepted on the next sync.
    try:
        status = wait_for_proxy_status(
            proxy_path, states=(ProxyState.ACCEPTED,), timeout=60, alive=gloo.process.running
        )
    except TimeoutError as error:
        raise AssertionError(f"{error}\n--- gloo log:\n{gloo.process.log_tail()}") from None
    assert status.reported_by == "gloo"

    with start_envoy(tmp_path, xds_port=gloo.xds_port, proxy_name="my-cool-proxy") as envoy:
        try:
            code, content_type, body = poll_get(f"http://127.0.0.1:{listener_port}/api/pets", UPSTREAM, 60)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- envoy log:\n{envoy.process.log_tail()}\n--- gloo log:\n{gloo.process.log_tail()}"
            ) from None
        assert code == 200
        assert content_type.startswith("application/json")
        assert body == PETS_BODY
        assert json.loads(body) == EXPECTED_PETS

        # A domain the Proxy does not route gets Envoy's 404, not the petstore.
        code, _, _ = get(f"http://127.0.0.1:{listener_port}/api/pets", "unknown.example")
        assert code == 404

    # Gloo keeps the verdict in the file (it rewrites it; the spec we wrote is still there).
    final = wait_for_proxy_status(proxy_path, timeout=10)
    assert final.state is ProxyState.ACCEPTED


def test_duplicate_domain_across_virtual_hosts_is_rejected_with_a_reason(
    gloo_binary: Path, petstore_port: int, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, lambda gloo, _: duplicate_domain_is_rejected(gloo, petstore_port))


def duplicate_domain_is_rejected(gloo: Gloo, petstore_port: int) -> None:
    gloo.tree.write("upstreams", static_upstream(UPSTREAM, petstore_port))
    proxy_path = gloo.tree.write(
        "proxies",
        proxy(
            "duplicate-domain-proxy",
            free_port(),
            [
                virtual_host("first", ["pets.example.com"], UPSTREAM),
                virtual_host("second", ["pets.example.com"], UPSTREAM),
            ],
        ),
    )

    status = wait_for_proxy_status(proxy_path, timeout=60, alive=gloo.process.running)
    assert status.state is ProxyState.REJECTED, f"{status}\n{gloo.process.log_tail()}"
    assert "pets.example.com" in status.reason, status.reason
