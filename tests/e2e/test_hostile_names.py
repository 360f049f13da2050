"""Names Envoy or Gloo refuse, through the real Gloo and a real Envoy: an upstream whose name holds a newline is
left out with a warning naming it, and every other route keeps flowing, also after later changes (Envoy
refuses a whole route configuration for one bad domain, and then no change reaches traffic any more while
Gloo reports the Proxy Accepted). And the controller's reading of Envoy's rules, asked of the real Envoy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.envoy import Envoy, envoy_binary
from proxycontroller.testing.servers.gloo import Gloo, ProxyState, wait_for_proxy_status
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import wait_for_status
from proxycontroller.validate import syntax
from tests.e2e.conftest import controller_serving, run_with_fresh_gloo
from tests.e2e.test_controller_directory import PETSTORE, SECOND, static_upstream
from tests.unit.test_envoy_rules import RE2_ACCEPTS, RE2_REFUSES

pytestmark = pytest.mark.e2e

HOSTILE = "bad\nname"  # Linux takes it in a file name; Gloo's directory mode wants file and metadata.name alike


def test_an_upstream_named_with_a_newline_leaves_every_other_route_flowing(
    gloo_binary: Path, petstore_port: int, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, lambda gloo, root: hostile_name(gloo, petstore_port, root))


def hostile_name(gloo: Gloo, petstore_port: int, tmp_path: Path) -> None:
    gloo.tree.write("upstreams", static_upstream(PETSTORE, petstore_port))
    # Gloo 1.22.1 cannot write a status into a resource whose name is not an RFC 1123 name ("failed to write
    # status ... validation error") and tries again on every sync; the status it would write, written here
    # already, spares those retries, which otherwise make its known file-client panic several times likelier.
    accepted = {"namespacedStatuses": {"statuses": {"gloo-system": {"reportedBy": "gloo", "state": "Accepted"}}}}
    hostile_file = gloo.tree.write("upstreams", {**static_upstream(HOSTILE, petstore_port), **accepted})
    assert "\n" in hostile_file.name
    by_host, by_path = free_port(), free_port()
    # Both strategies meet the name: host-header makes it a virtual host name and domain (Envoy refuses the
    # domain), path-prefix makes it a prefix that Gloo's path rule refuses (the strategy leaves that one out).
    config = {
        "proxies": [
            {
                "listeners": [
                    {"name": "by-host", "bindAddress": "127.0.0.1", "bindPort": by_host},
                    {
                        "name": "by-path",
                        "bindAddress": "127.0.0.1",
                        "bindPort": by_path,
                        "strategies": [{"kind": "path-prefix"}],
                    },
                ]
            }
        ]
    }
    host_url = f"http://127.0.0.1:{by_host}/api/pets"

    def path_url(upstream: str) -> str:
        return f"http://127.0.0.1:{by_path}/{upstream}/api/pets"

    proxy_file = gloo.tree.proxy_path("my-cool-proxy")
    with controller_serving(gloo, tmp_path, config) as (controller, envoy, verdict):
        assert verdict.reported_by == "gloo"
        assert wait_for_status(host_url, PETSTORE, 200, timeout=60) == PETS_BODY
        assert wait_for_status(path_url(PETSTORE), "any.example", 200, timeout=60) == PETS_BODY
        # A later change: Envoy took every route configuration, so it reaches traffic on both listeners.
        gloo.tree.write("upstreams", static_upstream(SECOND, petstore_port))
        assert wait_for_status(host_url, SECOND, 200, timeout=60) == PETS_BODY
        assert wait_for_status(path_url(SECOND), "any.example", 200, timeout=60) == PETS_BODY
        assert refused_configs(envoy) == []
    log = controller.log_path.read_text()
    # One line each, the name escaped: the virtual host left out, and the upstream left out of the catch-all.
    escaped = HOSTILE.replace("\n", "\\n")
    host_warning = (
        f"listener 'by-host': left out virtual host '{escaped}' (from Upstream gloo-system/{escaped}): "
        f"it has a domain with a NUL, CR or LF: '{escaped}' (Envoy: VirtualHost.domains"
    )
    path_warning = f"left out Upstream gloo-system/{escaped}: prefixTemplate '/{{name}}' makes '/{escaped}', which "
    assert host_warning in log
    assert path_warning in log
    final = wait_for_proxy_status(proxy_file, states=(ProxyState.ACCEPTED,), timeout=30)
    assert final.state is ProxyState.ACCEPTED
    written = proxy_file.read_text()
    assert "bad" not in written  # neither the virtual host nor the route made it into the Proxy


def refused_configs(envoy: Envoy) -> list[Any]:
    """What Envoy's /config_dump records as refused (a NACKed update carries an error_state)."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "error_state" in node:
                found.append(node["error_state"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(envoy.config_dump())
    return found


# -- the rules, asked of the real Envoy --------------------------------------------------------------------


def envoy_takes(tmp_path: Path, virtual_host: dict[str, Any]) -> bool:
    """Whether Envoy (--mode validate: it builds the route configuration and binds nothing) takes a route
    configuration holding this one virtual host."""
    config = {
        # RE2's program size is a limit, not syntax (Envoy's default is 100, which `\pL` alone exceeds): lifted.
        "layered_runtime": {
            "layers": [{"name": "limits", "static_layer": {"re2.max_program_size.error_level": 10**6}}]
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "l",
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/"
                                                    "envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                        "route_config": {"name": "r", "virtual_hosts": [virtual_host]},
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }
    path = tmp_path / "envoy-validate.json"
    path.write_text(json.dumps(config))
    command = [str(envoy_binary()), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l", "error"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return result.returncode == 0


def direct(match: dict[str, Any], **virtual_host: Any) -> dict[str, Any]:
    """A virtual host with one route answering 200 itself (so no cluster is needed)."""
    made = {"name": "v", "domains": ["v"], "routes": [{"match": match, "direct_response": {"status": 200}}]}
    return {**made, **virtual_host}


def test_envoy_refuses_what_the_controller_says_it_refuses(tmp_path: Path) -> None:
    disagreements = []
    for pattern in [*RE2_ACCEPTS, *RE2_REFUSES]:
        ours = syntax.re2(pattern) is None
        if envoy_takes(tmp_path, direct({"safe_regex": {"regex": pattern}})) != ours:
            disagreements.append(f"regex {pattern!r}: the controller says {'takes' if ours else 'refuses'}")
    for text in ["a\nb", "a\rb", "a\x00b", "a\tb", "a b", "a\x7fb", "a\u2028b"]:
        ours = syntax.envoy_header_safe(text) is None
        for what, virtual_host in [
            ("domain", direct({"prefix": "/"}, domains=[text, "y"])),
            ("header name", direct({"prefix": "/", "headers": [{"name": text, "present_match": True}]})),
        ]:
            if envoy_takes(tmp_path, virtual_host) != ours:
                disagreements.append(f"{what} {text!r}: the controller says {'takes' if ours else 'refuses'}")
    assert disagreements == []
