"""Gloo's and Envoy's rules on what each string of a Proxy may hold: a case per rule that passes only because of
that rule, the route-level and listener-level consequences, and a property: nothing admitted breaks a rule."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxycontroller import NoOptions, Skip, Upstream, VirtualHost, strategy
from proxycontroller.model.proxy import Listener
from proxycontroller.testing import Rendered, render
from proxycontroller.translate.plan import SourcedVirtualHost
from proxycontroller.validate import syntax
from proxycontroller.validate.rules import (
    CLEAN,
    ENVOY_DEFAULT_BODY_LIMIT,
    admit_virtual_hosts,
    check_virtual_host,
    direct_response_limit,
    one_line,
)
from tests.unit.factories import kube_upstream


def destination(name: str = "u", namespace: str = "gloo-system") -> dict[str, Any]:
    return {"single": {"upstream": {"name": name, "namespace": namespace}}}


def route(to: str = "u", **changes: Any) -> dict[str, Any]:
    """A route to Upstream gloo-system/`to`, with `changes` merged in (None removes a key)."""
    made: dict[str, Any] = {"matchers": [{"prefix": "/"}], "routeAction": destination(to)}
    for key, value in changes.items():
        if value is None:
            made.pop(key, None)
        else:
            made[key] = value
    return made


def host(
    name: str = "v", domains: Sequence[str] = ("v",), routes: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"name": name, "domains": list(domains), "routes": list(routes) if routes is not None else [route()]}


def matcher(**fields: Any) -> dict[str, Any]:
    return host(routes=[route(matchers=[fields])])


def redirect(**fields: Any) -> dict[str, Any]:
    return host(routes=[route(routeAction=None, redirectAction=fields)])


def options(**fields: Any) -> dict[str, Any]:
    return host(routes=[route(options=fields)])


def headers(**manipulation: Any) -> dict[str, Any]:
    """A virtual host whose options manipulate headers."""
    return {**host(), "options": {"headerManipulation": manipulation}}


def problem_of(document: dict[str, Any]) -> str | None:
    return check_virtual_host(VirtualHost.model_validate(document)).problem


# One case per rule: a virtual host that breaks only that rule, and what the problem must say.
RULES = [
    # the virtual host's own fields
    ("name empty", host(name=""), "has an empty name (Envoy: VirtualHost.name min_len 1)"),
    ("name with LF", host(name="a\nb"), "has a name with a NUL, CR or LF"),
    ("no domain", host(domains=()), "has no domain (Envoy: VirtualHost.domains min_items 1)"),
    ("domain empty", host(domains=("",)), "has an empty domain (Gloo: EmptyDomainError)"),
    ("domain with LF", host(domains=("a\nb",)), "has a domain with a NUL, CR or LF: 'a\\nb' (Envoy"),
    ("domain with CR", host(domains=("a\rb",)), "has a domain with a NUL, CR or LF"),
    ("domain with NUL", host(domains=("a\x00b",)), "has a domain with a NUL, CR or LF"),
    ("domain twice", host(domains=("A.example", "a.EXAMPLE")), "lists a domain twice"),
    # matchers: Gloo's path rule on prefix and exact, RE2 on regexes, one path specifier
    ("prefix space", matcher(prefix="/a b"), "has a matcher prefix with a character outside RFC 3986 pchar"),
    ("prefix LF", matcher(prefix="/a\nb/"), "(Gloo: ValidateRoutePath)"),
    ("prefix //", matcher(prefix="/a//b"), "has a matcher prefix with '//' in it"),
    ("prefix /./", matcher(prefix="/a/./b"), "'/./' in it"),
    ("prefix /../", matcher(prefix="/a/../b"), "'/../' in it"),
    ("prefix %2f", matcher(prefix="/a%2fb"), "'%2f' in it"),
    ("prefix %2F", matcher(prefix="/a%2Fb"), "'%2F' in it"),
    ("prefix bad escape", matcher(prefix="/a%zz"), "outside RFC 3986 pchar"),
    ("prefix ends /..", matcher(prefix="/a/.."), "'/..' at its end"),
    ("prefix ends /.", matcher(prefix="/a/."), "'/.' at its end"),
    ("exact path", matcher(exact="/a b"), "has a matcher exact path with a character outside RFC 3986 pchar"),
    ("regex empty", matcher(regex=""), "has an empty matcher regex (Envoy: RegexMatcher.regex min_len 1)"),
    ("regex lookahead", matcher(regex="/(?=a)"), "has a matcher regex with a lookahead (?= (RE2 has none)"),
    ("regex syntax", matcher(regex="/(a"), "has a matcher regex with a syntax error: missing )"),
    ("two specifiers", matcher(prefix="/", exact="/"), "sets more than one of exact, prefix (Gloo: a oneof"),
    ("no specifier", matcher(headers=[{"name": "x"}]), "sets none of prefix, exact, regex, connectMatcher"),
    ("methods regex", matcher(prefix="/", methods=["GET", "PO(ST"]), "has a methods regex with a syntax error"),
    ("methods empty", matcher(prefix="/", methods=[""]), "has an empty methods regex"),
    ("header name empty", matcher(prefix="/", headers=[{"name": ""}]), "has an empty header matcher name"),
    ("header name LF", matcher(prefix="/", headers=[{"name": "a\nb"}]), "has a header matcher name with a NUL"),
    (
        "header regex",
        matcher(prefix="/", headers=[{"name": "x", "value": "(?!a)", "regex": True}]),
        "has a matcher regex with a lookahead",
    ),
    ("query name empty", matcher(prefix="/", queryParameters=[{"name": ""}]), "has an empty query parameter"),
    (
        "query name long",
        matcher(prefix="/", queryParameters=[{"name": "q" * 1025}]),
        "with 1025 bytes, more than 1024: 'qqqq",
    ),
    (
        "query regex",
        matcher(prefix="/", queryParameters=[{"name": "q", "value": "a{1001}", "regex": True}]),
        "a repetition over 1000",
    ),
    # actions
    ("no action", host(routes=[route(routeAction=None)]), "sets none of routeAction, redirectAction"),
    (
        "two actions",
        host(routes=[route(directResponseAction={"status": 200})]),
        "sets more than one of directResponseAction, routeAction",
    ),
    ("no destination", host(routes=[route(routeAction={})]), "sets none of single, multi, upstreamGroup"),
    (
        "two destinations",
        host(routes=[route(routeAction={**destination(), "clusterHeader": "x"})]),
        "sets more than one of clusterHeader, single",
    ),
    ("destination without upstream", host(routes=[route(routeAction={"single": {}})]), "sets none of upstream, kube"),
    ("cluster header empty", host(routes=[route(routeAction={"clusterHeader": ""})]), "has an empty cluster header"),
    ("cluster header LF", host(routes=[route(routeAction={"clusterHeader": "a\nb"})]), "cluster header with a NUL"),
    ("multi empty", host(routes=[route(routeAction={"multi": {"destinations": []}})]), "without destinations"),
    (
        "weights zero",
        host(
            routes=[
                route(
                    routeAction={
                        "multi": {
                            "destinations": [
                                {"destination": destination()["single"], "weight": 0},
                                {"destination": destination("w")["single"], "weight": 0},
                            ]
                        }
                    }
                )
            ]
        ),
        "has weights whose sum is not within 1..4294967295",
    ),
    (
        "weight negative",
        host(
            routes=[
                route(routeAction={"multi": {"destinations": [{"destination": destination()["single"], "weight": -1}]}})
            ]
        ),
        "has a weight that is not an integer within 0..4294967295",
    ),
    ("redirect host LF", redirect(hostRedirect="a\nb"), "has a redirect host with a NUL, CR or LF"),
    ("redirect host space", redirect(hostRedirect="a b.example"), "has a redirect host with a character outside"),
    ("redirect path LF", redirect(pathRedirect="/a\rb"), "has a redirect path with a NUL, CR or LF"),
    ("redirect path //", redirect(pathRedirect="/a//b"), "has a redirect path with '//' in it"),
    ("redirect rewrite LF", redirect(prefixRewrite="/a\nb"), "has a redirect prefix rewrite with a NUL, CR or LF"),
    ("redirect rewrite decoded", redirect(prefixRewrite="/a%20b"), "ValidatePrefixRewrite"),
    ("redirect rewrite escape", redirect(prefixRewrite="/a%zz"), "a % that starts no %XX escape"),
    ("redirect rewrite colon", redirect(prefixRewrite="1a:b/c"), "a colon in its first path segment"),
    ("redirect two rewrites", redirect(pathRedirect="/a", prefixRewrite="/b"), "sets more than one of pathRedirect"),
    ("redirect code", redirect(responseCode="SOMETIMES"), "has a redirect response code Gloo's enum does not define"),
    ("redirect code number", redirect(responseCode=7), "response code Gloo's enum does not define: 7"),
    (
        "redirect regex",
        redirect(regexRewrite={"pattern": {"regex": "(?<=a)"}, "substitution": "/"}),
        "has a regex rewrite pattern with a lookbehind",
    ),
    (
        "redirect regex empty",
        redirect(regexRewrite={"pattern": {"regex": ""}, "substitution": "/"}),
        "has an empty regex rewrite pattern (Envoy: RegexMatcher.regex min_len 1)",
    ),
    (
        "redirect substitution",
        redirect(regexRewrite={"pattern": {"regex": "a"}, "substitution": "a\nb"}),
        "has a regex substitution with a NUL, CR or LF",
    ),
    (
        "direct status",
        host(routes=[route(routeAction=None, directResponseAction={"status": 199})]),
        "has a direct response status outside 200..599: 199",
    ),
    # route options
    ("rewrite LF", options(prefixRewrite="/a\nb"), "has a prefix rewrite with a NUL, CR or LF"),
    ("rewrite pchar", options(prefixRewrite="/a b"), "outside RFC 3986 pchar (letters, digits, / : @ . _ ~ !"),
    ("rewrite control", options(prefixRewrite="/a\tb"), "has a prefix rewrite with a control character"),
    ("rewrite dot segment", options(prefixRewrite="/a/../b"), "'/../' in it: '/a/../b' (Gloo: ValidatePrefixRewrite)"),
    ("host rewrite LF", options(hostRewrite="a\nb"), "has a host rewrite with a NUL, CR or LF"),
    ("timeout negative", options(timeout="-1s"), "has a timeout with a form other than protobuf's JSON duration"),
    ("timeout unit", options(timeout="1m"), "has a timeout with a form other than"),
    (
        "rewrite and regex rewrite",
        options(prefixRewrite="/", regexRewrite={"pattern": {"regex": "a"}, "substitution": "b"}),
        "sets more than one of prefixRewrite, regexRewrite (Envoy",
    ),
    ("host rewrites", options(hostRewrite="a", autoHostRewrite=True), "sets more than one of autoHostRewrite"),
    # header manipulation on the virtual host, a route or a weighted destination
    ("add empty name", headers(requestHeadersToAdd=[{"header": {"key": "", "value": "v"}}]), "has an empty request"),
    ("add name space", headers(requestHeadersToAdd=[{"header": {"key": "a b"}}]), "outside RFC 7230's token"),
    ("add pseudo", headers(requestHeadersToAdd=[{"header": {"key": ":path"}}]), "a ':' first or the name Host"),
    ("add host", headers(requestHeadersToAdd=[{"header": {"key": "HOST"}}]), "may not be modified"),
    ("add long name", headers(requestHeadersToAdd=[{"header": {"key": "k" * 16385}}]), "16385 bytes, more than"),
    ("add value LF", headers(requestHeadersToAdd=[{"header": {"key": "k", "value": "a\nb"}}]), "request header value"),
    (
        "add long value",
        headers(requestHeadersToAdd=[{"header": {"key": "k", "value": "v" * 16385}}]),
        "HeaderValue max",
    ),
    ("add nothing", headers(requestHeadersToAdd=[{"append": True}]), "sets none of header, headerSecretRef"),
    ("response no header", headers(responseHeadersToAdd=[{"append": True}]), "MissingHeaderValueError"),
    ("response empty name", headers(responseHeadersToAdd=[{"header": {"key": ""}}]), "has an empty response header"),
    (
        "response name LF",
        headers(responseHeadersToAdd=[{"header": {"key": "a\nb"}}]),
        "response header name with a NUL",
    ),
    ("response host", headers(responseHeadersToAdd=[{"header": {"key": "host"}}]), "a ':' first or the name Host"),
    ("response long name", headers(responseHeadersToAdd=[{"header": {"key": "k" * 16385}}]), "16385 bytes"),
    (
        "response value CR",
        headers(responseHeadersToAdd=[{"header": {"key": "k", "value": "\r"}}]),
        "response header value",
    ),
    ("response long value", headers(responseHeadersToAdd=[{"header": {"key": "k", "value": "v" * 16385}}]), "16385"),
    ("remove empty", headers(requestHeadersToRemove=[""]), "has an empty request header to remove"),
    ("remove LF", headers(requestHeadersToRemove=["a\nb"]), "has a request header to remove with a NUL"),
    ("remove pseudo", headers(requestHeadersToRemove=[":authority"]), "a ':' first or the name Host"),
    ("remove response empty", headers(responseHeadersToRemove=[""]), "has an empty response header to remove"),
    ("remove response LF", headers(responseHeadersToRemove=["\x00"]), "response header to remove with a NUL"),
    ("remove response host", headers(responseHeadersToRemove=["Host"]), "a ':' first or the name Host"),
    (
        "route headers",
        options(headerManipulation={"responseHeadersToAdd": [{"header": {"key": "k", "value": "a\nb"}}]}),
        "has a response header value with a NUL, CR or LF",
    ),
    (
        "weighted destination headers",
        host(
            routes=[
                route(
                    routeAction={
                        "multi": {
                            "destinations": [
                                {
                                    "destination": destination()["single"],
                                    "weight": 1,
                                    "options": {"headerManipulation": {"requestHeadersToRemove": [":path"]}},
                                }
                            ]
                        }
                    }
                )
            ]
        ),
        "has a request header to remove with a ':' first",
    ),
    # strings protobuf cannot carry
    ("not UTF-8", host(domains=("a\ud800",)), "cannot be written as JSON"),
]


@pytest.mark.parametrize(("document", "expected"), [pytest.param(d, e, id=i) for i, d, e in RULES])
def test_each_rule_leaves_out_the_virtual_host_that_breaks_it(document: dict[str, Any], expected: str) -> None:
    assert problem_of(host()) is None  # the same virtual host without the fault passes
    problem = problem_of(document)
    assert problem is not None
    assert expected in problem


# What Gloo and Envoy both take must not be refused: the rules are theirs, not stricter guesses.
TAKEN = [
    ("domain with space, tab and wildcards", host(domains=("a b", "c\td", "*.x", "y-*", "*"))),
    ("domains differing by a Kelvin sign", host(domains=("k.example", "\u212a.example"))),
    ("name with a tab", host(name="a\tb")),
    (
        "prefix empty and sub-delims",
        host(routes=[route(matchers=[{"prefix": ""}]), route(matchers=[{"prefix": "/a;b=c,d@e:f~!$&'()*+"}])]),
    ),
    ("prefix without a slash", matcher(prefix="api")),
    ("RE2-only syntax", matcher(regex=r"\pL\p{Greek}\x{41}\Qa.b\E[[:alpha:]](?<n>a)(?U)b*\z")),
    ("header exact value with LF", matcher(prefix="/", headers=[{"name": ":authority", "value": "a\nb"}])),
    ("header regex flag with empty value", matcher(prefix="/", headers=[{"name": "x", "value": "", "regex": True}])),
    ("redirect host with port", redirect(hostRedirect="example.com:8443", httpsRedirect=True)),
    ("redirect full URL rewrite", redirect(prefixRewrite="https://example.com/a%2Fb?x=1#f")),
    ("redirect code by number", redirect(responseCode=4)),
    ("route options", options(prefixRewrite="/", hostRewrite="example.com", timeout="1.500s")),
    ("direct response", host(routes=[route(routeAction=None, directResponseAction={"status": 599, "body": "x"})])),
    (
        "weights",
        host(
            routes=[
                route(
                    routeAction={"multi": {"destinations": [{"destination": {"upstream": {"name": "a"}}, "weight": 1}]}}
                )
            ]
        ),
    ),
    ("upstream name with LF", host(routes=[route(to="a\nb")])),
    (
        "headers",
        headers(
            requestHeadersToAdd=[{"header": {"key": "x-a", "value": "a b\t"}}, {"headerSecretRef": {"name": "s"}}],
            responseHeadersToAdd=[{"header": {"key": "x b", "value": ""}}],
            requestHeadersToRemove=["x-c"],
        ),
    ),
]


@pytest.mark.parametrize("document", [pytest.param(d, id=i) for i, d in TAKEN])
def test_what_gloo_and_envoy_take_is_kept(document: dict[str, Any]) -> None:
    verdict = check_virtual_host(VirtualHost.model_validate(document))
    assert verdict.problem is None
    assert verdict.dropped == ()


def render_hosts(*documents: dict[str, Any]) -> Rendered:
    """What the controller makes of a strategy that returns these virtual hosts."""

    @strategy("fixed-hosts", each=False)
    def fixed_hosts(upstreams: Sequence[Upstream], options: NoOptions) -> Iterator[VirtualHost]:
        for document in documents:
            yield VirtualHost.model_validate(document)

    config = {"proxies": [{"listeners": [{"strategies": [{"kind": "fixed-hosts"}]}]}]}
    return render([kube_upstream("u")], config, [fixed_hosts])


def test_a_wrong_route_to_an_upstream_is_left_out_alone() -> None:
    rendered = render_hosts(host(routes=[route("good"), route("bad", matchers=[{"prefix": "/b a d/"}]), route("ok")]))
    (kept,) = rendered.virtual_hosts()
    assert [r["routeAction"]["single"]["upstream"]["name"] for r in kept["routes"]] == ["good", "ok"]
    (warning,) = rendered.warnings
    assert "left out Upstream gloo-system/bad (route 1 of virtual host 'v'): it has a matcher prefix with" in warning


def test_a_wrong_redirect_or_fixed_answer_leaves_out_the_whole_virtual_host() -> None:
    # Dropping a fixed answer (say, a 403 for /admin) would send its requests to the next route.
    deny = route(matchers=[{"prefix": "/admin"}], routeAction=None, directResponseAction={"status": 99})
    rendered = render_hosts(host(name="guarded", routes=[deny, route()]), host(name="other", domains=("o",)))
    assert [h["name"] for h in rendered.virtual_hosts()] == ["other"]
    (warning,) = rendered.warnings
    assert (
        "left out virtual host 'guarded' (from Upstream gloo-system/u): it has a route 0 that has a direct " in warning
    )


def test_a_virtual_host_whose_routes_are_all_wrong_is_left_out() -> None:
    bad = [route("a", matchers=[{"prefix": "/#"}]), route("b", matchers=[{"regex": "("}])]
    rendered = render_hosts(host(routes=bad), host(name="other", domains=("o",)))
    assert [h["name"] for h in rendered.virtual_hosts()] == ["other"]
    (warning,) = rendered.warnings
    assert (
        "left out virtual host 'v' (from Upstream gloo-system/a, Upstream gloo-system/b): it has no route " in warning
    )
    assert "left: left out Upstream gloo-system/a (route 0 of virtual host 'v'): it has a matcher prefix" in warning


def test_a_path_prefix_catch_all_loses_only_the_upstream_whose_name_breaks_a_rule() -> None:
    config = {"proxies": [{"listeners": [{"strategies": [{"kind": "path-prefix"}]}]}]}
    names = ["alpha", "bad\nname", "has space", "zulu"]
    rendered = render([kube_upstream(name) for name in names], config)
    (catch_all,) = rendered.virtual_hosts()
    assert [r["matchers"][0] for r in catch_all["routes"]] == [
        {"prefix": "/alpha/"},
        {"exact": "/alpha"},
        {"prefix": "/zulu/"},
        {"exact": "/zulu"},
    ]
    # The strategy checks each prefix as Gloo's path rule would, and leaves out only that upstream.
    assert len(rendered.warnings) == 2
    assert (
        "left out Upstream gloo-system/bad\\nname: prefixTemplate '/{name}' makes '/bad\\nname'" in rendered.warnings[0]
    )
    assert (
        "left out Upstream gloo-system/has space: prefixTemplate '/{name}' makes '/has space'" in rendered.warnings[1]
    )


def test_warnings_are_one_line_whatever_an_upstream_is_named() -> None:
    names = ["a\nb", "c\rd", "e\x00f", "g\u2028h", "i\x85j"]  # Envoy takes the last two in a domain
    rendered = render([kube_upstream(name) for name in names], {"strategy": {"domainTemplates": ["{name}.example"]}})
    assert [h["name"] for h in rendered.virtual_hosts()] == ["g\u2028h", "i\x85j"]
    assert len(rendered.warnings) == 3
    for warning in rendered.warnings:
        assert one_line(warning) == warning
        assert not {"\n", "\r", "\x00", "\u2028", "\x85"} & set(warning)
    assert "left out virtual host 'a\\nb' (from Upstream gloo-system/a\\nb)" in rendered.warnings[0]
    assert one_line("x\ud800y") == "x\\ud800y"


@strategy("skip-everything")
def skip_everything(upstream: Upstream, options: NoOptions) -> VirtualHost:
    raise Skip(f"not routed: {upstream.metadata.name}")


def test_a_skip_naming_an_upstream_with_a_newline_is_one_warning_line() -> None:
    """A strategy's own reason (here holding the upstream's name) is escaped like the rules' warnings."""
    config = {"proxies": [{"listeners": [{"strategies": [{"kind": "skip-everything"}]}]}]}
    rendered = render([kube_upstream("a\nb")], config, [skip_everything])
    (warning,) = rendered.warnings
    assert "\n" not in warning
    assert "not routed: a\\nb" in warning


