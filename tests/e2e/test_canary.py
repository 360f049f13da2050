"""The README's canary plugin example (examples/plugins/canary.py with canary.yaml and the upstreams of
canary-upstreams.yaml) through the real Gloo and a real Envoy: requests for `web.example.com` are split between
the stable and the canary upstream in the documented ratio (80/20), counted by which backend answered."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.gloo import Gloo
from proxycontroller.testing.servers.petstore import NAME_HEADER, PETS_BODY, PETS_PATH, start_petstore
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import wait_for_answer
from tests.e2e.conftest import run_with_fresh_gloo, wait_until_gloo_accepts
from tests.e2e.envoys import LOOPBACK, named_static_upstream

pytestmark = pytest.mark.e2e

PLUGINS = Path(__file__).resolve().parents[2] / "examples" / "plugins"
DOCUMENTED_CANARY_PERCENT = 20  # README: web-v1 weight 80, web-v2 weight 20
REQUESTS = 2000
# A correct split falls outside mean +- 5 sigma with probability ~6e-7; see test_the_tolerance_tells_splits_apart.
SIGMAS = 5.0


def binomial_bounds(requests: int, share: float, sigmas: float = SIGMAS) -> tuple[int, int]:
    """The counts within `sigmas` standard deviations of a binomial(requests, share) mean."""
    mean, deviation = requests * share, math.sqrt(requests * share * (1 - share))
    return math.ceil(mean - sigmas * deviation), math.floor(mean + sigmas * deviation)


def test_the_tolerance_tells_splits_apart() -> None:
    """The tolerance lets a correct 80/20 split pass and fails a split ten points off (or any grosser one): their
    likely counts (within 5 sigma of their own mean) do not reach the accepted range."""
    low, high = binomial_bounds(REQUESTS, DOCUMENTED_CANARY_PERCENT / 100)
    for wrong in (0.0, 0.1, 0.3, 0.5, 0.8, 1.0):
        wrong_low, wrong_high = binomial_bounds(REQUESTS, wrong)
        assert wrong_high < low or wrong_low > high, (wrong, (wrong_low, wrong_high), (low, high))


def example_upstreams(ports: dict[str, int]) -> list[dict[str, Any]]:
    """The example's upstreams in Gloo's flat directory form, each a static host on its own named petstore
    (the example's kube specs need a cluster); names, namespaces and labels as the example has them."""
    documents = list(yaml.safe_load_all((PLUGINS / "canary-upstreams.yaml").read_text()))
    upstreams = []
    for document in documents:
        metadata = document["metadata"]
        port = ports[metadata["name"]]
        upstreams.append(named_static_upstream(metadata.pop("name"), metadata.pop("namespace"), port, **metadata))
    return upstreams


def example_config(port: int) -> dict[str, Any]:
    """examples/plugins/canary.yaml as written, its listener moved to a free loopback port."""
    config: dict[str, Any] = yaml.safe_load((PLUGINS / "canary.yaml").read_text())
    (proxy,) = config["proxies"]
    (listener,) = proxy["listeners"]
    (strategy,) = listener["strategies"]
    assert strategy["options"]["canaryWeight"] == DOCUMENTED_CANARY_PERCENT, "the README documents 80/20"
    listener.update(bindAddress=LOOPBACK, bindPort=port)
    return config


def count_backends(port: int, host: str, requests: int) -> Counter[str]:
    """Which backend answered each of `requests` GETs of the pets (one kept-alive connection, as a client would)."""
    answered: Counter[str] = Counter()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        for _ in range(requests):
            connection.request("GET", PETS_PATH, headers={"Host": host})
            response = connection.getresponse()
            body = response.read()
            assert (response.status, body) == (200, PETS_BODY), (response.status, body[:200])
            answered[response.getheader(NAME_HEADER) or "(no backend name)"] += 1
    finally:
        connection.close()
    return answered


def test_the_canary_example_splits_traffic_in_the_documented_ratio(gloo_binary: Path, tmp_path: Path) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, splits_traffic)


def splits_traffic(gloo: Gloo, work_dir: Path) -> None:
    names = ("web-v1", "web-v2", "api-v1", "default-petstore-8080")
    with contextlib.ExitStack() as stack:
        ports = {name: stack.enter_context(start_petstore(work_dir / "backends", name=name))[1] for name in names}
        for upstream in example_upstreams(ports):
            gloo.tree.write("upstreams", upstream)
        port = free_port()
        plugin_path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
        backend = ["--config-dir", str(gloo.tree.config_dir)]
        controller, _ = stack.enter_context(
            controller_process(work_dir / "controller", backend, example_config(port), {"PYTHONPATH": plugin_path})
        )
        wait_until_gloo_accepts(gloo, controller, "canary-proxy")
        envoy = stack.enter_context(start_envoy(work_dir / "envoy", xds_port=gloo.xds_port, proxy_name="canary-proxy"))
        url = f"http://{LOOPBACK}:{port}{PETS_PATH}"
        try:
            wait_for_answer(url, "web.example.com", 200, 60, gloo.process.running)
            answered = count_backends(port, "web.example.com", REQUESTS)
            assert set(answered) == {"web-v1", "web-v2"}, answered
            low, high = binomial_bounds(REQUESTS, DOCUMENTED_CANARY_PERCENT / 100)
            assert low <= answered["web-v2"] <= high, f"canary answered {answered['web-v2']}, not in [{low}, {high}]"
            # The app without a canary goes to its stable upstream alone; the unlabelled petstore is not routed.
            assert count_backends(port, "api.example.com", 50) == Counter({"api-v1": 50})
            assert wait_for_answer(url, "default-petstore-8080", 404, timeout=5).header(NAME_HEADER) is None
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n--- controller:\n{controller.log_tail()}\n--- envoy:\n{envoy.process.log_tail()}"
            ) from None
        assert controller.running(), controller.log_tail()
