"""A user strategy, as a team would write one: one upstream in, a virtual host out."""

from __future__ import annotations

from proxycontroller import StrategyOptions, Upstream, VirtualHost, route_to, strategy, virtual_host


class ShoutOptions(StrategyOptions):
    suffix: str = ".LOUD"


@strategy("shout", options=ShoutOptions)
def shout(upstream: Upstream, options: ShoutOptions) -> VirtualHost:
    name = upstream.metadata.name
    return virtual_host(name, [name.upper() + options.suffix], [route_to(upstream)])


def not_a_strategy(upstream: Upstream, options: ShoutOptions) -> VirtualHost:
    """A plain function: a configuration that names it is refused (it lacks @strategy)."""
    return virtual_host(upstream.metadata.name, [upstream.metadata.name], [route_to(upstream)])
