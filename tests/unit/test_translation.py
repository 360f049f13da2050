"""Translation reproduces the seed, follows Gloo's rules, and runs strategies as the public API promises."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest

from proxycontroller import NoOptions, Skip, Strategy, Upstream, VirtualHost, route_to, strategy, virtual_host
from proxycontroller.config import ControllerConfig
from proxycontroller.model.canonical import canonical_json
from proxycontroller.model.desired import Desired
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import Rendered, render
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.registry import StrategyError, StrategyRegistry
from proxycontroller.translate.translator import StrategyFailure
from proxycontroller.validate.desired import ProxyLogic
from tests.unit.factories import kube_upstream
from tests.unit.sample_plugin import shout

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

MANAGED_LABELS = {"app.kubernetes.io/managed-by": "proxycontroller", "app.kubernetes.io/instance": "proxycontroller"}


def names(rendered: Rendered, listener: int = 0, proxy: str | None = None) -> list[str]:
    return [host["name"] for host in rendered.virtual_hosts(listener, proxy)]


def single(namespace: str, name: str, prefix: str = "/", **extra: Any) -> dict[str, Any]:
    """A route as Gloo's JSON: everything under `prefix` to one upstream."""
    return {
        "matchers": [{"prefix": prefix}],
        "routeAction": {"single": {"upstream": {"name": name, "namespace": namespace}}},
        **extra,
    }


def logic_with(config: dict[str, Any], *strategies: Strategy[Any]) -> ProxyLogic:
    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, *strategies)})
    return ProxyLogic(ControllerConfig.model_validate(config), registry)


def one_strategy(kind: str, **options: Any) -> dict[str, Any]:
    """The configuration of the seed's Proxy and listener, filled by one strategy."""
    return {"proxies": [{"listeners": [{"strategies": [{"kind": kind, "options": options}]}]}]}


def spec_bytes(desired: Desired) -> list[bytes]:
    return [item.spec.json for item in desired.objects]


# --- the seed --------------------------------------------------------------------------------------------------


def test_default_config_reproduces_the_seed_proxy() -> None:
    rendered = render([kube_upstream("default-petstore-8080")])
    assert rendered.warnings == ()
    document = rendered.proxy()
    assert document["metadata"] == {"name": "my-cool-proxy", "namespace": "gloo-system", "labels": MANAGED_LABELS}
    assert document["spec"] == SEED_PROXY_SPEC


def test_the_spliced_spec_bytes_are_the_canonical_json_of_the_seed_proxy() -> None:
    """The engine compares bytes: the spec joined from per-host pieces must be exactly the canonical form."""
    (item,) = logic_with({}).desired(Snapshot.of([kube_upstream("default-petstore-8080")])).objects
    assert item.spec.json == canonical_json(SEED_PROXY_SPEC)


def test_only_gloo_system_is_routed_by_default_and_other_namespaces_on_request() -> None:
    upstreams = [kube_upstream("a"), kube_upstream("b", namespace="team-x")]
    assert names(render(upstreams)) == ["a"]
    assert names(render(upstreams, {"namespaces": ["team-x"]})) == ["b"]
    assert names(render(upstreams, {"namespaces": ["*"]})) == ["a", "b"]
    # A Proxy's own `namespaces` overrides the controller's.
    assert names(render(upstreams, {"namespaces": ["*"], "proxies": [{"namespaces": ["team-x"]}]})) == ["b"]


def test_no_upstreams_gives_a_proxy_with_an_empty_listener() -> None:
    rendered = render([])
    assert rendered.proxy()["spec"]["listeners"][0]["httpListener"] == {"virtualHosts": []}


# --- Gloo's rules, and the deterministic first-wins rule -------------------------------------------------------


def test_same_name_in_two_namespaces_keeps_the_first_namespace_and_warns_naming_both() -> None:
    upstreams = [kube_upstream("web", namespace="zeta"), kube_upstream("web", namespace="alpha")]
    rendered = render(upstreams, {"namespaces": ["*"]})
    assert rendered.virtual_hosts() == [{"name": "web", "domains": ["web"], "routes": [single("alpha", "web")]}]
    (warning,) = rendered.warnings
    assert "Upstream zeta/web" in warning
    assert "Upstream alpha/web" in warning


