"""An informer's cache: the last known state of one kind of resource, and a signal when it changes.

The watch loop of a store is the only writer; the reconciler reads it. Changes only set a flag, they carry
no event: the reconciler is level-triggered and asks what exists, never what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from proxycontroller.model.resources import ObjectKey, Resource

R = TypeVar("R", bound=Resource)


class ResourceCache(Generic[R]):
    def __init__(self, kind: type[R], on_change: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[ObjectKey, R] = {}
        self._on_change = on_change
        self.synced = asyncio.Event()  # set after the first complete list

    def set_listener(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def replace_all(self, items: Iterable[R]) -> None:
        """A fresh list from the store: what it holds now, whatever events were missed."""
        self._replace(lambda key: True, items)
        self.synced.set()

    def replace_namespace(self, namespace: str, items: Iterable[R]) -> None:
        """A fresh list of one namespace, for stores that watch several namespaces separately.
        Does not mark the cache synced: the store does that once every namespace is listed."""
        self._replace(lambda key: key.namespace == namespace, items)

    def _replace(self, in_scope: Callable[[ObjectKey], bool], items: Iterable[R]) -> None:
        """The objects in scope become exactly `items`; a change (anything gone, new or at another
        resourceVersion) is signalled once."""
        fresh = {item.key: item for item in items}
        stale = [key for key in self._items if in_scope(key) and key not in fresh]
        changed = bool(stale) or any(
            (old := self._items.get(key)) is None or old.metadata.resource_version != item.metadata.resource_version
            for key, item in fresh.items()
        )
        for key in stale:
            del self._items[key]
        self._items.update(fresh)
        if changed:
            self._changed()

    def upsert(self, item: R, notify: bool = True) -> None:
        """`notify=False` for what the reader itself just wrote: it knows, and a pass to learn it is waste."""
        old = self._items.get(item.key)
        self._items[item.key] = item
        if notify and (old is None or old.metadata.resource_version != item.metadata.resource_version or old != item):
            self._changed()

    def remove(self, key: ObjectKey, notify: bool = True) -> None:
        if self._items.pop(key, None) is not None and notify:
            self._changed()

    def get(self, key: ObjectKey) -> R | None:
        return self._items.get(key)

    def items(self) -> list[R]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
