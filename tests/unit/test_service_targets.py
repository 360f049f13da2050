"""Services as a source: each TCP port of a Service is a route target named as Gloo's discovery names its
Upstream, routed to Gloo's `kube` destination; UDP and SCTP ports are left out with a warning; the Service's
`proxycontroller.io/*` annotations and labels select it as an Upstream's would; an Upstream of the same service
wins, and the Service port it shadows is said in a warning."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.cli.render import render as render_files
from proxycontroller.config import ConfigError, ControllerConfig, load_config
from proxycontroller.model.encoding import from_cr
from proxycontroller.model.resources import ObjectKey, Service, ServiceTarget, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import render
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.route_targets import RouteTargets
from proxycontroller.translate.targets import discovery_name, targets_of
from proxycontroller.validate.desired import ProxyLogic
from tests.unit.factories import kube_upstream

SERVICES_ONLY = {"namespaces": ["default"], "sources": ["services"]}
BOTH = {"namespaces": ["default", "gloo-system"], "sources": ["upstreams", "services"]}


def service(
    name: str = "petstore",
    namespace: str = "default",
    ports: list[dict[str, Any]] | None = None,
    **metadata: Any,
) -> Service:
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace, **metadata},
            "spec": {"ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]},
        }
    )


def upstream_of(name: str, namespace: str, target: str) -> Upstream:
    """A kube Upstream of the Service port `namespace/service:port`."""
    service_namespace, _, rest = target.partition("/")
    service_name, _, port = rest.partition(":")
    kube = {"serviceName": service_name, "serviceNamespace": service_namespace, "servicePort": int(port)}
    return Upstream.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": {"kube": kube}})


def kube_destination(host: dict[str, Any]) -> Any:
    return host["routes"][0]["routeAction"]["single"]


def test_a_service_port_is_routed_by_its_discovery_name_to_a_kube_destination() -> None:
    rendered = render([], SERVICES_ONLY, services=[service()])
    [host] = rendered.virtual_hosts()
    assert host["name"] == "default-petstore-8080"
    assert host["domains"] == ["default-petstore-8080"]  # the seed's curl: -H 'Host: default-petstore-8080'
    assert kube_destination(host) == {"kube": {"ref": {"name": "petstore", "namespace": "default"}, "port": 8080}}
    assert rendered.warnings == ()


def test_each_tcp_port_is_a_target_udp_and_sctp_are_left_out_with_a_warning() -> None:
    ports = [
        {"name": "http", "port": 80},  # no protocol: Kubernetes' default, TCP
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "admin", "port": 9000, "protocol": "TCP"},
        {"name": "sig", "port": 2905, "protocol": "SCTP"},
    ]
    rendered = render([], SERVICES_ONLY, services=[service("mixed", ports=ports)])
    hosts = rendered.virtual_hosts()
    assert [h["name"] for h in hosts] == ["default-mixed-80", "default-mixed-9000"]
    assert [kube_destination(h)["kube"]["port"] for h in hosts] == [80, 9000]
    assert list(rendered.warnings) == [
        "Service port default/mixed:dns not routed: protocol UDP; only TCP is routed",
        "Service port default/mixed:sig not routed: protocol SCTP; only TCP is routed",
    ]


def test_named_and_unnamed_ports_carry_their_name_and_number() -> None:
    targets, skipped = targets_of(service(ports=[{"port": 8080}]))
    assert skipped == ()
    [target] = targets
    assert isinstance(target, ServiceTarget)
    assert isinstance(target, Upstream)
    assert (target.service.name, target.service.namespace, target.service.port) == ("petstore", "default", 8080)
    assert target.service.port_name is None
    named, _ = targets_of(service(ports=[{"name": "web", "port": 80}, {"name": "metrics", "port": 9090}]))
    assert [(t.key, t.service.port_name) for t in named] == [
        (ObjectKey("default", "default-petstore-80"), "web"),
        (ObjectKey("default", "default-petstore-9090"), "metrics"),
    ]
    # What a template's {service}, {serviceNamespace} and {port} read, as of a kube Upstream.
    kube = named[0].spec.kube
    assert kube is not None
    assert (kube.service_name, kube.service_namespace, kube.service_port) == ("petstore", "default", 80)


def test_a_long_name_is_shortened_as_gloo_discovery_shortens_it() -> None:
    namespace, name = "n" * 40, "s" * 40
    full = f"{namespace}-{name}-8080"
    expected = f"{full[:31]}-{hashlib.md5(full.encode()).hexdigest()[:31]}"
    assert discovery_name(namespace, name, 8080) == expected
    assert len(expected) == 63
    assert discovery_name("default", "petstore", 8080) == "default-petstore-8080"


def test_external_name_services_are_not_routed() -> None:
    external = Service.model_validate(
        {
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 5432}]},
        }
    )
    rendered = render([], SERVICES_ONLY, services=[external])
    assert rendered.virtual_hosts() == []
    assert rendered.warnings == ("Service default/db not routed: type ExternalName has no endpoints to route to",)


def test_the_expose_annotation_and_the_label_selector_select_services_as_upstreams() -> None:
    config = {
        **SERVICES_ONLY,
        "proxies": [{"exposure": "opt-in", "selector": {"matchLabels": {"team": "a"}}, "exclude": ["*-9090"]}],
    }
    expose = {"proxycontroller.io/expose": "true"}
    services = [
        service("in", labels={"team": "a"}, annotations=expose),
        service("not-annotated", labels={"team": "a"}),
        service("other-team", labels={"team": "b"}, annotations=expose),
        service("excluded", labels={"team": "a"}, annotations=expose, ports=[{"port": 9090}]),
    ]
    rendered = render([], config, services=services)
    assert [h["name"] for h in rendered.virtual_hosts()] == ["default-in-8080"]


def test_an_https_redirect_opt_out_annotation_on_a_service_is_honoured() -> None:
    config = {**SERVICES_ONLY, "strategy": {"kind": "https-redirect"}}
    opted_out = service("legacy", annotations={"proxycontroller.io/https-redirect": "false"})
    rendered = render([], config, services=[service(), opted_out])
    by_name = {h["name"]: h for h in rendered.virtual_hosts()}
    assert "redirectAction" in by_name["default-petstore-8080"]["routes"][0]
    assert kube_destination(by_name["default-legacy-8080"])["kube"]["ref"]["name"] == "legacy"


def test_path_prefix_routes_services_to_kube_destinations() -> None:
    config = {**SERVICES_ONLY, "strategy": {"kind": "path-prefix"}}
    rendered = render([], config, services=[service(), service("shop")])
    [host] = rendered.virtual_hosts()
    routes = host["routes"]
    targets = {
        (r["matchers"][0].get("prefix") or r["matchers"][0]["exact"]): kube_or_upstream({"routes": [r]}) for r in routes
    }
    assert targets == {
        "/default-petstore-8080/": ("kube", "default/petstore"),
        "/default-petstore-8080": ("kube", "default/petstore"),
        "/default-shop-8080/": ("kube", "default/shop"),
        "/default-shop-8080": ("kube", "default/shop"),
    }
    assert all("upstream" not in r["routeAction"]["single"] for r in routes)


def test_an_upstream_of_the_same_service_wins_and_the_service_port_is_said() -> None:
    # Gloo's discovery writes the Upstream of default/petstore:8080 into gloo-system, under the same name.
    discovered = upstream_of("default-petstore-8080", "gloo-system", "default/petstore:8080")
    rendered = render([discovered], BOTH, services=[service(), service("shop")])
    hosts = {h["name"]: kube_or_upstream(h) for h in rendered.virtual_hosts()}
    assert hosts == {
        "default-petstore-8080": ("upstream", "gloo-system/default-petstore-8080"),
        "default-shop-8080": ("kube", "default/shop"),
    }
    assert rendered.warnings == (
        "Service port default/petstore:http not routed as default/default-petstore-8080: Upstream"
        " gloo-system/default-petstore-8080 routes the same service (an Upstream wins over a Service)",
    )


def test_an_upstream_with_the_targets_own_name_wins() -> None:
    same_name = kube_upstream("default-petstore-8080", "default")
    rendered = render([same_name], BOTH, services=[service()])
    [host] = rendered.virtual_hosts()
    assert kube_or_upstream(host) == ("upstream", "default/default-petstore-8080")
    assert len(rendered.warnings) == 1
    assert "an Upstream wins" in rendered.warnings[0]


def kube_or_upstream(host: dict[str, Any]) -> tuple[str, str]:
    single = kube_destination(host)
    if "kube" in single:
        ref = single["kube"]["ref"]
        return "kube", f"{ref['namespace']}/{ref['name']}"
    return "upstream", f"{single['upstream']['namespace']}/{single['upstream']['name']}"


def test_a_pass_follows_services_and_upstreams_as_they_come_and_go() -> None:
    logic = ProxyLogic(ControllerConfig.model_validate(BOTH), StrategyRegistry.discover())
    assert logic.input_kinds == (Upstream, Service)
    petstore = service()

    def hosts(*objects: Upstream | Service) -> dict[str, str]:
        desired = logic.desired(Snapshot.of(objects))
        [proxy] = desired.objects
        spec = proxy.spec.to_json_dict()
        return {h["name"]: kube_or_upstream(h)[0] for h in spec["listeners"][0]["httpListener"]["virtualHosts"]}

    assert hosts(petstore) == {"default-petstore-8080": "kube"}
    shadow = upstream_of("petstore-upstream", "default", "default/petstore:8080")
    assert hosts(petstore, shadow) == {"petstore-upstream": "upstream"}  # the Upstream came: it wins
    assert hosts(petstore) == {"default-petstore-8080": "kube"}  # it went: the Service is routed again
    assert hosts() == {}  # the Service went: its route went


def test_services_only_read_no_upstreams() -> None:
    logic = ProxyLogic(ControllerConfig.model_validate(SERVICES_ONLY), StrategyRegistry.discover())
    assert logic.input_kinds == (Service,)
    assert ProxyLogic(ControllerConfig(), StrategyRegistry.discover()).input_kinds == (Upstream,)


def test_a_service_cr_decodes_with_unknown_fields_and_its_status_kept() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default", "resourceVersion": "7"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.7",
            "selector": {"app": "petstore"},
            "ports": [{"name": "http", "port": 8080, "targetPort": "web", "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {}},
    }
    decoded = from_cr(Service, document)
    assert decoded.spec.ports[0].target_port == "web"
    assert decoded.spec.model_extra == {"clusterIP": "10.0.0.7"}
    assert decoded.spec.selector == {"app": "petstore"}
    assert Service.KIND.api_version == "v1"


@pytest.mark.parametrize(
    ("sources", "error"),
    [
        ([], "sources: must list at least one source"),
        (["services", "services"], "sources: lists a source twice"),
        (["pods"], "sources[0]: Input should be 'upstreams' or 'services'"),
    ],
)
def test_bad_sources_are_one_line_naming_the_key(tmp_path: Path, sources: list[str], error: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"sources: {sources}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}: {error}"


def test_templates_name_a_service_ports_name_and_number() -> None:
    config = {
        **SERVICES_ONLY,
        "strategy": {"options": {"domainTemplates": ["{portName}.{service}.{serviceNamespace}.example", "{name}"]}},
    }
    ports: list[dict[str, Any]] = [{"name": "web", "port": 80}, {"port": 9090}]
    rendered = render([], config, services=[service(ports=ports)])
    [host] = rendered.virtual_hosts()
    assert host["domains"] == ["web.petstore.default.example", "default-petstore-80"]
    [warning] = rendered.warnings  # the unnamed port cannot make the first domain: it is left out, said
    assert "left out Service port default/petstore:9090" in warning
    assert "{portName} has no value: the upstream is an unnamed port" in warning
    by_port = render(
        [],
        {**SERVICES_ONLY, "strategy": {"options": {"domainTemplates": ["{service}-{port}"]}}},
        services=[service(ports=ports)],
    )
    assert [h["domains"] for h in by_port.virtual_hosts()] == [["petstore-80"], ["petstore-9090"]]
    upstream_only = render([kube_upstream("petstore")], {"strategy": {"options": {"domainTemplates": ["{portName}"]}}})
    assert upstream_only.virtual_hosts() == []
    assert "not a Service port" in upstream_only.warnings[0]


def test_an_unchanged_service_gives_the_very_same_targets_so_strategies_do_not_run_again() -> None:
    targets = RouteTargets()
    petstore, shop = service(), service("shop")
    first, changed, _ = targets.merge({}, {petstore.key: petstore, shop.key: shop}, None, None)
    assert changed is None  # the first merge: everything is new
    changed_shop = service("shop", ports=[{"port": 81}])
    second, changed, _ = targets.merge({}, {petstore.key: petstore, shop.key: changed_shop}, (), (shop.key,))
    key = ObjectKey("default", "default-petstore-8080")
    assert second[key] is first[key]  # the translator compares by identity: petstore's strategies do not rerun
    assert ObjectKey("default", "default-shop-8080") not in second
    assert ObjectKey("default", "default-shop-81") in second
    assert set(changed or ()) == {ObjectKey("default", "default-shop-8080"), ObjectKey("default", "default-shop-81")}


def test_a_bad_expose_annotation_on_a_service_names_the_service_port() -> None:
    bad = service(annotations={"proxycontroller.io/expose": "yes"})
    rendered = render([], SERVICES_ONLY, services=[bad])
    assert rendered.virtual_hosts() == []
    [warning] = rendered.warnings
    assert "left out Service port default/petstore:http (default-petstore-8080): annotation" in warning


def test_render_reads_services_from_files_when_the_configuration_routes_them(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: petstore, namespace: default},"
        " spec: {ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]}}\n"
    )
    text, warnings = render_files((str(path),), ControllerConfig.model_validate(SERVICES_ONLY), "yaml")
    assert "kube:\n" in text
    assert "- default-petstore-8080\n" in text
    assert warnings == ["Service port default/petstore:dns not routed: protocol UDP; only TCP is routed"]
    # Upstreams only (the default): the Service is not read at all.
    text, warnings = render_files((str(path),), ControllerConfig(), "yaml")
    assert "virtualHosts: []" in text
    assert warnings == []


def test_a_hint_that_missed_an_addition_is_not_trusted() -> None:
    targets = RouteTargets()
    petstore, shop = service(), service("shop")
    targets.merge({}, {petstore.key: petstore}, None, None)
    merged, changed, _ = targets.merge({}, {petstore.key: petstore, shop.key: shop}, (), ())  # shop not named
    assert changed is None  # not known: the caller compares every key
    assert ObjectKey("default", "default-shop-8080") in merged
