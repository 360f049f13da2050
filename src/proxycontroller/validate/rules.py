"""Gloo's and Envoy's rejection rules, applied before anything is written.

Gloo rejects a whole Proxy for one bad part (two virtual hosts with one domain, an empty domain, a route whose
path breaks its path rule, two listeners on one port), and Envoy refuses a whole route configuration for one
string its proto validation or its router refuses (a domain with a LF, a regex RE2 cannot compile, a domain
twice): then nothing that listener serves changes any more, while Gloo reports the Proxy Accepted. One bad
upstream must not take every route down with it, so each rule leaves out only the offender:

- a route that sends requests to upstreams, when only that route is wrong: the route, so a catch-all virtual
  host (path-prefix) loses that one upstream and keeps the others;
- anything else (the virtual host's own fields, a redirect or a direct response, its only route): the virtual
  host, since dropping a redirect or a fixed answer would change what the rest of it means;
- a listener that clashes with an earlier one.

Contested names and domains follow one deterministic rule: inputs are taken in order (translation sorts
upstreams by namespace, then name) and the first keeps what is contested; every later one is left out with a
warning that names both sides.

The rules read a virtual host as Gloo will: its JSON, camelCase keys, the fields the model does not name
included. Which string may hold what is a table, `FIELDS` (message -> JSON key -> rules, each with its source);
what a message must set is `SHAPES`; where nested messages sit is `CHILDREN`. The README lists the same rows.
A field the model gains is checked by adding a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec

from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.translate.api import sources_of
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
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
# one by one (check_document), since a wrong one may be left out alone.
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


class Verdict(NamedTuple):
    """What validation makes of a virtual host on its own, whatever else the listener holds."""

    problem: str | None  # why the whole virtual host is left out (None: it may be written)
    document: Document | None = None  # its JSON as it is written: without the routes left out
    dropped: tuple[str, ...] = ()  # one line per route left out, naming its upstreams
    body_bytes: int = 0  # its largest direct response body (the listener's limit applies)

    def kept(self) -> Verdict:
        """What a memo keeps once the document is written: the decoded JSON of every virtual host kept alive
        would be ten objects each for the collector to walk on every pass. Nearly every virtual host gets the
        one shared CLEAN value, which admission recognizes in one comparison."""
        clean = self.problem is None and not self.dropped and not self.body_bytes and self.document is not None
        if clean and all(domain.isascii() for domain in (self.document or {}).get("domains") or ()):
            return CLEAN
        return self._replace(document=None)


CLEAN = Verdict(None)  # nothing wrong, nothing left out, no fixed answer, and every domain ASCII


def check_virtual_host(host: VirtualHost) -> Verdict:
    """The virtual host checked as Gloo will read it: its JSON."""
    try:
        document: Document = msgspec.json.decode(host.to_json_bytes())
    except ValueError:  # pydantic's serialization error: a string that is not UTF-8 (a lone surrogate)
        return _check_unserializable(host)
    return check_document(document)


def check_document(document: Document, failed: dict[int, tuple[str, str]] | None = None) -> Verdict:
    """`failed`: routes known to be wrong already, by index: what is wrong, and their upstreams."""
    problem = message_problem("VirtualHost", document)
    if problem is not None:
        return Verdict(problem)
    routes = document.get("routes") or []
    kept: list[Any] = []
    dropped: list[str] = []
    body = 0
    for index, route in enumerate(routes):
        known = failed.get(index) if failed else None
        problem = known[0] if known else message_problem("Route", route)
        if problem is None:
            kept.append(route)
            if "directResponseAction" in route:
                body = max(body, _body_bytes(route))
            continue
        if len(routes) == 1:
            return Verdict(problem)
        if not isinstance(route, dict) or "routeAction" not in route:
            return Verdict(f"has a route {index} that {problem}")  # a redirect or a fixed answer: see above
        targets = known[1] if known else _targets(route)
        dropped.append(f"left out {targets} (route {index} of virtual host {document.get('name')!r}): it {problem}")
    if dropped and not kept:
        return Verdict(f"has no route left: {dropped[0]}")
    if dropped:
        document = {**document, "routes": kept}
    return Verdict(None, document, tuple(dropped), body)


def _check_unserializable(host: VirtualHost) -> Verdict:
    """A virtual host whose JSON cannot be written: left out whole, or only the routes that cannot be."""
    try:
        document: Document = msgspec.json.decode(host.model_copy(update={"routes": ()}).to_json_bytes())
    except ValueError as error:
        return Verdict(f"cannot be written as JSON: {error}")
    routes: list[Any] = []
    failed: dict[int, tuple[str, str]] = {}
    for index, route in enumerate(host.routes or ()):
        try:
            routes.append(msgspec.json.decode(route.to_json_bytes()))
        except ValueError as error:
            named = ", ".join(f"Upstream {key}" for key in sources_of(VirtualHost(name="", routes=(route,))))
            failed[index] = (f"cannot be written as JSON: {error}", named or "a route")
            routes.append({"routeAction": {}} if route.route_action is not None else {})
    document["routes"] = routes
    return check_document(document, failed)


def _targets(route: Document) -> str:
    """The upstreams a route sends requests to, as a warning names them."""
    action = route.get("routeAction") or {}
    destinations = [action.get("single")] + [
        weighted.get("destination") for weighted in (action.get("multi") or {}).get("destinations") or ()
    ]
    keys = []
    for destination in destinations:
        upstream = destination.get("upstream") if isinstance(destination, dict) else None
        if isinstance(upstream, dict):
            key = f"Upstream {upstream.get('namespace', '')}/{upstream.get('name', '')}"
            if key not in keys:
                keys.append(key)
    return ", ".join(keys) or "a route"


def _body_bytes(route: Document) -> int:
    body = (route.get("directResponseAction") or {}).get("body")
    return len(body.encode()) if isinstance(body, str) else 0


def intrinsic_problem(virtual_host: VirtualHost) -> str | None:
    """What is wrong with a virtual host on its own that leaves it out whole."""
    return check_virtual_host(virtual_host).problem


ENVOY_DEFAULT_BODY_LIMIT = 4096  # RouteConfiguration.max_direct_response_body_size_bytes when unset


def direct_response_limit(listener: Listener) -> int:
    """Envoy refuses a route configuration with a longer direct response body; Gloo sets the limit from the
    listener's routeOptions.maxDirectResponseBodySizeBytes."""
    value = (listener.route_options or {}).get("maxDirectResponseBodySizeBytes")
    return value if type(value) is int else ENVOY_DEFAULT_BODY_LIMIT


