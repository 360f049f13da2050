"""Host templates, the domains and prefix annotations, path-prefix routing, and their combinations with
https-redirect, selection and shards; every Proxy they make passes validation and Gloo's Proxy CRD schema."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.testing import Rendered, render
from proxycontroller.translate.annotations import DOMAINS_ANNOTATION, PREFIX_ANNOTATION
from proxycontroller.translate.registry import StrategyError, StrategyRegistry
from proxycontroller.translate.selection import EXPOSE_ANNOTATION
from proxycontroller.validate.rules import check_virtual_host
from tests.unit.factories import kube_upstream
from tests.unit.test_render_cli import proxy_schema
from tests.unit.test_translation import logic_with, one_strategy, single


def upstream(
    name: str,
    namespace: str = "gloo-system",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    kube: bool = True,
) -> Upstream:
    made = kube_upstream(name, namespace)
    metadata = made.metadata.model_copy(update={"labels": labels, "annotations": annotations})
    if not kube:
        return Upstream.model_validate(
            {"metadata": metadata.model_dump(), "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 80}]}}}
        )
    return made.model_copy(update={"metadata": metadata})


def domains(rendered: Rendered, listener: int = 0) -> dict[str, list[str]]:
    return {host["name"]: host["domains"] for host in rendered.virtual_hosts(listener)}


def by_path(namespace: str, name: str, prefix: str) -> list[dict[str, Any]]:
    exact = {**single(namespace, name, matchers=[{"exact": prefix}]), "options": {"prefixRewrite": "/"}}
    return [single(namespace, name, f"{prefix}/", options={"prefixRewrite": "/"}), exact]


# -- host templates ------------------------------------------------------------------------------------------


def test_templates_use_name_namespace_labels_annotations_and_the_kube_service() -> None:
    templates = [
        "{name}",
        "{label[app]}.{namespace}.example.com",
        "{annotation[example.com/host]}",
        "{service}.{serviceNamespace}.svc:{port}",
    ]
    web = upstream("web-8080", "team-a", {"app": "web"}, {"example.com/host": "www.example.com"})
    rendered = render([web], {"namespaces": ["*"], **one_strategy("host-header", domainTemplates=templates)})
    assert rendered.warnings == ()
    assert domains(rendered) == {
        "web-8080": ["web-8080", "web.team-a.example.com", "www.example.com", "web-8080.default.svc:8080"]
    }


@pytest.mark.parametrize(
    ("template", "made", "problem"),
    [
        ("{label[app]}.example.com", upstream("x"), "'{label[app]}.example.com': the upstream has no label 'app'"),
        ("{annotation[a.io/b]}", upstream("x"), "'{annotation[a.io/b]}': the upstream has no annotation 'a.io/b'"),
        ("{service}.svc", upstream("x", kube=False), "{service} has no value: the upstream is not a kube upstream"),
        ("{port}.x", upstream("x", kube=False), "{port} has no value: the upstream is not a kube upstream"),
        ("{label[app]}.x", upstream("x", labels={"app": ""}), None),  # an empty label is a value: ".x"
        (
            "{annotation[a]}.example.com",
            upstream("x", annotations={"a": "two words"}),
            "the value of {annotation[a]}, 'two words', holds whitespace",
        ),
    ],
)
def test_a_template_an_upstream_cannot_fill_leaves_it_out_with_a_warning_naming_it(
    template: str, made: Upstream, problem: str | None
) -> None:
    rendered = render(
        [made, upstream("y", labels={"app": "y"}, annotations={"a.io/b": "y", "a": "y"})],
        one_strategy("host-header", domainTemplates=[template]),
    )
    if problem is None:
        assert rendered.warnings == ()
        return
    assert [host["name"] for host in rendered.virtual_hosts()] == ["y"]
    (warning,) = rendered.warnings
    assert "left out Upstream gloo-system/x: " in warning
    assert problem in warning


def test_a_template_may_use_any_field_and_a_clash_keeps_the_first_and_names_the_loser() -> None:
    """`{label[app]}` makes one domain for all the upstreams of an app: the first by namespace, then name,
    keeps it (admission's rule), and the warning names the loser and the winner."""
    upstreams = [upstream("web-v2", labels={"app": "web"}), upstream("web-v1", labels={"app": "web"})]
    rendered = render(upstreams, one_strategy("host-header", domainTemplates=["{label[app]}.example.com"]))
    assert domains(rendered) == {"web-v1": ["web.example.com"]}
    (warning,) = rendered.warnings
    assert (
        "left out virtual host 'web-v2' (from Upstream gloo-system/web-v2): it claims domain 'web.example.com',"
        " already served by virtual host 'web-v1' (from Upstream gloo-system/web-v1)"
    ) in warning


def test_the_default_stays_the_seeds_name_and_two_templates_making_one_domain_give_it_once() -> None:
    rendered = render(
        [upstream("a", labels={"app": "a"})], one_strategy("host-header", domainTemplates=["{name}", "{label[app]}"])
    )
    assert domains(rendered) == {"a": ["a"]}
    assert domains(render([upstream("a")], {})) == {"a": ["a"]}


# -- the domains annotation ----------------------------------------------------------------------------------


def test_the_domains_annotation_adds_domains_after_the_templates_ones() -> None:
    annotated = upstream("web", annotations={DOMAINS_ANNOTATION: "a.example.com, *.b.example.com,WEB,c.example:8080"})
    rendered = render([annotated], one_strategy("host-header", domainTemplates=["{name}", "{name}.example.com"]))
    assert rendered.warnings == ()
    assert domains(rendered) == {
        "web": ["web", "web.example.com", "a.example.com", "*.b.example.com", "c.example:8080"]
    }
    # https-redirect makes the same domains
    redirected = render([annotated], one_strategy("https-redirect"))
    assert domains(redirected) == {"web": ["web", "a.example.com", "*.b.example.com", "c.example:8080"]}


def test_the_domains_annotation_can_be_turned_off() -> None:
    annotated = upstream("web", annotations={DOMAINS_ANNOTATION: "a.example.com"})
    rendered = render([annotated], one_strategy("host-header", allowDomainsAnnotation=False))
    assert domains(rendered) == {"web": ["web"]}


@pytest.mark.parametrize(
    "value",
    ["", "a.example.com,", "*", "a b.example.com", "a..example.com", "-a.example.com", "a.*.com", "x:99999", "é.com"],
)
def test_a_bad_domains_annotation_leaves_that_upstream_out_with_one_line_naming_it(value: str) -> None:
    upstreams = [upstream("bad", annotations={DOMAINS_ANNOTATION: value}), upstream("good")]
    for kind in ("host-header", "https-redirect"):
        rendered = render(upstreams, one_strategy(kind))
        assert list(domains(rendered)) == ["good"]
        (warning,) = rendered.warnings
        assert "\n" not in warning
        assert f"left out Upstream gloo-system/bad: annotation {DOMAINS_ANNOTATION}=" in warning
        assert "expected domains separated by commas, each a host name" in warning


def test_a_domain_claimed_by_annotation_is_first_come_first_served() -> None:
    upstreams = [
        upstream("b", annotations={DOMAINS_ANNOTATION: "shop.example.com"}),
        upstream("a", annotations={DOMAINS_ANNOTATION: "shop.example.com"}),
    ]
    rendered = render(upstreams, {})
    assert list(domains(rendered)) == ["a"]
    (warning,) = rendered.warnings
    assert "left out virtual host 'b' (from Upstream gloo-system/b): it claims domain 'shop.example.com'" in warning


# -- path prefix ---------------------------------------------------------------------------------------------


def test_path_prefix_routes_the_prefix_and_below_it_rewritten_to_slash_longest_first() -> None:
    upstreams = [
        upstream("default-petstore-8080"),
        upstream("pets", annotations={PREFIX_ANNOTATION: "/api/pets"}),
        upstream("api", annotations={PREFIX_ANNOTATION: "/api"}),
    ]
    rendered = render(upstreams, one_strategy("path-prefix"))
    assert rendered.warnings == ()
    (catch_all,) = rendered.virtual_hosts()
    assert catch_all["routes"] == [
        *by_path("gloo-system", "default-petstore-8080", "/default-petstore-8080"),
        *by_path("gloo-system", "pets", "/api/pets"),
        *by_path("gloo-system", "api", "/api"),
    ]


def test_the_prefix_template_uses_the_upstreams_fields() -> None:
    upstreams = [upstream("web-8080", "team-a", {"app": "web"}), upstream("db", "team-b", {"app": "db"})]
    config = {"namespaces": ["*"], **one_strategy("path-prefix", prefixTemplate="/{namespace}/{label[app]}")}
    (catch_all,) = render(upstreams, config).virtual_hosts()
    assert catch_all["routes"] == [
        *by_path("team-a", "web-8080", "/team-a/web"),
        *by_path("team-b", "db", "/team-b/db"),
    ]


def test_two_upstreams_claiming_one_prefix_the_first_by_namespace_then_name_keeps_it() -> None:
    upstreams = [
        upstream("zeta", "team-a", annotations={PREFIX_ANNOTATION: "/shop"}),
        upstream("alpha", "team-b", annotations={PREFIX_ANNOTATION: "/shop"}),
        upstream("shop", "team-c"),
    ]
    rendered = render(upstreams, {"namespaces": ["*"], **one_strategy("path-prefix")})
    (catch_all,) = rendered.virtual_hosts()
    assert catch_all["routes"] == by_path("team-a", "zeta", "/shop")
    assert len(rendered.warnings) == 2
    for warning, loser in zip(rendered.warnings, ["team-b/alpha", "team-c/shop"], strict=True):
        assert (
            f"left out Upstream {loser}: its path prefix '/shop' is already routed to Upstream team-a/zeta" in warning
        )


@pytest.mark.parametrize(
    "value", ["pets", "/", "/pets/", "//pets", "/a//b", "/a/./b", "/..", "/p ets", "/p%41", "/p?q", "/p#f", ""]
)
def test_a_bad_prefix_annotation_leaves_that_upstream_out_with_one_line_naming_it(value: str) -> None:
    rendered = render(
        [upstream("bad", annotations={PREFIX_ANNOTATION: value}), upstream("good")], one_strategy("path-prefix")
    )
    (catch_all,) = rendered.virtual_hosts()
    assert catch_all["routes"] == by_path("gloo-system", "good", "/good")
    (warning,) = rendered.warnings
    assert f"left out Upstream gloo-system/bad: annotation {PREFIX_ANNOTATION}={value!r}: " in warning
    assert "expected '/' then segments" in warning


def test_the_prefix_annotation_can_be_turned_off() -> None:
    rendered = render(
        [upstream("a", annotations={PREFIX_ANNOTATION: "/x"})], one_strategy("path-prefix", allowPrefixAnnotation=False)
    )
    (catch_all,) = rendered.virtual_hosts()
    assert catch_all["routes"] == by_path("gloo-system", "a", "/a")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefixTemplate": "{name}"}, "prefixTemplate: '{name}' must start with '/'"),
        ({"prefixTemplate": "/static"}, "prefixTemplate: '/static' uses no field"),
        ({"prefixTemplate": "/{nme}"}, "prefixTemplate: '/{nme}': unknown field '{nme}'"),
        ({"allowPrefixAnnotation": "yes"}, "allowPrefixAnnotation: Input should be a valid boolean"),
    ],
)
def test_bad_path_prefix_options_are_refused_naming_the_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyError) as caught:
        logic_with(one_strategy("path-prefix", **options))
    assert f"proxies[0].listeners[0].strategies[0].options.{message}" in str(caught.value)


