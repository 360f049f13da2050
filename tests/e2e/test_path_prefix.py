"""Routing by path prefix through the real Gloo and a real Envoy (directory mode): `/<prefix>/...` and `/<prefix>`
reach the upstream with the prefix removed, as the petstore that answers reports the path it received; the prefix
is the upstream's name, a template's, or its owner's annotation, and the longest prefix wins. An upstream whose
owner opted out (`proxycontroller.io/expose: "false"`) gets Envoy's 404 while its neighbours answer."""

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
from proxycontroller.translate.annotations import PREFIX_ANNOTATION
from proxycontroller.translate.selection import EXPOSE_ANNOTATION
from tests.e2e.conftest import run_with_fresh_gloo, wait_until_gloo_accepts
from tests.e2e.envoys import LOOPBACK, named_static_upstream

pytestmark = pytest.mark.e2e

PETSTORE = "default-petstore-8080"
NEIGHBOUR = "default-petstore2-8080"
PETS = "pets"  # annotated prefix /pets
PETS_V2 = "pets-v2"  # annotated prefix /pets/v2: longer, so it wins for /pets/v2/...
HIDDEN = "hidden"  # annotated expose "false"
PROXY = "my-cool-proxy"
ANNOTATIONS = {
    PETS: {PREFIX_ANNOTATION: "/pets"},
    PETS_V2: {PREFIX_ANNOTATION: "/pets/v2"},
    HIDDEN: {EXPOSE_ANNOTATION: "false"},
}


def path_prefix_config(by_name: int, by_template: int) -> dict[str, Any]:
    """One listener with the defaults (prefix: the upstream's name, or its annotation), one whose prefix is a
    template of namespace and name, annotations ignored."""
    templated = {"prefixTemplate": "/{namespace}/{name}", "allowPrefixAnnotation": False}
    listeners = [
        {"name": "by-name", "bindAddress": LOOPBACK, "bindPort": by_name, "strategies": [{"kind": "path-prefix"}]},
        {
            "name": "by-template",
            "bindAddress": LOOPBACK,
            "bindPort": by_template,
            "strategies": [{"kind": "path-prefix", "options": templated}],
        },
    ]
    return {"proxies": [{"name": PROXY, "namespace": GLOO_SYSTEM, "listeners": listeners}]}


def seen(got: Answer) -> tuple[int, str | None, str | None]:
    """Status, the backend that answered and the path it received (None, None: Envoy answered itself)."""
    return got.status, got.header(NAME_HEADER), got.header(PATH_HEADER)


def test_the_path_prefix_is_removed_before_the_petstore_sees_the_path(gloo_binary: Path, tmp_path: Path) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, strips_the_prefix)


def strips_the_prefix(gloo: Gloo, work_dir: Path) -> None:
    with contextlib.ExitStack() as stack:
        for name in (PETSTORE, NEIGHBOUR, PETS, PETS_V2, HIDDEN):
            _, backend_port = stack.enter_context(start_petstore(work_dir / "backends", name=name))
            metadata = {"annotations": ANNOTATIONS[name]} if name in ANNOTATIONS else {}
            gloo.tree.write("upstreams", named_static_upstream(name, GLOO_SYSTEM, backend_port, **metadata))
        ports = free_port(), free_port()
        backend = ["--config-dir", str(gloo.tree.config_dir)]
        config = path_prefix_config(*ports)
        controller, _ = stack.enter_context(controller_process(work_dir / "controller", backend, config))
        wait_until_gloo_accepts(gloo, controller, PROXY)
        envoy = stack.enter_context(start_envoy(work_dir / "envoy", xds_port=gloo.xds_port, proxy_name=PROXY))
        by_name, by_template = (f"http://{LOOPBACK}:{port}" for port in ports)
        try:
            # The curl: no Host header to choose (the catch-all virtual host), the path chooses.
            pets = wait_for_answer(f"{by_name}/{PETSTORE}/api/pets", None, 200, 60, gloo.process.running)
            assert pets.body == PETS_BODY
            assert seen(pets) == (200, PETSTORE, PETS_PATH)
            assert seen(answer(f"{by_name}/{NEIGHBOUR}/api/pets?x=1")) == (200, NEIGHBOUR, PETS_PATH)
            # With and without the trailing slash, the petstore gets its root; the prefix is removed once, and
            # only the prefix: what follows reaches the petstore as sent.
            assert seen(answer(f"{by_name}/{PETSTORE}")) == (404, PETSTORE, "/")
            assert seen(answer(f"{by_name}/{PETSTORE}/")) == (404, PETSTORE, "/")
            assert seen(answer(f"{by_name}/{PETSTORE}/{PETSTORE}/api/pets")) == (404, PETSTORE, f"/{PETSTORE}/api/pets")
            # A prefix is a whole path segment: /<name>x is not /<name>.
            assert seen(answer(f"{by_name}/{PETSTORE}x/api/pets")) == (404, None, None)
            # The owners' prefixes replace the name; the longest prefix wins whatever the order of the upstreams.
            assert seen(answer(f"{by_name}/pets/api/pets")) == (200, PETS, PETS_PATH)
            assert seen(answer(f"{by_name}/pets/v2/api/pets")) == (200, PETS_V2, PETS_PATH)
            assert seen(answer(f"{by_name}/pets/v2")) == (404, PETS_V2, "/")
            assert seen(answer(f"{by_name}/pets/v3/api/pets")) == (404, PETS, "/v3/api/pets")
            assert seen(answer(f"{by_name}/{PETS}-v2/api/pets")) == (404, None, None)
            # Opted out: Envoy's 404 (no route) while its neighbours answer; nothing without a prefix either.
            assert seen(answer(f"{by_name}/{HIDDEN}/api/pets")) == (404, None, None)
            assert seen(answer(f"{by_name}/unknown/api/pets")) == (404, None, None)
            assert seen(answer(f"{by_name}/api/pets")) == (404, None, None)
            # A template of namespace and name, the annotations not taken: every exposed upstream there.
            for name in (PETSTORE, NEIGHBOUR, PETS, PETS_V2):
                assert seen(answer(f"{by_template}/{GLOO_SYSTEM}/{name}/api/pets")) == (200, name, PETS_PATH)
            assert seen(answer(f"{by_template}/{GLOO_SYSTEM}/{HIDDEN}/api/pets")) == (404, None, None)
            assert seen(answer(f"{by_template}/{PETSTORE}/api/pets")) == (404, None, None)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- controller:\n{controller.log_tail()}\n--- envoy:\n{envoy.process.log_tail()}"
            ) from None
        assert controller.running(), controller.log_tail()
