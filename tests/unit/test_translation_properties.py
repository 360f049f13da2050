"""Invariants of translation over generated sets of upstreams (hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxycontroller import Upstream
from proxycontroller.config import ControllerConfig
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import render
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
