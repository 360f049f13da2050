"""An in-memory store, for unit tests of the reconciler only; the real proof runs on the real backends.

It behaves like the others where the conformance suite (tests/store) can tell: the same errors, versions that
change on every write, unreadable objects (`plant_unreadable`) and watch gaps (`disconnected`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Generic, TypeVar

from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, UnreadableError
from proxycontroller.store.reports import ProblemReports
from proxycontroller.store.selection import Selection

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)


class MemoryClient(Generic[R]):
    def __init__(self, kind: type[R]) -> None:
        self.kind = kind
        self.objects: dict[ObjectKey, R] = {}
        # Objects that exist but cannot be read: key -> (resourceVersion, why, labels or None: no metadata at all).
        # A key is here or in `objects`.
        self.unreadable: dict[ObjectKey, tuple[str, str, dict[str, str] | None]] = {}
        self._version = 0
        self._changed = asyncio.Condition()
        self._connected = True
        self.writes = 0
        self.lists = 0  # full lists done by watches

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _stamp(self, resource: R) -> R:
        metadata = resource.metadata.model_copy(update={"resource_version": self._next_version()})
        return resource.model_copy(update={"metadata": metadata})

    def _version_of(self, key: ObjectKey) -> str | None:
        if key in self.unreadable:
            return self.unreadable[key][0]
        current = self.objects.get(key)
        return None if current is None else current.metadata.resource_version

    async def _notify(self) -> None:
        if not self._connected:
            return
        async with self._changed:
            self._changed.notify_all()

    async def _store(self, resource: R) -> R:
        stored = self._stamp(resource)
        self.unreadable.pop(resource.key, None)
        self.objects[resource.key] = stored
        self.writes += 1
        await self._notify()
        return stored

    async def get(self, key: ObjectKey) -> R | None:
        if key in self.unreadable:
            version, why, labels = self.unreadable[key]
            raise UnreadableError(f"{self.kind.KIND.kind} {key}", why, version, labels, no_metadata=labels is None)
        return self.objects.get(key)

    async def create(self, resource: R) -> R:
        if self._version_of(resource.key) is not None:
            raise AlreadyExistsError(f"{resource.describe()} already exists")
        return await self._store(resource)

    async def replace(self, resource: R) -> R:
        current = self._version_of(resource.key)
        if current is None:
            raise NotFoundError(f"{resource.describe()} not found")
        if current != resource.metadata.resource_version:
            raise ConflictError(f"{resource.describe()} changed since it was read")
        return await self._store(resource)

    async def delete(self, key: ObjectKey) -> None:
        if self.objects.pop(key, None) is not None or self.unreadable.pop(key, None) is not None:
            self.writes += 1
            await self._notify()

    async def plant_unreadable(self, key: ObjectKey, why: str, labels: Mapping[str, str] | None = None) -> str:
        """Stores a new version of `key` that does not decode (as another writer could leave one in a real store),
        with metadata carrying `labels`, or none at all (None: as an empty file); returns its resourceVersion."""
        version = self._next_version()
        self.objects.pop(key, None)
        self.unreadable[key] = (version, why, None if labels is None else dict(labels))
        await self._notify()
        return version

    @contextlib.asynccontextmanager
    async def disconnected(self) -> AsyncIterator[None]:
        """A gap: watches hear of no change made inside the block, as over a dropped connection; they list again
        when it ends."""
        self._connected = False
        try:
            yield
        finally:
            self._connected = True
            await self._notify()

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        selection = Selection.of(namespaces, labels)
        reports = ProblemReports(log)
        while True:
            # Every wake-up is a full list: in memory it costs nothing, and no event can be missed.
            for key, (version, why, _) in self.unreadable.items():
                if selection.wants_namespace(key.namespace):
                    what = f"{self.kind.KIND.kind} {key}"
                    reports.report(key, version, f"skipping unreadable {what} (resourceVersion {version}): {why}")
            reports.keep_only(lambda key: key in self.unreadable)
            cache.replace_all(r for r in self.objects.values() if selection.wants(r))
            self.lists += 1
            async with self._changed:
                await self._changed.wait()
