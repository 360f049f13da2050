"""HTTPS: the https-redirect strategy (every upstream answered with a redirect to https, opt-out per upstream)
and a TLS listener beside it, as the examples/https configuration sets them up; every Proxy made passes
validation and Gloo's Proxy CRD schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from proxycontroller.cli.main import main
from proxycontroller.model.proxy import RedirectAction
from proxycontroller.model.resources import Upstream
from proxycontroller.testing import render
from proxycontroller.translate.redirect import OPT_OUT_ANNOTATION, RESPONSE_CODES
from proxycontroller.translate.registry import StrategyError, StrategyRegistry
from tests.conftest import REPO
from tests.unit.factories import kube_upstream
from tests.unit.test_render_cli import proxy_schema
from tests.unit.test_translation import logic_with, one_strategy, single

EXAMPLE = REPO / "examples" / "https" / "config.yaml"
UPSTREAMS = REPO / "examples" / "upstreams"


def annotated(name: str, value: str) -> Upstream:
    upstream = kube_upstream(name)
    metadata = upstream.metadata.model_copy(update={"annotations": {OPT_OUT_ANNOTATION: value}})
    return upstream.model_copy(update={"metadata": metadata})


def redirect(**action: Any) -> dict[str, Any]:
    return {"matchers": [{"prefix": "/"}], "redirectAction": {"httpsRedirect": True, **action}}


def test_every_upstream_gets_a_virtual_host_answering_with_a_301_to_https() -> None:
    rendered = render([kube_upstream("default-petstore-8080"), kube_upstream("b")], one_strategy("https-redirect"))
    assert rendered.warnings == ()
    assert rendered.virtual_hosts() == [
        {"name": "b", "domains": ["b"], "routes": [redirect()]},
        # 301 is Gloo's enum zero (MOVED_PERMANENTLY): left unset, as Gloo writes it back.
        {"name": "default-petstore-8080", "domains": ["default-petstore-8080"], "routes": [redirect()]},
    ]


@pytest.mark.parametrize(
    ("code", "name"), [(302, "FOUND"), (303, "SEE_OTHER"), (307, "TEMPORARY_REDIRECT"), (308, "PERMANENT_REDIRECT")]
)
def test_the_response_code_is_gloos_enum_name_and_the_https_port_is_named_when_set(code: int, name: str) -> None:
    config = one_strategy(
        "https-redirect", responseCode=code, httpsPort=8443, domainTemplates=["{name}", "{name}.example.com"]
    )
    rendered = render([kube_upstream("a")], config)
    assert rendered.virtual_hosts() == [
        {"name": "a", "domains": ["a", "a.example.com"], "routes": [redirect(responseCode=name, portRedirect=8443)]}
    ]


def test_the_response_codes_are_named_as_gloos_enum_names_them(gloo_module_dir: Path) -> None:
    """Gloo's proxy.proto, read from its module: `// Found HTTP Status Code - 302.` above `FOUND = 1;`."""
    proto = (gloo_module_dir / "projects" / "gloo" / "api" / "v1" / "proxy.proto").read_text()
    enum = proto[proto.index("enum RedirectResponseCode {") :].split("}", 1)[0]
    gloos = {int(code): name for code, name in re.findall(r"Status Code - (\d+)\.\s*(\w+) = \d+;", enum)}
    assert gloos[301] == "MOVED_PERMANENTLY"  # the enum's zero, left unset
    assert {code: name or "MOVED_PERMANENTLY" for code, name in RESPONSE_CODES.items()} == gloos


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"responseCode": 200}, "responseCode"),
        ({"responseCode": "301"}, "responseCode"),
        ({"httpsPort": 0}, "httpsPort"),
        ({"httpsPort": 70000}, "httpsPort"),
        ({"httpsPort": "8443"}, "httpsPort"),
        ({"allowOptOut": "yes"}, "allowOptOut"),
        ({"domainTemplates": ["example.com"]}, "domainTemplates"),
        ({"redirect": True}, "redirect"),
    ],
)
def test_bad_options_are_refused_naming_the_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyError, match=rf"proxies\[0\]\.listeners\[0\]\.strategies\[0\]\.options\.{message}"):
        logic_with(one_strategy("https-redirect", **options))


