"""What translation hands to validation: proxies whose virtual hosts still know which inputs made them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.model.resources import ObjectKey


class SourcedVirtualHost(NamedTuple):
    """A virtual host and the upstreams it was made from, so a dropped one can be explained by name.

    A NamedTuple, not a dataclass: translation makes one per upstream on every pass, and a tuple is built
    several times faster than a frozen dataclass."""

    virtual_host: VirtualHost
    sources: tuple[ObjectKey, ...]

    def describe(self) -> str:
        named = ", ".join(f"Upstream {key}" for key in self.sources)
        if named:
            return f"virtual host {self.virtual_host.name!r} (from {named})"
        return f"virtual host {self.virtual_host.name!r}"


@dataclass(frozen=True)
class ListenerPlan:
    """A listener without its virtual hosts, and the virtual hosts meant for it."""

    listener: Listener
    virtual_hosts: tuple[SourcedVirtualHost, ...]


@dataclass(frozen=True)
class ProxyPlan:
    key: ObjectKey
    labels: Mapping[str, str]
    listeners: tuple[ListenerPlan, ...]
