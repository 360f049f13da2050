"""The controller against a real kube-apiserver, authenticated as its own service account under RBAC.

Each test runs its own controller instance (its own Proxy name and instance label, its own upstream
namespace) so the tests share one API server without seeing each other's objects.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from proxycontroller.config import ControllerConfig, ProxySettings, ReconcileSettings
from proxycontroller.manager.backends import Backend
from proxycontroller.manager.controller import build_engine
from proxycontroller.model.desired import as_resource
from proxycontroller.model.encoding import from_cr
from proxycontroller.model.resources import ObjectKey, Proxy, StoredProxy, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.reconcile.engine import Engine
from proxycontroller.store.kube import KubeClient, make_async_client
from proxycontroller.testing.servers.apiserver import KubeTestCluster
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic
from tests.tasks import cancel

UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ProxyCR = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")
FAST = ReconcileSettings(coalesce_window_seconds=0.1, max_delay_seconds=1.0)
_ids = itertools.count()


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube generic object as the plain dict the API server sent."""
    result: dict[str, Any] = obj.to_dict()
    return result


def upstream_cr(name: str, namespace: str, port: int = 8080) -> Any:
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"kube": {"serviceName": name, "serviceNamespace": namespace, "servicePort": port}},
        }
    )


class Scenario:
    """One controller instance, an admin client to play the world around it, and ways to observe both."""

    def __init__(self, cluster: KubeTestCluster, admin: AsyncClient, namespace: str, config: ControllerConfig) -> None:
        self.cluster = cluster
        self.admin = admin
        self.namespace = namespace
        self.config = config
        self.key = ObjectKey(config.proxies[0].namespace, config.proxies[0].name)
        self.reconciler: Engine | None = None
        self.registry: StrategyRegistry | None = None  # None: the built-in strategies
        self.upstream_client: KubeClient[Upstream] | None = None

    async def stored_proxy(self) -> Proxy | None:
        try:
            raw = await self.admin.get(ProxyCR, self.key.name, namespace=self.key.namespace)
        except Exception:  # 404 and friends: not there
            return None
        return from_cr(Proxy, as_dict(raw))

    async def routed_names(self) -> list[str] | None:
        proxy = await self.stored_proxy()
        if proxy is None or not proxy.spec.listeners:
            return None
        listener = proxy.spec.listeners[0]
        hosts = listener.http_listener.virtual_hosts if listener.http_listener else None
        return [vh.name for vh in hosts or []]

    async def eventually(self, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached within {timeout}s; Proxy now routes {await self.routed_names()}")
            await asyncio.sleep(0.05)

    async def routes(self, expected: list[str], timeout: float = 30.0) -> None:
        async def check() -> bool:
            return await self.routed_names() == expected

        await self.eventually(check, timeout)

    async def settled(self, timeout: float = 30.0) -> None:
        """Waits until the controller finished a pass with nothing left to do."""
        assert self.reconciler is not None
        await asyncio.sleep(0.3)  # let watch events of the last write arrive
        await asyncio.wait_for(self.reconciler.converged.wait(), timeout)

    async def ends_as_desired(self, timeout: float = 30.0) -> None:
        """Whatever happened, the stored Proxy ends equal to the one translation wants for the Upstreams the
        cluster holds now (read independently, as admin)."""
        listing = self.admin.list(UpstreamCR, namespace=self.namespace)
        upstreams = [from_cr(Upstream, as_dict(raw)) async for raw in listing]
        (desired,) = ProxyLogic(self.config, self.registry).desired(Snapshot.of(upstreams)).objects
        wanted = as_resource(desired).model_dump(by_alias=True)["spec"]

        async def equal() -> bool:
            stored = await self.stored_proxy()
            return stored is not None and stored.spec.to_json_dict() == wanted

        await self.eventually(equal, timeout)

    async def create_upstreams(self, names: list[str]) -> None:
        for name in names:
            await self.admin.create(upstream_cr(name, self.namespace))


@pytest.fixture
async def admin(kube_cluster: KubeTestCluster) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    yield client
    await client.close()


@pytest.fixture
async def scenario(kube_cluster: KubeTestCluster, admin: AsyncClient) -> Scenario:
    n = next(_ids)
    namespace = f"team-{n}"
    await admin.create(Namespace(metadata=ObjectMeta(name=namespace)))
    config = ControllerConfig(
        proxies=(ProxySettings(name=f"proxy-{n}"),), namespaces=(namespace,), instance=f"test-{n}", reconcile=FAST
    )
    return Scenario(kube_cluster, admin, namespace, config)


@asynccontextmanager
async def controller(scenario: Scenario, ends_as_desired: bool = True) -> AsyncIterator[Engine]:
    """The controller as it runs in production: as its service account, with only its RBAC rules."""
    client = make_async_client(scenario.cluster.controller_kubeconfig)
    scenario.upstream_client = KubeClient(Upstream, client)
    clients: dict[type[Any], Any] = {Upstream: scenario.upstream_client, StoredProxy: KubeClient(StoredProxy, client)}
    backend = Backend(make=clients.__getitem__, compresses=True)
    reconciler = build_engine(scenario.config, ProxyLogic(scenario.config, scenario.registry), backend)
    scenario.reconciler = reconciler
    task = asyncio.create_task(reconciler.run())
    try:
        yield reconciler
        if ends_as_desired:
            await scenario.ends_as_desired()
    finally:
        await cancel(task)
        await client.close()
        if task.done() and not task.cancelled() and task.exception():
            raise AssertionError("the controller crashed") from task.exception()


async def test_upstreams_created_changed_and_deleted_are_reflected(scenario: Scenario) -> None:
    async with controller(scenario):
        await scenario.routes([])
        await scenario.create_upstreams(["alpha", "beta"])
        await scenario.routes(["alpha", "beta"])
        await scenario.admin.delete(UpstreamCR, "alpha", namespace=scenario.namespace)
        await scenario.routes(["beta"])
        await scenario.create_upstreams(["gamma"])
        await scenario.routes(["beta", "gamma"])


async def test_a_burst_of_500_creations_converges_in_a_handful_of_writes(scenario: Scenario) -> None:
    async with controller(scenario) as reconciler:
        await scenario.routes([])
        await scenario.settled()
        writes_before = reconciler.health.writes
        names = [f"svc-{i:03d}" for i in range(500)]
        await scenario.create_upstreams(names)
        await scenario.routes(names, timeout=60)
        await scenario.settled()
        burst_writes = reconciler.health.writes - writes_before
        assert burst_writes <= 10, f"{burst_writes} writes for a burst of 500"


async def test_unchanged_input_causes_zero_writes(scenario: Scenario) -> None:
    async with controller(scenario) as reconciler:
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        await scenario.settled()
        writes = reconciler.health.writes
        passes = reconciler.health.passes
        # A change that does not alter the desired Proxy: an upstream's label.
        raw = await scenario.admin.get(UpstreamCR, "alpha", namespace=scenario.namespace)
        raw["metadata"]["labels"] = {"touched": "yes"}
        await scenario.admin.replace(raw)
        reconciler.resync()
        await scenario.settled()
        assert reconciler.health.passes > passes
        assert reconciler.health.writes == writes


async def test_a_concurrent_writers_conflict_is_resolved(scenario: Scenario) -> None:
    async with controller(scenario):
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])

        # Another writer replaces the spec while upstreams change: the controller's next write carries a
        # stale resourceVersion, gets 409, re-reads and writes again on top of the other writer.
        async def other_writer() -> None:
            raw = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
            raw["spec"] = {"listeners": []}
            try:
                await scenario.admin.replace(raw)
            except ApiError as error:
                if error.status.code != 409:
                    raise  # 409: the controller wrote first this round, the other writer lost the race

        for round_ in range(5):
            await asyncio.gather(other_writer(), scenario.create_upstreams([f"extra-{round_}"]))
        expected = ["alpha"] + [f"extra-{i}" for i in range(5)]
        await scenario.routes(expected)
        await scenario.settled()
        assert await scenario.routed_names() == expected