def fixed_hosts(table: dict[str, tuple[str, tuple[str, ...]]]) -> Strategy[Any]:
    """A strategy that gives upstream `u` the virtual host `table[u]` (its name and domains)."""

    @strategy("fixed")
    def fixed(upstream: Upstream, options: NoOptions) -> VirtualHost:
        name, domains = table[upstream.metadata.name]
        return virtual_host(name, domains, [route_to(upstream)])

    return fixed


@pytest.mark.parametrize(
    ("u1", "u2", "kept", "problem"),
    [
        (("a", ("x",)), ("b", ("X",)), ["a"], "claims domain 'X', already served by virtual host 'a' (from Upstream"),
        (("a", ("x",)), ("b", ("",)), ["a"], "has an empty domain"),
        (("a", ("x",)), ("b", ()), ["a"], "has no domain"),
        (("a", ("x",)), ("a", ("y",)), ["a"], "repeats the name of virtual host 'a' (from Upstream gloo-system/u1)"),
        (("a", ("x",)), ("b", ("y\n",)), ["a"], "has a domain with a NUL, CR or LF"),
        (("a", ("x",)), ("", ("y",)), ["a"], "has an empty name"),
        (("a", ("x", "X")), ("b", ("y",)), ["b"], "lists a domain twice"),
    ],
)
def test_each_gloo_rejection_rule_drops_only_the_offender(
    u1: tuple[str, tuple[str, ...]], u2: tuple[str, tuple[str, ...]], kept: list[str], problem: str
) -> None:
    rendered = render(
        [kube_upstream("u2"), kube_upstream("u1")], one_strategy("fixed"), [fixed_hosts({"u1": u1, "u2": u2})]
    )
    assert names(rendered) == kept
    (warning,) = rendered.warnings
    assert problem in warning
    offender, host = ("u1", u1[0]) if kept == ["b"] else ("u2", u2[0])
    assert f"left out virtual host {host!r} (from Upstream gloo-system/{offender}): it " in warning


# --- the built-in strategies -----------------------------------------------------------------------------------


def test_path_prefix_strategy_routes_by_name_and_strips_the_prefix() -> None:
    rendered = render([kube_upstream("b"), kube_upstream("a")], one_strategy("path-prefix"))
    assert rendered.virtual_hosts() == [
        {
            "name": "all-upstreams",
            "domains": ["*"],
            "routes": [  # `/<name>/...` and `/<name>` itself, the prefix replaced by `/`
                single("gloo-system", "a", "/a/", options={"prefixRewrite": "/"}),
                {**single("gloo-system", "a", matchers=[{"exact": "/a"}]), "options": {"prefixRewrite": "/"}},
                single("gloo-system", "b", "/b/", options={"prefixRewrite": "/"}),
                {**single("gloo-system", "b", matchers=[{"exact": "/b"}]), "options": {"prefixRewrite": "/"}},
            ],
        }
    ]


def test_path_prefix_strategy_makes_no_virtual_host_without_upstreams() -> None:
    assert render([], one_strategy("path-prefix")).virtual_hosts() == []


def test_domain_templates_add_domains_in_the_long_and_the_short_form() -> None:
    templates = ["{name}", "{name}.{namespace}.example.com"]
    for config in (
        one_strategy("host-header", domainTemplates=templates),
        {"strategy": {"domainTemplates": templates}},
    ):
        (host,) = render([kube_upstream("a")], config).virtual_hosts()
        assert host["domains"] == ["a", "a.gloo-system.example.com"]


def test_plugin_strategy_is_imported_by_name_with_its_options() -> None:
    config = {
        "proxies": [
            {
                "listeners": [
                    {
                        "strategies": [
                            {"kind": "plugin", "plugin": "tests.unit.sample_plugin:shout", "options": {"suffix": ".X"}}
                        ]
                    }
                ]
            }
        ]
    }
    (host,) = render([kube_upstream("a")], config).virtual_hosts()
    assert host["domains"] == ["A.X"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "plugin", "plugin": "nocolon"}, r"\.plugin: must be 'module:function', got 'nocolon'"),
        ({"kind": "plugin", "plugin": "no.such.module:f"}, r"\.plugin: cannot import 'no.such.module'"),
        ({"kind": "plugin", "plugin": "json:nothing"}, r"\.plugin: json has no 'nothing'"),
        ({"kind": "plugin", "plugin": "tests.unit.sample_plugin:not_a_strategy"}, "not a strategy"),
        ({"kind": "host-header", "plugin": "tests.unit.sample_plugin:shout"}, r"\.plugin: only for kind 'plugin'"),
    ],
)
def test_bad_plugin_names_are_refused_naming_the_key(settings: dict[str, Any], message: str) -> None:
    config = ControllerConfig.model_validate({"proxies": [{"listeners": [{"strategies": [settings]}]}]})
    with pytest.raises(StrategyError, match=r"^proxies\[0\]\.listeners\[0\]\.strategies\[0\]") as caught:
        ProxyLogic(config, StrategyRegistry.discover())
    assert caught.match(message)


