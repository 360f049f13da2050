"""Lease-based leader election, after client-go's leaderelection (what controller-runtime's manager uses).

Several replicas run; the one holding a `coordination.k8s.io/v1` Lease leads, the others wait. Every decision is
taken on the Lease as the API server holds it, and every write is a create or a replace carrying the
resourceVersion just read, so of two candidates that race only one write lands (the other gets 409).

- Acquire: a missing Lease is created (409 AlreadyExists: another candidate was first). A Lease without holder
  (released) is taken at once. A Lease held by another candidate is taken over only once it has expired: its
  renewTime + leaseDurationSeconds has passed on our clock, *and* we have seen that very object (the same
  resourceVersion) unchanged for leaseDurationSeconds on our monotonic clock. The second rule is client-go's and
  keeps a candidate whose wall clock runs ahead of the holder's from taking over a live lease; it also means a
  candidate that starts after the holder died waits up to one lease duration.
- Renew: every retry_period. A failed renewal (API error, connection error, 409, a request that hangs) is retried
  every retry_period until renew_deadline has passed since the start of the last successful renewal; then
  leadership is given up. Others cannot take over before lease_duration after that renewal, so with
  renew_deadline < lease_duration the old leader has stopped `lead` first (as long as `lead` stops promptly when
  cancelled). Seeing another holder in the Lease gives leadership up at once.
- Release: when `run` is cancelled (clean shutdown) or `lead` ends by itself, the Lease is released as client-go's
  ReleaseOnCancel does (holder cleared, duration 1 s), so a waiting candidate takes over within a retry_period.

Needs get, create and update on leases in the Lease's namespace, nothing more.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx2
import msgspec
from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

log = logging.getLogger(__name__)

# Errors a request to the API server may end in that are worth retrying (ApiError is an HTTPError; TimeoutError,
# which asyncio.timeout raises for a request that hangs, is an OSError).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError, OSError)
ACQUIRE_JITTER = 0.2  # waiting candidates retry after retry_period * [1, 1.2], so they do not poll in lockstep
RELEASED_LEASE_SECONDS = 1  # what client-go writes into a released Lease


def default_identity() -> str:
    """This replica's name in the Lease: the host name (the pod's name in Kubernetes) and a random suffix, as
    controller-runtime does, so two processes on one host never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class LeaderElectionSettings:
    """Durations in seconds; the defaults are controller-runtime's."""

    lease_name: str
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration: int = 15  # written into the Lease (leaseDurationSeconds, whole seconds)
    renew_deadline: float = 10.0  # a leader that could not renew for this long gives up
    retry_period: float = 2.0  # how often the leader renews and candidates try to acquire
    release_on_cancel: bool = True  # release the Lease when run() is cancelled or lead() ends

    def __post_init__(self) -> None:
        if not self.lease_name or not self.namespace or not self.identity:
            raise ValueError("lease_name, namespace and identity must not be empty")
        if not 0 < self.retry_period * (1 + ACQUIRE_JITTER) < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period * 1.2 < renew_deadline < lease_duration; got "
                f"retry_period={self.retry_period}, renew_deadline={self.renew_deadline}, "
                f"lease_duration={self.lease_duration}"
            )

    def describe(self) -> str:
        return f"Lease {self.namespace}/{self.lease_name}"


class LeadershipLost(Exception):
    """The leader could not renew its Lease within the renew deadline, or saw another holder in it."""


class _Outcome(enum.Enum):
    HOLDING = "holding"  # the Lease is ours: created, taken over or renewed
    HELD_BY_OTHER = "held by another candidate"  # and not expired
    CONFLICT = "conflict"  # someone else wrote the Lease between our read and our write (409)


def _micro_now() -> datetime:
    now = datetime.now(UTC)
    # lightkube writes a datetime whose microsecond is 0 without a fraction ("...:05Z"), which the API server's
    # MicroTime parser rejects (it wants exactly six digits); one microsecond later is as good a time.
    return now if now.microsecond else now.replace(microsecond=1)