def test_an_upstream_that_opts_out_is_routed_over_plain_http_and_its_neighbours_redirected() -> None:
    upstreams = [annotated("plain", "false"), annotated("forced", "true"), kube_upstream("other")]
    rendered = render(upstreams, one_strategy("https-redirect"))
    assert rendered.warnings == ()
    assert rendered.virtual_hosts() == [
        {"name": "forced", "domains": ["forced"], "routes": [redirect()]},
        {"name": "other", "domains": ["other"], "routes": [redirect()]},
        {"name": "plain", "domains": ["plain"], "routes": [single("gloo-system", "plain")]},
    ]
    # Unless the configuration does not let upstreams opt out.
    strict = render(upstreams, one_strategy("https-redirect", allowOptOut=False))
    assert [host["routes"] for host in strict.virtual_hosts()] == [[redirect()]] * 3


def test_a_bad_opt_out_value_leaves_that_upstream_out_with_one_line_naming_it() -> None:
    rendered = render([annotated("odd", "no\nway"), kube_upstream("fine")], one_strategy("https-redirect"))
    assert [host["name"] for host in rendered.virtual_hosts()] == ["fine"]
    (warning,) = rendered.warnings
    assert "\n" not in warning
    assert "Upstream gloo-system/odd" in warning
    assert f'annotation {OPT_OUT_ANNOTATION}=\'no\\nway\': must be "true" or "false"' in warning


@given(st.sampled_from(sorted(RESPONSE_CODES)), st.one_of(st.none(), st.integers(1, 65535)), st.booleans())
def test_every_redirect_made_is_a_valid_gloo_redirect_action(code: int, port: int | None, opted: bool) -> None:
    options: dict[str, Any] = {"responseCode": code} | ({"httpsPort": port} if port is not None else {})
    upstream = annotated("a", "false") if opted else kube_upstream("a")
    rendered = render([upstream], one_strategy("https-redirect", **options))
    assert rendered.warnings == ()
    (host,) = rendered.virtual_hosts()
    (route,) = host["routes"]
    if opted:
        assert route == single("gloo-system", "a")
        return
    action = route["redirectAction"]
    assert RedirectAction.model_validate(action).https_redirect is True
    assert action.get("responseCode") == RESPONSE_CODES[code]
    assert action.get("portRedirect") == port


def test_the_strategy_is_registered_under_its_entry_point() -> None:
    assert "https-redirect" in StrategyRegistry.discover().names


def test_the_https_example_renders_a_redirecting_http_listener_and_a_tls_listener_valid_for_glooss_crd(
    gloo_crds_dir: Path,
) -> None:
    result = CliRunner().invoke(main, ["render", "-f", str(UPSTREAMS), "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    (proxy,) = [document for document in yaml.safe_load_all(result.stdout) if document]
    jsonschema.validate(proxy, proxy_schema(gloo_crds_dir))
    http, https = proxy["spec"]["listeners"]
    assert (http["name"], http["bindPort"], https["name"], https["bindPort"]) == ("http", 8080, "https", 8443)
    names = ["default-petstore-8080", "default-reviews-9080"]
    assert http["httpListener"]["virtualHosts"] == [
        {"name": name, "domains": [name], "routes": [redirect()]} for name in names
    ]
    assert https["sslConfigurations"] == [{"secretRef": {"name": "petstore-tls", "namespace": "gloo-system"}}]
    assert https["httpListener"]["virtualHosts"] == [
        {"name": name, "domains": [name, f"{name}:8443"], "routes": [single("gloo-system", name)]} for name in names
    ]
