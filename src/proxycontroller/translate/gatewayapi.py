"""A strategy's virtual host as Gateway API HTTPRoutes: the conversion, pure (no I/O, no clock).

The strategies are not written twice: what they make for Gloo (a VirtualHost with its routes) is converted.
- domains -> `hostnames`: lowercased, the port dropped, `*` (alone or among others) meaning every host (no
  hostnames), a wildcard only as a leading `*.`; a domain that cannot be a hostname (an IP address, `a.*`,
  `*-a.com`, ...) leaves the whole virtual host out, with a warning naming it.
- each Gloo route -> one rule: prefix/exact/regex -> `PathPrefix`/`Exact`/`RegularExpression` matches (a
  prefix's trailing slash dropped: Gateway API matches prefixes by path element), headers, query parameters,
  one match per method; `prefixRewrite` -> `URLRewrite` with `ReplacePrefixMatch` (one rule per match: the CRD
  allows it with exactly one `PathPrefix` match); `hostRewrite` -> `URLRewrite.hostname`; `timeout` ->
  `timeouts.request`; a redirect action -> `RequestRedirect` (https, status code, host, port, path).
- destinations -> `backendRefs` to the Service and port (weighted for several destinations): a `kube`
  destination names it; an Upstream's `spec.kube` does (serviceName, serviceNamespace, servicePort).
- Anything else Gloo can say and the standard channel cannot (a direct response, an upstream group, retries,
  virtual host options, a header that must not match...) leaves the virtual host out with a warning naming it:
  routing a host differently from what its strategy asked is worse than not routing it.
- The CRD's limits (`maxItems`): a rule of more than 64 matches is split into rules; rules are grouped at most
  16 and 128 matches per route, hostnames 16 per route, and each group of hostnames gets each group of rules:
  several HTTPRoutes, named `<virtual host>-<hash>` then `-2`, `-3`... (stable, DNS labels).

Every default the API server would fill in (backend group/kind/weight, parent group/kind, redirect status
code) is written explicitly, so what is read back equals what was written and nothing is rewritten on resync.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from proxycontroller.model.proxy import Destination, Matcher, RedirectAction, Route, RouteAction, VirtualHost
from proxycontroller.model.resources import ObjectKey, Upstream

# The Gateway API v1.x standard CRD's maxItems (and the CEL rule on the matches of a route's rules).
MAX_HOSTNAMES = 16
MAX_RULES = 16
MAX_MATCHES_PER_RULE = 64
MAX_MATCHES_PER_ROUTE = 128
MAX_BACKEND_REFS = 16
MAX_GRANT_TARGETS = 16  # ReferenceGrant spec.to
NAME_BASE_LENGTH = 40  # of a route's name, before "-<hash>" and a split's "-<n>": at most 63 in all

_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT = re.compile(r":([0-9]{1,5}|\*)$")
_PATH_CHARS = re.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))
# Gloo's RedirectAction.RedirectResponseCode, by name and by number, as the HTTP status it answers.
_REDIRECT_CODES: dict[str | int, int] = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
    0: 301,
    1: 302,
    2: 303,
    3: 307,
    4: 308,
}


class Unconvertible(ValueError):
    """Something of a virtual host the Gateway API's standard channel cannot say; the message says what."""


@dataclass(frozen=True)
class ServiceRef:
    namespace: str
    name: str
    port: int


# Finds the Service an Upstream (by key) stands for; raises Unconvertible when it stands for none.
UpstreamLookup = Callable[[ObjectKey], Upstream | None]


@dataclass(frozen=True)
class ConvertedRoute:
    key: ObjectKey
    spec: dict[str, Any]
    services: tuple[ServiceRef, ...]  # the Services its backendRefs name


@dataclass
class Conversion:
    routes: list[ConvertedRoute] = field(default_factory=list)
    upstreams: tuple[ObjectKey, ...] = ()  # the Upstreams it looked up (what its result depends on)
    dropped: tuple[str, ...] = ()  # the routes left out, and why