class LeaderElector:
    """Runs `lead` only while this replica holds the Lease. One `run` at a time; `run` may be called again after
    it returned or raised."""

    def __init__(self, client: AsyncClient, settings: LeaderElectionSettings) -> None:
        self._client = client
        self.settings = settings
        self._running = False
        self._leading = False
        self._may_hold = False  # a write of ours may have made us the holder: release on cancel
        self._observed_version: str | None = None
        self._observed_at = 0.0  # monotonic time at which _observed_version was first seen
        self._observed_holder: str | None = None
        self._abandoned = False

    @property
    def identity(self) -> str:
        return self.settings.identity

    @property
    def is_leader(self) -> bool:
        """True while `lead` runs (or is being started) under a Lease renewed within the renew deadline."""
        return self._leading

    def abandon(self) -> None:
        """Do not release the Lease on the way out (the process must exit now, and the API server may not
        answer): it expires after its lease duration."""
        self._may_hold = False
        self._abandoned = True

    @property
    def observed_holder(self) -> str | None:
        """The holder in the last Lease this elector read or wrote (None: none seen yet, or released)."""
        return self._observed_holder

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Waits until this replica holds the Lease, then runs `lead()` as a task while it keeps holding it.

        - leadership lost (no renewal within renew_deadline, or another holder seen): `lead` is cancelled (and
          awaited), then `LeadershipLost` is raised; the Lease is not released.
        - `run` cancelled: `lead` is cancelled and awaited, the Lease released (release_on_cancel), and the
          cancellation propagates.
        - `lead` returns or raises by itself: the Lease is released (release_on_cancel) and `run` returns, or
          raises what `lead` raised.
        """
        if self._running:
            raise RuntimeError(f"{self.identity}: leader election for {self.settings.describe()} is already running")
        self._running = True
        self._may_hold = False
        try:
            renewed_at = await self._acquire()
            await self._lead(lead, renewed_at)
        except asyncio.CancelledError:
            if self.settings.release_on_cancel and self._may_hold:
                await self._release()
            raise
        finally:
            self._running = False
            self._leading = False

    # -- phases ----------------------------------------------------------------------------------------

    async def _acquire(self) -> float:
        """Tries every retry_period (with jitter) until the Lease is ours; returns the monotonic time at which
        the successful attempt started."""
        settings = self.settings
        log.info("%s: waiting to acquire %s", self.identity, settings.describe())
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(settings.renew_deadline):
                    outcome = await self._try_acquire_or_renew()
            except TRANSIENT_ERRORS as exc:
                log.warning("%s: could not acquire %s: %s", self.identity, settings.describe(), _describe(exc))
            else:
                if outcome is _Outcome.HOLDING:
                    return started
            await asyncio.sleep(settings.retry_period * random.uniform(1.0, 1.0 + ACQUIRE_JITTER))

    async def _lead(self, lead: Callable[[], Awaitable[None]], renewed_at: float) -> None:
        settings = self.settings
        self._leading = True
        log.info("%s: became leader (%s)", self.identity, settings.describe())

        async def leading() -> None:
            await lead()

        task = asyncio.create_task(leading(), name=f"leader {self.identity}")
        try:
            await self._renew(task, renewed_at)
        except LeadershipLost as exc:
            self._leading = False
            self._may_hold = False  # a leader that lost the Lease never writes it again
            log.warning("%s: lost leadership (%s): %s", self.identity, settings.describe(), exc)
            await _stop(task)
            raise
        finally:
            if not task.done():  # cancelled, or an unexpected error while renewing
                self._leading = False
                await _stop(task)
        self._leading = False
        if self._abandoned:
            task.result()
            return
        if task.cancelled():
            log.info("%s: lead was cancelled; giving up leadership (%s)", self.identity, settings.describe())
        elif task.exception() is not None:
            log.error("%s: lead failed; giving up leadership (%s)", self.identity, settings.describe())
        else:
            log.info("%s: lead returned; giving up leadership (%s)", self.identity, settings.describe())
        if settings.release_on_cancel:
            await self._release()
        task.result()  # lead's own error (or cancellation), if any

    async def _renew(self, task: asyncio.Task[None], renewed_at: float) -> None:
        """Renews every retry_period until `task` is done; raises LeadershipLost when renewal failed for
        renew_deadline since the start of the last successful one, or another holder appeared."""
        settings = self.settings
        next_attempt = renewed_at + settings.retry_period
        while True:
            await asyncio.wait({task}, timeout=max(0.0, next_attempt - time.monotonic()))
            if task.done():
                return
            deadline = renewed_at + settings.renew_deadline
            started = time.monotonic()
            if started >= deadline:
                raise LeadershipLost(
                    f"could not renew the Lease within the renew deadline ({settings.renew_deadline}s)"
                )
            budget = asyncio.timeout(deadline - started)
            try:
                async with budget:
                    outcome = await self._try_acquire_or_renew()
            except TRANSIENT_ERRORS as exc:
                if budget.expired():
                    raise LeadershipLost(
                        f"renewing the Lease took past the renew deadline ({settings.renew_deadline}s)"
                    ) from exc
                log.warning("%s: could not renew %s: %s", self.identity, settings.describe(), _describe(exc))
            else:
                if outcome is _Outcome.HOLDING:
                    renewed_at = started
                    next_attempt = started + settings.retry_period
                    continue
                if outcome is _Outcome.HELD_BY_OTHER:
                    raise LeadershipLost(f"the Lease is now held by {self._observed_holder}")
                log.info("%s: %s changed while renewing; retrying", self.identity, settings.describe())
            next_attempt = min(time.monotonic() + settings.retry_period, deadline)

    async def _release(self) -> None:
        """Clears the holder if it is still us (with the resourceVersion read, so nobody's newer claim is undone);
        bounded by renew_deadline, errors only logged: the Lease then expires by itself."""
        settings = self.settings
        try:
            async with asyncio.timeout(settings.renew_deadline):
                lease = await self._get()
                if lease is None or lease.spec is None or lease.spec.holderIdentity != self.identity:
                    return
                now = _micro_now()
                spec = msgspec.structs.replace(
                    lease.spec,
                    holderIdentity=None,
                    leaseDurationSeconds=RELEASED_LEASE_SECONDS,
                    acquireTime=now,
                    renewTime=now,
                )
                await self._client.replace(Lease(metadata=lease.metadata, spec=spec))
            log.info("%s: released %s", self.identity, settings.describe())
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "%s: could not release %s (%s); it expires after its lease duration",
                self.identity,
                settings.describe(),
                _describe(exc),
            )
        finally:
            self._may_hold = False

    # -- one attempt -----------------------------------------------------------------------------------

    async def _try_acquire_or_renew(self) -> _Outcome:
        settings = self.settings
        lease = await self._get()
        now = _micro_now()
        if lease is None:
            spec = LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=settings.lease_duration,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            )
            meta = ObjectMeta(name=settings.lease_name, namespace=settings.namespace)
            return await self._write(self._client.create(Lease(metadata=meta, spec=spec)))
        self._observe(lease)
        current = lease.spec or LeaseSpec()
        holder = current.holderIdentity
        if holder and holder != self.identity and not self._expired(current):
            self._may_hold = False
            return _Outcome.HELD_BY_OTHER
        if holder == self.identity:
            spec = msgspec.structs.replace(
                current,
                leaseDurationSeconds=settings.lease_duration,
                renewTime=now,
                acquireTime=current.acquireTime or now,
            )
        else:
            spec = msgspec.structs.replace(
                current,
                holderIdentity=self.identity,
                leaseDurationSeconds=settings.lease_duration,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=(current.leaseTransitions or 0) + 1,
            )
        # The metadata read carries its resourceVersion: the replace fails with 409 if anyone wrote in between.
        return await self._write(self._client.replace(Lease(metadata=lease.metadata, spec=spec)))

    async def _get(self) -> Lease | None:
        try:
            return await self._client.get(Lease, self.settings.lease_name, namespace=self.settings.namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def _write(self, write: Awaitable[Lease]) -> _Outcome:
        self._may_hold = True
        try:
            written = await write
        except ApiError as exc:
            if exc.status.code == 409:  # AlreadyExists on create, Conflict on replace: someone moved first
                return _Outcome.CONFLICT
            raise
        self._observe(written)
        return _Outcome.HOLDING

    def _observe(self, lease: Lease) -> None:
        version = lease.metadata.resourceVersion if lease.metadata else None
        if version is None or version != self._observed_version:
            self._observed_version = version
            self._observed_at = time.monotonic()
        holder = (lease.spec.holderIdentity if lease.spec else None) or None
        if holder != self._observed_holder:
            self._observed_holder = holder
            if holder is None:
                log.info("%s: %s has no holder", self.identity, self.settings.describe())
            elif holder != self.identity:
                log.info("%s: %s is held by %s", self.identity, self.settings.describe(), holder)

    def _expired(self, spec: LeaseSpec) -> bool:
        """Whether a Lease held by another candidate may be taken over (see the module's docstring)."""
        duration = spec.leaseDurationSeconds or self.settings.lease_duration
        if time.monotonic() - self._observed_at < duration:
            return False
        renewed = spec.renewTime or spec.acquireTime
        return renewed is None or renewed + timedelta(seconds=duration) <= datetime.now(UTC)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancels `task` and waits until it is done, without raising its outcome (an error is logged)."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("lead ended with an error while being stopped", exc_info=task.exception())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status.code} {exc.status.reason}: {exc.status.message}"
    if isinstance(exc, TimeoutError):
        return "request timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
