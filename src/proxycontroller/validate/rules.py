"""Gloo's rejection rules, applied before anything is written.

Gloo rejects a whole Proxy when one listener has two virtual hosts with the same domain, when a domain is
empty, when two listeners share a bind port, or when virtual host names repeat. One bad upstream must not
take every route down with it, so each rule drops only the offender, by one deterministic rule: inputs are
taken in order (translation sorts upstreams by namespace, then name) and the first one keeps what is
contested; every later one is left out with a warning that names both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxycontroller.model.proxy import HttpListener, ProxySpec
from proxycontroller.model.resources import Proxy
from proxycontroller.model.snapshot import DesiredState
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost


def _admit_virtual_hosts(proxy_name: str, plan: ListenerPlan, warnings: list[str]) -> list[SourcedVirtualHost]:
    where = f"Proxy {proxy_name} listener {plan.listener.name!r}"
    owner_of_name: dict[str, SourcedVirtualHost] = {}
    owner_of_domain: dict[str, SourcedVirtualHost] = {}
    admitted = []
    for candidate in plan.virtual_hosts:
        host = candidate.virtual_host
        domains = host.domains or []
        lowered = [domain.lower() for domain in domains]  # Envoy compares domains case-insensitively
        problem = None
        if not domains:
            problem = "has no domain"
        elif "" in domains:
            problem = "has an empty domain"
        elif host.name in owner_of_name:
            problem = f"repeats the name of {owner_of_name[host.name].describe()}"
        elif len(lowered) > 1 and len(set(lowered)) != len(lowered):
            problem = f"lists a domain twice: {domains}"
        else:
            for domain, key in zip(domains, lowered, strict=True):
                holder = owner_of_domain.get(key)
                if holder is not None:
                    problem = f"claims domain {domain!r}, already served by {holder.describe()}"
                    break
        if problem is not None:
            warnings.append(f"{where}: left out {candidate.describe()}: it {problem}")
            continue
        owner_of_name[host.name] = candidate
        for key in lowered:
            owner_of_domain[key] = candidate
        admitted.append(candidate)
    return admitted


def validate(plans: Sequence[ProxyPlan]) -> DesiredState:
    """Turns plans into proxies Gloo will accept, and says what had to be left out."""
    warnings: list[str] = []
    proxies = []
    for plan in plans:
        proxy_name = f"{plan.metadata.namespace}/{plan.metadata.name}"
        used_ports: dict[int, str] = {}
        listeners = []
        for listener_plan in plan.listeners:
            listener = listener_plan.listener
            if listener.name in used_ports.values():
                warnings.append(f"Proxy {proxy_name}: left out a second listener named {listener.name!r}")
                continue
            if listener.bind_port in used_ports:
                warnings.append(
                    f"Proxy {proxy_name}: left out listener {listener.name!r}: bind port {listener.bind_port} "
                    f"is already used by listener {used_ports[listener.bind_port]!r}"
                )
                continue
            used_ports[listener.bind_port] = listener.name
            admitted = _admit_virtual_hosts(proxy_name, listener_plan, warnings)
            virtual_hosts = [candidate.virtual_host for candidate in admitted]
            listeners.append(listener.model_copy(update={"http_listener": HttpListener(virtual_hosts=virtual_hosts)}))
        proxies.append(Proxy(metadata=plan.metadata, spec=ProxySpec(listeners=listeners)))
    return DesiredState(proxies=tuple(proxies), warnings=tuple(warnings))