def route_base_name(proxy: ObjectKey, listener: str, virtual_host: str) -> str:
    """The first HTTPRoute's name for a virtual host: its name as a DNS label, and a hash of where it comes
    from (Proxy, listener, virtual host: two listeners may hold virtual hosts of the same name)."""
    digest = hashlib.sha256(f"{proxy}\0{listener}\0{virtual_host}".encode()).hexdigest()[:8]
    base = _NOT_NAME.sub("-", virtual_host.lower()).strip("-")[:NAME_BASE_LENGTH].strip("-")
    return f"{base or 'route'}-{digest}"


def hostnames(domains: Sequence[str] | None) -> tuple[str, ...]:
    """The HTTPRoute hostnames for Gloo domains (no hostnames: every host). Raises Unconvertible."""
    found: list[str] = []
    for domain in domains or ():
        host = _PORT.sub("", domain.lower()) if not domain.startswith("[") else domain
        if host == "*":
            return ()
        if host.startswith("[") or _is_ip(host):
            raise Unconvertible(f"domain {domain!r} is an IP address, which an HTTPRoute hostname cannot be")
        if len(host) > 253 or not _HOSTNAME.fullmatch(host):
            raise Unconvertible(
                f"domain {domain!r} cannot be an HTTPRoute hostname (lowercase DNS names, a wildcard only as a"
                " leading '*.')"
            )
        if host not in found:
            found.append(host)
    return tuple(found)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def convert_virtual_host(
    virtual_host: VirtualHost,
    *,
    proxy: ObjectKey,
    listener: str,
    namespace: str,
    parents: Sequence[Mapping[str, Any]],
    upstreams: UpstreamLookup,
) -> Conversion:
    """The HTTPRoutes (in `namespace`, attached to `parents`) that route what `virtual_host` routes. Raises
    Unconvertible naming what cannot be said."""
    if virtual_host.options:
        raise Unconvertible(f"virtual host options ({', '.join(sorted(virtual_host.options))}) have no equivalent")
    hosts = hostnames(virtual_host.domains)
    looked_up: list[ObjectKey] = []

    def lookup(key: ObjectKey) -> Upstream | None:
        looked_up.append(key)
        return upstreams(key)

    rules: list[tuple[dict[str, Any], tuple[ServiceRef, ...]]] = []
    dropped: list[str] = []
    for index, route in enumerate(virtual_host.routes or ()):
        # A route that cannot be said is left out, as Gloo's validation leaves out a route it refuses.
        try:
            rules += _rules(route, namespace, lookup)
        except Unconvertible as exc:
            dropped.append(f"route {route.name or index} left out: {exc}")
    if not rules:
        raise Unconvertible("; ".join(dropped) if dropped else "it has no routes")
    base = route_base_name(proxy, listener, virtual_host.name)
    conversion = Conversion(upstreams=tuple(looked_up), dropped=tuple(dropped))
    count = 0
    for host_group in _chunks(list(hosts), MAX_HOSTNAMES) or [[]]:
        for rule_group in _rule_groups(rules):
            count += 1
            spec: dict[str, Any] = {
                "parentRefs": [dict(parent) for parent in parents],
                "rules": [rule for rule, _ in rule_group],
            }
            if host_group:
                spec["hostnames"] = host_group
            services = tuple(dict.fromkeys(service for _, named in rule_group for service in named))
            name = base if count == 1 else f"{base}-{count}"
            conversion.routes.append(ConvertedRoute(ObjectKey(namespace, name), spec, services))
    return conversion


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


Rule = tuple[dict[str, Any], tuple[ServiceRef, ...]]  # a rule and the Services it routes to


def _rule_groups(rules: list[Rule]) -> list[list[Rule]]:
    """Rules in order, grouped at most MAX_RULES and MAX_MATCHES_PER_ROUTE matches per group."""
    groups: list[list[Rule]] = []
    matches = 0
    for rule, services in rules:
        size = len(rule["matches"])
        if not groups or len(groups[-1]) == MAX_RULES or matches + size > MAX_MATCHES_PER_ROUTE:
            groups.append([])
            matches = 0
        groups[-1].append((rule, services))
        matches += size
    return groups


