"""What each field of a virtual host may hold, as Gloo and Envoy say: the rules as tables.

`FIELDS`: message -> JSON key -> the rules its string (or each of its strings) must pass, each rule with its
source, as a warning quotes it. `SHAPES`: rules on a message as a whole (the oneofs, sums and ranges).
`CHILDREN`: where nested messages sit. Message names are Gloo's (proxy.proto, matchers.proto, options.proto);
keys are Gloo's JSON names, so the fields the model does not name are checked as well. The README's table
lists the same rows; a field the model gains is checked by adding a row. `message_problem` walks a message
with them; what is then left out is rules.py's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from proxycontroller.validate import syntax

Document = dict[str, Any]


class Rule(NamedTuple):
    """What one string may contain: `test` names what is wrong with it (None: nothing; "": it is empty);
    `source` is whose rule it is, as a warning quotes it."""

    test: Callable[[str], str | None]
    source: str


def _empty(value: str) -> str | None:
    return "" if value == "" else None


def _over_1024_bytes(value: str) -> str | None:
    size = len(value.encode())
    return f"{size} bytes, more than 1024" if size > 1024 else None


def _over_16384_bytes(value: str) -> str | None:
    size = len(value.encode())
    return f"{size} bytes, more than 16384" if size > 16384 else None


def _pseudo_or_host(value: str) -> str | None:
    return "a ':' first or the name Host" if value.startswith(":") or value.lower() == "host" else None


# Gloo's ValidateHeaderKey (projects/gloo/pkg/plugins/utils/headers): RFC 7230 token characters.
_TOKEN = re.compile(r"[a-zA-Z0-9!#$%&'*+.^_`|~-]+")


def _not_token(value: str) -> str | None:
    return None if _TOKEN.fullmatch(value) else "a character outside RFC 7230's token"


def not_empty(source: str) -> Rule:
    return Rule(_empty, source)


def header_safe(envoy_field: str) -> Rule:
    """Envoy's well_known_regex HTTP_HEADER_NAME/HTTP_HEADER_VALUE with strict: false, on `envoy_field`."""
    return Rule(syntax.envoy_header_safe, f"Envoy: {envoy_field} ^[^\\0\\n\\r]*$")


PATH = Rule(syntax.gloo_path, "Gloo: ValidateRoutePath")
REWRITE = Rule(syntax.gloo_prefix_rewrite, "Gloo: ValidatePrefixRewrite")
REGEX = Rule(syntax.re2, "Envoy: RE2")
REGEX_NOT_EMPTY = not_empty("Envoy: RegexMatcher.regex min_len 1")
DURATION = Rule(syntax.duration, "protobuf Duration; Envoy: no negative durations")
HEADER_BYTES = Rule(_over_16384_bytes, "Envoy: HeaderValue max_bytes 16384")
NOT_PSEUDO_OR_HOST = Rule(_pseudo_or_host, "Gloo and Envoy: :-prefixed or host headers may not be modified")


class Field(NamedTuple):
    """A string (or list of strings) of a message that reaches Envoy: how a warning names it, its rules."""

    noun: str
    rules: tuple[Rule, ...]


