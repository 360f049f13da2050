"""The three store backends as the conformance suite drives them, each with the hooks a test needs to play the world
around the store: another writer, a watch gap, an unreadable object, an outage.

Every backend is real where it can be: the directory store on a real filesystem with real inotify, the Kubernetes
store on the real kube-apiserver (its faults made by a real TCP relay between client and server, its gaps by etcd
compaction). Only the memory store is, by nature, in memory.
"""

from __future__ import annotations

import abc
import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta as KubeObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

from proxycontroller.model.resources import ObjectKey, Resource, Upstream
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.directory import DirectoryClient
from proxycontroller.store.kube import KubeClient, make_async_client
from proxycontroller.store.memory import MemoryClient
from proxycontroller.testing.servers.apiserver import KubeTestCluster
from tests.store.relay import LOOPBACK, Relay

R = TypeVar("R", bound=Resource)

NEVER = 3600.0  # a directory resync period that never comes during a test: what changes must come from events
UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")


class StoreBackend(abc.ABC):
    """One backend, fresh for one test: its own namespaces, its own objects."""

    name: str
    unreadable_because: str  # what the store says about an object `corrupt` made unreadable
    within: float = 10.0  # how long a change may take to reach a watch

    def __init__(self) -> None:
        token = secrets.token_hex(3)
        self.namespaces = (f"store-{token}-a", f"store-{token}-b")  # unique: the API server is shared
        self._clients: dict[type[Resource], ResourceClient[Any]] = {}

    def client(self, kind: type[R]) -> ResourceClient[R]:
        """The client under test, one per kind."""
        if kind not in self._clients:
            self._clients[kind] = self._make_client(kind)
        made: ResourceClient[R] = self._clients[kind]
        return made

    @abc.abstractmethod
    def _make_client(self, kind: type[R]) -> ResourceClient[R]: ...

    @abc.abstractmethod
    async def corrupt(self, key: ObjectKey, variant: int, labels: dict[str, str] | None = None) -> None:
        """Stores a new version of the Upstream `key` that does not decode, as another writer could; each variant
        differs from the others. With `labels`, its metadata still reads and carries them."""

    async def blank(self, key: ObjectKey) -> None:
        """Stores the Upstream `key` with nothing in it at all, as an emptied file (backends that can hold one
        override this: an API server always keeps an object's metadata)."""
        raise NotImplementedError(f"the {self.name} store cannot hold an object without metadata")

    @abc.abstractmethod
    def gap(self) -> AbstractAsyncContextManager[ResourceClient[Upstream]]:
        """Inside the block, the client under test's watches hear of nothing; changes are made with the client it
        yields. When it ends, the watches must list again to catch up."""

    @abc.abstractmethod
    def lists(self) -> int:
        """How many full lists the watches of the Upstream client did so far."""

    def outage(self) -> AbstractAsyncContextManager[None]:
        """Inside the block, the store cannot be reached (backends that can have an outage override this)."""
        raise NotImplementedError(f"the {self.name} store has no outage")

    async def close(self) -> None:
        return None


class MemoryBackend(StoreBackend):
    name = "memory"
    unreadable_because = "planted garbage"
    within = 5.0

    def _make_client(self, kind: type[R]) -> ResourceClient[R]:
        return MemoryClient(kind)

    @property
    def _upstreams(self) -> MemoryClient[Upstream]:
        return cast(MemoryClient[Upstream], self.client(Upstream))

    async def corrupt(self, key: ObjectKey, variant: int, labels: dict[str, str] | None = None) -> None:
        await self._upstreams.plant_unreadable(key, f"planted garbage #{variant}", labels if labels is not None else {})

    async def blank(self, key: ObjectKey) -> None:
        await self._upstreams.plant_unreadable(key, "empty", None)

    @asynccontextmanager
    async def gap(self) -> AsyncIterator[ResourceClient[Upstream]]:
        async with self._upstreams.disconnected():
            yield self._upstreams

    def lists(self) -> int:
        return self._upstreams.lists