def _rules(route: Route, namespace: str, upstreams: UpstreamLookup) -> list[Rule]:
    """The rules one Gloo route becomes (several when its matches are too many for one, or when a prefix
    rewrite needs a rule per match), and the Services they route to."""
    matches = [match for matcher in route.matchers or (Matcher(prefix="/"),) for match in _matches(matcher)]
    backends: list[dict[str, Any]] = []
    services: list[ServiceRef] = []
    actions = [a for a in (route.route_action, route.redirect_action, route.direct_response_action) if a is not None]
    if len(actions) != 1:
        raise Unconvertible("it has no action" if not actions else "it has several actions")
    if route.direct_response_action is not None:
        raise Unconvertible("a direct response has no Gateway API equivalent in the standard channel")
    redirect = _redirect(route.redirect_action) if route.redirect_action is not None else None
    if route.route_action is not None:
        backends, services = _backends(route.route_action, namespace, upstreams)
    rewrite, extra = _options(route)
    # What replaces the matched prefix, in a redirect's Location or in the request sent on.
    redirect_prefix = route.redirect_action.prefix_rewrite if route.redirect_action is not None else None
    rewrite_prefix = route.options.prefix_rewrite if route.options is not None else None
    if redirect is not None and route.redirect_action is not None and route.redirect_action.path_redirect is not None:
        redirect_prefix = None
    # The CRD allows ReplacePrefixMatch only in a rule of exactly one PathPrefix match: then a rule per match,
    # and an Exact match (the whole path is the prefix) gets ReplaceFullPath.
    per_match = redirect_prefix is not None or rewrite_prefix is not None
    rules = []
    for group in _chunks(matches, 1 if per_match else MAX_MATCHES_PER_RULE):
        filters: list[dict[str, Any]] = []
        if redirect is not None:
            body = dict(redirect)
            if redirect_prefix is not None:
                body["path"] = _path_replacement(group[0], redirect_prefix, "a redirect's prefix rewrite")
            filters.append({"type": "RequestRedirect", "requestRedirect": body})
        url_rewrite = dict(rewrite)
        if rewrite_prefix is not None:
            url_rewrite["path"] = _path_replacement(group[0], rewrite_prefix, "a prefix rewrite")
        if url_rewrite:
            filters.append({"type": "URLRewrite", "urlRewrite": url_rewrite})
        rule: dict[str, Any] = {"matches": group}
        if filters:
            rule["filters"] = filters
        if backends:
            rule["backendRefs"] = backends
        rule.update(extra)
        rules.append((rule, tuple(services)))
    return rules


def _path_replacement(match: dict[str, Any], replacement: str, what: str) -> dict[str, str]:
    kind = match["path"]["type"]
    if kind == "PathPrefix":
        return {"type": "ReplacePrefixMatch", "replacePrefixMatch": replacement or "/"}
    if kind == "Exact":
        return {"type": "ReplaceFullPath", "replaceFullPath": replacement or "/"}
    raise Unconvertible(f"{what} of a regex match has no equivalent")


def _value_match(name: str, value: str | None, regex: bool | None) -> dict[str, Any]:
    """A header or query parameter match; Gloo's "present with any value" (no value) as the regex `.*`."""
    if value is None or value == "":
        return {"name": name, "type": "RegularExpression", "value": ".*"}
    return {"name": name, "type": "RegularExpression" if regex else "Exact", "value": value}


def _matches(matcher: Matcher) -> list[dict[str, Any]]:
    if matcher.connect_matcher is not None:
        raise Unconvertible("a CONNECT matcher has no equivalent")
    if matcher.case_sensitive is False:
        raise Unconvertible("a case-insensitive path match has no equivalent")
    match: dict[str, Any] = {"path": _path(matcher)}
    if matcher.headers:
        headers = []
        for header in matcher.headers:
            if header.invert_match:
                raise Unconvertible(f"header {header.name!r} must not match: an inverted match has no equivalent")
            if not _HEADER_NAME.fullmatch(header.name) or len(header.name) > 256:
                raise Unconvertible(f"header name {header.name!r} is not an HTTP header name")
            headers.append(_value_match(header.name, header.value, header.regex))
        match["headers"] = headers
    if matcher.query_parameters:
        params = []
        for param in matcher.query_parameters:
            if not _HEADER_NAME.fullmatch(param.name) or len(param.name) > 256:
                raise Unconvertible(f"query parameter {param.name!r} cannot be matched (not a token)")
            params.append(_value_match(param.name, param.value, param.regex))
        match["queryParams"] = params
    if not matcher.methods:
        return [match]
    made = []
    for method in matcher.methods:
        if method.upper() not in _METHODS:
            raise Unconvertible(f"method {method!r} cannot be matched")
        made.append({**match, "method": method.upper()})
    return made


