"""The seed's proof in Kubernetes mode: Upstreams are CRs on a real kube-apiserver, `proxycontroller run
--kubeconfig` (as its own service account, under the rendered RBAC) writes the Proxy CR, the real Gloo (run outside
the cluster against the same API server) accepts it and serves it to a real Envoy, and
`curl -H "Host: default-petstore-8080"` returns the pets. Every process listens on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import Client

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import get, wait_for_status
from tests.e2e.kube_fixtures import (
    KubeGloo,
    delete_upstream,
    static_upstream_cr,
    wait_for_proxy_state,
)

pytestmark = pytest.mark.e2e

PROXY = "my-cool-proxy"
PETSTORE = "default-petstore-8080"
SECOND = "default-petstore2-8080"
ACCEPTED = (1, "Accepted")


def test_the_seeds_curl_through_kubernetes_gloo_and_envoy(
    kube_gloo: KubeGloo, admin: Client, petstore_port: int, tmp_path: Path
) -> None:
    cluster = kube_gloo.cluster
    admin.create(static_upstream_cr(PETSTORE, petstore_port))
    listener_port = free_port()
    config = {"listener": {"bindAddress": "127.0.0.1", "bindPort": listener_port}}
    url = f"http://127.0.0.1:{listener_port}/api/pets"
    backend = ["--kubeconfig", str(cluster.controller_kubeconfig)]

    def logs(*extra: tuple[str, str]) -> str:
        parts = [("gloo", kube_gloo.process.log_tail()), *extra]
        return "".join(f"\n--- {name}:\n{tail}" for name, tail in parts)

    with controller_process(tmp_path / "controller", backend, config) as (controller, _):
        try:
            verdict = wait_for_proxy_state(admin, PROXY, ACCEPTED, timeout=60, alive=kube_gloo.process.running)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}{logs(('controller', controller.log_tail()))}") from None
        assert verdict.get("reportedBy") == "gloo", verdict

        with start_envoy(tmp_path / "envoy", xds_port=kube_gloo.xds_port, proxy_name=PROXY) as envoy:
            try:
                assert wait_for_status(url, PETSTORE, 200, timeout=60) == PETS_BODY
                assert get(url, "unknown.example")[0] == 404

                # A second upstream appears: its route appears. The first goes: its route goes.
                admin.create(static_upstream_cr(SECOND, petstore_port))
                assert wait_for_status(url, SECOND, 200, timeout=60) == PETS_BODY
                delete_upstream(admin, PETSTORE)
                wait_for_status(url, PETSTORE, 404, timeout=60)
                assert get(url, SECOND)[0] == 200
            except AssertionError as error:
                raise AssertionError(
                    f"{error}{logs(('controller', controller.log_tail()), ('envoy', envoy.process.log_tail()))}"
                ) from None
        assert controller.running(), controller.log_tail()
    final = wait_for_proxy_state(admin, PROXY, ACCEPTED, timeout=30, alive=kube_gloo.process.running)
    assert final.get("state") in ACCEPTED
