"""A user strategy, as a team would write one: upstreams in, virtual hosts out."""

from __future__ import annotations

from collections.abc import Sequence

from proxycontroller.config import StrategySettings
from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.translate.plan import SourcedVirtualHost
from proxycontroller.translate.strategies import route_to


def shout(upstreams: Sequence[Upstream], settings: StrategySettings) -> list[SourcedVirtualHost]:
    return [
        SourcedVirtualHost(
            VirtualHost(name=u.metadata.name, domains=[f"{u.metadata.name.upper()}.LOUD"], routes=[route_to(u)]),
            (u.key,),
        )
        for u in upstreams
    ]
