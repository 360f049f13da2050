"""Invariants of translation over generated sets of upstreams (hypothesis)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from proxycontroller.config import ControllerConfig, StrategySettings
from proxycontroller.model.encoding import to_cr
from proxycontroller.model.resources import Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.strategies import host_header
from proxycontroller.validate.desired import desired_state
from tests.unit.factories import kube_upstream

# Small alphabets make collisions (same name in two namespaces, domains differing in case) likely.
names = st.text(alphabet="abAB-1", min_size=1, max_size=4)
namespaces = st.sampled_from(["gloo-system", "team-a", "team-b"])
upstream_sets = st.lists(st.tuples(names, namespaces), max_size=25, unique=True).map(
    lambda pairs: [kube_upstream(name, namespace) for name, namespace in pairs]
)
configs = st.sampled_from(
    [
        ControllerConfig(),
        ControllerConfig(namespaces=("*",)),
        ControllerConfig(namespaces=("team-a", "team-b")),
        ControllerConfig(
            namespaces=("*",), strategy=StrategySettings(domain_templates=("{name}", "{name}.{namespace}"))
        ),
    ]
)


def _virtual_hosts(upstreams: list[Upstream], config: ControllerConfig) -> tuple[list[dict[str, object]], list[str]]:
    state = desired_state(Snapshot.of(upstreams), config, host_header)
    (proxy,) = state.proxies
    hosts = to_cr(proxy)["spec"]["listeners"][0]["httpListener"]["virtualHosts"]
    return hosts, list(state.warnings)


@settings(max_examples=200, deadline=None)
@given(upstream_sets, configs)
def test_every_routed_upstream_is_either_served_by_exactly_one_virtual_host_or_named_in_a_warning(
    upstreams: list[Upstream], config: ControllerConfig
) -> None:
    hosts, warnings = _virtual_hosts(upstreams, config)
    served: dict[str, int] = {}
    for host in hosts:
        ref = host["routes"][0]["routeAction"]["single"]["upstream"]  # type: ignore[index]
        key = f"{ref['namespace']}/{ref['name']}"
        served[key] = served.get(key, 0) + 1
    for upstream in upstreams:
        key = str(upstream.key)
        if not config.routes_namespace(upstream.metadata.namespace):
            assert key not in served
        elif key not in served:
            assert any(f"Upstream {key}" in warning for warning in warnings), f"{key} silently lost"
    assert all(count == 1 for count in served.values())


@settings(max_examples=200, deadline=None)
@given(upstream_sets, configs)
def test_domains_and_virtual_host_names_are_unique_and_never_empty(
    upstreams: list[Upstream], config: ControllerConfig
) -> None:
    hosts, _ = _virtual_hosts(upstreams, config)
    domains = [str(d).lower() for host in hosts for d in host["domains"]]  # type: ignore[attr-defined]
    assert len(domains) == len(set(domains))
    assert all(domains)
    assert len({host["name"] for host in hosts}) == len(hosts)


@settings(max_examples=100, deadline=None)
@given(upstream_sets, configs, st.randoms(use_true_random=False))
def test_output_is_byte_identical_under_any_input_order(
    upstreams: list[Upstream], config: ControllerConfig, rng: random.Random
) -> None:
    shuffled = list(upstreams)
    rng.shuffle(shuffled)

    def rendered(items: list[Upstream]) -> str:
        state = desired_state(Snapshot.of(items), config, host_header)
        return json.dumps([to_cr(p) for p in state.proxies]) + json.dumps(state.warnings)

    assert rendered(upstreams) == rendered(shuffled)
