"""Strategies: pure functions from the routed upstreams to virtual hosts.

A strategy sees the upstreams sorted by namespace and name and returns virtual hosts in a stable order;
it does no I/O. Teams extend the controller by writing one (see `StrategySettings.plugin`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from pydantic import TypeAdapter

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


_VIRTUAL_HOSTS = TypeAdapter(list[VirtualHost])
# Built virtual hosts by domain templates, then by (name, namespace).
_memo: dict[tuple[str, ...], dict[tuple[str, str], VirtualHost]] = {}


def _host_header_document(name: str, namespace: str, domain_templates: tuple[str, ...]) -> dict[str, object]:
    return {
        "name": name,
        "domains": [template.format(name=name, namespace=namespace) for template in domain_templates],
        "routes": [
            {
                "matchers": [{"prefix": "/"}],
                "routeAction": {"single": {"upstream": {"name": name, "namespace": namespace}}},
            }
        ],
    }


def host_header(upstreams: Sequence[Upstream], settings: StrategySettings) -> list[SourcedVirtualHost]:
    """The seed's strategy: one virtual host per upstream, named after it, matched by Host header."""
    templates = settings.domain_templates
    memo = _memo.setdefault(templates, {})
    keys = [upstream.key for upstream in upstreams]
    # A virtual host depends on nothing but its key, and building pydantic models dominates a translation:
    # the ones not built before are validated in a single call, and all are kept for the next translation.
    # Callers must not mutate the returned models (validation copies what it changes).
    missing = [key for key in dict.fromkeys(keys) if (key.name, key.namespace) not in memo]
    if missing:
        built = _VIRTUAL_HOSTS.validate_python([_host_header_document(k.name, k.namespace, templates) for k in missing])
        memo.update(((k.name, k.namespace), host) for k, host in zip(missing, built, strict=True))
    if len(memo) > 2 * len(keys) + 10_000:  # forget hosts of upstreams long gone
        wanted = {(key.name, key.namespace) for key in keys}
        for stale in [pair for pair in memo if pair not in wanted]:
            del memo[stale]
    return [SourcedVirtualHost(memo[(key.name, key.namespace)], (key,)) for key in keys]


def clear_memo() -> None:
    """Forgets every virtual host built so far (benchmarks measure cold translations with it)."""
    _memo.clear()


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