# Message -> JSON key -> rules. The message names are Gloo's (proxy.proto, matchers.proto, options.proto).
FIELDS: dict[str, dict[str, Field]] = {
    "VirtualHost": {
        "name": Field("name", (not_empty("Envoy: VirtualHost.name min_len 1"),)),
        "domains": Field("domain", (not_empty("Gloo: EmptyDomainError"), header_safe("VirtualHost.domains"))),
    },
    "Matcher": {
        "prefix": Field("matcher prefix", (PATH,)),
        "exact": Field("matcher exact path", (PATH,)),
        "regex": Field("matcher regex", (REGEX_NOT_EMPTY, REGEX)),
    },
    "HeaderMatcher": {
        "name": Field("header matcher name", (not_empty("Envoy: min_len 1"), header_safe("HeaderMatcher.name")))
    },
    "QueryParameterMatcher": {
        "name": Field(
            "query parameter matcher name",
            (not_empty("Envoy: min_len 1"), Rule(_over_1024_bytes, "Envoy: max_bytes 1024")),
        ),
    },
    "RouteAction": {
        "clusterHeader": Field(
            "cluster header", (not_empty("Envoy: min_len 1"), header_safe("RouteAction.cluster_header"))
        )
    },
    "RedirectAction": {
        "hostRedirect": Field("redirect host", (header_safe("RedirectAction.host_redirect"), PATH)),
        "pathRedirect": Field("redirect path", (header_safe("RedirectAction.path_redirect"), PATH)),
        "prefixRewrite": Field("redirect prefix rewrite", (header_safe("RedirectAction.prefix_rewrite"), REWRITE)),
    },
    "RegexMatchAndSubstitute": {
        "substitution": Field("regex substitution", (header_safe("RegexMatchAndSubstitute.substitution"),))
    },
    "RegexMatcher": {"regex": Field("regex rewrite pattern", (REGEX_NOT_EMPTY, REGEX))},
    "RouteOptions": {
        "prefixRewrite": Field("prefix rewrite", (header_safe("RouteAction.prefix_rewrite"), REWRITE)),
        "hostRewrite": Field("host rewrite", (header_safe("RouteAction.host_rewrite_literal"),)),
        "timeout": Field("timeout", (DURATION,)),
    },
    "HeaderManipulation": {
        "requestHeadersToRemove": Field(
            "request header to remove",
            (not_empty("Envoy: min_len 1"), header_safe("headers_to_remove"), NOT_PSEUDO_OR_HOST),
        ),
        "responseHeadersToRemove": Field(
            "response header to remove",
            (not_empty("Envoy: min_len 1"), header_safe("headers_to_remove"), NOT_PSEUDO_OR_HOST),
        ),
    },
    "RequestHeaderValue": {
        "key": Field(
            "request header name",
            (
                NOT_PSEUDO_OR_HOST,
                not_empty("Gloo: ValidateHeaderKey"),
                Rule(_not_token, "Gloo: ValidateHeaderKey"),
                HEADER_BYTES,
            ),
        ),
        "value": Field("request header value", (header_safe("HeaderValue.value"), HEADER_BYTES)),
    },
    "ResponseHeaderValue": {
        "key": Field(
            "response header name",
            (
                not_empty("Envoy: HeaderValue.key min_len 1"),
                header_safe("HeaderValue.key"),
                NOT_PSEUDO_OR_HOST,
                HEADER_BYTES,
            ),
        ),
        "value": Field("response header value", (header_safe("HeaderValue.value"), HEADER_BYTES)),
    },
}

# Message -> JSON key -> the message found there (one, or a list of them). A virtual host's routes are checked
# one by one (rules.check_document), since a wrong one may be left out alone.
CHILDREN: dict[str, dict[str, str]] = {
    "VirtualHost": {"options": "VirtualHostOptions"},
    "VirtualHostOptions": {"headerManipulation": "HeaderManipulation"},
    "Route": {
        "matchers": "Matcher",
        "routeAction": "RouteAction",
        "redirectAction": "RedirectAction",
        "directResponseAction": "DirectResponseAction",
        "options": "RouteOptions",
    },
    "Matcher": {"headers": "HeaderMatcher", "queryParameters": "QueryParameterMatcher"},
    "RouteAction": {"single": "Destination", "multi": "MultiDestination"},
    "MultiDestination": {"destinations": "WeightedDestination"},
    "WeightedDestination": {"destination": "Destination", "options": "WeightedDestinationOptions"},
    "WeightedDestinationOptions": {"headerManipulation": "HeaderManipulation"},
    "RedirectAction": {"regexRewrite": "RegexMatchAndSubstitute"},
    "RouteOptions": {"regexRewrite": "RegexMatchAndSubstitute", "headerManipulation": "HeaderManipulation"},
    "RegexMatchAndSubstitute": {"pattern": "RegexMatcher"},
    "HeaderManipulation": {
        "requestHeadersToAdd": "RequestHeaderValueOption",
        "responseHeadersToAdd": "ResponseHeaderValueOption",
    },
    "RequestHeaderValueOption": {"header": "RequestHeaderValue"},
    "ResponseHeaderValueOption": {"header": "ResponseHeaderValue"},
}