def test_a_surrogate_in_one_route_leaves_out_only_that_route() -> None:
    config = {"proxies": [{"listeners": [{"strategies": [{"kind": "path-prefix"}]}]}]}
    rendered = render([kube_upstream("good"), kube_upstream("b\ud800d")], config)
    (catch_all,) = rendered.virtual_hosts()
    assert [r["matchers"][0] for r in catch_all["routes"]] == [{"prefix": "/good/"}, {"exact": "/good"}]
    (warning,) = rendered.warnings
    # Left out by the strategy, whose prefix check refuses it before validation would (it cannot be JSON).
    assert "left out Upstream gloo-system/b\\ud800d: prefixTemplate '/{name}' makes '/b\\ud800d'" in warning


def test_a_direct_response_body_over_the_listeners_limit_leaves_out_its_virtual_host() -> None:
    body = "x" * (ENVOY_DEFAULT_BODY_LIMIT + 1)
    answer = host(name="big", routes=[route(routeAction=None, directResponseAction={"status": 200, "body": body})])
    rendered = render_hosts(answer, host(name="small", domains=("s",)))
    assert [h["name"] for h in rendered.virtual_hosts()] == ["small"]
    assert "direct response body of 4097 bytes, more than the listener's limit of 4096" in rendered.warnings[0]
    # Gloo sets Envoy's limit from the listener's routeOptions.
    raised = Listener(name="l", bind_address="::", bind_port=1, route_options={"maxDirectResponseBodySizeBytes": 8192})
    assert direct_response_limit(raised) == 8192
    model = VirtualHost.model_validate(answer)
    warnings: list[str] = []
    admitted = admit_virtual_hosts("here", [(SourcedVirtualHost(model, ()), check_virtual_host(model))], warnings, 8192)
    assert len(admitted) == 1
    assert warnings == []


