"""What an operator should see on an object (Kubernetes Events in kube mode), recorded without ever slowing or
failing a pass, and bounded so that a flapping input cannot flood etcd.

As client-go's event recorder does: an occurrence equal to one recorded lately (same object, type, reason and
message) is not a new Event but one more in the series of the first (`series.count`, `lastObservedTime`), and
that series is written back at most every `series_every` seconds. Every write (new Event or series update)
takes a token from a bucket of `per_minute` refilled evenly; a new Event that finds the bucket empty is dropped
(counted, and said in one log line per minute), a series update waits for a token. Writes happen in `run`, a
task beside the engine; a failed one is logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from proxycontroller.model.resources import ObjectKey, ResourceKind
from proxycontroller.store.errors import StoreError

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Occurrence:
    """Something notable about one object: an Event's `regarding`, type, reason (CamelCase) and note."""

    kind: ResourceKind
    key: ObjectKey
    uid: str | None
    type: str
    reason: str
    message: str
    action: str = "Reconcile"

    @property
    def subject(self) -> dict[str, str]:
        """For a structured log line: `{"proxy": "ns/name"}`."""
        return {self.kind.kind.lower(): str(self.key)}


class EventSink(Protocol):
    async def create(self, occurrence: Occurrence, observed: datetime) -> str:
        """Writes a new Event; returns its name."""
        ...

    async def update_series(self, occurrence: Occurrence, name: str, count: int, last_observed: datetime) -> None:
        """Writes the series of Event `name`: seen `count` times, last at `last_observed`."""
        ...


class Recorder(Protocol):
    def record(self, occurrence: Occurrence) -> None: ...


@dataclass
class _Series:
    occurrence: Occurrence
    count: int
    last_seen: float  # monotonic
    last_observed: datetime  # wall clock, for the Event
    name: str | None = None  # the Event written (None: not yet, or dropped)
    dropped: bool = False  # the first one found no token: its repeats are not written either
    written_count: int = 0  # what the stored Event says
    last_written: float = field(default=float("-inf"))  # monotonic


class EventRecorder:
    def __init__(
        self,
        sink: EventSink,
        *,
        per_minute: int = 30,
        series_every: float = 30.0,
        forget_after: float = 600.0,
        max_tracked: int = 1024,
        count: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._per_minute = per_minute
        self._series_every = series_every
        self._forget_after = forget_after
        self._max_tracked = max_tracked
        self._count = count or (lambda outcome: None)
        self._clock = clock
        self._tokens = float(per_minute)
        self._refilled = clock()
        self._series: OrderedDict[Occurrence, _Series] = OrderedDict()  # least recently seen first
        self._wake = asyncio.Event()
        self._dropped_unsaid = 0
        self._last_failure: str | None = None

    # -- the engine's side: never blocks, never raises ---------------------------------------------------

    def record(self, occurrence: Occurrence) -> None:
        now = self._clock()
        series = self._series.get(occurrence)
        if series is not None and now - series.last_seen < self._forget_after:
            series.count += 1
            series.last_seen = now
            series.last_observed = datetime.now(UTC)
            self._series.move_to_end(occurrence)
        else:
            self._series[occurrence] = _Series(occurrence, 1, now, datetime.now(UTC))
            self._series.move_to_end(occurrence)
            while len(self._series) > self._max_tracked:
                self._series.popitem(last=False)
        self._wake.set()

    # -- the writer --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Writes what was recorded until cancelled."""
        last_said = self._clock()
        while True:
            self._wake.clear()  # before the writes: what is recorded while they run wakes the next round
            wait = await self.flush()
            now = self._clock()
            if self._dropped_unsaid and now - last_said >= 60:
                dropped, self._dropped_unsaid = self._dropped_unsaid, 0
                log.warning("%d Events dropped in the last minute (over %d a minute)", dropped, self._per_minute)
                last_said = now
            timeout = wait if wait is not None else (60.0 if self._dropped_unsaid else None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def flush(self) -> float | None:
        """Writes what is due now; returns in how many seconds something else falls due (None: nothing)."""
        waits: list[float] = []
        for series in list(self._series.values()):
            now = self._clock()
            if series.dropped or (series.name is not None and series.count == series.written_count):
                continue  # dropped, or nothing new to say
            if series.name is not None and series.last_written + self._series_every > now:
                waits.append(series.last_written + self._series_every - now)  # a series is written back seldom
                continue
            if self._take_token(now):
                await self._write(series, now)
            elif series.name is None:  # a new Event over the cap: dropped, and so are its repeats
                series.dropped = True
                self._dropped_unsaid += 1
                self._count("dropped")
            else:  # a series update waits for the next token
                waits.append((1 - self._tokens) * 60 / self._per_minute)
        return min(waits, default=None)

    def _take_token(self, now: float) -> bool:
        self._tokens = min(float(self._per_minute), self._tokens + (now - self._refilled) * self._per_minute / 60)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def _write(self, series: _Series, now: float) -> None:
        occurrence, count = series.occurrence, series.count
        try:
            if series.name is None:
                series.name = await self._sink.create(occurrence, series.last_observed)
                outcome = "created"
            else:
                await self._sink.update_series(occurrence, series.name, count, series.last_observed)
                outcome = "updated"
        except Exception as exc:  # a failed Event must never fail the controller: said, counted, dropped
            series.dropped = series.name is None
            series.written_count = count
            series.last_written = now
            self._count("failed")
            text = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            level = logging.WARNING if text != self._last_failure else logging.DEBUG
            self._last_failure = text
            log.log(
                level,
                "could not record Event %s on %s %s: %s",
                occurrence.reason,
                occurrence.kind.kind,
                occurrence.key,
                text,
                extra={"about": occurrence.subject},
            )
            return
        series.written_count = count
        series.last_written = now
        self._count(outcome)
