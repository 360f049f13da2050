"""The Event recorder's bounds over time, on a clock the test moves: a series is written back at most every
`series_every`, the bucket refills at `per_minute`, and an outcome quiet for `forget_after` is a new Event again.
(What the API server makes of the writes is tested on the real one in tests/kube/test_events.py; here the sink
only notes what it was asked to write.)"""

from __future__ import annotations

from datetime import datetime

from proxycontroller.model.resources import PROXY, ObjectKey
from proxycontroller.store.events import WARNING, EventRecorder, Occurrence

FLAPPING = Occurrence(PROXY, ObjectKey("gloo-system", "p"), None, WARNING, "UpstreamSkipped", "left out x")


class Noted:
    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    async def create(self, occurrence: Occurrence, observed: datetime) -> str:
        self.writes.append(("create", 1))
        return f"p.{len(self.writes)}"

    async def update_series(self, occurrence: Occurrence, name: str, count: int, last_observed: datetime) -> None:
        self.writes.append(("series", count))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_series_is_written_back_seldom_and_a_quiet_outcome_is_forgotten() -> None:
    sink, clock = Noted(), Clock()
    recorder = EventRecorder(sink, series_every=30, forget_after=600, clock=clock)
    recorder.record(FLAPPING)
    assert await recorder.flush() is None
    for second in range(1, 61):  # once a second for a minute
        clock.now = second
        recorder.record(FLAPPING)
        await recorder.flush()
    assert sink.writes == [("create", 1), ("series", 31), ("series", 61)]
    clock.now = 60 + 600  # quiet for the forget window: a new Event
    recorder.record(FLAPPING)
    await recorder.flush()
    assert sink.writes[-1] == ("create", 1)


async def test_the_bucket_refills_at_the_rate_per_minute() -> None:
    sink, clock = Noted(), Clock()
    recorder = EventRecorder(sink, per_minute=6, clock=clock)
    for number in range(8):
        recorder.record(Occurrence(PROXY, ObjectKey("gloo-system", "p"), None, WARNING, "R", f"m{number}"))
    await recorder.flush()
    assert len(sink.writes) == 6  # two dropped
    clock.now = 10  # one token back (6 a minute)
    for number in range(8, 10):
        recorder.record(Occurrence(PROXY, ObjectKey("gloo-system", "p"), None, WARNING, "R", f"m{number}"))
    await recorder.flush()
    assert len(sink.writes) == 7
