"""The level-triggered reconcile loop, after controller-runtime.

Any change to an input only marks the state dirty. A short coalescing window (bounded by a maximum delay)
turns a burst of changes into one pass; each pass computes the desired Proxies from the cached inputs,
compares them with the stored ones (spec only: Gloo writes status into the same object) and writes only
what differs, deletes the Proxies it owns and no longer wants, and never touches a Proxy it does not own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from proxycontroller.config import ControllerConfig
from proxycontroller.model.resources import ObjectKey, Proxy, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.model.status import State
from proxycontroller.reconcile.diff import is_managed, merge_for_write, needs_write, with_compression
from proxycontroller.reconcile.metrics import CONTROLLER, Metrics
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError
from proxycontroller.translate.strategies import Strategy
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import desired_state

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5
ERROR_BACKOFF_BASE = 0.2
ERROR_BACKOFF_CAP = 30.0


@dataclass
class PassResult:
    """What one reconcile pass did."""

    created: list[ObjectKey] = field(default_factory=list)
    updated: list[ObjectKey] = field(default_factory=list)
    deleted: list[ObjectKey] = field(default_factory=list)
    skipped_foreign: list[ObjectKey] = field(default_factory=list)
    warnings: tuple[str, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


class Reconciler:
    def __init__(
        self,
        config: ControllerConfig,
        strategy: Strategy,
        upstreams: ResourceClient[Upstream],
        proxies: ResourceClient[Proxy],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.upstream_client = upstreams
        self.proxy_client = proxies
        self.metrics = metrics or Metrics()
        self._dirty = asyncio.Event()
        self.upstream_cache = ResourceCache(Upstream, self.mark_dirty)
        self.proxy_cache = ResourceCache(Proxy, self.mark_dirty)
        self._reported_states: dict[ObjectKey, tuple[State | None, str | None]] = {}
        # Serialized specs of stored Proxies by resourceVersion: a 10k-host spec takes a good part of a pass
        # to serialize, and most passes compare against the very object the previous pass wrote.
        self._stored_specs: dict[ObjectKey, tuple[str | None, bytes]] = {}
        self._last_warnings: tuple[str, ...] = ()
        self.passes = 0
        self.total_writes = 0
        self.last_error: str | None = None
        self.converged = asyncio.Event()  # set after a pass when no change arrived while it ran
        self._last_pass_end = float("-inf")

    def mark_dirty(self) -> None:
        self._dirty.set()
        self.converged.clear()

    @property
    def ready(self) -> bool:
        return self.upstream_cache.synced.is_set() and self.proxy_cache.synced.is_set()

    async def run(self) -> None:
        """Watches the inputs and reconciles until cancelled."""
        self.converged.clear()
        namespaces: Sequence[str] | None = None if self.config.all_namespaces else self.config.namespaces
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.upstream_client.watch(self.upstream_cache, namespaces))
            tasks.create_task(
                self.proxy_client.watch(self.proxy_cache, [self.config.proxy.namespace], managed_labels(self.config))
            )
            tasks.create_task(self._periodic_resync())
            tasks.create_task(self._loop())

    async def _periodic_resync(self) -> None:
        # Level-triggered safety net: even if every event were lost, the state is re-checked this often.
        while True:
            await asyncio.sleep(self.config.reconcile.resync_period_seconds)
            self.mark_dirty()

    async def _wait_for_burst_to_settle(self) -> None:
        await self._dirty.wait()
        settings = self.config.reconcile
        now = time.monotonic()
        if settings.leading_edge and now - self._last_pass_end >= settings.coalesce_window_seconds:
            # The first change after a quiet spell is reconciled at once; only what arrives while that pass
            # runs is coalesced. A single change waits for no window, a burst costs one pass more.
            self._dirty.clear()
            return
        deadline = now + settings.max_delay_seconds
        while True:
            self._dirty.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=min(settings.coalesce_window_seconds, remaining))
            except TimeoutError:
                return  # quiet for a whole window

    async def _loop(self) -> None:
        await self.upstream_cache.synced.wait()
        await self.proxy_cache.synced.wait()
        self.mark_dirty()
        failures = 0
        while True:
            await self._wait_for_burst_to_settle()
            started = time.perf_counter()
            try:
                result = await self.reconcile_once()
            except (StoreError, OSError) as exc:
                failures += 1
                delay = min(ERROR_BACKOFF_BASE * 2 ** (failures - 1), ERROR_BACKOFF_CAP)
                self.last_error = str(exc)
                log.error("reconcile failed (attempt %d), retrying in %.1fs: %s", failures, delay, exc)
                self.metrics.reconcile_errors_total.labels(CONTROLLER).inc()
                self.metrics.reconcile_total.labels(CONTROLLER, "error").inc()
                asyncio.get_running_loop().call_later(delay, self.mark_dirty)
                continue
            finally:
                self.metrics.reconcile_time_seconds.labels(CONTROLLER).observe(time.perf_counter() - started)
                self._last_pass_end = time.monotonic()
            failures = 0
            self.last_error = None
            self.metrics.reconcile_total.labels(CONTROLLER, "success").inc()
            if not self._dirty.is_set():
                self.converged.set()  # what it wrote is what is wanted, and nothing changed meanwhile
            if result.writes:
                log.info(
                    "reconciled: created %s, updated %s, deleted %s",
                    [str(k) for k in result.created],
                    [str(k) for k in result.updated],
                    [str(k) for k in result.deleted],
                )

    async def reconcile_once(self) -> PassResult:
        """One level-triggered pass over the cached inputs."""
        self.passes += 1
        started = time.perf_counter()
        snapshot = Snapshot.of(self.upstream_cache.items())
        state = desired_state(snapshot, self.config, self.strategy)
        translated = time.perf_counter()
        result = PassResult(warnings=state.warnings)
        self.metrics.upstreams.set(len(snapshot.upstreams))
        self.metrics.warnings.set(len(state.warnings))
        if state.warnings != self._last_warnings:
            for warning in state.warnings:
                log.warning("%s", warning)
            self._last_warnings = state.warnings
        wanted: set[ObjectKey] = set()
        virtual_hosts = 0
        for desired in state.proxies:
            wanted.add(desired.key)
            virtual_hosts += desired.spec.virtual_host_count()
            await self._ensure(desired, result)
        self.metrics.virtual_hosts.set(virtual_hosts)
        for stored in self.proxy_cache.items():
            if stored.key not in wanted and is_managed(stored, self.config):
                await self.proxy_client.delete(stored.key)
                self.proxy_cache.remove(stored.key, notify=False)
                self.metrics.writes_total.labels("delete").inc()
                result.deleted.append(stored.key)
        self._report_gloo_verdicts()
        self.total_writes += result.writes
        log.debug(
            "pass %d: %d upstreams, translate %.0f ms, diff and write %.0f ms, %d writes",
            self.passes,
            len(snapshot.upstreams),
            (translated - started) * 1000,
            (time.perf_counter() - translated) * 1000,
            result.writes,
        )
        return result

    async def _ensure(self, desired: Proxy, result: PassResult) -> None:
        spec_bytes = desired.spec.to_json_bytes()
        desired = with_compression(desired, len(spec_bytes), self.config.reconcile.compress_threshold_bytes)
        current = self.proxy_cache.get(desired.key)
        for _ in range(MAX_CONFLICT_RETRIES):
            if current is None:
                try:
                    written = await self.proxy_client.create(desired)
                except AlreadyExistsError:
                    current = await self.proxy_client.get(desired.key)
                    if current is not None and not is_managed(current, self.config):
                        self._refuse_foreign(desired, result)
                        return
                    continue
                self._record_write(written, spec_bytes, "create", result.created)
                return
            if not is_managed(current, self.config):
                self._refuse_foreign(desired, result)
                return
            if not needs_write(current, self._stored_spec(current), desired, spec_bytes):
                return
            try:
                written = await self.proxy_client.replace(merge_for_write(current, desired))
            except (ConflictError, NotFoundError):
                # Someone wrote (or deleted) it since we read it: read it again, decide again.
                self.metrics.conflicts_total.inc()
                current = await self.proxy_client.get(desired.key)
                continue
            self._record_write(written, spec_bytes, "update", result.updated)
            return
        raise StoreError(f"{desired.describe()}: still conflicting after {MAX_CONFLICT_RETRIES} attempts")

    def _record_write(self, written: Proxy, spec_bytes: bytes, operation: str, done: list[ObjectKey]) -> None:
        self._stored_specs[written.key] = (written.metadata.resource_version, spec_bytes)
        self.proxy_cache.upsert(written, notify=False)
        self.metrics.writes_total.labels(operation).inc()
        done.append(written.key)

    def _stored_spec(self, stored: Proxy) -> bytes:
        version = stored.metadata.resource_version
        known = self._stored_specs.get(stored.key)
        if known is not None and known[0] == version and version is not None:
            return known[1]
        serialized = stored.spec.to_json_bytes()
        self._stored_specs[stored.key] = (version, serialized)
        return serialized

    def _refuse_foreign(self, desired: Proxy, result: PassResult) -> None:
        log.error(
            "%s exists and is not managed by this controller (labels %s); leaving it untouched",
            desired.describe(),
            managed_labels(self.config),
        )
        result.skipped_foreign.append(desired.key)

    def _report_gloo_verdicts(self) -> None:
        """Logs each change of the verdict Gloo wrote into a managed Proxy's status."""
        for proxy in self.proxy_cache.items():
            status = proxy.status_from(self.config.gloo_namespace)
            verdict = (status.parsed_state, status.reason) if status else (None, None)
            if self._reported_states.get(proxy.key) == verdict:
                continue
            self._reported_states[proxy.key] = verdict
            state, reason = verdict
            if state is None:
                continue
            level = (
                logging.ERROR
                if state is State.REJECTED
                else logging.WARNING
                if state is State.WARNING
                else logging.INFO
            )
            log.log(level, "Gloo reports %s %s%s", proxy.describe(), state.name, f": {reason}" if reason else "")


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
