"""What the conformance tests share: building Upstreams, a running watch, and waiting for it with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.model.status import NamespacedStatuses
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.cache import ResourceCache


def upstream(key: ObjectKey, port: int = 8080, labels: dict[str, str] | None = None) -> Upstream:
    return Upstream.model_validate(
        {
            "metadata": {"name": key.name, "namespace": key.namespace, "labels": labels},
            "spec": {"kube": {"serviceName": key.name, "serviceNamespace": "default", "servicePort": port}},
        }
    )


def port_of(resource: Upstream | None) -> int | None:
    return None if resource is None or resource.spec.kube is None else resource.spec.kube.service_port


def with_port(resource: Upstream, port: int) -> Upstream:
    assert resource.spec.kube is not None
    kube = resource.spec.kube.model_copy(update={"service_port": port})
    return resource.model_copy(update={"spec": resource.spec.model_copy(update={"kube": kube})})


def with_labels(resource: Upstream, labels: dict[str, str] | None) -> Upstream:
    return resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"labels": labels})})


def with_status(resource: Upstream, status: dict[str, Any]) -> Upstream:
    return resource.model_copy(update={"status": NamespacedStatuses.model_validate(status)})


def warnings_about(caplog: pytest.LogCaptureFixture, key: ObjectKey) -> list[str]:
    """The store's warnings naming `key` (as `namespace/name`, also inside a file path)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("proxycontroller.store") and str(key) in r.getMessage()
    ]


class Watching:
    """A running `watch` and its cache; `eventually` fails at once if the watch task died."""

    def __init__(self, cache: ResourceCache[Upstream], task: asyncio.Task[None], within: float) -> None:
        self.cache = cache
        self.task = task
        self.within = within

    def alive(self) -> None:
        if self.task.done():
            problem = "cancelled" if self.task.cancelled() else repr(self.task.exception())
            raise AssertionError(f"the watch stopped: {problem}")

    def keys(self) -> set[ObjectKey]:
        return {u.key for u in self.cache.items()}

    def port(self, key: ObjectKey) -> int | None:
        return port_of(self.cache.get(key))

    async def eventually(self, condition: Callable[[], bool], what: str, within: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        bound = self.within if within is None else within
        deadline = loop.time() + bound
        while not condition():
            self.alive()
            if loop.time() > deadline:
                pytest.fail(f"timed out after {bound}s waiting for {what}; the cache holds {sorted(self.keys())}")
            await asyncio.sleep(0.02)
        self.alive()


@contextlib.asynccontextmanager
async def watching(
    client: ResourceClient[Upstream],
    namespaces: Sequence[str] | None,
    labels: dict[str, str] | None = None,
    within: float = 10.0,
) -> AsyncIterator[Watching]:
    """A watch from the first complete list on; stopped again at the end, also when the test fails."""
    cache = ResourceCache(Upstream)
    task = asyncio.create_task(client.watch(cache, namespaces, labels))
    w = Watching(cache, task, within)
    try:
        await w.eventually(cache.synced.is_set, "the first list")
        yield w
        w.alive()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def assert_cache_equals_store(
    w: Watching, client: ResourceClient[Upstream], expected: set[ObjectKey], what: str
) -> None:
    """The cache holds exactly `expected`, each as the store holds it now (read back with `get`)."""
    await w.eventually(lambda: w.keys() == expected, what)
    stored = {key: await client.get(key) for key in expected}

    def same() -> bool:
        return all(
            (cached := w.cache.get(key)) is not None
            and resource is not None
            and cached.to_json_dict() == resource.to_json_dict()
            for key, resource in stored.items()
        )

    await w.eventually(same, f"{what}: each cached object as the store holds it")
