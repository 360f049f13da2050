"""Gloo's rejection rules (and Envoy's where Gloo lets through what Envoy refuses), applied before writing.

Gloo rejects a whole Proxy when one listener has two virtual hosts with the same domain, when a domain is
empty, when two listeners share a bind port or a name, or when virtual host names repeat; Envoy refuses a
whole route configuration whose domain holds a NUL, CR or LF (its rule is `^[^\\x00\\n\\r]*$`), which Gloo
accepts. One bad upstream must not take every route down with it, so each rule drops only the offender, by one
deterministic rule: inputs are taken in order (translation sorts upstreams by namespace, then name) and the
first one keeps what is contested; every later one is left out with a warning that names both sides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from proxycontroller.model.proxy import VirtualHost
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost

_ENVOY_FORBIDDEN = re.compile(r"[\x00\r\n]")


def intrinsic_problem(virtual_host: VirtualHost) -> str | None:
    """What is wrong with a virtual host on its own, whatever else the listener holds."""
    domains = virtual_host.domains or ()
    if not virtual_host.name or _ENVOY_FORBIDDEN.search(virtual_host.name):
        return "has an empty name or one with a NUL, CR or LF (Envoy refuses those)"
    if not domains:
        return "has no domain"
    if "" in domains:
        return "has an empty domain"
    if any(_ENVOY_FORBIDDEN.search(domain) for domain in domains):
        return "has a domain with a NUL, CR or LF (Envoy refuses the whole route configuration)"
    if len(domains) > 1 and len({domain.lower() for domain in domains}) != len(domains):
        return f"lists a domain twice: {list(domains)}"
    return None


def admit_virtual_hosts(
    where: str,
    candidates: Sequence[tuple[SourcedVirtualHost, str | None]],
    warnings: list[str],
) -> list[SourcedVirtualHost]:
    """The candidates (each with its intrinsic problem, if any) that the listener can hold, first come first
    served; a warning for each one left out."""
    owner_of_name: dict[str, SourcedVirtualHost] = {}
    owner_of_domain: dict[str, SourcedVirtualHost] = {}
    admitted = []
    for candidate, problem in candidates:
        virtual_host = candidate.virtual_host
        if problem is None:
            holder = owner_of_name.get(virtual_host.name)
            if holder is not None:
                problem = f"repeats the name of {holder.describe()}"
            else:
                for domain in virtual_host.domains or ():
                    holder = owner_of_domain.get(domain.lower())  # Envoy compares domains case-insensitively
                    if holder is not None:
                        problem = f"claims domain {domain!r}, already served by {holder.describe()}"
                        break
        if problem is not None:
            warnings.append(f"{where}: left out {candidate.describe()}: it {problem}")
            continue
        owner_of_name[virtual_host.name] = candidate
        for domain in virtual_host.domains or ():
            owner_of_domain[domain.lower()] = candidate
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
