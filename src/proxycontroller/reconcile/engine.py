"""The engine, after controller-runtime: watch inputs into caches, coalesce changes, ask the logic what should
exist, diff by bytes, write what differs, delete what it owns and no longer wants, repair drift, retry.

It knows resource kinds, labels and bytes, never what a virtual host is: the logic (`Logic.desired`) turns a
snapshot of the inputs into desired objects. The logic runs in a worker thread within a time budget, and any
failure of it (an exception, a wrong return type, a timeout) fails that pass only: the last good objects stay,
nothing is deleted, and the pass is retried with capped backoff. A change of an output (Gloo's status write,
a person's edit) needs no new translation: the last desired objects are compared again. An output the store
cannot read (emptied, garbage, a status nobody can decode) is restored when nothing in it names another owner:
it names none at all, or carries our labels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from proxycontroller.config import ReconcileSettings
from proxycontroller.model.canonical import CanonicalError
from proxycontroller.model.desired import Desired, DesiredObject, Note
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.reconcile.budget import BudgetedCaller, StillRunning
from proxycontroller.reconcile.diff import describe_parts_change, is_owned, merge_for_write, needs_write, parts_change
from proxycontroller.reconcile.metrics import Metrics
from proxycontroller.reconcile.verdicts import Verdicts
from proxycontroller.store.backoff import Backoff
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    StoreError,
    UnreadableError,
)
from proxycontroller.store.events import WARNING, Occurrence, Recorder
from proxycontroller.store.reports import ProblemReports
from proxycontroller.store.selection import labels_match

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5

T = TypeVar("T")


class Logic(Protocol):
    """Pure: the desired objects for a snapshot of the inputs."""

    def desired(self, snapshot: Snapshot) -> Desired: ...


@dataclass(frozen=True)
class Source:
    """An input kind: watched in `namespaces` (None: all) into a cache that the snapshot is made of."""

    kind: type[Resource]
    client: ResourceClient[Any]
    namespaces: Sequence[str] | None


@dataclass(frozen=True)
class Target:
    """An output kind: the engine owns the objects of this kind that carry its labels in `namespaces`."""

    kind: type[Resource]
    client: ResourceClient[Any]
    namespaces: Sequence[str] | None  # None: all
    compress_above: int | None = None  # spec bytes over which Gloo's compressed form is written


@dataclass
class PassResult:
    created: list[ObjectKey] = field(default_factory=list)
    updated: list[ObjectKey] = field(default_factory=list)
    deleted: list[ObjectKey] = field(default_factory=list)
    skipped_foreign: list[ObjectKey] = field(default_factory=list)
    warnings: tuple[str, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


@dataclass
class Health:
    """What the probes and `status` show: is the engine keeping up, and if not, why."""

    passes: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    failing_since: float | None = None  # wall clock
    last_success: float | None = None  # wall clock
    warnings: int = 0
    writes: int = 0  # creates, updates and deletes since start


class LogicFailure(Exception):
    """The logic failed this pass; the message names the strategy and the error."""


class Engine:
    def __init__(
        self,
        name: str,
        logic: Logic,
        sources: Sequence[Source],
        targets: Sequence[Target],
        ownership: Mapping[str, str],
        settings: ReconcileSettings,
        metrics: Metrics | None = None,
        verdicts: Verdicts | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.name = name
        self.logic = logic
        self.settings = settings
        self.ownership = dict(ownership)
        self.metrics = metrics or Metrics()
        self.health = Health()
        self._sources = tuple(sources)
        self._targets = {target.kind: target for target in targets}
        self.input_caches: dict[type[Resource], ResourceCache[Any]] = {
            source.kind: ResourceCache(source.kind, self.resync) for source in sources
        }
        self.output_caches: dict[type[Resource], ResourceCache[Any]] = {
            target.kind: ResourceCache(target.kind, self.mark_dirty) for target in targets
        }
        self._verdicts = verdicts
        self._recorder = recorder
        self._refusals = ProblemReports(log, logging.ERROR)  # objects in our way that are not ours to write
        self._caller: BudgetedCaller[Desired] = BudgetedCaller(f"{name} logic")
        self._dirty = asyncio.Event()
        self._inputs_changed = True
        self._desired: Desired | None = None
        self._reported_warnings: tuple[str, ...] = ()
        self._parts: dict[tuple[type[Resource], ObjectKey], Mapping[str, tuple[str, ...]]] = {}
        self._backoff = Backoff(settings.error_backoff_seconds, settings.error_backoff_cap_seconds)
        self.converged = asyncio.Event()  # set after a pass when no change arrived while it ran
        # When the last pass that did something (computed desired objects, or wrote) ended: only such a pass
        # opens a coalescing window. One that found nothing to do (Gloo's status write after ours) must not
        # make the next input change wait.
        self._last_pass_end = float("-inf")
        self._pass_did_work = False
        self._snapshot: Snapshot | None = None  # the last snapshot handed to the logic
        self._full_snapshot = True  # the next snapshot says nothing of what changed: the logic compares all

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the last successful translation left out, and why."""
        return self._reported_warnings

    # -- signals ---------------------------------------------------------------------------------------

    def mark_dirty(self) -> None:
        self.metrics.workqueue_adds_total.labels(self.name).inc()
        self.metrics.workqueue_depth.labels(self.name).set(1)
        self._dirty.set()
        self.converged.clear()

    def resync(self) -> None:
        """Compute the desired objects again at the next pass (an input changed, or the periodic resync)."""
        self._inputs_changed = True
        self.mark_dirty()

    @property
    def ready(self) -> bool:
        caches = [*self.input_caches.values(), *self.output_caches.values()]
        return all(cache.synced.is_set() for cache in caches)

    # -- running ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Watches the inputs and outputs and reconciles until cancelled."""
        self.converged.clear()
        async with asyncio.TaskGroup() as tasks:
            for source in self._sources:
                tasks.create_task(source.client.watch(self.input_caches[source.kind], source.namespaces))
            for kind, target in self._targets.items():
                tasks.create_task(target.client.watch(self.output_caches[kind], target.namespaces, self.ownership))
            tasks.create_task(self._periodic_resync())
            tasks.create_task(self._loop())

    async def _periodic_resync(self) -> None:
        # Level-triggered safety net: even if every event were lost, the state is re-checked this often, and
        # the logic compares every input itself instead of trusting the caches' record of what changed.
        while True:
            await asyncio.sleep(self.settings.resync_period_seconds)
            self._full_snapshot = True
            self.resync()

    async def _wait_for_burst_to_settle(self) -> None:
        await self._dirty.wait()
        settings = self.settings
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
        for cache in [*self.input_caches.values(), *self.output_caches.values()]:
            await cache.synced.wait()
        self.resync()
        while True:
            await self._wait_for_burst_to_settle()
            metrics = self.metrics
            metrics.workqueue_depth.labels(self.name).set(0)
            metrics.active_workers.labels(self.name).set(1)
            started = time.perf_counter()
            try:
                result = await self.reconcile_once()
            except (LogicFailure, StoreError) as exc:
                self._failed(exc)
                continue
            finally:
                metrics.active_workers.labels(self.name).set(0)
                metrics.reconcile_time_seconds.labels(self.name).observe(time.perf_counter() - started)
                if self._pass_did_work:
                    self._last_pass_end = time.monotonic()
            self._succeeded()
            if not self._dirty.is_set():
                self.converged.set()  # what it wrote is what is wanted, and nothing changed meanwhile
            if result.writes:
                done = {
                    "created": [str(k) for k in result.created],
                    "updated": [str(k) for k in result.updated],
                    "deleted": [str(k) for k in result.deleted],
                }
                said = "reconciled: created %s, updated %s, deleted %s"
                # Nested: a LogRecord has a `created` attribute of its own, which `extra` may not overwrite.
                log.info(said, *done.values(), extra={"reconciled": done, "controller": self.name})

    def _failed(self, exc: Exception) -> None:
        health = self.health
        health.consecutive_failures += 1
        health.last_error = str(exc)
        if health.failing_since is None:
            health.failing_since = time.time()
        delay = self._backoff.next()
        log.error("reconcile failed (attempt %d), retrying in %.1fs: %s", health.consecutive_failures, delay, exc)
        self.metrics.reconcile_errors_total.labels(self.name).inc()
        self.metrics.reconcile_total.labels(self.name, "error").inc()
        self.metrics.workqueue_retries_total.labels(self.name).inc()
        asyncio.get_running_loop().call_later(delay, self.mark_dirty)

    def _succeeded(self) -> None:
        health = self.health
        if health.consecutive_failures:
            log.info("reconcile succeeded again after %d failed attempts", health.consecutive_failures)
        health.consecutive_failures = 0
        health.last_error = None
        health.failing_since = None
        health.last_success = time.time()
        self._backoff.reset()
        self.metrics.reconcile_total.labels(self.name, "success").inc()

    # -- one pass --------------------------------------------------------------------------------------

    async def reconcile_once(self) -> PassResult:
        """One level-triggered pass: the desired objects (computed again only if an input changed), then
        create, update and delete until the outputs equal them."""
        self.health.passes += 1
        self._pass_did_work = False
        desired = await self._compute_desired()
        result = PassResult(warnings=desired.warnings)
        wanted: set[tuple[type[Resource], ObjectKey]] = set()
        for item in desired.objects:
            wanted.add((item.kind, item.key))
            await self._ensure(item, result)
        for kind, cache in self.output_caches.items():
            for stored in cache.items():
                if (kind, stored.key) not in wanted and is_owned(stored, self.ownership):
                    self._pass_did_work = True
                    await _finished(self._targets[kind].client.delete(stored.key))
                    cache.remove(stored.key, notify=False)
                    self.metrics.writes_total.labels("delete").inc()
                    result.deleted.append(stored.key)
                    self._parts.pop((kind, stored.key), None)
        if self._verdicts is not None:
            for cache in self.output_caches.values():
                self._verdicts.report(cache.items())
        self.health.writes += result.writes
        return result

    async def _compute_desired(self) -> Desired:
        if not self._inputs_changed and self._desired is not None:
            return self._desired
        self._inputs_changed = False
        self._pass_did_work = True
        snapshot = self._next_snapshot()
        started = time.perf_counter()
        try:
            desired = await self._caller.call(lambda: self.logic.desired(snapshot), self.settings.pass_timeout_seconds)
        except Exception as exc:
            self._inputs_changed = True  # the retry must compute again
            doing = getattr(self.logic, "progress", None)
            while_doing = f" (while {doing})" if isinstance(exc, TimeoutError | StillRunning) and doing else ""
            raise LogicFailure(f"{self.name}: {exc}{while_doing}") from exc
        if not isinstance(desired, Desired):
            self._inputs_changed = True
            raise LogicFailure(f"{self.name}: the logic returned {type(desired).__name__}, not Desired")
        self._desired = desired
        self.metrics.upstreams.set(sum(len(objects) for objects in snapshot.objects.values()))
        self.metrics.warnings.set(len(desired.warnings))
        self.health.warnings = len(desired.warnings)
        if desired.warnings != self._reported_warnings:
            said = set(self._reported_warnings)
            for warning in desired.warnings:
                self._warn(warning, desired, new=warning not in said)
            self._reported_warnings = desired.warnings
        log.debug("%s: desired objects computed in %.0f ms", self.name, (time.perf_counter() - started) * 1000)
        return desired

    def _warn(self, warning: str, desired: Desired, new: bool) -> None:
        """Logs a warning of the logic, with what it is about; a new one that regards an output object is also
        recorded on it (an Event, in kube mode)."""
        if not isinstance(warning, Note):
            log.warning("%s", warning)
            return
        log.warning("%s", warning, extra={"about": dict(warning.subjects), "reason": warning.reason})
        if not new or self._recorder is None or warning.regarding is None:
            return
        for item in desired.objects:
            if item.key == warning.regarding:
                self._record(item.kind, item.key, warning.reason, warning)
                return

    def _record(self, kind: type[Resource], key: ObjectKey, reason: str, message: str, uid: str | None = None) -> None:
        if self._recorder is None:
            return
        if uid is None:
            stored = self.output_caches[kind].get(key) if kind in self.output_caches else None
            uid = stored.metadata.uid if isinstance(stored, Resource) else None
        self._recorder.record(Occurrence(kind.KIND, key, uid, WARNING, reason, str(message)))

    def _next_snapshot(self) -> Snapshot:
        """The caches as they are, copied (one dict copy per kind), with the keys each touched since the last
        snapshot: a logic that answered for that one needs to look at those keys only."""
        objects = {kind: cache.copy() for kind, cache in self.input_caches.items()}
        touched = {kind: cache.take_touched() for kind, cache in self.input_caches.items()}
        previous = self._snapshot
        if previous is None or self._full_snapshot:
            snapshot = Snapshot.of_mappings(objects)
            self._full_snapshot = False
        else:
            snapshot = previous.followed_by(objects, touched)
        self._snapshot = snapshot
        return snapshot

    def _stored_form(self, desired: DesiredObject) -> Resource:
        target = self._targets[desired.kind]
        annotations = None
        if target.compress_above is not None and len(desired.spec.json) > target.compress_above:
            annotations = {COMPRESS_ANNOTATION: "true"}
        metadata = ObjectMeta(
            name=desired.key.name, namespace=desired.key.namespace, labels=dict(desired.labels), annotations=annotations
        )
        return desired.kind.model_validate({"metadata": metadata, "spec": desired.spec})

    async def _ensure(self, desired: DesiredObject, result: PassResult) -> None:
        client = self._targets[desired.kind].client
        cache = self.output_caches[desired.kind]
        wanted = self._stored_form(desired)
        current: Resource | UnreadableError | None = cache.get(desired.key)
        for _ in range(MAX_CONFLICT_RETRIES):
            if isinstance(current, UnreadableError):
                if not self._may_write_over(current):
                    self._refuse_unreadable(desired, current, result)
                    return
                self._pass_did_work = True
                try:
                    written = await _finished(client.replace(_over_unreadable(wanted, current)))
                except (ConflictError, NotFoundError):
                    self.metrics.conflicts_total.inc()
                    current = await _read(client, desired.key)
                    continue
                self._record_write(cache, written, desired, "update", result.updated, restored_from=current)
                return
            if current is None:
                self._pass_did_work = True
                try:
                    written = await _finished(client.create(wanted))
                except AlreadyExistsError:
                    # Not in the cache: not ours, unreadable, or created since the cache last heard. Decide on it.
                    current = await _read(client, desired.key)
                    continue
                self._record_write(cache, written, desired, "create", result.created)
                return
            if not is_owned(current, self.ownership):
                self._refuse_foreign(desired, current, result)
                return
            try:
                differs = needs_write(current, wanted)
            except CanonicalError as exc:
                log.warning("%s: stored spec unreadable (%s); writing it again", desired.describe(), exc)
                differs = True
            if not differs:
                self._parts[(desired.kind, desired.key)] = desired.parts
                return
            self._pass_did_work = True
            try:
                written = await _finished(client.replace(merge_for_write(current, wanted)))
            except (ConflictError, NotFoundError):
                # Someone wrote (or deleted) it since we read it: read it again, decide again.
                self.metrics.conflicts_total.inc()
                current = await _read(client, desired.key)
                continue
            self._record_write(cache, written, desired, "update", result.updated)
            return
        raise StoreError(f"{desired.describe()}: still conflicting after {MAX_CONFLICT_RETRIES} attempts")

    def _may_write_over(self, unreadable: UnreadableError) -> bool:
        """Restore an unreadable object that names no owner at all (empty, unparsable: nothing foreign can be
        lost) or that carries our labels; never one whose labels are another's, or unknown."""
        if unreadable.no_metadata:
            return True
        return unreadable.labels is not None and labels_match(unreadable.labels, self.ownership)

    def _record_write(
        self,
        cache: ResourceCache[Any],
        written: Resource,
        desired: DesiredObject,
        operation: str,
        done: list[ObjectKey],
        restored_from: UnreadableError | None = None,
    ) -> None:
        cache.upsert(written, notify=False)
        self.metrics.writes_total.labels(operation).inc()
        done.append(written.key)
        before = self._parts.get((desired.kind, desired.key))
        self._parts[(desired.kind, desired.key)] = desired.parts
        self._refusals.clear((desired.kind, desired.key))
        about = {desired.kind.KIND.kind.lower(): str(desired.key)}
        if restored_from is not None:
            log.warning(
                "%s restored: it was unreadable (%s)", desired.describe(), restored_from.reason, extra={"about": about}
            )
        else:
            log.info(
                "%s %sd%s",
                desired.describe(),
                operation,
                describe_parts_change(before, desired.parts),
                extra={"about": about, **parts_change(before, desired.parts)},
            )

    def _refuse_unreadable(self, desired: DesiredObject, unreadable: UnreadableError, result: PassResult) -> None:
        what, own = desired.describe(), self.ownership
        if unreadable.labels is None:
            said = (
                f"is unreadable ({unreadable.reason}): whether this controller manages it (labels {own}) cannot be told"
            )
        else:
            said = f"is unreadable ({unreadable.reason}) and not managed by this controller (labels {own})"
        self._refuse(desired, unreadable.version, f"{what} exists and {said}; leaving it untouched", result)

    def _refuse_foreign(self, desired: DesiredObject, current: Resource, result: PassResult) -> None:
        said = f"is not managed by this controller (labels {self.ownership})"
        message = f"{desired.describe()} exists and {said}; leaving it untouched"
        self._refuse(desired, current.metadata.resource_version, message, result, current.metadata.uid)

    def _refuse(
        self, desired: DesiredObject, version: str | None, message: str, result: PassResult, uid: str | None = None
    ) -> None:
        """Leaves an object that is not ours alone: logged (and recorded on it) once per version of it, not on
        every pass."""
        about = {desired.kind.KIND.kind.lower(): str(desired.key)}
        if self._refusals.report((desired.kind, desired.key), version, message, about):
            self._record(desired.kind, desired.key, "NotManaged", message, uid)
        result.skipped_foreign.append(desired.key)


