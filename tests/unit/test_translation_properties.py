"""Invariants of translation over generated sets of upstreams (hypothesis)."""

from __future__ import annotations

import base64
import json
import random
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import proxycontroller as pc
from proxycontroller import Upstream
from proxycontroller.config import ControllerConfig
from proxycontroller.model.desired import Desired
from proxycontroller.model.resources import ObjectKey
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import render
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic
from tests.unit.factories import kube_upstream

# Small alphabets make collisions (same name in two namespaces, domains differing in case) likely.
names = st.text(alphabet="abAB-1", min_size=1, max_size=4)
namespaces = st.sampled_from(["gloo-system", "team-a", "team-b"])
upstream_sets = st.lists(st.tuples(names, namespaces), max_size=25, unique=True).map(
    lambda pairs: [kube_upstream(name, namespace) for name, namespace in pairs]
)
configs: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {},
        {"namespaces": ["*"]},
        {"namespaces": ["team-a", "team-b"]},
        {"namespaces": ["*"], "strategy": {"domainTemplates": ["{name}", "{name}.{namespace}"]}},
        {
            "namespaces": ["*"],
            "proxies": [
                {
                    "listeners": [
                        {"strategies": [{"kind": "host-header", "options": {"domainTemplates": ["{name}"]}}]},
                    ]
                }
            ],
        },
    ]
)


def routed(config: dict[str, Any], upstream: Upstream) -> bool:
    selected = ControllerConfig.model_validate(config).namespaces
    return "*" in selected or upstream.metadata.namespace in selected


def _virtual_hosts(upstreams: list[Upstream], config: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    rendered = render(upstreams, config)
    return rendered.virtual_hosts(), list(rendered.warnings)


@settings(max_examples=200, deadline=None)
@given(upstream_sets, configs)
def test_every_routed_upstream_is_either_served_by_exactly_one_virtual_host_or_named_in_a_warning(
    upstreams: list[Upstream], config: dict[str, Any]
) -> None:
    hosts, warnings = _virtual_hosts(upstreams, config)
    served: dict[str, int] = {}
    for host in hosts:
        ref = host["routes"][0]["routeAction"]["single"]["upstream"]
        key = f"{ref['namespace']}/{ref['name']}"
        served[key] = served.get(key, 0) + 1
    for upstream in upstreams:
        key = str(upstream.key)
        if not routed(config, upstream):
            assert key not in served
        elif key not in served:
            assert any(f"Upstream {key}" in warning for warning in warnings), f"{key} silently lost"
    assert all(count == 1 for count in served.values())


@settings(max_examples=200, deadline=None)
@given(upstream_sets, configs)
def test_domains_and_virtual_host_names_are_unique_and_never_empty(
    upstreams: list[Upstream], config: dict[str, Any]
) -> None:
    hosts, _ = _virtual_hosts(upstreams, config)
    domains = [str(d).lower() for host in hosts for d in host["domains"]]
    assert len(domains) == len(set(domains))
    assert all(domains)
    assert len({host["name"] for host in hosts}) == len(hosts)


@settings(max_examples=100, deadline=None)
@given(upstream_sets, configs, st.randoms(use_true_random=False))
def test_output_is_byte_identical_under_any_input_order(
    upstreams: list[Upstream], config: dict[str, Any], rng: random.Random
) -> None:
    shuffled = list(upstreams)
    rng.shuffle(shuffled)

    def rendered(items: list[Upstream]) -> str:
        result = render(items, config)
        return json.dumps(result.proxies) + json.dumps(result.warnings)

    assert rendered(upstreams) == rendered(shuffled)


# Triples (name, namespace, port): a triple seen before stands for the very same Upstream object, as the
# controller's cache keeps an unchanged upstream; another port is a changed upstream.
triples = st.lists(st.tuples(names, namespaces, st.sampled_from([8080, 9090])), max_size=20)


@settings(max_examples=100, deadline=None)
@given(triples, triples, configs)
def test_a_pass_after_another_gives_the_bytes_and_warnings_of_a_fresh_translation(
    before: list[tuple[str, str, int]], after: list[tuple[str, str, int]], config: dict[str, Any]
) -> None:
    made: dict[tuple[str, str, int], Upstream] = {}

    def snapshot(items: list[tuple[str, str, int]]) -> Snapshot:
        by_key = {(name, ns): (name, ns, port) for name, ns, port in items}  # one upstream per key: the last
        return Snapshot.of(made.setdefault(t, kube_upstream(*t)) for t in by_key.values())

    controller = ControllerConfig.model_validate(config)
    logic = ProxyLogic(controller, StrategyRegistry.discover())
    logic.desired(snapshot(before))
    incremental = logic.desired(snapshot(after))
    fresh = ProxyLogic(controller, StrategyRegistry.discover()).desired(snapshot(after))
    assert [o.spec.json for o in incremental.objects] == [o.spec.json for o in fresh.objects]
    assert incremental.warnings == fresh.warnings


# -- a controller's life: passes over a sequence of changes ---------------------------------------------------


@pc.strategy("skip-ones")
def skip_ones(upstream: Upstream, options: pc.NoOptions) -> pc.VirtualHost:
    name = upstream.metadata.name
    if "1" in name:
        raise pc.Skip("has a 1 in its name")
    return pc.virtual_host(name, [name], [pc.route_to(upstream)])


@pc.strategy("claims-shared")
def claims_shared(upstream: Upstream, options: pc.NoOptions) -> pc.VirtualHost:
    name = upstream.metadata.name
    return pc.virtual_host(name, [name, "shared"], [pc.route_to(upstream)])


@pc.strategy("pairs")
def pairs(upstream: Upstream, options: pc.NoOptions) -> list[pc.VirtualHost]:
    """Two virtual hosts per upstream; the second is contested by every upstream of its namespace, and its
    second domain by an upstream whose name only differs in case."""
    name, namespace = upstream.metadata.name, upstream.metadata.namespace
    return [
        pc.virtual_host(name, [f"{name}.{namespace}"], [pc.route_to(upstream)]),
        pc.virtual_host(f"ns-{namespace}", [f"{namespace}.example", f"{name}.alt"], [pc.route_to(upstream)]),
    ]


@pc.strategy("empty-for-dashes")
def empty_for_dashes(upstream: Upstream, options: pc.NoOptions) -> pc.VirtualHost:
    """A virtual host validation leaves out (an empty domain) for a name that starts with a dash."""
    name = upstream.metadata.name
    return pc.virtual_host(name, ["" if name.startswith("-") else name.upper()], [pc.route_to(upstream)])


@pc.strategy("by-namespace", each=False)
def by_namespace(upstreams: Sequence[Upstream], options: pc.NoOptions) -> Iterator[pc.VirtualHost | pc.Skip]:
    """Whole-set: one virtual host per namespace routing its upstreams by path; upstreams with a 'b' skipped."""
    routes: dict[str, list[pc.Route]] = {}
    for upstream in upstreams:
        if "b" in upstream.metadata.name:
            yield pc.Skip("has a b in its name", upstream)
            continue
        path = f"/{upstream.metadata.name}/"
        routes.setdefault(upstream.metadata.namespace, []).append(pc.route_to(upstream, path, prefix_rewrite="/"))
    for namespace, found in sorted(routes.items()):
        yield pc.virtual_host(namespace, [f"{namespace}.example"], found)


LIFE_STRATEGIES = (skip_ones, claims_shared, pairs, empty_for_dashes, by_namespace)


def _listener(name: str, port: int, *kinds: str | tuple[str, dict[str, Any]]) -> dict[str, Any]:
    strategies = [{"kind": kind} if isinstance(kind, str) else {"kind": kind[0], "options": kind[1]} for kind in kinds]
    return {"name": name, "bindPort": port, "strategies": strategies}


life_configs: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"namespaces": ["*"]},
        # every virtual host claims "shared": only the first is admitted, any change can move it
        {"namespaces": ["*"], "strategy": {"kind": "claims-shared"}},
        {
            "namespaces": ["*"],
            "proxies": [
                {
                    "name": "one",
                    "listeners": [
                        _listener("a", 8080, "skip-ones", ("host-header", {"domainTemplates": ["{name}.{namespace}"]})),
                        _listener("b", 8081, "pairs", "empty-for-dashes"),
                    ],
                },
                {
                    "name": "two",
                    "namespaces": ["team-a", "team-b"],
                    "listeners": [
                        _listener("c", 8080, "by-namespace", "path-prefix", "host-header"),
                        _listener("d", 8082, "pairs", "by-namespace"),
                    ],
                },
            ],
        },
        {"namespaces": ["gloo-system", "team-a"], "proxies": [{"listeners": [_listener("p", 8080, "pairs")]}]},
    ]
)

