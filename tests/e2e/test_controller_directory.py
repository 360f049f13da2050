"""The seed's proof, in Gloo's directory mode: the controller writes the Proxy, the real Gloo accepts it and
serves it to a real Envoy, and `curl -H "Host: default-petstore-8080"` returns the pets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.gloo import Gloo, ProxyState, wait_for_proxy_status
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import get, wait_for_status
from tests.e2e.conftest import controller_serving, run_with_fresh_gloo

pytestmark = pytest.mark.e2e

PETSTORE = "default-petstore-8080"
SECOND = "default-petstore2-8080"


def static_upstream(name: str, port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "gloo-system"},
        "static": {"hosts": [{"addr": "127.0.0.1", "port": port}]},
    }


def test_the_seeds_curl_through_real_gloo_and_envoy(gloo_binary: Path, petstore_port: int, tmp_path: Path) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, lambda gloo, root: seeds_curl(gloo, petstore_port, root))


def seeds_curl(gloo: Gloo, petstore_port: int, tmp_path: Path) -> None:
    gloo.tree.write("upstreams", static_upstream(PETSTORE, petstore_port))
    listener_port = free_port()
    config = {"listener": {"bindAddress": "127.0.0.1", "bindPort": listener_port}}
    url = f"http://127.0.0.1:{listener_port}/api/pets"
    proxy_file = gloo.tree.proxy_path("my-cool-proxy")
    with controller_serving(gloo, tmp_path, config) as (_, _, verdict):
        assert verdict.reported_by == "gloo"
        assert wait_for_status(url, PETSTORE, 200, timeout=60) == PETS_BODY
        assert get(url, "unknown.example")[0] == 404

        # A second upstream appears: its route appears. The first goes: its route goes.
        gloo.tree.write("upstreams", static_upstream(SECOND, petstore_port))
        assert wait_for_status(url, SECOND, 200, timeout=60) == PETS_BODY
        gloo.tree.upstream_path(PETSTORE).unlink()
        wait_for_status(url, PETSTORE, 404, timeout=60)
        assert get(url, SECOND)[0] == 200
    final = wait_for_proxy_status(proxy_file, states=(ProxyState.ACCEPTED,), timeout=30)
    assert final.state is ProxyState.ACCEPTED
