"""The reconciler's decisions, on the in-memory store (the proof on a real API server is in tests/kube)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxycontroller.config import ControllerConfig, ProxySettings, ReconcileSettings
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.proxy import ProxySpec
from proxycontroller.model.resources import ObjectKey, Proxy, Upstream
from proxycontroller.model.status import NamespacedStatuses, ResourceStatus
from proxycontroller.reconcile.loop import Reconciler, cancel
from proxycontroller.store.memory import MemoryClient
from proxycontroller.translate.strategies import host_header
from tests.unit.factories import kube_upstream

PROXY_KEY = ObjectKey("gloo-system", "my-cool-proxy")
FAST = ReconcileSettings(coalesce_window_seconds=0.05, max_delay_seconds=0.5)


class Harness:
    def __init__(self, config: ControllerConfig) -> None:
        self.upstreams = MemoryClient(Upstream)
        self.proxies = MemoryClient(Proxy)
        self.reconciler = Reconciler(config, host_header, self.upstreams, self.proxies)

    async def converge(self, within: float = 5.0) -> None:
        await asyncio.sleep(0)
        await asyncio.wait_for(self.reconciler.converged.wait(), within)

    def virtual_host_names(self) -> list[str]:
        proxy = self.proxies.objects[PROXY_KEY]
        listener = (proxy.spec.listeners or [])[0]
        return [vh.name for vh in (listener.http_listener.virtual_hosts if listener.http_listener else None) or []]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(ControllerConfig(reconcile=FAST))
    task = asyncio.create_task(h.reconciler.run())
    yield h
    await cancel(task)


async def test_a_burst_of_changes_becomes_one_write(harness: Harness) -> None:
    await harness.converge()
    writes_before = harness.proxies.writes
    for i in range(200):
        await harness.upstreams.create(kube_upstream(f"svc-{i:03d}"))
    harness.reconciler.mark_dirty()
    await harness.converge()
    assert len(harness.virtual_host_names()) == 200
    assert harness.proxies.writes - writes_before <= 2


async def test_unchanged_input_and_gloo_status_updates_cause_no_write(harness: Harness) -> None:
    await harness.upstreams.create(kube_upstream("a"))
    await harness.converge()
    writes = harness.proxies.writes
    stored = harness.proxies.objects[PROXY_KEY]
    status = NamespacedStatuses(statuses={"gloo-system": ResourceStatus(state=1, reported_by="gloo")})
    await harness.proxies.replace(stored.model_copy(update={"status": status}))  # Gloo's verdict
    await harness.converge()
    assert harness.proxies.writes == writes + 1  # only Gloo's own write
    assert harness.proxies.objects[PROXY_KEY].status == status


async def test_drift_is_restored_and_a_deleted_proxy_recreated(harness: Harness) -> None:
    await harness.upstreams.create(kube_upstream("a"))
    await harness.converge()
    stored = harness.proxies.objects[PROXY_KEY]
    await harness.proxies.replace(stored.model_copy(update={"spec": ProxySpec(listeners=[])}))
    await harness.converge()
    assert harness.virtual_host_names() == ["a"]
    await harness.proxies.delete(PROXY_KEY)
    await harness.converge()
    assert harness.virtual_host_names() == ["a"]


async def test_a_foreign_proxy_with_our_name_is_never_touched() -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    foreign = Proxy(metadata=ObjectMeta(name="my-cool-proxy", namespace="gloo-system"), spec=ProxySpec(listeners=[]))
    await h.proxies.create(foreign)
    gateway = Proxy(metadata=ObjectMeta(name="gateway-proxy", namespace="gloo-system"), spec=ProxySpec(listeners=[]))
    await h.proxies.create(gateway)
    await h.upstreams.create(kube_upstream("a"))
    result = await _one_pass(h)
    assert result == ([PROXY_KEY], 0)
    assert h.proxies.objects[PROXY_KEY].spec.listeners == []
    assert ObjectKey("gloo-system", "gateway-proxy") in h.proxies.objects


async def _one_pass(h: Harness) -> tuple[list[ObjectKey], int]:
    task = asyncio.create_task(h.reconciler.run())
    try:
        await asyncio.wait_for(h.reconciler.converged.wait(), 5)
        result = await h.reconciler.reconcile_once()
        return result.skipped_foreign, result.writes
    finally:
        await cancel(task)


async def test_large_specs_are_written_compressed() -> None:
    h = Harness(ControllerConfig(reconcile=ReconcileSettings(compress_threshold_bytes=1000)))
    for i in range(20):
        await h.upstreams.create(kube_upstream(f"svc-{i}"))
    await _one_pass(h)
    proxy = h.proxies.objects[PROXY_KEY]
    assert (proxy.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"
    assert len(h.virtual_host_names()) == 20


async def test_a_conflicting_writer_is_resolved_by_rereading() -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    await h.upstreams.create(kube_upstream("a"))
    await _one_pass(h)
    stale = h.reconciler.proxy_cache.get(PROXY_KEY)
    assert stale is not None
    # Someone else writes after our cache was filled: our cached resourceVersion is now stale.
    current = h.proxies.objects[PROXY_KEY]
    await h.proxies.replace(current.model_copy(update={"spec": ProxySpec(listeners=[])}))
    h.reconciler.proxy_cache.upsert(stale)
    h.reconciler.upstream_cache.upsert(kube_upstream("b"))
    result = await h.reconciler.reconcile_once()
    assert result.updated == [PROXY_KEY]
    assert h.virtual_host_names() == ["a", "b"]
    assert h.reconciler.metrics.conflicts_total._value.get() == 1


async def test_owned_proxies_no_longer_wanted_are_deleted() -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    await h.upstreams.create(kube_upstream("a"))
    await _one_pass(h)
    h.reconciler.config = ControllerConfig(reconcile=FAST, proxy=ProxySettings(name="renamed"))
    await _one_pass(h)
    assert PROXY_KEY not in h.proxies.objects
    assert ObjectKey("gloo-system", "renamed") in h.proxies.objects