def _path(matcher: Matcher) -> dict[str, str]:
    if matcher.regex is not None:
        return {"type": "RegularExpression", "value": matcher.regex}
    if matcher.exact is not None:
        return {"type": "Exact", "value": _valid_path(matcher.exact)}
    prefix = matcher.prefix if matcher.prefix is not None else "/"
    # Gateway API matches a prefix by path element: "/a/" and "/a" match the same requests ("/a/b").
    value = prefix.rstrip("/") or "/"
    return {"type": "PathPrefix", "value": _valid_path(value, original=prefix)}


def _valid_path(value: str, original: str | None = None) -> str:
    """What the CRD's CEL rules accept as an Exact or PathPrefix value."""
    shown = original if original is not None else value
    bad = (
        not value.startswith("/")
        or any(part in value for part in ("//", "/./", "/../", "%2f", "%2F", "#"))
        or value.endswith(("/..", "/."))
        or len(value) > 1024
        or not _PATH_CHARS.fullmatch(value)
    )
    if bad:
        raise Unconvertible(f"path {shown!r} cannot be matched by an HTTPRoute (the CRD refuses it)")
    return value


def _redirect(action: RedirectAction) -> dict[str, Any]:
    """The RequestRedirect filter's content, but a prefix rewrite (that depends on the match)."""
    if action.regex_rewrite is not None:
        raise Unconvertible("a regex rewrite of a redirect has no equivalent")
    if action.strip_query:
        raise Unconvertible("a redirect that strips the query has no equivalent")
    code = _REDIRECT_CODES.get(action.response_code if action.response_code is not None else 0)
    if code is None:
        raise Unconvertible(f"redirect response code {action.response_code!r} is unknown")
    redirect: dict[str, Any] = {"statusCode": code}
    if action.https_redirect:
        redirect["scheme"] = "https"
    if action.host_redirect is not None:
        host = action.host_redirect.lower()
        if not _HOSTNAME.fullmatch(host) or host.startswith("*"):
            raise Unconvertible(f"redirect host {action.host_redirect!r} is not a hostname")
        redirect["hostname"] = host
    if action.port_redirect is not None:
        redirect["port"] = action.port_redirect
    if action.path_redirect is not None:
        redirect["path"] = {"type": "ReplaceFullPath", "replaceFullPath": action.path_redirect}
    return redirect


def _options(route: Route) -> tuple[dict[str, Any], dict[str, Any]]:
    """The URLRewrite filter's content (but a prefix rewrite, that depends on the match) and the rule's other
    fields that the route's options make."""
    options = route.options
    if options is None:
        return {}, {}
    unsupported = sorted(
        set(options.model_fields_set - {"prefix_rewrite", "host_rewrite", "timeout"}) | set(options.model_extra or {})
    )
    if options.retries is not None:
        unsupported = sorted({*unsupported, "retries"})
    if unsupported:
        raise Unconvertible(f"route options {', '.join(unsupported)} have no equivalent in the standard channel")
    rewrite: dict[str, Any] = {}
    if options.host_rewrite is not None:
        host = options.host_rewrite.lower()
        if not _HOSTNAME.fullmatch(host) or host.startswith("*"):
            raise Unconvertible(f"host rewrite {options.host_rewrite!r} is not a hostname")
        rewrite["hostname"] = host
    extra: dict[str, Any] = {}
    if options.timeout is not None:
        extra["timeouts"] = {"request": _duration(options.timeout)}
    return rewrite, extra