def test_domains_clash_as_envoy_compares_them_ascii_case_insensitively() -> None:
    rendered = render_hosts(
        host(name="a", domains=("K.example",)),
        host(name="b", domains=("k.EXAMPLE",)),
        host(name="c", domains=("\u212a.example",)),
    )
    assert [h["name"] for h in rendered.virtual_hosts()] == ["a", "c"]
    (warning,) = rendered.warnings
    assert "left out virtual host 'b' (from Upstream gloo-system/u): it claims domain 'k.EXAMPLE', already " in warning


# RE2's verdicts on these patterns, as Envoy 1.36 gave them (envoy --mode validate, program size unlimited);
# tests/e2e/test_hostile_names.py asks the real Envoy again.
RE2_ACCEPTS = [
    "a{1000}",
    r"\pL",
    r"\p{Greek}",
    r"a\z",
    "(?<n>a)",
    "(?P<n>a)",
    r"\Q*.+\E",
    "[[:alpha:]]",
    r"\x{41}",
    r"\x41",
    r"\12",
    r"\0",
    r"\C",
    "(?i)a",
    "a(?i)b",
    "(?U)a*",
    "x}+",
    "[a-]",
    "[]a]",
    "[^]a]",
    "(?i:a)",
    "(?-i)a",
    "(?)",
    r"\d+",
    r"[\d\s]",
    "[a&&b]",
    "a||b",
    "(a|)",
    "^*",
    r"\b",
    r"\_",
    r"\%",
    "[!--]",
    "(?s).",
    r"\A",
    "a{,3}",
]
RE2_REFUSES = [
    "/(?=a)",
    r"(a)\1",
    "(a",
    "a{1001}",
    r"a\Z",
    "a*+",
    "(?>a)",
    "[[:foo:]]",
    r"\8",
    "(?x)a",
    "(?#c)",
    "a{2}+",
    r"\u0041",
    r"\e",
    "a**",
    "(?P=n)",
    r"[\b]",
    r"\N{DIGIT ONE}",
    "a{2,1}",
    "[z-a]",
]