# --- several Proxies, listeners and strategies -----------------------------------------------------------------

TLS = {"secretRef": {"name": "example-tls", "namespace": "gloo-system"}, "sniDomains": ["*.example.com"]}


def test_several_proxies_with_http_and_https_listeners_and_several_strategies_render_as_configured() -> None:
    example_com = {"kind": "host-header", "options": {"domainTemplates": ["{name}.example.com"]}}
    config = {
        "namespaces": ["*"],
        "proxies": [
            {
                "name": "public",
                "namespaces": ["team-a"],
                "listeners": [
                    {
                        "name": "http",
                        "bindPort": 8080,
                        "strategies": [
                            example_com,
                            {"kind": "path-prefix", "options": {"name": "by-path", "domains": ["example.com"]}},
                        ],
                    },
                    {"name": "https", "bindPort": 8443, "sslConfigurations": [TLS], "strategies": [example_com]},
                ],
            },
            {
                "name": "internal",
                "namespace": "internal-gloo",
                "listeners": [
                    {
                        "name": "mesh",
                        "bindAddress": "0.0.0.0",
                        "bindPort": 9080,
                        "strategies": [
                            {"kind": "host-header", "options": {"domainTemplates": ["{name}.{namespace}.svc"]}},
                            {"kind": "path-prefix", "options": {"name": "everything", "domains": ["mesh.internal"]}},
                        ],
                    },
                    {
                        "name": "mesh-tls",
                        "bindPort": 9443,
                        "sslConfigurations": [{"secretRef": {"name": "mesh-tls", "namespace": "internal-gloo"}}],
                        "strategies": [{"kind": "host-header", "options": {"domainTemplates": ["{name}.mesh"]}}],
                    },
                ],
            },
        ],
    }
    upstreams = [kube_upstream("web", "team-a"), kube_upstream("db", "team-b"), kube_upstream("api", "team-a")]
    rendered = render(upstreams, config)
    assert rendered.warnings == ()
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in rendered.proxies] == [
        ("gloo-system", "public"),
        ("internal-gloo", "internal"),
    ]
    assert all(p["metadata"]["labels"] == MANAGED_LABELS for p in rendered.proxies)

    def by_host(namespace: str, name: str, domain: str) -> dict[str, Any]:
        return {"name": name, "domains": [domain], "routes": [single(namespace, name)]}

    def by_path(namespace: str, name: str) -> list[dict[str, Any]]:
        exact = {**single(namespace, name, matchers=[{"exact": f"/{name}"}]), "options": {"prefixRewrite": "/"}}
        return [single(namespace, name, f"/{name}/", options={"prefixRewrite": "/"}), exact]

    public_hosts = [by_host("team-a", "api", "api.example.com"), by_host("team-a", "web", "web.example.com")]
    assert rendered.proxy("public")["spec"] == {
        "listeners": [
            {
                "name": "http",
                "bindAddress": "::",
                "bindPort": 8080,
                "httpListener": {
                    "virtualHosts": [
                        *public_hosts,
                        {
                            "name": "by-path",
                            "domains": ["example.com"],
                            "routes": [
                                *by_path("team-a", "api"),
                                *by_path("team-a", "web"),
                            ],
                        },
                    ]
                },
            },
            {
                "name": "https",
                "bindAddress": "::",
                "bindPort": 8443,
                "sslConfigurations": [TLS],
                "httpListener": {"virtualHosts": public_hosts},
            },
        ]
    }
    assert rendered.proxy("internal")["spec"] == {
        "listeners": [
            {
                "name": "mesh",
                "bindAddress": "0.0.0.0",
                "bindPort": 9080,
                "httpListener": {
                    "virtualHosts": [
                        # Upstreams in order of namespace, then name.
                        by_host("team-a", "api", "api.team-a.svc"),
                        by_host("team-a", "web", "web.team-a.svc"),
                        by_host("team-b", "db", "db.team-b.svc"),
                        {
                            "name": "everything",
                            "domains": ["mesh.internal"],
                            "routes": [
                                *by_path("team-a", "api"),
                                *by_path("team-a", "web"),
                                *by_path("team-b", "db"),
                            ],
                        },
                    ]
                },
            },
            {
                "name": "mesh-tls",
                "bindAddress": "::",
                "bindPort": 9443,
                "sslConfigurations": [{"secretRef": {"name": "mesh-tls", "namespace": "internal-gloo"}}],
                "httpListener": {
                    "virtualHosts": [
                        by_host("team-a", "api", "api.mesh"),
                        by_host("team-a", "web", "web.mesh"),
                        by_host("team-b", "db", "db.mesh"),
                    ]
                },
            },
        ]
    }