def envoy_lower(domain: str) -> str:
    """Envoy lower-cases domains in ASCII only (Http::LowerCaseString): "K" and the Kelvin sign stay apart."""
    return domain.lower() if domain.isascii() else re.sub(r"[A-Z]+", lambda m: m.group().lower(), domain)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """A warning is one log line: control characters and lone surrogates (in an upstream's name) escaped."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def admit_virtual_hosts(
    where: str,
    candidates: Sequence[tuple[SourcedVirtualHost, Verdict]],
    warnings: list[str],
    body_limit: int = ENVOY_DEFAULT_BODY_LIMIT,
) -> list[SourcedVirtualHost]:
    """The candidates (each with its verdict) that the listener can hold, first come first served; a warning
    for each one left out, and for each route left out of one admitted."""
    owner_of_name: dict[str, SourcedVirtualHost] = {}
    owner_of_domain: dict[str, SourcedVirtualHost] = {}
    admitted = []
    for candidate, verdict in candidates:
        virtual_host = candidate.virtual_host
        problem = None
        fold: Callable[[str], str] = (
            str.lower
        )  # Envoy compares domains case-insensitively, in ASCII: for ASCII domains, str.lower
        if verdict is not CLEAN:
            fold = envoy_lower
            problem = verdict.problem
            if problem is None and verdict.body_bytes > body_limit:
                problem = (
                    f"has a direct response body of {verdict.body_bytes} bytes, more than the listener's limit of "
                    f"{body_limit} (Envoy: RouteConfiguration.max_direct_response_body_size_bytes)"
                )
        if problem is None:
            holder = owner_of_name.get(virtual_host.name)
            if holder is not None:
                problem = f"repeats the name of {holder.describe()}"
            else:
                for domain in virtual_host.domains or ():
                    holder = owner_of_domain.get(fold(domain))
                    if holder is not None:
                        problem = f"claims domain {domain!r}, already served by {holder.describe()}"
                        break
        if problem is not None:
            warnings.append(one_line(f"{where}: left out {candidate.describe()}: it {problem}"))
            continue
        owner_of_name[virtual_host.name] = candidate
        for domain in virtual_host.domains or ():
            owner_of_domain[fold(domain)] = candidate
        if verdict.dropped:
            warnings.extend(one_line(f"{where}: {line}") for line in verdict.dropped)
        admitted.append(candidate)
    return admitted


def admit_listeners(where: str, plans: Sequence[ListenerPlan], warnings: list[str]) -> list[ListenerPlan]:
    """Listeners with distinct names and bind ports; later ones that clash are left out."""
    used_ports: dict[int, str] = {}
    used_names: set[str] = set()
    admitted = []
    for plan in plans:
        listener = plan.listener
        if not listener.name or listener.name in used_names:
            warnings.append(f"{where}: left out a listener with an empty or repeated name {listener.name!r}")
            continue
        if listener.bind_port in used_ports:
            warnings.append(
                f"{where}: left out listener {listener.name!r}: bind port {listener.bind_port} "
                f"is already used by listener {used_ports[listener.bind_port]!r}"
            )
            continue
        used_ports[listener.bind_port] = listener.name
        used_names.add(listener.name)
        admitted.append(plan)
    return admitted


def proxy_where(plan: ProxyPlan) -> str:
    return f"Proxy {plan.key}"