class DirectoryBackend(StoreBackend):
    name = "directory"
    unreadable_because = "not valid YAML"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.root = tmp_path / "config"
        self.away = tmp_path / "away"  # where a gap moves the tree

    def _make_client(self, kind: type[R]) -> ResourceClient[R]:
        return DirectoryClient(kind, self.root, resync_period=NEVER)

    @property
    def _upstreams(self) -> DirectoryClient[Upstream]:
        return cast(DirectoryClient[Upstream], self.client(Upstream))

    async def corrupt(self, key: ObjectKey, variant: int, labels: dict[str, str] | None = None) -> None:
        if labels is None:
            self._put(key, f"metadata: {{name: {key.name}, namespace: {key.namespace}, garbage{variant}: [")
        else:  # valid YAML, valid metadata, a spec that is no Upstream's
            metadata = {"name": key.name, "namespace": key.namespace, "labels": labels}
            self._put(key, yaml.safe_dump({"metadata": metadata, "static": f"garbage{variant}"}))

    async def blank(self, key: ObjectKey) -> None:
        self._put(key, "")

    def _put(self, key: ObjectKey, text: str) -> None:
        path = self._upstreams.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole at once, so the watch sees one version of it, not a truncated file first.
        temp = path.with_name(f".{path.name}.corrupt.tmp")
        temp.write_text(text)
        os.replace(temp, path)

    @asynccontextmanager
    async def gap(self) -> AsyncIterator[ResourceClient[Upstream]]:
        """The kind's directory is removed, changed elsewhere, and recreated (a new directory, with the namespace
        directories moved back into it: files nobody changed keep their identity)."""
        live = self._upstreams.directory
        live.mkdir(parents=True, exist_ok=True)
        moved = self.away / live.name
        self.away.mkdir(parents=True, exist_ok=True)
        os.rename(live, moved)
        try:
            yield DirectoryClient(Upstream, self.away, resync_period=NEVER)
        finally:
            live.mkdir()
            for namespace_dir in moved.iterdir():
                os.rename(namespace_dir, live / namespace_dir.name)
            moved.rmdir()

    def lists(self) -> int:
        return self._upstreams.lists

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """The kind's directory becomes a symlink to itself: every path under it fails with ELOOP."""
        live = self._upstreams.directory
        live.mkdir(parents=True, exist_ok=True)
        aside = live.with_name(".aside")
        os.rename(live, aside)
        live.symlink_to(live.name)
        try:
            yield
        finally:
            live.unlink()
            os.rename(aside, live)


class KubeBackend(StoreBackend):
    name = "kube"
    unreadable_because = "status.statuses"
    within = 30.0

    def __init__(self, cluster: KubeTestCluster, kubeconfig_dir: Path) -> None:
        super().__init__()
        self.cluster = cluster
        self._kubeconfig_dir = kubeconfig_dir
        self.relay = Relay(LOOPBACK, cluster.apiserver_port)
        # The world around the store (other writers, setup) talks to the API server directly, never through the relay.
        self.admin = AsyncClient(KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="store-tests")
        self._relayed: AsyncClient | None = None

    async def start(self) -> None:
        await self.relay.start()
        config = yaml.safe_load(self.cluster.admin_kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://{LOOPBACK}:{self.relay.port}"
        path = self._kubeconfig_dir / "relayed.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        self._relayed = make_async_client(path, field_manager="store-tests")
        for namespace in self.namespaces:
            await self.admin.create(Namespace(metadata=KubeObjectMeta(name=namespace)))

    def _make_client(self, kind: type[R]) -> ResourceClient[R]:
        assert self._relayed is not None, "start() first"
        return KubeClient(kind, self._relayed)

    async def corrupt(self, key: ObjectKey, variant: int, labels: dict[str, str] | None = None) -> None:
        """A status our model cannot read (Gloo's CRD keeps any status): what a newer Gloo could write."""
        garbage = {"statuses": {"gloo-system": f"garbage-{variant}"}}
        try:
            raw = await self.admin.get(UpstreamCR, key.name, namespace=key.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            document = {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": key.name, "namespace": key.namespace, "labels": labels},
                "spec": {"static": {"hosts": [{"addr": "example.com", "port": 80}]}},
                "status": garbage,
            }
            await self.admin.create(UpstreamCR.from_dict(document))
            return
        raw["status"] = garbage
        if labels is not None:
            raw["metadata"]["labels"] = labels
        await self.admin.replace(raw)

    @asynccontextmanager
    async def gap(self) -> AsyncIterator[ResourceClient[Upstream]]:
        """The connection is cut; meanwhile etcd moves on and is compacted, so the watches, back, find their
        resourceVersion gone (410) and must list again."""
        await self.relay.cut()
        try:
            yield KubeClient(Upstream, self.admin)
            # Something must be written for the watches' last resourceVersion to be compacted away.
            marker = f"gap-{secrets.token_hex(4)}"
            await self.admin.create(ConfigMap(metadata=KubeObjectMeta(name=marker, namespace="default")))
            await self.admin.delete(ConfigMap, marker, namespace="default")
            await asyncio.to_thread(self.cluster.compact_etcd)
        finally:
            await self.relay.restore()

    def lists(self) -> int:
        return cast(KubeClient[Upstream], self.client(Upstream)).lists

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        await self.relay.cut()
        try:
            yield
        finally:
            await self.relay.restore()

    async def close(self) -> None:
        for namespace in self.namespaces:  # the API server is shared with other tests: leave nothing behind
            async for raw in self.admin.list(UpstreamCR, namespace=namespace):
                assert raw.metadata is not None
                assert raw.metadata.name is not None
                await self.admin.delete(UpstreamCR, raw.metadata.name, namespace=namespace)
        await self.relay.close()
        if self._relayed is not None:
            await self._relayed.close()
        await self.admin.close()
