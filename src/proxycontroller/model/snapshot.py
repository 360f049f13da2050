"""A consistent view of the inputs at one moment: what translation reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from proxycontroller.model.resources import ObjectKey, Proxy, Upstream


@dataclass(frozen=True)
class Snapshot:
    upstreams: Mapping[ObjectKey, Upstream] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, upstreams: Iterable[Upstream]) -> Snapshot:
        return cls(upstreams=MappingProxyType({upstream.key: upstream for upstream in upstreams}))

    def sorted_upstreams(self) -> list[Upstream]:
        return [self.upstreams[key] for key in sorted(self.upstreams)]


@dataclass(frozen=True)
class DesiredState:
    """What translation wants to exist, and what it had to leave out and why."""

    proxies: tuple[Proxy, ...]
    warnings: tuple[str, ...] = ()
