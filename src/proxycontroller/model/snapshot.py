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
class Changes:
    """Which keys of each kind may hold another object than in the snapshot whose `generation` is `since`;
    every other key holds the very same object there. A kind not named changed nothing."""

    since: object
    keys: Mapping[type[Resource], frozenset[ObjectKey]]


@dataclass(frozen=True)
class Snapshot:
    """The objects of each input kind, by key. Read-only: the engine copies its caches into one per pass, so
    a strategy running in a worker thread never sees a cache change under it.

    `changes`, when known, says what differs from an earlier snapshot, so that the logic can spend a pass on
    what changed instead of comparing every object. It is a hint: the objects alone are the input, and a
    logic that did not see that earlier snapshot ignores it. Snapshots refer to each other by `generation`,
    a token, so a snapshot never keeps its predecessors alive."""

    objects: Mapping[type[Resource], Mapping[ObjectKey, Resource]] = field(default_factory=lambda: MappingProxyType({}))
    changes: Changes | None = None
    generation: object = field(default_factory=object, compare=False)

    @classmethod
    def of(cls, *groups: Iterable[Resource]) -> Snapshot:
        by_kind: dict[type[Resource], dict[ObjectKey, Resource]] = {}
        for group in groups:
            for item in group:
                by_kind.setdefault(type(item), {})[item.key] = item
        return cls(_read_only(by_kind))

    @classmethod
    def of_mappings(cls, objects: Mapping[type[Resource], Mapping[ObjectKey, Resource]]) -> Snapshot:
        """From objects already keyed (the engine's cache copies): no key is computed again. The mappings
        become the snapshot's: the caller must not change them afterwards."""
        return cls(_read_only(objects))

    def followed_by(
        self,
        objects: Mapping[type[Resource], Mapping[ObjectKey, Resource]],
        changed: Mapping[type[Resource], Iterable[ObjectKey]],
    ) -> Snapshot:
        """The next snapshot, whose `objects` differ from this one's at most at the `changed` keys (the caller
        vouches for that: say, a cache that records every key it touches). As `of_mappings`, it takes the
        mappings over."""
        keys = MappingProxyType({kind: frozenset(found) for kind, found in changed.items()})
        return Snapshot(_read_only(objects), Changes(self.generation, keys))

    def changed_since(self, generation: object, kind: type[Resource]) -> frozenset[ObjectKey] | None:
        """The keys of `kind` that may differ from the snapshot with that generation; None: not known."""
        if self.changes is None or self.changes.since is not generation:
            return None
        return self.changes.keys.get(kind, frozenset())

    def of_kind(self, kind: type[R]) -> Mapping[ObjectKey, R]:
        found = self.objects.get(kind, _EMPTY)
        return found  # type: ignore[return-value]  # keyed by kind: every value is a `kind`

    @property
    def upstreams(self) -> Mapping[ObjectKey, Upstream]:
        return self.of_kind(Upstream)


def _read_only(
    objects: Mapping[type[Resource], Mapping[ObjectKey, Resource]],
) -> Mapping[type[Resource], Mapping[ObjectKey, Resource]]:
    return MappingProxyType({kind: MappingProxyType(items) for kind, items in objects.items()})