async def test_a_foreign_proxy_is_never_touched(scenario: Scenario) -> None:
    foreign = ProxyCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Proxy",
            "metadata": {"name": scenario.key.name, "namespace": scenario.key.namespace, "labels": {"owner": "team"}},
            "spec": {"listeners": []},
        }
    )
    created = await scenario.admin.create(foreign)
    gateway = ProxyCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Proxy",
            "metadata": {"name": f"gateway-{scenario.key.name}", "namespace": scenario.key.namespace},
            "spec": {"listeners": []},
        }
    )
    gateway_created = await scenario.admin.create(gateway)
    async with controller(scenario, ends_as_desired=False) as reconciler:  # the foreign Proxy must stay as it is
        await scenario.create_upstreams(["alpha"])
        await scenario.settled()
        assert reconciler.health.writes == 0
    after = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
    assert as_dict(after)["metadata"]["resourceVersion"] == as_dict(created)["metadata"]["resourceVersion"]
    after_gateway = await scenario.admin.get(ProxyCR, f"gateway-{scenario.key.name}", namespace=scenario.key.namespace)
    assert (
        as_dict(after_gateway)["metadata"]["resourceVersion"] == as_dict(gateway_created)["metadata"]["resourceVersion"]
    )


async def test_an_edited_or_deleted_managed_proxy_is_restored(scenario: Scenario) -> None:
    async with controller(scenario):
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        raw = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
        raw["spec"]["listeners"][0]["httpListener"]["virtualHosts"] = []
        await scenario.admin.replace(raw)
        await scenario.routes(["alpha"])
        await scenario.admin.delete(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
        await scenario.routes(["alpha"])


async def test_gloos_status_is_kept_and_reported(scenario: Scenario) -> None:
    async with controller(scenario) as reconciler:
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        raw = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
        raw["status"] = {"statuses": {"gloo-system": {"state": 1, "reportedBy": "gloo"}}}
        await scenario.admin.replace(raw)  # what Gloo does after translating it
        await scenario.create_upstreams(["beta"])
        await scenario.routes(["alpha", "beta"])
        proxy = await scenario.stored_proxy()
        assert proxy is not None
        assert proxy.status_from("gloo-system") is not None
        assert reconciler.output_caches[StoredProxy].get(scenario.key) is not None


async def test_the_watch_recovers_after_etcd_compaction_forces_410_gone(scenario: Scenario) -> None:
    async with controller(scenario):
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        assert scenario.upstream_client is not None
        # Move etcd's revision on, compact it away, and break every watch: they reconnect with a
        # resourceVersion that no longer exists and must relist.
        for i in range(3):
            await scenario.admin.create(upstream_cr(f"filler-{i}", "default"))
        scenario.cluster.compact_etcd()
        await asyncio.to_thread(scenario.cluster.restart_apiserver)
        await scenario.create_upstreams(["beta"])
        await scenario.routes(["alpha", "beta"], timeout=60)
        assert scenario.upstream_client.expired_relists >= 1


async def test_the_controller_converges_after_the_api_server_restarts(scenario: Scenario) -> None:
    async with controller(scenario):
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        scenario.cluster.restart_apiserver()  # blocks the loop: the controller sees a dead connection
        await scenario.create_upstreams(["beta"])
        await scenario.admin.delete(UpstreamCR, "alpha", namespace=scenario.namespace)
        await scenario.routes(["beta"], timeout=60)
