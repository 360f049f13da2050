"""Several Proxies from one controller, each served by its own real Envoy (bound by the role `<namespace>~<name>`)
through the real Gloo in directory mode: each Envoy answers for its own Proxy's selection and 404 for the other's,
also for an upstream added while they run."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.gloo import GLOO_SYSTEM, Gloo
from proxycontroller.testing.servers.petstore import start_petstore
from proxycontroller.testing.servers.processes import free_port
from tests.e2e.conftest import run_with_fresh_gloo, wait_until_gloo_accepts
from tests.e2e.envoys import LOOPBACK, Served, named_static_upstream

pytestmark = pytest.mark.e2e

TEAMS = ("team-a", "team-b")


def proxy(name: str, port: int, **selection: Any) -> dict[str, Any]:
    listener = {"name": "http", "bindAddress": LOOPBACK, "bindPort": port, "strategies": [{"kind": "host-header"}]}
    return {"name": name, "namespace": GLOO_SYSTEM, **selection, "listeners": [listener]}


def test_two_proxies_by_namespace_each_served_by_its_envoy_route_only_their_own(
    gloo_binary: Path, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, by_namespace, watch_namespaces=(GLOO_SYSTEM, *TEAMS))


def by_namespace(gloo: Gloo, work_dir: Path) -> None:
    backends = ("web-a", "web-b", "web-b2")
    with contextlib.ExitStack() as stack:
        ports = {name: stack.enter_context(start_petstore(work_dir / "backends", name=name))[1] for name in backends}
        gloo.tree.write("upstreams", named_static_upstream("web-a", "team-a", ports["web-a"]))
        gloo.tree.write("upstreams", named_static_upstream("web-b", "team-b", ports["web-b"]))
        listen = {team: free_port() for team in TEAMS}
        config = {"proxies": [proxy(team, listen[team], namespaces=[team]) for team in TEAMS]}
        backend = ["--config-dir", str(gloo.tree.config_dir)]
        controller, _ = stack.enter_context(controller_process(work_dir / "controller", backend, config))
        for team in TEAMS:
            wait_until_gloo_accepts(gloo, controller, team)
        a, b = (
            Served(
                team,
                stack.enter_context(start_envoy(work_dir / team, xds_port=gloo.xds_port, proxy_name=team)),
                listen[team],
            )
            for team in TEAMS
        )
        try:
            a.wait_until_served_by("web-a", "web-a")
            b.wait_until_served_by("web-b", "web-b")
            a.assert_not_routed("web-b")
            b.assert_not_routed("web-a")
            # An upstream added to team-b while both run: team-b's Envoy routes it, team-a's never does.
            gloo.tree.write("upstreams", named_static_upstream("web-b2", "team-b", ports["web-b2"]))
            b.wait_until_served_by("web-b2", "web-b2")
            a.assert_stays_unrouted("web-b2")
            a.wait_until_served_by("web-a", "web-a")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- controller:\n{controller.log_tail()}{a.logs()}{b.logs()}") from None
        assert controller.running(), controller.log_tail()
