"""An informer's cache: the last known state of one kind of resource, and a signal when it changes.

The watch loop of a store is the only writer; the reconciler reads it. Changes only set a flag, they carry
no event: the reconciler is level-triggered and asks what exists, never what happened. The cache also notes
which keys it touched since the reconciler last asked (`take_touched`), so that a snapshot can say where it
may differ from the one before; what is at those keys is still read from the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.resources import ObjectKey, Resource

R = TypeVar("R", bound=Resource)


class ResourceCache(Generic[R]):
    def __init__(self, kind: type[R], on_change: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[ObjectKey, R] = {}
        self._touched: set[ObjectKey] = set()  # keys whose object was replaced or removed since take_touched
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
        resourceVersion) is signalled once. An object listed again at the resourceVersion held is the same
        object: the one held stays, so that a relist does not make every object look new to the logic."""
        fresh = {item.key: item for item in items}
        stale = [key for key in self._items if in_scope(key) and key not in fresh]
        for key in stale:
            del self._items[key]
        self._touched.update(stale)
        changed = bool(stale)
        for key, item in fresh.items():
            old = self._items.get(key)
            if old is not None:
                version = item.metadata.resource_version
                if version is not None and version == old.metadata.resource_version:
                    continue
            self._items[key] = item
            self._touched.add(key)
            if old is None or old.metadata.resource_version != item.metadata.resource_version:
                changed = True
        if changed:
            self._changed()

    def upsert(self, item: R, notify: bool = True) -> None:
        """`notify=False` for what the reader itself just wrote: it knows, and a pass to learn it is waste.
        A watch reporting an equal object at the same resourceVersion is no change: the one held stays. What
        the reader wrote is held as written, also when the watch reported it first: it knows its spec's bytes."""
        key = item.key
        old = self._items.get(key)
        if old is item:
            return
        if old is not None and notify:
            if old.metadata.resource_version == item.metadata.resource_version and old == item:
                return
            if _same_text(old.spec, item.spec):
                # A watch reports only the status or metadata changed (Gloo's verdict after our write): keep
                # the spec held, and what it knows (a compressed spec's bytes: 100 ms to decode at 50k hosts).
                item = item.model_copy(update={"spec": old.spec})
        self._items[key] = item
        self._touched.add(key)
        if notify:
            self._changed()

    def remove(self, key: ObjectKey, notify: bool = True) -> None:
        if self._items.pop(key, None) is not None:
            self._touched.add(key)
            if notify:
                self._changed()

    def copy(self) -> dict[ObjectKey, R]:
        """The objects by key, as a new dict (one C-level copy)."""
        return self._items.copy()

    def take_touched(self) -> set[ObjectKey]:
        """The keys replaced, added or removed since the last call; every other key holds the same object."""
        touched, self._touched = self._touched, set()
        return touched

    def get(self, key: ObjectKey) -> R | None:
        return self._items.get(key)

    def items(self) -> list[R]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


def _same_text(held: object, new: object) -> bool:
    """Two specs kept as canonical bytes with the same compressed text: the same spec."""
    if not isinstance(held, CanonicalSpec) or not isinstance(new, CanonicalSpec) or held is new:
        return False
    compressed = new.stored_compressed
    return compressed is not None and compressed == held.stored_compressed