def string_problem(noun: str, value: object, rules: Sequence[Rule]) -> str | None:
    """What is wrong with one string, as a warning says it after "it"."""
    if type(value) is not str:
        return f"has {_article(noun)} {noun} that is not a string: {shown(repr(value))}"
    for test, source in rules:
        wrong = test(value)
        if wrong is not None:
            if wrong == "":
                return f"has an empty {noun} ({source})"
            return f"has {_article(noun)} {noun} with {wrong}: {shown(value)} ({source})"
    return None


def shown(value: str, limit: int = 120) -> str:
    """A value as a warning quotes it: escaped, and cut short (a 1 MB regex is not a log line)."""
    quoted = repr(value)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 5]}...{quoted[0]} ({len(value)} characters)"


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


class Shape(NamedTuple):
    """A rule on a message as a whole: which of its fields are set, how they add up. `test` says what is wrong
    as a warning says it after "it"."""

    test: Callable[[Document], str | None]
    source: str


def exactly_one(*keys: str) -> Callable[[Document], str | None]:
    """One field of a oneof: Gloo cannot parse a Proxy that sets two, and refuses one that sets none."""
    wanted, listed = frozenset(keys), ", ".join(keys)

    def test(message: Document) -> str | None:
        if len(message) == 1 and next(iter(message)) in wanted:  # the usual message: that one field alone
            return None
        found = wanted.intersection(message)
        if len(found) == 1:
            return None
        return f"sets none of {listed}" if not found else f"sets more than one of {', '.join(sorted(found))}"

    return test


def at_most_one(*keys: str) -> Callable[[Document], str | None]:
    wanted = frozenset(keys)

    def test(message: Document) -> str | None:
        found = wanted.intersection(message)
        return f"sets more than one of {', '.join(sorted(found))}" if len(found) > 1 else None

    return test


def _name_one_line(host: Document) -> str | None:
    """Envoy and Gloo take a NUL, CR or LF in a virtual host's name; the controller does not, so that a name
    stays one log line. A shape, so that a domain's fault (Envoy's rule) is the one a warning names first."""
    name = host.get("name")
    if isinstance(name, str) and syntax.envoy_header_safe(name):
        return f"has a name with a NUL, CR or LF: {shown(name)}"
    return None


def _no_domain(host: Document) -> str | None:
    return None if host.get("domains") else "has no domain"


def _repeated_domain(host: Document) -> str | None:
    domains = host.get("domains") or ()
    if len(domains) > 1 and len({envoy_lower(str(domain)) for domain in domains}) != len(domains):
        return f"lists a domain twice: {list(domains)}"
    return None


def _methods(matcher: Document) -> str | None:
    """Gloo matches methods with one safe_regex on :method: the methods joined by '|'."""
    methods = matcher.get("methods")
    if methods is None:
        return None
    if not isinstance(methods, list) or not all(isinstance(method, str) for method in methods):
        return f"has methods that are not a list of strings: {methods!r}"
    return string_problem("methods regex", "|".join(methods), (REGEX_NOT_EMPTY, REGEX))


def _regex_value(matcher: Document) -> str | None:
    """Gloo makes a safe_regex of a header or query parameter value with `regex: true`; an empty value is a
    presence match, and without `regex` it is an exact match, which Envoy takes whatever it holds."""
    value = matcher.get("value")
    if not matcher.get("regex") or not value:
        return None
    return string_problem("matcher regex", value, (REGEX,))


_UINT32 = 2**32 - 1


def _weights(multi: Document) -> str | None:
    destinations = multi.get("destinations")
    if not destinations:
        return "has a multi destination without destinations"
    weights = [destination.get("weight", 0) if isinstance(destination, dict) else None for destination in destinations]
    numbers = [weight for weight in weights if type(weight) is int and 0 <= weight <= _UINT32]
    if len(numbers) != len(weights):
        return f"has a weight that is not an integer within 0..{_UINT32}: {weights}"
    if not 1 <= sum(numbers) <= _UINT32:
        return f"has weights whose sum is not within 1..{_UINT32}: {weights}"
    return None


_RESPONSE_CODES = ("MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT")


def _response_code(action: Document) -> str | None:
    code = action.get("responseCode")
    if code is None or code in _RESPONSE_CODES or (type(code) is int and 0 <= code < len(_RESPONSE_CODES)):
        return None
    return f"has a redirect response code Gloo's enum does not define: {code!r}"


