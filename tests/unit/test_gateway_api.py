"""The Gateway API output's conversion: hostnames, matches, rewrites, redirects, weighted backends, the CRD's limits
(splitting into several HTTPRoutes with stable names), ReferenceGrants, the schema check, and the configuration."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from proxycontroller.cli.main import main
from proxycontroller.config import ConfigError, ControllerConfig, load_config
from proxycontroller.model.gateway import StoredHTTPRoute, StoredReferenceGrant
from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.gatewayapi import (
    MAX_HOSTNAMES,
    MAX_RULES,
    ServiceRef,
    Unconvertible,
    convert_virtual_host,
    hostnames,
    reference_grants,
    route_base_name,
)
from proxycontroller.validate.gateway_desired import GatewayLogic
from proxycontroller.validate.gatewayapi import SchemaCheck

PARENT = {
    "group": "gateway.networking.k8s.io",
    "kind": "Gateway",
    "name": "http",
    "namespace": "gw",
    "sectionName": "http",
}
PROXY = ObjectKey("gloo-system", "my-cool-proxy")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def upstream(
    name: str, namespace: str = "gloo-system", service_namespace: str = "default", port: int = 8080
) -> Upstream:
    return Upstream.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"kube": {"serviceName": name.split("-")[1] if "-" in name else name,
                              "serviceNamespace": service_namespace, "servicePort": port}},
        }
    )  # fmt: skip


def config(**extra: Any) -> ControllerConfig:
    raw: dict[str, Any] = {
        "output": "gateway-api",
        "gatewayApi": {"parentRefs": [{"name": "http", "namespace": "gw", "sectionName": "http"}]},
    }
    raw.update(extra)
    return ControllerConfig.model_validate(raw)


def convert(
    host: dict[str, Any], upstreams: dict[ObjectKey, Upstream] | None = None, namespace: str = "default"
) -> Any:
    return convert_virtual_host(
        VirtualHost.model_validate(host),
        proxy=PROXY,
        listener="l",
        namespace=namespace,
        parents=[PARENT],
        upstreams=(upstreams or {}).get,
    )


def to_service(name: str = "petstore", port: int = 8080, namespace: str = "default") -> dict[str, Any]:
    return {"single": {"kube": {"ref": {"name": name, "namespace": namespace}, "port": port}}}


# --- hostnames -----------------------------------------------------------------------------------------------


def test_hostnames_are_lowercased_without_port_and_once() -> None:
    assert hostnames(["A.example", "a.example:8080", "b.example:*", "*.c.example"]) == (
        "a.example",
        "b.example",
        "*.c.example",
    )


@pytest.mark.parametrize("domains", [["*"], ["a.example", "*"], ["*:80"], None, []])
def test_a_catch_all_domain_means_no_hostnames(domains: list[str] | None) -> None:
    assert hostnames(domains) == ()


@pytest.mark.parametrize("domain", ["a.*", "*-a.example", "a.*.example", "10.0.0.1", "[::1]:80", "a_b", "-a"])
def test_a_domain_that_cannot_be_a_hostname_is_named(domain: str) -> None:
    with pytest.raises(Unconvertible, match=re.escape(repr(domain))):
        hostnames(["ok.example", domain])


def test_a_virtual_host_with_such_a_domain_is_left_out_with_a_warning_naming_it() -> None:
    logic = GatewayLogic(config(proxies=[{"listeners": [{"strategies": [{"kind": "host-header",
                         "options": {"domainTemplates": ["{name}.*"]}}]}]}]))  # fmt: skip
    desired = logic.desired(Snapshot.of([upstream("default-petstore-8080")]))
    assert desired.objects == ()
    (warning,) = desired.warnings
    assert "'default-petstore-8080'" in warning
    assert "'default-petstore-8080.*'" in warning


# --- rules ---------------------------------------------------------------------------------------------------


def test_host_header_virtual_host_becomes_one_route_to_the_service_with_defaults_spelled_out() -> None:
    ups = {ObjectKey("gloo-system", "default-petstore-8080"): upstream("default-petstore-8080")}
    host = {
        "name": "default-petstore-8080",
        "domains": ["default-petstore-8080"],
        "routes": [
            {"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": {"name": "default-petstore-8080",
             "namespace": "gloo-system"}}}}
        ],
    }  # fmt: skip
    (route,) = convert(host, ups).routes
    assert route.key == ObjectKey("default", route_base_name(PROXY, "l", "default-petstore-8080"))
    assert route.spec == {
        "parentRefs": [PARENT],
        "hostnames": ["default-petstore-8080"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": "", "kind": "Service", "name": "petstore", "port": 8080, "weight": 1}],
            }
        ],
    }
    assert SchemaCheck().problems("HTTPRoute", route.spec) == []


def test_prefix_rewrite_is_replace_prefix_match_one_rule_per_match_and_full_path_for_exact() -> None:
    host = {
        "name": "all",
        "domains": ["*"],
        "routes": [
            {
                "matchers": [{"prefix": "/pets/"}, {"exact": "/pets"}],
                "options": {"prefixRewrite": "/"},
                "routeAction": to_service(),
            }
        ],
    }
    (route,) = convert(host).routes
    assert "hostnames" not in route.spec
    first, second = route.spec["rules"]
    assert first["matches"] == [{"path": {"type": "PathPrefix", "value": "/pets"}}]
    assert first["filters"] == [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}
    ]
    assert second["matches"] == [{"path": {"type": "Exact", "value": "/pets"}}]
    assert second["filters"][0]["urlRewrite"]["path"] == {"type": "ReplaceFullPath", "replaceFullPath": "/"}
    assert SchemaCheck().problems("HTTPRoute", route.spec) == []


@pytest.mark.parametrize(("code", "status"), [(None, 301), ("FOUND", 302), ("PERMANENT_REDIRECT", 308), (3, 307)])
def test_https_redirect_is_a_request_redirect_with_its_status(code: str | int | None, status: int) -> None:
    action: dict[str, Any] = {"httpsRedirect": True}
    if code is not None:
        action["responseCode"] = code
    host = {
        "name": "r",
        "domains": ["a.example"],
        "routes": [{"matchers": [{"prefix": "/"}], "redirectAction": action}],
    }
    (route,) = convert(host).routes
    (rule,) = route.spec["rules"]
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"statusCode": status, "scheme": "https"}}
    ]
    assert "backendRefs" not in rule


def test_redirect_port_and_host() -> None:
    action = {"httpsRedirect": True, "portRedirect": 8443, "hostRedirect": "B.example"}
    host = {"name": "r", "domains": ["a"], "routes": [{"redirectAction": action}]}
    (route,) = convert(host).routes
    redirect = route.spec["rules"][0]["filters"][0]["requestRedirect"]
    assert (redirect["port"], redirect["hostname"]) == (8443, "b.example")


def test_several_destinations_are_weighted_backend_refs_in_their_namespaces() -> None:
    multi = {
        "multi": {
            "destinations": [
                {"destination": to_service("a")["single"], "weight": 3},
                {"destination": to_service("b", 9080, "other")["single"], "weight": 1},
            ]
        }
    }
    host = {"name": "w", "domains": ["w.example"], "routes": [{"routeAction": multi}]}
    (route,) = convert(host).routes
    assert route.spec["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "a", "port": 8080, "weight": 3},
        {"group": "", "kind": "Service", "name": "b", "namespace": "other", "port": 9080, "weight": 1},
    ]
    assert route.services == (ServiceRef("default", "a", 8080), ServiceRef("other", "b", 9080))


def test_methods_headers_and_query_parameters_become_matches() -> None:
    matcher = {
        "prefix": "/api",
        "methods": ["GET", "post"],
        "headers": [{"name": "x-env", "value": "prod"}, {"name": "x-re", "value": "a.*", "regex": True}],
        "queryParameters": [{"name": "q"}],
    }
    host = {"name": "m", "domains": ["m"], "routes": [{"matchers": [matcher], "routeAction": to_service()}]}
    (route,) = convert(host).routes
    matches = route.spec["rules"][0]["matches"]
    assert [m["method"] for m in matches] == ["GET", "POST"]
    assert matches[0]["headers"] == [
        {"name": "x-env", "type": "Exact", "value": "prod"},
        {"name": "x-re", "type": "RegularExpression", "value": "a.*"},
    ]
    assert matches[0]["queryParams"] == [{"name": "q", "type": "RegularExpression", "value": ".*"}]
    assert SchemaCheck().problems("HTTPRoute", route.spec) == []


@pytest.mark.parametrize(
    ("route", "named"),
    [
        ({"directResponseAction": {"status": 200}}, "direct response"),
        ({"routeAction": {"upstreamGroup": {"name": "g", "namespace": "n"}}}, "upstream group"),
        ({"routeAction": to_service(), "options": {"retries": {"numRetries": 3}}}, "retries"),
        ({"routeAction": to_service(), "matchers": [{"prefix": "/a//b"}]}, "'/a//b'"),
        ({"routeAction": to_service(), "matchers": [{"prefix": "/", "headers": [{"name": "x", "invertMatch": True}]}]},
         "inverted"),
        ({"routeAction": {"single": {"upstream": {"name": "static", "namespace": "n"}}}}, "Upstream n/static"),
    ],
)  # fmt: skip
def test_what_the_standard_channel_cannot_say_leaves_the_route_out_naming_it(route: dict[str, Any], named: str) -> None:
    host = {"name": "x", "domains": ["x"], "routes": [route, {"routeAction": to_service()}]}
    conversion = convert(host)
    (kept,) = conversion.routes
    assert len(kept.spec["rules"]) == 1
    (dropped,) = conversion.dropped
    assert named in dropped
    assert dropped.startswith("route 0 left out")
    with pytest.raises(Unconvertible, match=re.escape(named)):
        convert({**host, "routes": [route]})


# --- limits and splitting ------------------------------------------------------------------------------------


def test_more_hostnames_and_rules_than_a_route_holds_split_into_stably_named_routes() -> None:
    domains = [f"h{i}.example" for i in range(40)]
    routes = [{"matchers": [{"prefix": f"/p{i}"}], "routeAction": to_service()} for i in range(20)]
    host = {"name": "Big_Host.Example!", "domains": domains, "routes": routes}
    conversion = convert(host)
    # 3 groups of hostnames (16, 16, 8) x 2 groups of rules (16, 4)
    assert len(conversion.routes) == 6
    names = [route.key.name for route in conversion.routes]
    base = route_base_name(PROXY, "l", "Big_Host.Example!")
    assert names == [base] + [f"{base}-{i}" for i in range(2, 7)]
    assert all(DNS_LABEL.fullmatch(name) and len(name) <= 63 for name in names)
    assert [len(r.spec["hostnames"]) for r in conversion.routes] == [16, 16, 16, 16, 8, 8]
    assert [len(r.spec["rules"]) for r in conversion.routes] == [16, 4] * 3
    assert all(
        len(r.spec["hostnames"]) <= MAX_HOSTNAMES and len(r.spec["rules"]) <= MAX_RULES for r in conversion.routes
    )
    every = {(h, rule["matches"][0]["path"]["value"]) for r in conversion.routes for h in r.spec["hostnames"]
             for rule in r.spec["rules"]}  # fmt: skip
    assert len(every) == 40 * 20  # every hostname still gets every rule
    check = SchemaCheck()
    assert all(check.problems("HTTPRoute", r.spec) == [] for r in conversion.routes)
    assert [r.key for r in convert(host).routes] == [r.key for r in conversion.routes]  # stable


def test_a_rule_with_more_matches_than_allowed_is_split_and_a_route_keeps_under_128_matches() -> None:
    matchers = [{"prefix": f"/p{i}"} for i in range(150)]
    host = {"name": "m", "domains": ["m"], "routes": [{"matchers": matchers, "routeAction": to_service()}]}
    conversion = convert(host)
    rules = [rule for route in conversion.routes for rule in route.spec["rules"]]
    assert [len(rule["matches"]) for rule in rules] == [64, 64, 22]
    assert [sum(len(rule["matches"]) for rule in r.spec["rules"]) for r in conversion.routes] == [128, 22]
    assert all(SchemaCheck().problems("HTTPRoute", r.spec) == [] for r in conversion.routes)


def test_schema_check_refuses_what_the_crd_refuses() -> None:
    check = SchemaCheck()
    too_many = {"parentRefs": [PARENT], "hostnames": [f"h{i}" for i in range(17)]}
    (problem,) = check.problems("HTTPRoute", too_many)
    assert problem.startswith("spec.hostnames: ")
    assert problem.endswith("is too long")
    assert "spec.hostnames[0]" in check.problems("HTTPRoute", {"hostnames": ["A_b"]})[0]
    rewrite = {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}
    two = {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}] * 2, "filters": [rewrite]}]}
    assert check.problems("HTTPRoute", two) == ["spec.rules[0]: ReplacePrefixMatch needs exactly one PathPrefix match"]
    assert check.problems("ReferenceGrant", {"from": [], "to": [{"kind": "Service"}]})


# --- grants and the logic ------------------------------------------------------------------------------------


def test_reference_grants_name_each_service_per_namespace_at_most_16_each() -> None:
    services = [ServiceRef("apps", f"s{i:02}", 80) for i in range(20)] + [ServiceRef("routes", "local", 80)]
    grants = reference_grants("routes", services, "proxycontroller-x")
    assert [key for key, _ in grants] == [
        ObjectKey("apps", "proxycontroller-x-from-routes"),
        ObjectKey("apps", "proxycontroller-x-from-routes-2"),
    ]
    assert [len(spec["to"]) for _, spec in grants] == [16, 4]
    assert grants[0][1]["from"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "routes"}]
    assert all(SchemaCheck().problems("ReferenceGrant", spec) == [] for _, spec in grants)


def test_the_logic_writes_routes_and_a_grant_for_cross_namespace_services_with_our_labels() -> None:
    logic = GatewayLogic(config())
    upstreams = [upstream("default-petstore-8080"), upstream("default-reviews-9080", port=9080)]
    desired = logic.desired(Snapshot.of(upstreams))
    kinds = [item.kind for item in desired.objects]
    assert kinds == [StoredReferenceGrant, StoredHTTPRoute, StoredHTTPRoute]  # the grant first
    labels = {"app.kubernetes.io/managed-by": "proxycontroller", "app.kubernetes.io/instance": "proxycontroller"}
    assert all(item.labels == labels for item in desired.objects)
    grant = desired.objects[0]
    assert grant.key == ObjectKey("default", "proxycontroller-proxycontroller-from-gloo-system")
    assert [t["name"] for t in grant.spec.to_json_dict()["to"]] == ["petstore", "reviews"]
    # The same objects again for an unchanged snapshot (conversions are kept by virtual host).
    again = logic.desired(Snapshot.of(upstreams))
    assert [(o.key, o.spec.json) for o in again.objects] == [(o.key, o.spec.json) for o in desired.objects]


def test_a_route_in_the_services_namespace_needs_no_grant_and_grant_namespaces_are_enforced() -> None:
    same = GatewayLogic(config(gatewayApi={"parentRefs": [{"name": "http"}], "routeNamespace": "default"}))
    desired = same.desired(Snapshot.of([upstream("default-petstore-8080")]))
    assert [item.kind for item in desired.objects] == [StoredHTTPRoute]
    limited = GatewayLogic(config(gatewayApi={"parentRefs": [{"name": "http"}], "grantNamespaces": ["apps"]}))
    desired = limited.desired(Snapshot.of([upstream("default-petstore-8080")]))
    assert desired.objects == ()
    assert "gatewayApi.grantNamespaces" in desired.warnings[0]


def test_parent_refs_by_listener_send_each_listeners_hosts_to_its_section() -> None:
    cfg = config(
        proxies=[{"listeners": [
            {"name": "plain", "bindPort": 8080, "strategies": [{"kind": "https-redirect"}]},
            {"name": "tls", "bindPort": 8443, "strategies": [{"kind": "host-header"}]},
        ]}],
        gatewayApi={"parentRefs": [{"name": "gw", "sectionName": "http", "listener": "plain"},
                                   {"name": "gw", "sectionName": "https", "listener": "tls"}],
                    "routeNamespace": "default"},
    )  # fmt: skip
    desired = GatewayLogic(cfg).desired(Snapshot.of([upstream("default-petstore-8080")]))
    sections = {}
    for item in desired.objects:
        spec = item.spec.to_json_dict()
        kind = "redirect" if "filters" in spec["rules"][0] else "route"
        sections[kind] = spec["parentRefs"][0]["sectionName"]
    assert sections == {"redirect": "http", "route": "https"}


def test_configuration_errors_name_the_key(tmp_path: Any) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("output: gateway-api\n")
    with pytest.raises(ConfigError, match=r"gatewayApi\.parentRefs: must list at least one Gateway"):
        load_config(path)
    path.write_text("output: gateway-api\ngatewayApi: {parentRefs: [{name: http, listener: nope}]}\n")
    with pytest.raises(ConfigError, match=r"gatewayApi\.parentRefs\[0\]\.listener: 'nope' names no listener"):
        load_config(path)
    path.write_text("output: gateway-api\ngatewayApi: {parentRefs: [{name: Http_1}]}\n")
    with pytest.raises(ConfigError, match=r"gatewayApi\.parentRefs\[0\]\.name: 'Http_1' is not an object name"):
        load_config(path)
    path.write_text("output: istio\n")
    with pytest.raises(ConfigError, match="output"):
        load_config(path)


def test_render_output_gateway_api_prints_routes_and_names_a_missing_key_in_one_line(tmp_path: Any) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["render", "-f", "examples/upstreams", "-o", "gateway-api"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: gatewayApi.parentRefs: must list at least one Gateway for the HTTPRoutes to attach to"
    )
    path = tmp_path / "c.yaml"
    path.write_text("gatewayApi: {parentRefs: [{name: http, namespace: gw, sectionName: http}]}\n")
    result = runner.invoke(main, ["render", "-f", "examples/upstreams", "-o", "gateway-api", "--config", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\nkind: HTTPRoute\n") == 2
    assert result.stdout.count("\nkind: ReferenceGrant\n") == 1
    assert "hostnames:\n  - default-petstore-8080" in result.stdout


def _rules_by_scope(cfg: ControllerConfig) -> dict[str, list[str]]:
    from proxycontroller.install.manifests import render_rbac

    found: dict[str, list[str]] = {}
    for obj in render_rbac(cfg):
        if obj["kind"] in ("Role", "ClusterRole"):
            scope = obj["metadata"].get("namespace", "*")
            found[scope] = [resource for rule in obj["rules"] for resource in rule["resources"]]
    return found


def test_rbac_grants_routes_where_they_are_written_and_grants_where_services_are() -> None:
    assert _rules_by_scope(config(namespaces=["shop"])) == {
        "*": ["referencegrants"],  # a grant goes where its Service is: any namespace unless grantNamespaces
        "gloo-system": ["httproutes", "events", "leases"],
        "shop": ["upstreams"],
    }
    limited = config(
        namespaces=["shop"],
        gatewayApi={"parentRefs": [{"name": "gw"}], "routeNamespace": "routes", "grantNamespaces": ["shop"]},
    )
    assert _rules_by_scope(limited) == {
        "gloo-system": ["leases"],
        "routes": ["httproutes", "events"],
        "shop": ["upstreams", "referencegrants"],
    }


def test_a_pass_converts_again_only_what_changed() -> None:
    logic = GatewayLogic(config())
    upstreams = [upstream(f"default-s{i}-8080") for i in range(20)]
    first = {item.key: item for item in logic.desired(Snapshot.of(upstreams)).objects}
    upstreams[3] = upstream("default-s3-8080", port=9090)
    second = {item.key: item for item in logic.desired(Snapshot.of(upstreams)).objects}
    assert first.keys() == second.keys()
    changed = {key for key in first if first[key] is not second[key]}
    assert changed == {ObjectKey("gloo-system", route_base_name(PROXY, "my-amazing-listener", "default-s3-8080"))}
    assert b'"port":9090' in second[changed.pop()].spec.json


def test_the_gateway_api_example_renders_what_its_readme_says() -> None:
    from tests.conftest import REPO

    config = REPO / "examples" / "gateway-api" / "config.yaml"
    readme = (REPO / "examples" / "gateway-api" / "README.md").read_text()
    assert "--config examples/gateway-api/config.yaml" in readme
    result = CliRunner().invoke(main, ["render", "-f", str(REPO / "examples" / "upstreams"), "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    routes = [d for d in documents if d["kind"] == "HTTPRoute"]
    grants = [d for d in documents if d["kind"] == "ReferenceGrant"]
    assert sorted(h for r in routes for h in r["spec"]["hostnames"]) == [
        "default-petstore-8080",
        "default-petstore-8080.example.com",
        "default-reviews-9080",
        "default-reviews-9080.example.com",
        "prefix.example",
    ]
    assert [g["metadata"]["name"] for g in grants] == ["proxycontroller-proxycontroller-from-gloo-system"]
    check = SchemaCheck()
    assert all(check.problems(d["kind"], d["spec"]) == [] for d in documents)


def test_the_route_verdict_is_logged_once_per_change_and_a_refusal_recorded(caplog: pytest.LogCaptureFixture) -> None:
    from proxycontroller.reconcile.route_verdicts import RouteVerdictReporter
    from proxycontroller.store.events import Occurrence

    recorded: list[Occurrence] = []

    class Recorder:
        def record(self, occurrence: Occurrence) -> None:
            recorded.append(occurrence)

    def route(resolved: str) -> StoredHTTPRoute:
        conditions = [
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "ResolvedRefs", "status": resolved, "reason": "RefNotPermitted", "message": "missing grant"},
        ]
        parent = {"parentRef": {"name": "http", "namespace": "gw", "sectionName": "http"}, "conditions": conditions}
        return StoredHTTPRoute.model_validate(
            {"metadata": {"name": "r", "namespace": "ns"}, "spec": {}, "status": {"parents": [parent]}}
        )

    reporter = RouteVerdictReporter(Recorder())
    caplog.set_level("INFO", logger="proxycontroller")
    reporter.report([route("False"), route("False")])
    reporter.report([route("True")])
    reporter.report([route("True")])
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "HTTPRoute ns/r Gateway gw/http section http: Accepted=True, ResolvedRefs=False (RefNotPermitted: missing"
            " grant)",
        ),
        ("INFO", "HTTPRoute ns/r Gateway gw/http section http: Accepted=True, ResolvedRefs=True"),
    ]
    assert [(o.reason, o.key) for o in recorded] == [("RouteNotAccepted", ObjectKey("ns", "r"))]


def test_manifests_for_the_gateway_api_output_deploy_no_envoy_per_proxy() -> None:
    from proxycontroller.install.manifests import render_manifests

    def deployments(cfg: ControllerConfig, text: str) -> int:
        return sum(obj["kind"] == "Deployment" for obj in render_manifests(cfg, text))

    assert deployments(ControllerConfig(), "{}\n") == 2  # the controller and the Proxy's Envoy
    assert deployments(config(), "output: gateway-api\n") == 1  # the controller only
