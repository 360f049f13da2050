"""Translation reproduces the seed and follows Gloo's rules."""

from __future__ import annotations

from typing import Any

import pytest

from proxycontroller.config import ControllerConfig, StrategySettings
from proxycontroller.model.encoding import to_cr
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.model.resources import ObjectKey
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
from proxycontroller.translate.strategies import StrategyError, host_header, path_prefix, resolve_strategy
from proxycontroller.validate.desired import desired_state
from proxycontroller.validate.rules import validate
from tests.unit.factories import kube_upstream

SEED_PROXY_SPEC: dict[str, Any] = {
    "listeners": [
        {
            "name": "my-amazing-listener",
            "bindAddress": "::",
            "bindPort": 8080,
            "httpListener": {
                "virtualHosts": [
                    {
                        "name": "default-petstore-8080",
                        "domains": ["default-petstore-8080"],
                        "routes": [
                            {
                                "matchers": [{"prefix": "/"}],
                                "routeAction": {
                                    "single": {
                                        "upstream": {
                                            "name": "default-petstore-8080",
                                            "namespace": "gloo-system",
                                        }
                                    }
                                },
                            }
                        ],
                    }
                ]
            },
        }
    ]
}


def test_default_config_reproduces_the_seed_proxy() -> None:
    state = desired_state(Snapshot.of([kube_upstream("default-petstore-8080")]), ControllerConfig(), host_header)
    assert state.warnings == ()
    (proxy,) = state.proxies
    document = to_cr(proxy)
    assert document["metadata"]["name"] == "my-cool-proxy"
    assert document["metadata"]["namespace"] == "gloo-system"
    assert document["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "proxycontroller",
        "app.kubernetes.io/instance": "proxycontroller",
    }
    assert document["spec"] == SEED_PROXY_SPEC


def test_only_gloo_system_is_routed_by_default_and_other_namespaces_on_request() -> None:
    snapshot = Snapshot.of([kube_upstream("a"), kube_upstream("b", namespace="team-x")])

    def routed(config: ControllerConfig) -> list[str]:
        (proxy,) = desired_state(snapshot, config, host_header).proxies
        listener = (proxy.spec.listeners or [])[0]
        return [vh.name for vh in (listener.http_listener.virtual_hosts if listener.http_listener else None) or []]

    assert routed(ControllerConfig()) == ["a"]
    assert routed(ControllerConfig(namespaces=("team-x",))) == ["b"]
    assert routed(ControllerConfig(namespaces=("*",))) == ["a", "b"]


def test_no_upstreams_gives_a_proxy_with_an_empty_listener() -> None:
    (proxy,) = desired_state(Snapshot(), ControllerConfig(), host_header).proxies
    assert to_cr(proxy)["spec"]["listeners"][0]["httpListener"] == {"virtualHosts": []}


def test_same_name_in_two_namespaces_keeps_the_first_namespace_and_warns_naming_both() -> None:
    snapshot = Snapshot.of([kube_upstream("web", namespace="zeta"), kube_upstream("web", namespace="alpha")])
    state = desired_state(snapshot, ControllerConfig(namespaces=("*",)), host_header)
    (proxy,) = state.proxies
    hosts = (proxy.spec.listeners or [])[0].http_listener.virtual_hosts  # type: ignore[union-attr]
    assert [vh.routes[0].route_action.single.upstream.namespace for vh in hosts or []] == ["alpha"]  # type: ignore[index,union-attr]
    (warning,) = state.warnings
    assert "Upstream zeta/web" in warning
    assert "Upstream alpha/web" in warning


def _plan(*hosts: tuple[str, list[str]], ports: tuple[int, ...] = (8080,)) -> ProxyPlan:
    sourced = tuple(
        SourcedVirtualHost(VirtualHost(name=name, domains=domains), (ObjectKey("ns", name),)) for name, domains in hosts
    )
    listeners = tuple(
        ListenerPlan(Listener(name=f"l{i}", bind_address="::", bind_port=port), sourced) for i, port in enumerate(ports)
    )
    return ProxyPlan(ObjectMeta(name="p", namespace="gloo-system"), listeners)


@pytest.mark.parametrize(
    ("hosts", "kept", "problem"),
    [
        ((("a", ["x"]), ("b", ["X"])), ["a"], "claims domain 'X', already served by virtual host 'a'"),
        ((("a", ["x"]), ("b", [""])), ["a"], "has an empty domain"),
        ((("a", ["x"]), ("b", [])), ["a"], "has no domain"),
        ((("a", ["x"]), ("a", ["y"])), ["a"], "repeats the name of virtual host 'a'"),
        ((("a", ["x", "x"]), ("b", ["y"])), ["b"], "lists a domain twice"),
    ],
)
def test_each_gloo_rejection_rule_drops_only_the_offender(
    hosts: tuple[tuple[str, list[str]], ...], kept: list[str], problem: str
) -> None:
    state = validate([_plan(*hosts)])
    listener = (state.proxies[0].spec.listeners or [])[0]
    assert [vh.name for vh in listener.http_listener.virtual_hosts or []] == kept  # type: ignore[union-attr]
    (warning,) = state.warnings
    assert problem in warning
    assert "Upstream ns/" in warning


def test_two_listeners_on_one_port_keep_the_first() -> None:
    state = validate([_plan(("a", ["x"]), ports=(8080, 8080))])
    assert [listener.name for listener in state.proxies[0].spec.listeners or []] == ["l0"]
    assert "bind port 8080 is already used by listener 'l0'" in state.warnings[0]


def test_path_prefix_strategy_routes_by_name_and_strips_the_prefix() -> None:
    state = desired_state(Snapshot.of([kube_upstream("b"), kube_upstream("a")]), ControllerConfig(), path_prefix)
    listener = to_cr(state.proxies[0])["spec"]["listeners"][0]
    (virtual_host,) = listener["httpListener"]["virtualHosts"]
    assert virtual_host["domains"] == ["*"]
    assert [route["matchers"][0]["prefix"] for route in virtual_host["routes"]] == ["/a/", "/b/"]
    assert all(route["options"] == {"prefixRewrite": "/"} for route in virtual_host["routes"])


def test_domain_templates_add_domains() -> None:
    config = ControllerConfig(strategy=StrategySettings(domain_templates=("{name}", "{name}.{namespace}.example.com")))
    state = desired_state(Snapshot.of([kube_upstream("a")]), config, host_header)
    vh = to_cr(state.proxies[0])["spec"]["listeners"][0]["httpListener"]["virtualHosts"][0]
    assert vh["domains"] == ["a", "a.gloo-system.example.com"]


def test_plugin_strategy_is_imported_by_name() -> None:
    strategy = resolve_strategy(StrategySettings(kind="plugin", plugin="tests.unit.sample_plugin:shout"))
    state = desired_state(Snapshot.of([kube_upstream("a")]), ControllerConfig(), strategy)
    vh = to_cr(state.proxies[0])["spec"]["listeners"][0]["httpListener"]["virtualHosts"][0]
    assert vh["domains"] == ["A.LOUD"]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ("nocolon", "must be 'module:function'"),
        ("no.such.module:f", "cannot import"),
        ("json:nothing", "no callable"),
    ],
)
def test_bad_plugin_names_are_refused(plugin: str, message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        resolve_strategy(StrategySettings(kind="plugin", plugin=plugin))
