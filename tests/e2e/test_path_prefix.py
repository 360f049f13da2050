"""Routing by path prefix through the real Gloo and a real Envoy (directory mode): `/<upstream name>/...` reaches
that upstream with the prefix removed, as the petstore that answers reports the path it received."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.gloo import GLOO_SYSTEM, Gloo
from proxycontroller.testing.servers.petstore import NAME_HEADER, PATH_HEADER, PETS_BODY, PETS_PATH, start_petstore
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import Answer, answer, wait_for_answer
from tests.e2e.conftest import run_with_fresh_gloo, wait_until_gloo_accepts
from tests.e2e.envoys import LOOPBACK, named_static_upstream

pytestmark = pytest.mark.e2e

PETSTORE = "default-petstore-8080"
NEIGHBOUR = "default-petstore2-8080"
PROXY = "my-cool-proxy"


def path_prefix_config(port: int) -> dict[str, Any]:
    listener = {"name": "by-path", "bindAddress": LOOPBACK, "bindPort": port, "strategies": [{"kind": "path-prefix"}]}
    return {"proxies": [{"name": PROXY, "namespace": GLOO_SYSTEM, "listeners": [listener]}]}


def seen(got: Answer) -> tuple[int, str | None, str | None]:
    """Status, the backend that answered and the path it received (None, None: Envoy answered itself)."""
    return got.status, got.header(NAME_HEADER), got.header(PATH_HEADER)


def test_the_upstream_name_as_path_prefix_is_removed_before_the_petstore_sees_the_path(
    gloo_binary: Path, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, strips_the_prefix)


def strips_the_prefix(gloo: Gloo, work_dir: Path) -> None:
    with contextlib.ExitStack() as stack:
        for name in (PETSTORE, NEIGHBOUR):
            _, backend_port = stack.enter_context(start_petstore(work_dir / "backends", name=name))
            gloo.tree.write("upstreams", named_static_upstream(name, GLOO_SYSTEM, backend_port))
        port = free_port()
        backend = ["--config-dir", str(gloo.tree.config_dir)]
        controller, _ = stack.enter_context(
            controller_process(work_dir / "controller", backend, path_prefix_config(port))
        )
        wait_until_gloo_accepts(gloo, controller, PROXY)
        envoy = stack.enter_context(start_envoy(work_dir / "envoy", xds_port=gloo.xds_port, proxy_name=PROXY))
        base = f"http://{LOOPBACK}:{port}"
        try:
            # The curl: no Host header to choose (the catch-all virtual host), the path chooses.
            pets = wait_for_answer(f"{base}/{PETSTORE}/api/pets", None, 200, timeout=60)
            assert pets.body == PETS_BODY
            assert seen(pets) == (200, PETSTORE, PETS_PATH)
            assert seen(answer(f"{base}/{NEIGHBOUR}/api/pets?x=1")) == (200, NEIGHBOUR, PETS_PATH)
            # The prefix is removed once, and only the prefix: what follows reaches the petstore as sent.
            assert seen(answer(f"{base}/{PETSTORE}/{PETSTORE}/api/pets")) == (404, PETSTORE, f"/{PETSTORE}/api/pets")
            assert seen(answer(f"{base}/{PETSTORE}/")) == (404, PETSTORE, "/")
            # No upstream of that name, or no prefix at all: Envoy's own 404.
            assert seen(answer(f"{base}/unknown/api/pets")) == (404, None, None)
            assert seen(answer(f"{base}/api/pets")) == (404, None, None)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- controller:\n{controller.log_tail()}\n--- envoy:\n{envoy.process.log_tail()}"
            ) from None
        assert controller.running(), controller.log_tail()
