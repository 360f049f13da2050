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

The rules read a virtual host as Gloo will: its JSON, the fields the model does not name included. Which
string may hold what is a table in fields.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import msgspec

from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.translate.api import sources_of
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
from proxycontroller.validate.fields import Document, envoy_lower, message_problem


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


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """A warning is one log line: control characters and lone surrogates (in an upstream's name) escaped."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class Described(Protocol):
    def describe(self) -> str: ...


def admission_problem(verdict: Verdict, body_limit: int) -> str | None:
    """What leaves a virtual host out whatever else its listener holds (None: nothing)."""
    if verdict is CLEAN:  # the shared clean verdict: nearly every virtual host, checked in one comparison
        return None
    if verdict.problem is None and verdict.body_bytes > body_limit:
        return (
            f"has a direct response body of {verdict.body_bytes} bytes, more than the listener's limit of "
            f"{body_limit} (Envoy: RouteConfiguration.max_direct_response_body_size_bytes)"
        )
    return verdict.problem


def domain_fold(verdict: Verdict) -> Callable[[str], str]:
    """How Envoy tells the virtual host's domains apart: case-insensitively, in ASCII (str.lower for the
    clean verdict, whose domains are ASCII)."""
    return str.lower if verdict is CLEAN else envoy_lower


def contested(
    virtual_host: VirtualHost,
    domain_keys: Sequence[str],
    owner_of_name: Mapping[str, Described],
    owner_of_domain: Mapping[str, Described],
) -> str | None:
    """What an earlier virtual host of the listener already holds of this one's name and domains (folded,
    `domain_keys`, in order); None: nothing."""
    holder = owner_of_name.get(virtual_host.name)
    if holder is not None:
        return f"repeats the name of {holder.describe()}"
    for domain, key in zip(virtual_host.domains or (), domain_keys, strict=True):
        holder = owner_of_domain.get(key)
        if holder is not None:
            return f"claims domain {domain!r}, already served by {holder.describe()}"
    return None


def left_out(where: str, what: Described, problem: str) -> str:
    return one_line(f"{where}: left out {what.describe()}: it {problem}")


def admit_virtual_hosts(
    where: str,
    candidates: Sequence[tuple[SourcedVirtualHost, Verdict]],
    warnings: list[str],
    body_limit: int = ENVOY_DEFAULT_BODY_LIMIT,
) -> list[SourcedVirtualHost]:
    """The candidates (each with its verdict) that the listener can hold, first come first served; a warning
    for each one left out, and for each route left out of one admitted. The controller keeps these decisions
    from pass to pass and takes them again only where a change can alter them (`validate.admission`, built
    on the same helpers)."""
    owner_of_name: dict[str, SourcedVirtualHost] = {}
    owner_of_domain: dict[str, SourcedVirtualHost] = {}
    admitted = []
    for candidate, verdict in candidates:
        virtual_host = candidate.virtual_host
        problem = admission_problem(verdict, body_limit)
        keys = list(map(domain_fold(verdict), virtual_host.domains or ())) if problem is None else []
        if problem is None:
            problem = contested(virtual_host, keys, owner_of_name, owner_of_domain)
        if problem is not None:
            warnings.append(left_out(where, candidate, problem))
            continue
        owner_of_name[virtual_host.name] = candidate
        for key in keys:
            owner_of_domain[key] = candidate
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