async def _finished(write: Awaitable[T]) -> T:
    """A write is let finish when the pass is cancelled (SIGTERM) while it is in flight, so that what the store
    holds is known (cached, logged) before the Lease is released to the next leader: its result is returned and
    the cancellation is made again, to take effect at the pass's next await. A second cancellation (the grace
    period is over) stops the waiting."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            log.info("stopping: finishing the write in flight")
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # given up on (the grace period is over): nobody waits for its outcome
                raise
        if task.cancelled() or task.exception() is not None:
            raise
        current = asyncio.current_task()
        assert current is not None
        current.cancel()
        return task.result()


async def _read(client: ResourceClient[Any], key: ObjectKey) -> Resource | UnreadableError | None:
    """The object as stored now; an unreadable one as the error that describes it, for the caller to decide on."""
    try:
        found: Resource | None = await client.get(key)
    except UnreadableError as exc:
        return exc
    return found


def _over_unreadable(wanted: Resource, unreadable: UnreadableError) -> Resource:
    """What to write over an unreadable object: the wanted one, at the version the store gave it, keeping the
    labels others put on it (when they could be read) as `merge_for_write` does for a readable one."""
    labels = {**(unreadable.labels or {}), **(wanted.metadata.labels or {})}
    metadata = wanted.metadata.model_copy(update={"resource_version": unreadable.version, "labels": labels})
    return wanted.model_copy(update={"metadata": metadata})
