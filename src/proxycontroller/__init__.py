"""proxycontroller: routes every Gloo Upstream through Proxies it writes.

The public surface, for people who write routing logic; everything else is private and may change:

- the models: `Upstream`, `VirtualHost`, `Route`, `Matcher`, `RouteOptions`, `ObjectKey`, ...
- `strategy`: the decorator that makes a function a strategy (register it under the
  `proxycontroller.strategies` entry point group, or name it as `plugin: module:function`)
- `StrategyOptions`: the base of a strategy's options model; `Skip`: leave one upstream out, with a reason
- `route_to`, `split_route`, `virtual_host`: build routes and virtual hosts that record their upstreams
- `proxycontroller.testing.render`: a configuration over a list of upstreams, in one call
"""

from proxycontroller.model.meta import ObjectMeta, ResourceRef
from proxycontroller.model.proxy import (
    Destination,
    Matcher,
    Route,
    RouteAction,
    RouteOptions,
    SslConfig,
    VirtualHost,
)
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.translate.api import (
    NoOptions,
    Skip,
    Strategy,
    StrategyOptions,
    route_to,
    split_route,
    strategy,
    virtual_host,
)

__all__ = [
    "Destination",
    "Matcher",
    "NoOptions",
    "ObjectKey",
    "ObjectMeta",
    "ResourceRef",
    "Route",
    "RouteAction",
    "RouteOptions",
    "Skip",
    "SslConfig",
    "Strategy",
    "StrategyOptions",
    "Upstream",
    "VirtualHost",
    "route_to",
    "split_route",
    "strategy",
    "virtual_host",
]