def test_path_prefix_stays_correct_incrementally_when_a_prefix_annotation_changes() -> None:
    from proxycontroller.model.snapshot import Snapshot

    logic = logic_with({"namespaces": ["*"], **one_strategy("path-prefix")})
    first = upstream("a", annotations={PREFIX_ANNOTATION: "/shop"})
    second = upstream("b", annotations={PREFIX_ANNOTATION: "/shop"})
    snapshot = Snapshot.of_mappings({Upstream: {first.key: first, second.key: second}})
    assert len(logic.desired(snapshot).warnings) == 1
    moved = upstream("a", annotations={PREFIX_ANNOTATION: "/store"})
    snapshot = snapshot.followed_by({Upstream: {moved.key: moved, second.key: second}}, {Upstream: {moved.key}})
    desired = logic.desired(snapshot)
    assert desired.warnings == ()
    assert b'"exact":"/store"' in desired.objects[0].spec.json
    assert b'"exact":"/shop"' in desired.objects[0].spec.json


# -- every Proxy made passes validation and Gloo's CRD schema ------------------------------------------------

label_values = st.sampled_from([None, {"app": "web"}, {"app": "api", "team": "a"}, {"app": ""}])
annotation_values = st.sampled_from(
    [
        None,
        {DOMAINS_ANNOTATION: "shop.example.com"},
        {DOMAINS_ANNOTATION: "*.example.com,a.example.com:8443"},
        {DOMAINS_ANNOTATION: "bad domain"},
        {PREFIX_ANNOTATION: "/shop"},
        {PREFIX_ANNOTATION: "/api/v1"},
        {PREFIX_ANNOTATION: "//bad"},
        {EXPOSE_ANNOTATION: "false"},
        {EXPOSE_ANNOTATION: "true", "proxycontroller.io/https-redirect": "false"},
        {EXPOSE_ANNOTATION: "maybe"},
    ]
)
generated = st.lists(
    st.builds(
        upstream,
        st.text(alphabet="ab-1", min_size=1, max_size=4),
        st.sampled_from(["gloo-system", "team-a"]),
        label_values,
        annotation_values,
        st.booleans(),
    ),
    max_size=12,
)
TEMPLATES = ["{name}", "{name}.{namespace}", "{label[app]}.example.com", "{service}.{serviceNamespace}:{port}"]
combinations = st.sampled_from(
    [
        one_strategy("host-header", domainTemplates=TEMPLATES),
        one_strategy("path-prefix", prefixTemplate="/{namespace}/{name}"),
        one_strategy("https-redirect", httpsPort=8443, domainTemplates=["{name}", "{label[app]}.{namespace}"]),
        {
            "proxies": [
                {
                    "name": "edge",
                    "shards": 2,
                    "shardPortStep": 1,
                    "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                    "listeners": [
                        {
                            "name": "http",
                            "strategies": [
                                {"kind": "https-redirect", "options": {"httpsPort": 8443}},
                                {"kind": "path-prefix", "options": {"domains": ["*"]}},
                            ],
                        },
                        {
                            "name": "https",
                            "bindPort": 8443,
                            "sslConfigurations": [{"secretRef": {"name": "tls", "namespace": "gloo-system"}}],
                            "strategies": [{"kind": "host-header", "options": {"domainTemplates": TEMPLATES}}],
                        },
                    ],
                },
                {"name": "opt-in", "exposure": "opt-in", "listeners": [{"bindPort": 9090}]},
            ]
        },
    ]
)