def test_a_second_strategy_that_repeats_names_is_left_out_naming_both_strategies_hosts() -> None:
    config = {"proxies": [{"listeners": [{"strategies": [{"kind": "host-header"}, {"kind": "shout"}]}]}]}
    rendered = render([kube_upstream("a")], config, [shout])
    assert names(rendered) == ["a"]
    (warning,) = rendered.warnings
    assert "left out virtual host 'a' (from Upstream gloo-system/a): it repeats the name of virtual host 'a'" in warning


# --- what strategies may and may not do ------------------------------------------------------------------------


def test_a_per_upstream_skip_leaves_only_that_upstream_out_with_a_warning_naming_it() -> None:
    @strategy("picky")
    def picky(upstream: Upstream, options: NoOptions) -> VirtualHost:
        if upstream.metadata.name == "b":
            raise Skip("not ready yet")
        return virtual_host(upstream.metadata.name, [upstream.metadata.name], [route_to(upstream)])

    rendered = render([kube_upstream(n) for n in "cba"], one_strategy("picky"), [picky])
    assert names(rendered) == ["a", "c"]
    (warning,) = rendered.warnings
    assert "strategy 'picky'" in warning
    assert "left out Upstream gloo-system/b: not ready yet" in warning
    assert "gloo-system/a" not in warning
    assert "gloo-system/c" not in warning


def test_a_per_upstream_generator_strategy_can_skip_or_fail_while_it_yields() -> None:
    @strategy("yielding")
    def yielding(upstream: Upstream, options: NoOptions) -> Iterator[VirtualHost]:
        name = upstream.metadata.name
        yield virtual_host(name, [name], [route_to(upstream)])
        if name == "b":
            raise Skip("b yields one host too few")
        if name == "z":
            raise KeyError("z")
        yield virtual_host(f"{name}-www", [f"www.{name}"], [route_to(upstream)])

    rendered = render([kube_upstream("a"), kube_upstream("b")], one_strategy("yielding"), [yielding])
    assert names(rendered) == ["a", "a-www"]
    (warning,) = rendered.warnings
    assert "left out Upstream gloo-system/b: b yields one host too few" in warning
    with pytest.raises(StrategyFailure, match="failed for Upstream gloo-system/z: KeyError: 'z'"):
        render([kube_upstream("z")], one_strategy("yielding"), [yielding])


@pytest.mark.parametrize("how", ["append", "assign"])
def test_a_strategy_cannot_append_to_a_returned_models_tuple(how: str) -> None:
    """A strategy that builds on one shared host, as one could with lists, fails instead of leaking domains
    from one upstream into the next."""
    shared = virtual_host("template", ["shared.example.com"], [])

    @strategy("appending")
    def appending(upstream: Upstream, options: NoOptions) -> VirtualHost:
        if how == "append":
            cast(list[str], shared.domains).append(upstream.metadata.name)
        else:
            shared.domains += (upstream.metadata.name,)  # type: ignore[misc,operator]
        return shared

    with pytest.raises(StrategyFailure, match=r"strategy 'appending' .* failed for Upstream gloo-system/a"):
        render([kube_upstream("a"), kube_upstream("b")], one_strategy("appending"), [appending])
    assert shared.domains == ("shared.example.com",)


