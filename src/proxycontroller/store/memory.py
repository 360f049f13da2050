"""An in-memory store, for unit tests of the reconciler only; the real proof runs on the real backends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError

R = TypeVar("R", bound=Resource)


class MemoryClient(Generic[R]):
    def __init__(self, kind: type[R]) -> None:
        self.kind = kind
        self.objects: dict[ObjectKey, R] = {}
        self._version = 0
        self._changed = asyncio.Condition()
        self.writes = 0

    def _stamp(self, resource: R) -> R:
        self._version += 1
        metadata = resource.metadata.model_copy(update={"resource_version": str(self._version)})
        return resource.model_copy(update={"metadata": metadata})

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def get(self, key: ObjectKey) -> R | None:
        return self.objects.get(key)

    async def create(self, resource: R) -> R:
        if resource.key in self.objects:
            raise AlreadyExistsError(f"{resource.describe()} already exists")
        stored = self._stamp(resource)
        self.objects[resource.key] = stored
        self.writes += 1
        await self._notify()
        return stored

    async def replace(self, resource: R) -> R:
        current = self.objects.get(resource.key)
        if current is None:
            raise NotFoundError(f"{resource.describe()} not found")
        if current.metadata.resource_version != resource.metadata.resource_version:
            raise ConflictError(f"{resource.describe()} changed since it was read")
        stored = self._stamp(resource)
        self.objects[resource.key] = stored
        self.writes += 1
        await self._notify()
        return stored

    async def delete(self, key: ObjectKey) -> None:
        if self.objects.pop(key, None) is not None:
            self.writes += 1
            await self._notify()

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        def selected(resource: R) -> bool:
            in_namespace = namespaces is None or resource.metadata.namespace in namespaces
            own_labels = resource.metadata.labels or {}
            return in_namespace and all(own_labels.get(k) == v for k, v in (labels or {}).items())

        while True:
            cache.replace_all(r for r in self.objects.values() if selected(r))
            async with self._changed:
                await self._changed.wait()
