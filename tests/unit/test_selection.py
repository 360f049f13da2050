"""Selection per Proxy: namespaces, a Kubernetes label selector, an exclude list, the owner's expose annotation,
and shards; decided again for a changed upstream alone, so an upstream whose labels or annotations change
enters or leaves a Proxy's routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from proxycontroller.config import ConfigError, ControllerConfig, describe_validation_error, load_config
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import render
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.selection import EXPOSE_ANNOTATION, labels_selected, shard_of
from proxycontroller.validate.desired import ProxyLogic
from tests.unit.factories import kube_upstream
from tests.unit.test_translation import names


def upstream(
    name: str,
    namespace: str = "gloo-system",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Upstream:
    made = kube_upstream(name, namespace)
    metadata = made.metadata.model_copy(update={"labels": labels, "annotations": annotations})
    return made.model_copy(update={"metadata": metadata})


def proxy(**settings: Any) -> dict[str, Any]:
    return {"namespaces": ["*"], "proxies": [settings]}


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "api"}, False),
        ({"matchLabels": {"app": "web"}}, None, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "c"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "b"}, True),
        # As Kubernetes: NotIn holds for an object without the label.
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "example.com/x", "operator": "Exists"}]}, {"example.com/x": ""}, True),
        ({"matchExpressions": [{"key": "example.com/x", "operator": "Exists"}]}, {"x": "1"}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"app": "web"}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"canary": "1"}, False),
        (
            {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
            {"app": "web", "canary": "1"},
            False,
        ),
        ({}, None, True),  # an empty selector selects everything, as in Kubernetes
    ],
)
def test_the_label_selector_matches_as_kubernetes_does(
    selector: dict[str, Any], labels: dict[str, str] | None, selected: bool
) -> None:
    config = ControllerConfig.model_validate(proxy(selector=selector))
    assert labels_selected(config.proxies[0].selector, labels) is selected
    rendered = render([upstream("a", labels=labels)], config)
    assert names(rendered) == (["a"] if selected else [])
    assert rendered.warnings == ()


def test_exclude_takes_names_in_any_namespace_or_namespace_slash_name_with_wildcards() -> None:
    upstreams = [
        upstream("kube-dns", "kube-system"),
        upstream("web", "team-a"),
        upstream("web", "team-b"),
        upstream("api", "team-a"),
        upstream("api-canary", "team-b"),
        upstream("admin", "team-b"),
    ]
    config = proxy(exclude=["kube-system/*", "team-a/web", "*-canary", "adm?n"])
    rendered = render(upstreams, config)
    hosts = rendered.virtual_hosts()
    assert [(h["name"], h["routes"][0]["routeAction"]["single"]["upstream"]["namespace"]) for h in hosts] == [
        ("api", "team-a"),
        ("web", "team-b"),
    ]


def test_opt_out_routes_all_but_the_upstreams_annotated_false() -> None:
    upstreams = [
        upstream("a"),
        upstream("b", annotations={EXPOSE_ANNOTATION: "false"}),
        upstream("c", annotations={EXPOSE_ANNOTATION: "true"}),
    ]
    rendered = render(upstreams, proxy())
    assert names(rendered) == ["a", "c"]
    assert rendered.warnings == ()


def test_opt_in_routes_only_the_upstreams_annotated_true() -> None:
    upstreams = [
        upstream("a"),
        upstream("b", annotations={EXPOSE_ANNOTATION: "false"}),
        upstream("c", annotations={EXPOSE_ANNOTATION: "true"}),
    ]
    rendered = render(upstreams, proxy(exposure="opt-in"))
    assert names(rendered) == ["c"]
    assert rendered.warnings == ()


@pytest.mark.parametrize("exposure", ["opt-out", "opt-in"])
@pytest.mark.parametrize("value", ["yes", "True", "", "1", "false\n"])
def test_a_bad_expose_value_leaves_that_upstream_out_with_one_line_naming_it(exposure: str, value: str) -> None:
    upstreams = [
        upstream("a", annotations={EXPOSE_ANNOTATION: "true"}),
        upstream("bad", annotations={EXPOSE_ANNOTATION: value}),
    ]
    config = proxy(exposure=exposure, listeners=[{"name": "one", "bindPort": 8080}, {"name": "two", "bindPort": 8081}])
    rendered = render(upstreams, config)
    assert names(rendered) == ["a"]
    assert names(rendered, listener=1) == ["a"]
    (warning,) = rendered.warnings  # one per Proxy, not one per listener or strategy
    assert "\n" not in warning
    assert warning.startswith("Proxy gloo-system/my-cool-proxy: left out Upstream gloo-system/bad: ")
    assert f"annotation {EXPOSE_ANNOTATION}={value!r}" in warning
    assert 'must be "true"' in warning
    assert '"false"' in warning


def test_two_proxies_each_route_their_own_selection() -> None:
    upstreams = [
        upstream("web", labels={"team": "a"}),
        upstream("api", labels={"team": "b"}),
        upstream("db", labels={"team": "b", "internal": "true"}),
    ]
    config = {
        "proxies": [
            {"name": "team-a", "selector": {"matchLabels": {"team": "a"}}},
            {
                "name": "team-b",
                "selector": {
                    "matchLabels": {"team": "b"},
                    "matchExpressions": [{"key": "internal", "operator": "DoesNotExist"}],
                },
                "listeners": [{"bindPort": 8081}],
            },
        ]
    }
    rendered = render(upstreams, config)
    assert names(rendered, proxy="team-a") == ["web"]
    assert names(rendered, proxy="team-b") == ["api"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"selector": {"matchLabels": {"Bad Key": "x"}}},
            "proxies[0].selector.matchLabels: label key 'Bad Key': its name must be 1 to 63 alphanumeric",
        ),
        (
            {"selector": {"matchLabels": {"UPPER.example.com/app": "x"}}},
            "label key 'UPPER.example.com/app': its prefix (before '/') must be a DNS-1123 subdomain",
        ),
        ({"selector": {"matchLabels": {"app": "a b"}}}, "label value 'a b': must be empty or at most 63"),
        (
            {"selector": {"matchLabels": {"app": 1}}},
            "proxies[0].selector.matchLabels.app: Input should be a valid string",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "proxies[0].selector.matchExpressions[0].values: must list at least one value for operator In",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "proxies[0].selector.matchExpressions[0].values: must be empty for operator Exists",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}},
            "matchExpressions[0].operator: Input should be 'In', 'NotIn', 'Exists' or 'DoesNotExist'",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a/", "operator": "Exists"}]}},
            "proxies[0].selector.matchExpressions[0].key: label key 'a/': its name must be 1 to 63",
        ),
        ({"selector": {"matchLabel": {}}}, "proxies[0].selector.matchLabel: Extra inputs are not permitted"),
        ({"exclude": ["a/b/c"]}, "proxies[0].exclude[0]: 'a/b/c' is not 'name' or 'namespace/name'"),
        ({"exclude": ["a b"]}, "proxies[0].exclude[0]: 'a b' is not 'name' or 'namespace/name'"),
        ({"exposure": "opt_in"}, "proxies[0].exposure: Input should be 'opt-out' or 'opt-in'"),
        ({"shards": 0}, "proxies[0].shards: Input should be greater than or equal to 1"),
        ({"shards": "2"}, "proxies[0].shards: Input should be a valid integer"),
        ({"name": "p" * 252, "shards": 2}, "proxies[0].shards: the shard's name 'ppp"),
        (
            {"shards": 3, "shardPortStep": 30000},
            "proxies[0].listeners[0].bindPort: shard 2 would bind port 68080 (bindPort 8080 + 2 x shardPortStep 30000)",
        ),
    ],
)
def test_bad_selection_settings_are_refused_naming_the_key(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"proxies": [settings]}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_shard_name_that_repeats_another_proxy_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ControllerConfig.model_validate({"proxies": [{"name": "edge", "shards": 2}, {"name": "edge-1"}]})
    assert describe_validation_error(caught.value) == "proxies[1].name: Proxy gloo-system/edge-1 is also proxies[0]"


# -- incremental: the translator is told only the keys that changed -------------------------------------------


def test_an_upstream_whose_labels_or_annotations_change_leaves_and_reenters_the_proxy() -> None:
    config = ControllerConfig.model_validate(proxy(selector={"matchLabels": {"expose": "yes"}}))
    logic = ProxyLogic(config, StrategyRegistry.discover())
    cache = {u.key: u for u in (upstream("a", labels={"expose": "yes"}), upstream("b", labels={"expose": "yes"}))}
    snapshot = Snapshot.of_mappings({Upstream: dict(cache)})

    def change(replacement: Upstream) -> list[str]:
        nonlocal snapshot
        cache[replacement.key] = replacement
        snapshot = snapshot.followed_by({Upstream: dict(cache)}, {Upstream: {replacement.key}})
        desired = logic.desired(snapshot)
        fresh = ProxyLogic(config, StrategyRegistry.discover()).desired(Snapshot.of(cache.values()))
        assert desired.objects[0].spec.json == fresh.objects[0].spec.json
        assert desired.warnings == fresh.warnings
        return list(desired.objects[0].parts["my-amazing-listener"])

    assert list(logic.desired(snapshot).objects[0].parts["my-amazing-listener"]) == ["a", "b"]
    assert change(upstream("a", labels={"expose": "no"})) == ["b"]
    assert change(upstream("a", labels={"expose": "yes"}, annotations={EXPOSE_ANNOTATION: "false"})) == ["b"]
    assert change(upstream("a", labels={"expose": "yes"}, annotations={EXPOSE_ANNOTATION: "maybe"})) == ["b"]
    assert logic.desired(snapshot).warnings != ()
    assert change(upstream("a", labels={"expose": "yes"})) == ["a", "b"]
    assert logic.desired(snapshot).warnings == ()


# -- shards ------------------------------------------------------------------------------------------------------

keys = st.lists(
    st.tuples(st.sampled_from(["gloo-system", "team-a"]), st.text(alphabet="abc-12", min_size=1, max_size=8)),
    unique=True,
    max_size=60,
).map(lambda pairs: [ObjectKey(*pair) for pair in pairs])


@settings(max_examples=100, deadline=None)
@given(keys, keys, st.integers(min_value=1, max_value=8))
def test_adding_upstreams_never_moves_existing_ones_and_each_is_in_exactly_one_shard(
    before: list[ObjectKey], added: list[ObjectKey], shards: int
) -> None:
    config = {"namespaces": ["*"], "proxies": [{"name": "edge", "shards": shards}]}
    shard_names = [f"edge-{i}" for i in range(shards)] if shards > 1 else ["edge"]

    def placement(keys: list[ObjectKey]) -> dict[tuple[str, str], str]:
        rendered = render([kube_upstream(k.name, k.namespace) for k in keys], config)
        assert [p["metadata"]["name"] for p in rendered.proxies] == shard_names
        placed: dict[tuple[str, str], str] = {}
        for made in rendered.proxies:
            for host in made["spec"]["listeners"][0]["httpListener"]["virtualHosts"]:
                target = host["routes"][0]["routeAction"]["single"]["upstream"]
                key = (target["namespace"], target["name"])
                assert key not in placed, f"{key} in two shards"
                placed[key] = made["metadata"]["name"]
        return placed

    first = placement(before)
    both = list(dict.fromkeys(before + added))
    second = placement(both)
    # Every upstream whose virtual host was admitted (names repeat across namespaces: the first keeps it) is
    # in exactly one shard, the one the hash says, before and after.
    for key, shard in second.items():
        assert shard == shard_names[shard_of(ObjectKey(*key), shards)] if shards > 1 else shard == "edge"
    for key, shard in first.items():
        assert second.get(key, shard) == shard


def test_every_key_is_in_exactly_one_shard_and_one_more_shard_moves_only_about_its_share() -> None:
    all_keys = [ObjectKey("gloo-system", f"service-{i}") for i in range(4000)]
    for shards in (2, 3, 4, 8):
        before = {key: shard_of(key, shards) for key in all_keys}
        assert set(before.values()) == set(range(shards))
        after = {key: shard_of(key, shards + 1) for key in all_keys}
        moved = [key for key in all_keys if before[key] != after[key]]
        assert all(after[key] == shards for key in moved)  # only to the new shard
        share = len(moved) / len(all_keys)
        assert abs(share - 1 / (shards + 1)) < 0.04, (shards, share)


def test_shard_assignment_is_fixed_across_processes() -> None:
    """BLAKE2b, not Python's per-process salted hash(): these values must never change (a controller upgrade
    would move upstreams between Envoys otherwise)."""
    placed = [shard_of(ObjectKey("gloo-system", f"default-service-{i}-8080"), 4) for i in range(8)]
    assert placed == [3, 2, 2, 2, 2, 0, 1, 0]


def test_each_shard_is_a_proxy_named_name_dash_index_with_the_same_listeners() -> None:
    upstreams = [kube_upstream(f"service-{i}") for i in range(20)]
    rendered = render(upstreams, {"proxies": [{"name": "edge", "shards": 3}]})
    assert [p["metadata"]["name"] for p in rendered.proxies] == ["edge-0", "edge-1", "edge-2"]
    assert all(p["spec"]["listeners"][0]["bindPort"] == 8080 for p in rendered.proxies)
    stepped = render(upstreams, {"proxies": [{"name": "edge", "shards": 3, "shardPortStep": 10}]})
    assert [p["spec"]["listeners"][0]["bindPort"] for p in stepped.proxies] == [8080, 8090, 8100]
    counts = [len(p["spec"]["listeners"][0]["httpListener"]["virtualHosts"]) for p in rendered.proxies]
    assert sum(counts) == 20
    assert all(counts)


# A controller's life under selection: upstreams whose labels and annotations change from pass to pass.
selection_configs: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        proxy(selector={"matchLabels": {"team": "a"}}),
        proxy(
            selector={"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["b"]}]}, exposure="opt-in"
        ),
        proxy(
            exclude=["team-a/*", "a?"], listeners=[{"strategies": [{"kind": "host-header"}, {"kind": "path-prefix"}]}]
        ),
        {
            "namespaces": ["*"],
            "proxies": [
                {
                    "name": "edge",
                    "shards": 3,
                    "selector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
                },
                {"name": "all", "exposure": "opt-in", "listeners": [{"strategies": [{"kind": "path-prefix"}]}]},
            ],
        },
    ]
)
labelled = st.tuples(
    st.text(alphabet="ab1", min_size=1, max_size=3),
    st.sampled_from(["gloo-system", "team-a"]),
    st.sampled_from([None, {"team": "a"}, {"team": "b"}]),
    st.sampled_from(
        [
            None,
            {EXPOSE_ANNOTATION: "true"},
            {EXPOSE_ANNOTATION: "false"},
            {EXPOSE_ANNOTATION: "no"},
            {EXPOSE_ANNOTATION: "true", "proxycontroller.io/prefix": "/shop"},
            {"proxycontroller.io/prefix": "/shop/a"},
            {"proxycontroller.io/prefix": "/bad/"},
            {"proxycontroller.io/domains": "shop.example.com"},
        ]
    ),
    st.booleans(),  # False: remove it instead
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(labelled, max_size=15), st.lists(st.lists(labelled, max_size=4), min_size=1, max_size=6), selection_configs
)
def test_every_pass_over_label_and_annotation_changes_gives_what_a_fresh_logic_gives(
    start: list[Any], steps: list[list[Any]], config: dict[str, Any]
) -> None:
    controller = ControllerConfig.model_validate(config)
    logic = ProxyLogic(controller, StrategyRegistry.discover())
    cache: dict[ObjectKey, Upstream] = {}
    for name, namespace, labels, notes, _ in start:
        made = upstream(name, namespace, labels, notes)
        cache[made.key] = made
    snapshot = Snapshot.of_mappings({Upstream: dict(cache)})
    logic.desired(snapshot)
    for step in steps:
        touched = set()
        for name, namespace, labels, notes, present in step:
            key = ObjectKey(namespace, name)
            touched.add(key)
            if present:
                cache[key] = upstream(name, namespace, labels, notes)
            else:
                cache.pop(key, None)
        snapshot = snapshot.followed_by({Upstream: dict(cache)}, {Upstream: touched})
        desired = logic.desired(snapshot)
        fresh = ProxyLogic(controller, StrategyRegistry.discover()).desired(Snapshot.of(cache.values()))
        assert [(o.key, o.spec.json) for o in desired.objects] == [(o.key, o.spec.json) for o in fresh.objects]
        assert desired.warnings == fresh.warnings