def test_a_strategy_mutating_an_opaque_dict_of_a_memoized_virtual_host_does_not_change_the_next_output() -> None:
    made: list[VirtualHost] = []

    @strategy("stamping")
    def stamping(upstream: Upstream, options: NoOptions) -> VirtualHost:
        for earlier in made:  # a bug: changes hosts it returned before, which the engine keeps
            cast(dict[str, Any], earlier.options)["stamp"] = len(made)
        name = upstream.metadata.name
        host = VirtualHost(name=name, domains=(name,), routes=(route_to(upstream),), options={"stamp": 0})
        made.append(host)
        return host

    logic = logic_with(one_strategy("stamping"), stamping)
    a = kube_upstream("a")
    only_a = Snapshot.of([a])
    first = logic.desired(only_a)
    between = logic.desired(Snapshot.of([a, kube_upstream("b")]))  # calls the strategy for b only
    assert made[0].options == {"stamp": 1}  # the memoized host of a was changed in place
    hosts = json.loads(between.objects[0].spec.json)["listeners"][0]["httpListener"]["virtualHosts"]
    assert [host["options"] for host in hosts] == [{"stamp": 0}, {"stamp": 0}]
    second = logic.desired(only_a)
    assert spec_bytes(second) == spec_bytes(first)


def test_a_second_pass_calls_a_per_upstream_strategy_only_for_the_upstream_that_changed() -> None:
    calls: list[str] = []

    @strategy("counted")
    def counted(upstream: Upstream, options: NoOptions) -> VirtualHost:
        calls.append(upstream.metadata.name)
        port = upstream.spec.kube.service_port if upstream.spec.kube else None
        name = upstream.metadata.name
        return virtual_host(name, [f"{name}-{port}"], [route_to(upstream)])

    logic = logic_with(one_strategy("counted"), counted)
    a, b, c = kube_upstream("a"), kube_upstream("b"), kube_upstream("c")
    logic.desired(Snapshot.of([a, b, c]))
    assert sorted(calls) == ["a", "b", "c"]

    calls.clear()
    changed = logic.desired(Snapshot.of([a, kube_upstream("b", port=9090), c]))
    assert calls == ["b"]
    hosts = json.loads(changed.objects[0].spec.json)["listeners"][0]["httpListener"]["virtualHosts"]
    assert [host["domains"] for host in hosts] == [["a-8080"], ["b-9090"], ["c-8080"]]

    calls.clear()
    logic.desired(Snapshot.of([a, c]))
    assert calls == []
    fresh = logic_with(one_strategy("counted"), counted).desired(Snapshot.of([a, c]))
    assert spec_bytes(logic.desired(Snapshot.of([a, c]))) == spec_bytes(fresh)


def test_a_whole_set_strategy_sees_the_selected_upstreams_sorted_and_runs_again_only_when_they_change() -> None:
    seen: list[list[str]] = []

    @strategy("whole", each=False)
    def whole(upstreams: Sequence[Upstream], options: NoOptions) -> list[VirtualHost]:
        seen.append([str(u.key) for u in upstreams])
        return [virtual_host("all", ["*"], [route_to(u, f"/{u.metadata.name}/") for u in upstreams])]

    upstreams = [
        kube_upstream("x", "team-b"),
        kube_upstream("z", "gloo-system"),
        kube_upstream("y", "team-a"),
        kube_upstream("a", "team-a"),
    ]
    logic = logic_with({**one_strategy("whole"), "namespaces": ["team-a", "team-b"]}, whole)
    logic.desired(Snapshot.of(upstreams))
    assert seen == [["team-a/a", "team-a/y", "team-b/x"]]
    logic.desired(Snapshot.of(reversed(upstreams)))
    assert len(seen) == 1  # the very same upstreams: the last result is reused
    logic.desired(Snapshot.of([*upstreams[:3], kube_upstream("a", "team-a", port=1)]))
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ({"name": "a"}, "returned dict; expected virtual hosts"),
        ("a", "returned str; expected virtual hosts"),
        ([{"name": "a"}], "returned a dict for Upstream gloo-system/a; expected proxycontroller.VirtualHost"),
    ],
)
def test_a_strategy_returning_something_else_than_virtual_hosts_fails_the_pass(returned: Any, message: str) -> None:
    @strategy("sloppy")
    def sloppy(upstream: Upstream, options: NoOptions) -> Any:
        return returned

    with pytest.raises(StrategyFailure, match=message):
        render([kube_upstream("a")], one_strategy("sloppy"), [sloppy])


def test_a_strategy_that_raises_fails_the_pass_naming_it_the_upstream_and_the_error() -> None:
    @strategy("broken")
    def broken(upstream: Upstream, options: NoOptions) -> VirtualHost:
        raise KeyError("team")

    with pytest.raises(StrategyFailure) as caught:
        render([kube_upstream("a")], one_strategy("broken"), [broken])
    assert "strategy 'broken'" in str(caught.value)
    assert "at proxies[0].listeners[0].strategies[0] failed for Upstream gloo-system/a: KeyError: 'team'" in str(
        caught.value
    )