@pytest.mark.parametrize("pattern", RE2_ACCEPTS)
def test_re2_syntax_envoy_takes(pattern: str) -> None:
    assert syntax.re2(pattern) is None


@pytest.mark.parametrize("pattern", RE2_REFUSES)
def test_re2_syntax_envoy_refuses(pattern: str) -> None:
    assert syntax.re2(pattern) is not None


# Property: whatever strings the virtual hosts carry, what is admitted breaks none of the rules, checked here
# by independent oracles (Gloo's own path pattern, Envoy's header-safe pattern), and every upstream is either
# routed or named in a warning.
HOSTILE = st.text(alphabet=st.sampled_from(list("ab/.%2fF#:?  \n\r\x00\t*(|)[]{}\\+\u212aKk\u2028-")), max_size=8)
GLOO_PATH_ORACLE = re.compile(r"^(?:([A-Za-z0-9/:@._~!$&'()*+,:=;-]*|[%][0-9a-fA-F]{2}))*\Z")
ENVOY_ORACLE = re.compile(r"^[^\x00\n\r]*\Z")


def gloo_path_oracle(path: str) -> bool:
    bad = ("//", "/./", "/../", "%2f", "%2F", "#")
    return path == "" or (
        GLOO_PATH_ORACLE.match(path) is not None
        and not any(s in path for s in bad)
        and not path.endswith(("/..", "/."))
    )


