"""The engine's decisions and its failure isolation, on the in-memory store (the same on a real API server is
in tests/kube, and in Gloo's directory layout in tests/unit/test_engine_directory.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

import proxycontroller as pc
from proxycontroller.config import ControllerConfig, ProxySettings, ReconcileSettings
from proxycontroller.manager.backends import Backend
from proxycontroller.manager.controller import build_engine
from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.resources import ObjectKey, StoredProxy, Upstream
from proxycontroller.model.status import NamespacedStatuses, ResourceStatus
from proxycontroller.reconcile.engine import Engine
from proxycontroller.store.memory import MemoryClient
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic
from tests.strategies import MODES, Switch, switchable
from tests.tasks import cancel
from tests.unit.factories import kube_upstream

PROXY_KEY = ObjectKey("gloo-system", "my-cool-proxy")
FAST = ReconcileSettings(
    coalesce_window_seconds=0.02, max_delay_seconds=0.2, error_backoff_seconds=0.05, error_backoff_cap_seconds=0.2
)


def proxy_names(spec: CanonicalSpec) -> list[str]:
    listeners = spec.to_json_dict().get("listeners") or [{}]
    return [host["name"] for host in listeners[0].get("httpListener", {}).get("virtualHosts", [])]


class Harness:
    def __init__(self, config: ControllerConfig, strategies: Sequence[pc.Strategy[Any]] = ()) -> None:
        self.config = config
        self.upstreams = MemoryClient(Upstream)
        self.proxies = MemoryClient(StoredProxy)
        clients: dict[type[Any], Any] = {Upstream: self.upstreams, StoredProxy: self.proxies}
        registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, *strategies)})
        self.engine: Engine = build_engine(config, ProxyLogic(config, registry), Backend(clients.__getitem__, True))

    async def converge(self, within: float = 5.0) -> None:
        await asyncio.sleep(0.01)
        await asyncio.wait_for(self.engine.converged.wait(), within)

    def names(self, key: ObjectKey = PROXY_KEY) -> list[str]:
        return proxy_names(self.proxies.objects[key].spec)

    async def eventually(self, check: Any, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, "not reached in time"
            await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(ControllerConfig(reconcile=FAST))
    task = asyncio.create_task(h.engine.run())
    yield h
    await cancel(task)


async def test_a_burst_of_changes_becomes_a_few_writes(harness: Harness) -> None:
    await harness.converge()
    writes_before = harness.proxies.writes
    for i in range(200):
        await harness.upstreams.create(kube_upstream(f"svc-{i:03d}"))
    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects and len(harness.names()) == 200)
    assert harness.proxies.writes - writes_before <= 3


async def test_unchanged_input_and_gloo_status_updates_cause_no_write(harness: Harness) -> None:
    await harness.upstreams.create(kube_upstream("a"))
    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects)
    await harness.converge()
    writes = harness.proxies.writes
    stored = harness.proxies.objects[PROXY_KEY]
    status = NamespacedStatuses(statuses={"gloo-system": ResourceStatus(state=1, reported_by="gloo")})
    await harness.proxies.replace(stored.model_copy(update={"status": status}))  # Gloo's verdict
    await asyncio.sleep(0.1)
    await harness.converge()
    assert harness.proxies.writes == writes + 1  # only Gloo's own write
    assert harness.proxies.objects[PROXY_KEY].status == status


async def test_a_pass_that_had_nothing_to_do_does_not_make_the_next_change_wait_for_the_quiet_window() -> None:
    """Gloo writes its verdict into the Proxy after each of our writes: that pass computes and writes nothing,
    so an upstream change right after it is still the first change after a quiet spell, reconciled at once."""
    window = 1.0
    slow = FAST.model_copy(update={"coalesce_window_seconds": window, "max_delay_seconds": 2 * window})
    h = Harness(ControllerConfig(reconcile=slow))
    await h.upstreams.create(kube_upstream("a"))
    task = asyncio.create_task(h.engine.run())
    try:
        await h.eventually(lambda: PROXY_KEY in h.proxies.objects and h.names() == ["a"])
        await asyncio.sleep(window * 1.2)  # quiet since that write
        passes, writes = h.engine.health.passes, h.proxies.writes
        status = NamespacedStatuses(statuses={"gloo-system": ResourceStatus(state=1, reported_by="gloo")})
        await h.proxies.replace(h.proxies.objects[PROXY_KEY].model_copy(update={"status": status}))
        await h.eventually(lambda: h.engine.health.passes > passes)  # the pass Gloo's write caused
        assert h.proxies.writes == writes + 1  # Gloo's write only: that pass had nothing to do
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await h.upstreams.create(kube_upstream("b"))
        await h.eventually(lambda: h.names() == ["a", "b"], within=3 * window)
        assert time.monotonic() - started < window / 2
    finally:
        await cancel(task)


async def test_drift_is_restored_and_a_deleted_proxy_recreated(harness: Harness) -> None:
    await harness.upstreams.create(kube_upstream("a"))
    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects)
    stored = harness.proxies.objects[PROXY_KEY]
    await harness.proxies.replace(stored.model_copy(update={"spec": CanonicalSpec.of({"listeners": []})}))
    await harness.eventually(lambda: harness.names() == ["a"])
    await harness.proxies.delete(PROXY_KEY)
    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects and harness.names() == ["a"])


OURS = managed_labels(ControllerConfig().instance)


@pytest.mark.parametrize(("what", "labels"), [("no metadata at all", None), ("our labels", OURS)])
async def test_an_unreadable_managed_proxy_is_restored(
    harness: Harness, what: str, labels: dict[str, str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.upstreams.create(kube_upstream("a"))
    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects)
    await harness.converge()

    await harness.proxies.plant_unreadable(PROXY_KEY, f"garbage with {what}", labels)

    await harness.eventually(lambda: PROXY_KEY in harness.proxies.objects and harness.names() == ["a"])
    restored = harness.proxies.objects[PROXY_KEY]
    assert restored.metadata.labels == OURS
    said = [r.getMessage() for r in caplog.records if "restored" in r.getMessage()]
    assert said == [f"Proxy {PROXY_KEY} restored: it was unreadable (garbage with {what})"]
    assert harness.engine.health.consecutive_failures == 0


async def test_an_unreadable_proxy_carrying_anothers_labels_is_left_alone_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    version = await h.proxies.plant_unreadable(PROXY_KEY, "a status nobody reads", {"owner": "team"})
    await h.upstreams.create(kube_upstream("a"))
    task = asyncio.create_task(h.engine.run())
    try:
        await h.converge()
        await h.upstreams.create(kube_upstream("b"))  # another pass, the same refusal: no news
        await h.eventually(lambda: h.engine.health.passes >= 2)
        await h.converge()
        result = await h.engine.reconcile_once()
    finally:
        await cancel(task)
    assert result.skipped_foreign == [PROXY_KEY]
    assert h.proxies.unreadable[PROXY_KEY][0] == version  # not written over
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert f"Proxy {PROXY_KEY} exists and is unreadable (a status nobody reads)" in errors[0]
    assert "not managed by this controller" in errors[0]
    assert h.engine.health.consecutive_failures == 0


def foreign(name: str) -> StoredProxy:
    return StoredProxy(metadata=ObjectMeta(name=name, namespace="gloo-system"), spec=CanonicalSpec.of({}))


async def _one_pass(h: Harness) -> tuple[list[ObjectKey], int]:
    task = asyncio.create_task(h.engine.run())
    try:
        await asyncio.wait_for(h.engine.converged.wait(), 5)
        result = await h.engine.reconcile_once()
        return result.skipped_foreign, result.writes
    finally:
        await cancel(task)


async def test_a_foreign_proxy_with_our_name_is_never_touched(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    await h.proxies.create(foreign("my-cool-proxy"))
    await h.proxies.create(foreign("gateway-proxy"))
    await h.upstreams.create(kube_upstream("a"))
    assert await _one_pass(h) == ([PROXY_KEY], 0)
    assert h.proxies.objects[PROXY_KEY].spec.to_json_dict() == {}
    assert ObjectKey("gloo-system", "gateway-proxy") in h.proxies.objects
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"Proxy {PROXY_KEY} exists and is not managed by this controller (labels {OURS}); leaving it untouched"
    ]  # once, though two passes refused it


async def test_large_specs_are_written_compressed() -> None:
    h = Harness(ControllerConfig(reconcile=ReconcileSettings(compress_threshold_bytes=1000)))
    for i in range(20):
        await h.upstreams.create(kube_upstream(f"svc-{i}"))
    await _one_pass(h)
    proxy = h.proxies.objects[PROXY_KEY]
    assert (proxy.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"
    assert len(h.names()) == 20


async def test_a_conflicting_writer_is_resolved_by_rereading() -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    await h.upstreams.create(kube_upstream("a"))
    await _one_pass(h)
    cache = h.engine.output_caches[StoredProxy]
    stale = cache.get(PROXY_KEY)
    assert stale is not None
    # Someone else writes after our cache was filled: our cached resourceVersion is now stale.
    current = h.proxies.objects[PROXY_KEY]
    await h.proxies.replace(current.model_copy(update={"spec": CanonicalSpec.of({"listeners": []})}))
    cache.upsert(stale)
    h.engine.input_caches[Upstream].upsert(kube_upstream("b"))
    result = await h.engine.reconcile_once()
    assert result.updated == [PROXY_KEY]
    assert h.names() == ["a", "b"]
    assert h.engine.metrics.conflicts_total._value.get() == 1


async def test_owned_proxies_no_longer_wanted_are_deleted() -> None:
    h = Harness(ControllerConfig(reconcile=FAST))
    await h.upstreams.create(kube_upstream("a"))
    await _one_pass(h)
    renamed = ControllerConfig(reconcile=FAST, proxies=(ProxySettings(name="renamed"),))
    h2 = Harness(renamed)
    h2.upstreams, h2.proxies = h.upstreams, h.proxies
    clients: dict[type[Any], Any] = {Upstream: h.upstreams, StoredProxy: h.proxies}
    h2.engine = build_engine(renamed, ProxyLogic(renamed), Backend(clients.__getitem__, True))
    await _one_pass(h2)
    assert PROXY_KEY not in h.proxies.objects
    assert ObjectKey("gloo-system", "renamed") in h.proxies.objects


# -- failure isolation ---------------------------------------------------------------------------------


def config_with(kind: str, **reconcile: Any) -> ControllerConfig:
    settings = FAST.model_copy(update=reconcile)
    return ControllerConfig.model_validate(
        {"strategy": {"kind": kind}, "reconcile": settings.model_dump(by_alias=True)}
    )


@pytest.mark.parametrize(("mode", "said"), sorted(MODES.items()))
async def test_a_failing_strategy_fails_the_pass_only_and_the_last_good_proxy_stays(
    mode: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    switch = Switch()
    h = Harness(config_with("switchable", pass_timeout_seconds=0.3), [switchable(switch)])
    task = asyncio.create_task(h.engine.run())
    try:
        await h.upstreams.create(kube_upstream("a"))
        await h.eventually(lambda: PROXY_KEY in h.proxies.objects and h.names() == ["a"])
        good = h.proxies.objects[PROXY_KEY]
        switch.mode = mode
        await h.upstreams.create(kube_upstream("b"))
        await h.eventually(lambda: h.engine.health.consecutive_failures >= 2)  # failed, and retried
        assert h.proxies.objects[PROXY_KEY] is good  # not rewritten, not deleted
        assert said in (h.engine.health.last_error or "")
        assert "switchable" in (h.engine.health.last_error or "")
        assert any("reconcile failed" in r.message and said in r.message for r in caplog.records)
        assert h.engine.metrics.reconcile_errors_total.labels("proxy")._value.get() >= 2
        assert not task.done()  # the loop is alive
        switch.mode = "good"
        switch.release.set()
        await h.eventually(lambda: h.names() == ["a", "b"], within=10)
        await h.eventually(lambda: h.engine.health.consecutive_failures == 0)
    finally:
        switch.release.set()
        await cancel(task)


async def test_a_per_upstream_failure_skips_only_that_upstream() -> None:
    @pc.strategy("picky")
    def picky(upstream: pc.Upstream, options: pc.NoOptions) -> pc.VirtualHost:
        if upstream.metadata.name == "bad":
            raise pc.Skip("has no usable domain")
        return pc.virtual_host(upstream.metadata.name, [upstream.metadata.name], [pc.route_to(upstream)])

    h = Harness(config_with("picky"), [picky])
    for name in ("a", "bad", "c"):
        await h.upstreams.create(kube_upstream(name))
    task = asyncio.create_task(h.engine.run())
    try:
        await h.eventually(lambda: PROXY_KEY in h.proxies.objects)
        assert h.names() == ["a", "c"]
        (warning,) = h.engine.warnings
        assert "Upstream gloo-system/bad" in warning
        assert "has no usable domain" in warning
        assert h.engine.health.consecutive_failures == 0
    finally:
        await cancel(task)


async def test_a_strategy_cannot_corrupt_what_the_next_pass_sees() -> None:
    """A plugin reusing the built-in strategy and changing what it returned must not change the built-in's
    output: models are frozen, and what is written comes from bytes taken when a virtual host was made."""
    (host_header,) = [s for s in BUILTIN_STRATEGIES if s.name == "host-header"]

    @pc.strategy("meddler")
    def meddler(upstream: pc.Upstream, options: pc.NoOptions) -> pc.VirtualHost:
        host: pc.VirtualHost = host_header.function(upstream, host_header.options())
        with pytest.raises((TypeError, ValueError, AttributeError)):
            host.domains.append("evil.example.com")  # type: ignore[union-attr]
        with pytest.raises((TypeError, ValueError)):
            host.name = "evil"  # type: ignore[misc]
        return host.model_copy(update={"domains": (*(host.domains or ()), f"{upstream.metadata.name}.meddled")})

    config = ControllerConfig.model_validate(
        {
            "proxies": [
                {"name": "plain", "listeners": [{"name": "l", "bindPort": 8080}]},
                {
                    "name": "meddled",
                    "listeners": [{"name": "l", "bindPort": 8080, "strategies": [{"kind": "meddler"}]}],
                },
            ]
        }
    )
    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, meddler)})
    logic = ProxyLogic(config, registry)
    snapshot_inputs = [kube_upstream("a")]
    from proxycontroller.model.snapshot import Snapshot

    first = logic.desired(Snapshot.of(snapshot_inputs))
    second = logic.desired(Snapshot.of(snapshot_inputs))
    plain = {o.key.name: o.spec.json for o in first.objects}
    again = {o.key.name: o.spec.json for o in second.objects}
    assert plain == again
    assert b"meddled" not in plain["plain"]
    assert b"a.meddled" in plain["meddled"]