# One step: upstreams put (name, namespace, port; a port of 0 removes it instead), then whether the logic sees
# the snapshot through the engine's hint, without it, or not at all (a pass that failed).
steps = st.lists(
    st.tuples(
        st.lists(st.tuples(names, namespaces, st.sampled_from([0, 8080, 9090])), max_size=4),
        st.sampled_from(["hinted", "plain", "unseen"]),
        st.booleans(),  # a put of what is there already makes a new, equal object (a relist)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, namespaces), min_size=8, max_size=30), steps, life_configs)
def test_every_pass_over_a_sequence_of_changes_gives_what_a_fresh_logic_gives_for_that_snapshot(
    start: list[tuple[str, str]], changes: list[tuple[list[tuple[str, str, int]], str, bool]], config: dict[str, Any]
) -> None:
    controller = ControllerConfig.model_validate(config)
    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, *LIFE_STRATEGIES)})
    logic = ProxyLogic(controller, registry)
    cache: dict[ObjectKey, Upstream] = {}
    for name, namespace in start:
        upstream = kube_upstream(name, namespace)
        cache[upstream.key] = upstream
    snapshot = Snapshot.of_mappings({Upstream: dict(cache)})
    assert_same_as_fresh(logic.desired(snapshot), snapshot, controller, registry)
    for puts, how, renew in changes:
        touched = set()
        for name, namespace, port in puts:
            key = ObjectKey(namespace, name)
            touched.add(key)
            held = cache.get(key)
            if port == 0:
                cache.pop(key, None)
            elif held is None or renew or held.spec.kube is None or held.spec.kube.service_port != port:
                cache[key] = kube_upstream(name, namespace, port)
        if how == "plain":
            snapshot = Snapshot.of_mappings({Upstream: dict(cache)})
        else:
            snapshot = snapshot.followed_by({Upstream: dict(cache)}, {Upstream: touched})
        if how != "unseen":
            assert_same_as_fresh(logic.desired(snapshot), snapshot, controller, registry)


def assert_same_as_fresh(
    desired: Desired, snapshot: Snapshot, config: ControllerConfig, registry: StrategyRegistry
) -> None:
    fresh = ProxyLogic(config, registry).desired(Snapshot.of(snapshot.upstreams.values()))
    assert [(o.key, o.spec.json) for o in desired.objects] == [(o.key, o.spec.json) for o in fresh.objects]
    for item in desired.objects:  # Gloo's compressed form, kept in pieces, holds the same bytes
        assert zlib.decompress(base64.b64decode(item.spec.compressed)) == item.spec.json
    assert [dict(o.parts) for o in desired.objects] == [dict(o.parts) for o in fresh.objects]
    assert desired.warnings == fresh.warnings
