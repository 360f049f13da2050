"""Strategies: pure functions from the routed upstreams to virtual hosts.

A strategy sees the upstreams sorted by namespace and name and returns virtual hosts in a stable order;
it does no I/O. Teams extend the controller by writing one (see `StrategySettings.plugin`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import Protocol

from proxycontroller.config import StrategySettings
from proxycontroller.model.meta import ResourceRef
from proxycontroller.model.proxy import Destination, Matcher, Route, RouteAction, RouteOptions, VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.translate.plan import SourcedVirtualHost


class Strategy(Protocol):
    def __call__(self, upstreams: Sequence[Upstream], settings: StrategySettings) -> Sequence[SourcedVirtualHost]: ...


def route_to(upstream: Upstream, prefix: str = "/", options: RouteOptions | None = None) -> Route:
    """A route sending every request under `prefix` to one upstream."""
    action = RouteAction(
        single=Destination(upstream=ResourceRef(name=upstream.metadata.name, namespace=upstream.metadata.namespace))
    )
    if options is None:
        return Route(matchers=[Matcher(prefix=prefix)], route_action=action)
    return Route(matchers=[Matcher(prefix=prefix)], route_action=action, options=options)


@functools.lru_cache(maxsize=200_000)
def _host_header_virtual_host(name: str, namespace: str, domain_templates: tuple[str, ...]) -> VirtualHost:
    # Memoized: the virtual host depends on nothing but these arguments, and building pydantic models is
    # the dominant cost of a translation. Callers must not mutate the returned model (validation copies).
    domains = [template.format(name=name, namespace=namespace) for template in domain_templates]
    destination = Destination(upstream=ResourceRef(name=name, namespace=namespace))
    route = Route(matchers=[Matcher(prefix="/")], route_action=RouteAction(single=destination))
    return VirtualHost(name=name, domains=domains, routes=[route])


def host_header(upstreams: Sequence[Upstream], settings: StrategySettings) -> list[SourcedVirtualHost]:
    """The seed's strategy: one virtual host per upstream, named after it, matched by Host header."""
    templates = settings.domain_templates
    return [
        SourcedVirtualHost(
            _host_header_virtual_host(upstream.metadata.name, upstream.metadata.namespace, templates),
            (upstream.key,),
        )
        for upstream in upstreams
    ]


def path_prefix(upstreams: Sequence[Upstream], settings: StrategySettings) -> list[SourcedVirtualHost]:
    """One catch-all virtual host; `/<upstream name>/...` goes to that upstream with the prefix removed."""
    routes = [
        route_to(upstream, prefix=f"/{upstream.metadata.name}/", options=RouteOptions(prefix_rewrite="/"))
        for upstream in upstreams
    ]
    if not routes:
        return []
    virtual_host = VirtualHost(name="all-upstreams", domains=["*"], routes=routes)
    return [SourcedVirtualHost(virtual_host, tuple(upstream.key for upstream in upstreams))]


class StrategyError(ValueError):
    """A strategy setting that names no usable strategy."""


def resolve_strategy(settings: StrategySettings) -> Strategy:
    """The strategy the settings name; a plugin is imported here, once, not on every translation."""
    if settings.kind == "host-header":
        return host_header
    if settings.kind == "path-prefix":
        return path_prefix
    if not settings.plugin or ":" not in settings.plugin:
        raise StrategyError(f"strategy.plugin must be 'module:function', got {settings.plugin!r}")
    module_name, _, attribute = settings.plugin.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyError(f"strategy.plugin {settings.plugin!r}: cannot import {module_name}: {exc}") from exc
    strategy = getattr(module, attribute, None)
    if not callable(strategy):
        raise StrategyError(f"strategy.plugin {settings.plugin!r}: {module_name} has no callable {attribute!r}")
    resolved: Strategy = strategy
    return resolved