def _duration(text: str) -> str:
    """A protobuf Duration ("1.5s") as a Gateway API Duration ("1500ms")."""
    try:
        seconds = Decimal(text.removesuffix("s")) if text.endswith("s") else None
    except InvalidOperation:
        seconds = None
    if seconds is None or seconds < 0:
        raise Unconvertible(f"timeout {text!r} is not a duration")
    milliseconds = int(seconds * 1000)
    if milliseconds % 1000 == 0 and milliseconds // 1000 < 100_000:
        return f"{milliseconds // 1000}s"
    if milliseconds >= 100_000:
        if milliseconds % 60_000 == 0 and milliseconds // 60_000 < 100_000:
            return f"{milliseconds // 60_000}m"
        raise Unconvertible(f"timeout {text!r} is too long for a Gateway API duration")
    return f"{milliseconds}ms"


def _backends(
    action: RouteAction, namespace: str, upstreams: UpstreamLookup
) -> tuple[list[dict[str, Any]], list[ServiceRef]]:
    if action.single is not None:
        weighted: Iterable[tuple[Destination, int]] = [(action.single, 1)]
    elif action.multi is not None:
        weighted = [(d.destination, d.weight or 0) for d in action.multi.destinations]
    else:
        raise Unconvertible("only routes to upstreams or Services can be converted (not an upstream group, ...)")
    refs: list[dict[str, Any]] = []
    services: list[ServiceRef] = []
    for destination, weight in weighted:
        service = _service(destination, upstreams)
        ref: dict[str, Any] = {"group": "", "kind": "Service", "name": service.name, "port": service.port}
        if service.namespace != namespace:
            ref["namespace"] = service.namespace
        ref["weight"] = weight
        refs.append(ref)
        services.append(service)
    if len(refs) > MAX_BACKEND_REFS:
        raise Unconvertible(f"{len(refs)} destinations, more than the {MAX_BACKEND_REFS} backendRefs of a rule")
    return refs, services


def _service(destination: Destination, upstreams: UpstreamLookup) -> ServiceRef:
    if destination.subset is not None or destination.destination_spec is not None:
        raise Unconvertible("a destination subset or spec has no equivalent")
    if destination.kube is not None:
        ref = destination.kube.get("ref") or {}
        port = destination.kube.get("port")
        if not ref.get("name") or not isinstance(port, int):
            raise Unconvertible(f"kube destination {destination.kube!r} names no Service and port")
        return ServiceRef(str(ref.get("namespace") or ""), str(ref["name"]), port)
    if destination.upstream is None:
        raise Unconvertible("only destinations to an Upstream or a Service can be converted")
    key = ObjectKey(destination.upstream.namespace, destination.upstream.name)
    upstream = upstreams(key)
    if upstream is None:
        raise Unconvertible(f"Upstream {key} is not known")
    kube = upstream.spec.kube
    if kube is None or not kube.service_name or not kube.service_port:
        raise Unconvertible(f"Upstream {key} is not a kube upstream: it names no Service to route to")
    return ServiceRef(kube.service_namespace or key.namespace, kube.service_name, kube.service_port)


def reference_grants(
    route_namespace: str, services: Iterable[ServiceRef], base_name: str
) -> list[tuple[ObjectKey, dict[str, Any]]]:
    """The ReferenceGrants that let HTTPRoutes of `route_namespace` use the Services of other namespaces: one
    per namespace and at most 16 Services, each Service named (never a whole namespace)."""
    by_namespace: dict[str, set[str]] = {}
    for service in services:
        if service.namespace != route_namespace:
            by_namespace.setdefault(service.namespace, set()).add(service.name)
    grants = []
    for namespace, names in sorted(by_namespace.items()):
        for index, group in enumerate(_chunks(sorted(names), MAX_GRANT_TARGETS)):
            name = f"{base_name}-from-{route_namespace}" + (f"-{index + 1}" if index else "")
            spec = {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": route_namespace}],
                "to": [{"group": "", "kind": "Service", "name": service} for service in group],
            }
            grants.append((ObjectKey(namespace, name[:253]), spec))
    return grants
