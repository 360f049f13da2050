"""What people who write routing logic use: the strategy decorator, `Skip`, and helpers that build routes.

A strategy is a pure function. Either it sees one upstream at a time (`each=True`, the default: the engine
calls it again only for upstreams that changed and reuses the rest) or the whole routed set at once
(`each=False`, for logic that needs every upstream, such as one catch-all virtual host). It returns
virtual hosts; routes built with `route_to` record the upstreams they go to, which is how a virtual host
left out by validation is explained by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from proxycontroller.model.meta import ResourceRef
from proxycontroller.model.proxy import (
    Destination,
    Matcher,
    MultiDestination,
    Route,
    RouteAction,
    RouteOptions,
    VirtualHost,
    WeightedDestination,
)
from proxycontroller.model.resources import ObjectKey, Upstream

OptionsT = TypeVar("OptionsT", bound=BaseModel)


class StrategyOptions(BaseModel):
    """Base for a strategy's options: camelCase keys in the configuration, unknown keys refused, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class NoOptions(StrategyOptions):
    """For strategies that take no options."""


class Skip(Exception):
    """Raised by a strategy for one upstream: leave that upstream out, with this reason in a warning.

    A strategy that sees all upstreams returns `Skip(reason, upstream)` among its virtual hosts instead.
    """

    def __init__(self, reason: str, upstream: Upstream | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.upstream = upstream


@dataclass(frozen=True)
class Strategy(Generic[OptionsT]):
    """A registered strategy: its name, the function, the options model it declares, and its scope."""

    name: str
    function: Callable[..., Any]
    options: type[OptionsT]
    each: bool = True

    def describe(self) -> str:
        module = getattr(self.function, "__module__", "?")
        return f"strategy {self.name!r} ({module}.{getattr(self.function, '__qualname__', '?')})"


def strategy(
    name: str | None = None, *, options: type[BaseModel] = NoOptions, each: bool = True
) -> Callable[[Callable[..., Any]], Strategy[Any]]:
    """Makes a function a strategy. It is found by a configuration through the `proxycontroller.strategies`
    entry point group (`name = "package.module:function"`) or `kind: plugin` with `plugin: module:function`.

    `each=True`: `function(upstream, options) -> VirtualHost | Iterable[VirtualHost]`, raise `Skip` to leave
    the upstream out. `each=False`: `function(upstreams, options) -> Iterable[VirtualHost | Skip]`.
    """

    def decorate(function: Callable[..., Any]) -> Strategy[Any]:
        return Strategy(name or function.__name__.replace("_", "-"), function, options, each)

    return decorate


def upstream_ref(upstream: Upstream) -> ResourceRef:
    return ResourceRef(name=upstream.metadata.name, namespace=upstream.metadata.namespace)


def route_to(
    upstream: Upstream,
    prefix: str = "/",
    *,
    prefix_rewrite: str | None = None,
    options: RouteOptions | None = None,
) -> Route:
    """A route sending every request under `prefix` to one upstream, the prefix rewritten if asked."""
    if prefix_rewrite is not None:
        options = (options or RouteOptions()).model_copy(update={"prefix_rewrite": prefix_rewrite})
    action = RouteAction(single=Destination(upstream=upstream_ref(upstream)))
    if options is None:
        return Route(matchers=(Matcher(prefix=prefix),), route_action=action)
    return Route(matchers=(Matcher(prefix=prefix),), route_action=action, options=options)


def split_route(weights: Sequence[tuple[Upstream, int]], prefix: str = "/") -> Route:
    """A route sharing the requests under `prefix` between upstreams by weight (say, a canary)."""
    destinations = tuple(
        WeightedDestination(destination=Destination(upstream=upstream_ref(upstream)), weight=weight)
        for upstream, weight in weights
    )
    return Route(
        matchers=(Matcher(prefix=prefix),),
        route_action=RouteAction(multi=MultiDestination(destinations=destinations)),
    )


def virtual_host(name: str, domains: Iterable[str], routes: Iterable[Route]) -> VirtualHost:
    return VirtualHost(name=name, domains=tuple(domains), routes=tuple(routes))


def sources_of(host: VirtualHost) -> tuple[ObjectKey, ...]:
    """The upstreams a virtual host routes to, in order of first appearance: what it is made from."""
    found: dict[ObjectKey, None] = {}
    for route in host.routes or ():
        action = route.route_action
        if action is None:
            continue
        destinations = [action.single] if action.single is not None else []
        if action.multi is not None:
            destinations.extend(weighted.destination for weighted in action.multi.destinations)
        for destination in destinations:
            if destination is not None and destination.upstream is not None:
                found[ObjectKey(destination.upstream.namespace, destination.upstream.name)] = None
    return tuple(found)