@functools.cache
def crd_validator(crds_dir: Path) -> jsonschema.protocols.Validator:
    """Gloo's Proxy CRD schema, read and compiled once (each example would otherwise parse the CRD again)."""
    schema = proxy_schema(crds_dir)
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated, combinations, st.sampled_from([["gloo-system"], ["*"]]))
def test_every_proxy_made_passes_validation_and_glooss_proxy_crd_schema(
    gloo_crds_dir: Path, upstreams: list[Upstream], config: dict[str, Any], namespaces: list[str]
) -> None:
    rendered = render(upstreams, {**config, "namespaces": namespaces})
    validator = crd_validator(gloo_crds_dir)
    for proxy in rendered.proxies:
        validator.validate(proxy)
        for listener in proxy["spec"]["listeners"]:
            for host in listener["httpListener"]["virtualHosts"]:
                verdict = check_virtual_host(VirtualHost.model_validate(host))
                assert verdict.problem is None, verdict.problem
                assert verdict.dropped == ()
    # Every warning is one line that names an upstream or a virtual host.
    for warning in rendered.warnings:
        assert "\n" not in warning
        assert "Upstream " in warning


def test_the_registry_knows_the_options_of_every_builtin() -> None:
    assert {"host-header", "path-prefix", "https-redirect"} <= set(StrategyRegistry.discover().names)