def _status(action: Document) -> str | None:
    status = action.get("status")
    if type(status) is int and 200 <= status < 600:
        return None
    return f"has a direct response status outside 200..599: {status!r}"


ONEOF = "Gloo: a oneof, two would not parse"
SHAPES: dict[str, tuple[Shape, ...]] = {
    "VirtualHost": (
        Shape(_name_one_line, "the controller: a name is one log line"),
        Shape(_no_domain, "Envoy: VirtualHost.domains min_items 1"),
        Shape(_repeated_domain, "Envoy: unique domains, case-insensitively"),
    ),
    "Route": (
        Shape(exactly_one("routeAction", "redirectAction", "directResponseAction"), f"{ONEOF}; Envoy: action required"),
    ),
    "Matcher": (
        Shape(exactly_one("prefix", "exact", "regex", "connectMatcher"), f"{ONEOF}; Gloo: no path specifier provided"),
        Shape(_methods, "Gloo: one :method regex"),
    ),
    "HeaderMatcher": (Shape(_regex_value, "Gloo: regex: true makes a safe_regex"),),
    "QueryParameterMatcher": (Shape(_regex_value, "Gloo: regex: true makes a safe_regex"),),
    "RouteAction": (
        Shape(
            exactly_one("single", "multi", "upstreamGroup", "clusterHeader", "dynamicForwardProxy"),
            f"{ONEOF}; Gloo: unknown upstream destination type",
        ),
    ),
    "Destination": (Shape(exactly_one("upstream", "kube", "consul"), f"{ONEOF}; Gloo: no upstream to route to"),),
    "MultiDestination": (Shape(_weights, "Gloo and Envoy: weighted clusters' total weight 1..2^32-1"),),
    "RedirectAction": (
        Shape(at_most_one("pathRedirect", "prefixRewrite", "regexRewrite"), ONEOF),
        Shape(_response_code, "Envoy: RedirectAction.response_code defined_only"),
    ),
    "DirectResponseAction": (Shape(_status, "Envoy: DirectResponseAction.status in [200, 600)"),),
    "RequestHeaderValueOption": (Shape(exactly_one("header", "headerSecretRef"), ONEOF),),
    "ResponseHeaderValueOption": (Shape(exactly_one("header"), "Gloo: MissingHeaderValueError"),),
    "RouteOptions": (
        Shape(at_most_one("prefixRewrite", "regexRewrite"), "Envoy: only one of prefix_rewrite, regex_rewrite"),
        Shape(at_most_one("hostRewrite", "autoHostRewrite", "hostRewriteHeader", "hostRewritePathRegex"), ONEOF),
    ),
}


# FIELDS and CHILDREN merged, for one lookup per key of a message.
_KEYS: dict[str, dict[str, tuple[Field | None, str | None]]] = {
    kind: {
        key: (FIELDS.get(kind, {}).get(key), CHILDREN.get(kind, {}).get(key))
        for key in {*FIELDS.get(kind, {}), *CHILDREN.get(kind, {})}
    }
    for kind in {*FIELDS, *CHILDREN}
}


def message_problem(kind: str, message: object) -> str | None:
    """The first rule the message of kind `kind` (a JSON object) or one below it breaks; None: none."""
    if type(message) is not dict:
        return f"has a {kind} that is not an object: {message!r}"
    keys = _KEYS.get(kind)
    if keys is not None:
        for key, value in message.items():
            entry = keys.get(key)
            if entry is None:
                continue
            field, child = entry
            items = value if type(value) is list else (value,)
            if field is not None:
                for item in items:
                    problem = string_problem(field.noun, item, field.rules)
                    if problem is not None:
                        return problem
            if child is not None:
                for item in items:
                    problem = message_problem(child, item)
                    if problem is not None:
                        return problem
    for shape in SHAPES.get(kind, ()):
        wrong = shape.test(message)
        if wrong is not None:
            return f"{wrong} ({shape.source})"
    return None


def envoy_lower(domain: str) -> str:
    """Envoy lower-cases domains in ASCII only (Http::LowerCaseString): "K" and the Kelvin sign stay apart."""
    return domain.lower() if domain.isascii() else re.sub(r"[A-Z]+", lambda m: m.group().lower(), domain)
