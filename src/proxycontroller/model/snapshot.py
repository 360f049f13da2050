"""A consistent view of the inputs at one moment: what translation reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from proxycontroller.model.resources import ObjectKey, Resource, Upstream

R = TypeVar("R", bound=Resource)

_EMPTY: Mapping[ObjectKey, Resource] = MappingProxyType({})


@dataclass(frozen=True)
class Snapshot:
    """The objects of each input kind, by key. Read-only: the engine copies its caches into one per pass, so
    a strategy running in a worker thread never sees a cache change under it."""

    objects: Mapping[type[Resource], Mapping[ObjectKey, Resource]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, *groups: Iterable[Resource]) -> Snapshot:
        by_kind: dict[type[Resource], dict[ObjectKey, Resource]] = {}
        for group in groups:
            for item in group:
                by_kind.setdefault(type(item), {})[item.key] = item
        return cls(MappingProxyType({kind: MappingProxyType(items) for kind, items in by_kind.items()}))

    def of_kind(self, kind: type[R]) -> Mapping[ObjectKey, R]:
        found = self.objects.get(kind, _EMPTY)
        return found  # type: ignore[return-value]  # keyed by kind: every value is a `kind`

    @property
    def upstreams(self) -> Mapping[ObjectKey, Upstream]:
        return self.of_kind(Upstream)
