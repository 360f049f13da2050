"""Host routing with templates through the real Gloo and a real Envoy (directory mode): domains made from an
upstream's labels and namespace, plus the domains its owner lists in `proxycontroller.io/domains`, each reaching
that upstream's backend; an upstream the template cannot name (no such label) is left out while the others answer."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.gloo import GLOO_SYSTEM, Gloo
from proxycontroller.testing.servers.petstore import start_petstore
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.translate.annotations import DOMAINS_ANNOTATION
from tests.e2e.conftest import run_with_fresh_gloo, wait_until_gloo_accepts
from tests.e2e.envoys import LOOPBACK, named_static_upstream, serve

pytestmark = pytest.mark.e2e

PROXY = "my-cool-proxy"
TEMPLATES = ["{label[app]}.{namespace}.example.com", "{name}.{label[team]}.internal"]


def templates_config(port: int) -> dict[str, Any]:
    strategy = {"kind": "host-header", "options": {"domainTemplates": TEMPLATES}}
    listener = {"name": "http", "bindAddress": LOOPBACK, "bindPort": port, "strategies": [strategy]}
    return {"proxies": [{"name": PROXY, "namespace": GLOO_SYSTEM, "listeners": [listener]}]}


def test_domains_from_labels_namespace_and_the_domains_annotation_reach_their_upstream(
    gloo_binary: Path, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, templated_hosts)


def templated_hosts(gloo: Gloo, work_dir: Path) -> None:
    upstreams = {
        "default-petstore-8080": {
            "labels": {"app": "pets", "team": "zoo"},
            "annotations": {DOMAINS_ANNOTATION: "shop.example.org, pets.example.net"},
        },
        "default-reviews-9080": {"labels": {"app": "reviews", "team": "books"}},
        "unlabelled": {"labels": {"team": "none"}},  # no app label: the first template cannot name it
    }
    with contextlib.ExitStack() as stack:
        for name, metadata in upstreams.items():
            _, backend_port = stack.enter_context(start_petstore(work_dir / "backends", name=name))
            gloo.tree.write("upstreams", named_static_upstream(name, GLOO_SYSTEM, backend_port, **metadata))
        port = free_port()
        backend = ["--config-dir", str(gloo.tree.config_dir)]
        controller, _ = stack.enter_context(
            controller_process(work_dir / "controller", backend, templates_config(port))
        )
        wait_until_gloo_accepts(gloo, controller, PROXY)
        served = serve(stack, gloo, work_dir, PROXY, port)
        try:
            served.wait_until_served_by("pets.gloo-system.example.com", "default-petstore-8080")
            for host in ("default-petstore-8080.zoo.internal", "shop.example.org", "pets.example.net"):
                served.wait_until_served_by(host, "default-petstore-8080", timeout=5)
            for host in ("reviews.gloo-system.example.com", "default-reviews-9080.books.internal"):
                served.wait_until_served_by(host, "default-reviews-9080", timeout=5)
            # The templates replace the seed's bare name; the upstream without the label has no virtual host.
            for host in ("default-petstore-8080", "unlabelled", "unlabelled.none.internal", "shop.example.com"):
                served.assert_not_routed(host)
            assert "left out Upstream gloo-system/unlabelled: " in controller.log_tail(200)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- controller:\n{controller.log_tail()}{served.logs()}") from None
        assert controller.running(), controller.log_tail()