@st.composite
def hostile_hosts(draw: st.DrawFn) -> list[dict[str, Any]]:
    hosts = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        routes = []
        for target in range(draw(st.integers(min_value=1, max_value=3))):
            made = route(
                f"u{index}-{target}", matchers=[{draw(st.sampled_from(["prefix", "exact", "regex"])): draw(HOSTILE)}]
            )
            if draw(st.booleans()):
                made["options"] = {"prefixRewrite": draw(HOSTILE)}
            if draw(st.booleans()):
                made["matchers"][0]["headers"] = [
                    {"name": draw(HOSTILE), "value": draw(HOSTILE), "regex": draw(st.booleans())}
                ]
            routes.append(made)
        hosts.append(host(name=draw(HOSTILE), domains=draw(st.lists(HOSTILE, max_size=3)), routes=routes))
    return hosts


@settings(max_examples=300, deadline=None)
@given(hostile_hosts())
def test_nothing_admitted_breaks_a_rule(documents: list[dict[str, Any]]) -> None:
    rendered = render_hosts(*documents)
    hosts = rendered.virtual_hosts()
    seen_domains: set[str] = set()
    routed: set[str] = set()
    for admitted in hosts:
        assert admitted["name"]
        assert ENVOY_ORACLE.match(admitted["name"])
        assert admitted["domains"]
        for domain in admitted["domains"]:
            assert domain
            assert ENVOY_ORACLE.match(domain)
            folded = domain.lower() if domain.isascii() else re.sub("[A-Z]", lambda m: m.group().lower(), domain)
            assert folded not in seen_domains
            seen_domains.add(folded)
        for kept in admitted["routes"]:
            (match,) = kept["matchers"]
            for key in ("prefix", "exact"):
                if key in match:
                    assert gloo_path_oracle(match[key])
            if "regex" in match:
                assert match["regex"]
                assert syntax.re2(match["regex"]) is None
            for header in match.get("headers", ()):
                assert header["name"]
                assert ENVOY_ORACLE.match(header["name"])
                if header.get("regex") and header.get("value"):
                    assert syntax.re2(header["value"]) is None
            rewrite = kept.get("options", {}).get("prefixRewrite")
            if rewrite is not None:
                assert ENVOY_ORACLE.match(rewrite)
                assert syntax.gloo_prefix_rewrite(rewrite) is None
            routed.add(kept["routeAction"]["single"]["upstream"]["name"])
    for document in documents:
        for made in document["routes"]:
            name = made["routeAction"]["single"]["upstream"]["name"]
            assert name in routed or any(f"Upstream gloo-system/{name}" in w for w in rendered.warnings), name
    assert all(one_line(warning) == warning for warning in rendered.warnings)


def test_the_memo_keeps_no_decoded_json() -> None:
    # A kept document would be ten objects per virtual host for the collector to walk on every pass.
    clean = check_virtual_host(VirtualHost.model_validate(host()))
    assert clean.document is not None
    assert clean.kept() is CLEAN
    dropped = check_virtual_host(
        VirtualHost.model_validate(host(routes=[route("a"), route("b", matchers=[{"prefix": "/ x"}])]))
    )
    assert dropped.dropped
    assert dropped.kept().document is None
    assert dropped.kept().dropped == dropped.dropped
