"""Lease-based leader election against the real kube-apiserver, authenticated as the controller's service account.

The rendered RBAC grants get, create and update on leases in gloo-system and nothing more (no list, watch, patch
or delete), and every request here goes through that grant. Each test uses a Lease of its own, so the tests share
the API server. Candidates are LeaderElectors in this event loop with a client each; `lead` callbacks record when
they ran (a monotonic clock shared by all of them), which is how "one leader at a time" is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
import yaml
from lightkube import AsyncClient, KubeConfig
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from proxycontroller.manager.leader import LeaderElectionSettings, LeaderElector, LeadershipLost
from proxycontroller.testing.servers.apiserver import CONTROLLER_NAMESPACE, LOOPBACK, KubeTestCluster

pytestmark = pytest.mark.kube

# Short durations for the tests (controller-runtime's are 15 s / 10 s / 2 s).
LEASE_DURATION = 3
RENEW_DEADLINE = 2.0
RETRY_PERIOD = 0.5
# Scheduling and request latency on top of the computed bounds.
SLACK = 0.4


@dataclass
class Term:
    """One stretch of time a candidate's `lead` ran."""

    who: str
    started: float
    stopped: float | None = None


@dataclass
class Terms:
    all: list[Term] = field(default_factory=list)

    def lead(self, who: str, hold: float | None = None) -> Callable[[], Awaitable[None]]:
        """A `lead` callback that records its term; it runs until cancelled, or returns after `hold` seconds."""

        async def lead() -> None:
            term = Term(who, time.monotonic())
            self.all.append(term)
            try:
                if hold is None:
                    await asyncio.Event().wait()
                else:
                    await asyncio.sleep(hold)
            finally:
                term.stopped = time.monotonic()

        return lead

    def of(self, who: str) -> list[Term]:
        return [term for term in self.all if term.who == who]

    def running(self) -> list[Term]:
        return [term for term in self.all if term.stopped is None]

    def assert_one_at_a_time(self) -> None:
        ordered = sorted(self.all, key=lambda term: term.started)
        for before, after in itertools.pairwise(ordered):
            assert before.stopped is not None, f"{before.who} still leads while {after.who} leads"
            assert before.stopped <= after.started, (
                f"{before.who} led until {before.stopped:.3f}, {after.who} from {after.started:.3f}"
            )


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls `check` until it holds; returns the monotonic time at which it was seen to hold."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic()


class Relay:
    """A TCP relay in front of the API server, to cut one candidate off it: `refuse` closes every connection and
    the listening port (requests fail at once), `blackhole` keeps connections open and passes nothing on (requests
    hang). The API server's certificate is for 127.0.0.1, which the relay listens on too."""

    def __init__(self, port: int) -> None:
        self._target_port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.mode: Literal["pass", "refuse", "blackhole"] = "pass"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        return f"https://{LOOPBACK}:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode != "pass":
            await self._pipe(reader, None)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self._target_port)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None) -> None:
        try:
            while data := await source.read(65536):
                if self.mode == "pass" and sink is not None:
                    sink.write(data)
                    await sink.drain()
        finally:
            if sink is not None and self.mode != "blackhole":
                sink.close()

    def cut(self, mode: Literal["refuse", "blackhole"]) -> None:
        self.mode = mode
        if mode == "refuse":
            self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


class InLockstep(AsyncClient):
    """A client whose first read of the Lease waits until every candidate sharing `barrier` has read it too, so
    that they all decide on the same object and all write it: only optimistic concurrency can pick one."""

    def __init__(self, config: KubeConfig, barrier: asyncio.Barrier) -> None:
        super().__init__(config)
        self._barrier: asyncio.Barrier | None = barrier

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        found = await super().get(*args, **kwargs)
        if self._barrier is not None:
            barrier, self._barrier = self._barrier, None
            await barrier.wait()
        return found


class Candidates:
    """Electors for one Lease of this test's own, each with its own client, all stopped at the end."""

    def __init__(self, cluster: KubeTestCluster) -> None:
        self.cluster = cluster
        self.lease_name = f"leader-test-{uuid.uuid4().hex[:8]}"
        self.terms = Terms()
        self._clients: list[AsyncClient] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._relays: list[Relay] = []
        self.observer = self.client()

    def client(self, server: str | None = None, lockstep: asyncio.Barrier | None = None) -> AsyncClient:
        """A client as the controller's service account, to the API server or to `server` (a relay)."""
        config: dict[str, Any] = yaml.safe_load(self.cluster.controller_kubeconfig.read_text())
        if server is not None:
            config["clusters"][0]["cluster"]["server"] = server
        kubeconfig = KubeConfig.from_dict(config)
        client = AsyncClient(kubeconfig) if lockstep is None else InLockstep(kubeconfig, lockstep)
        self._clients.append(client)
        return client

    async def relayed_client(self) -> tuple[AsyncClient, Relay]:
        relay = Relay(self.cluster.apiserver_port)
        self._relays.append(relay)
        return self.client(await relay.start()), relay

    def elector(self, who: str, client: AsyncClient | None = None, **overrides: Any) -> LeaderElector:
        settings: dict[str, Any] = {
            "lease_duration": LEASE_DURATION,
            "renew_deadline": RENEW_DEADLINE,
            "retry_period": RETRY_PERIOD,
        }
        settings.update(overrides)
        return LeaderElector(
            client or self.client(),
            LeaderElectionSettings(self.lease_name, CONTROLLER_NAMESPACE, identity=who, **settings),
        )

    def start(self, elector: LeaderElector, hold: float | None = None) -> asyncio.Task[None]:
        task = asyncio.create_task(elector.run(self.terms.lead(elector.identity, hold)))
        self._tasks.append(task)
        return task

    def spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._tasks.append(task)
        return task

    async def lead(self, elector: LeaderElector, timeout: float = 10.0) -> tuple[Term, asyncio.Task[None]]:
        """Starts `elector` and waits until it leads; its term, and the task running it."""
        task = self.start(elector)
        await eventually(lambda: bool(self.terms.of(elector.identity)), timeout, f"{elector.identity} to lead")
        return self.terms.of(elector.identity)[-1], task

    async def lease(self) -> LeaseSpec:
        lease = await self.observer.get(Lease, self.lease_name, namespace=CONTROLLER_NAMESPACE)
        assert lease.spec is not None
        return lease.spec

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for relay in self._relays:
            relay.close()
        for client in self._clients:
            await client.close()


@pytest.fixture
async def candidates(kube_cluster: KubeTestCluster) -> AsyncIterator[Candidates]:
    group = Candidates(kube_cluster)
    try:
        yield group
    finally:
        await group.close()


def renewed(spec: LeaseSpec) -> datetime:
    assert spec.renewTime is not None
    return spec.renewTime


def test_settings_are_checked_and_each_elector_gets_its_own_identity() -> None:
    first, second = LeaderElectionSettings("lease", "ns"), LeaderElectionSettings("lease", "ns")
    assert first.identity != second.identity
    assert (first.lease_duration, first.renew_deadline, first.retry_period) == (15, 10.0, 2.0)
    with pytest.raises(ValueError, match="renew_deadline < lease_duration"):
        LeaderElectionSettings("lease", "ns", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElectionSettings("lease", "ns", renew_deadline=2, retry_period=2)


async def test_exactly_one_of_several_candidates_wins_a_new_lease(candidates: Candidates) -> None:
    electors = [candidates.elector(f"candidate-{n}") for n in range(4)]
    for elector in electors:  # all at once: their creates race, one lands, the others get 409
        candidates.start(elector)
    await eventually(lambda: bool(candidates.terms.all), 10, "a leader")
    (leader,) = candidates.terms.all
    await eventually(
        lambda: all(e.observed_holder == leader.who for e in electors), 10, "every candidate to see the leader"
    )
    spec = await candidates.lease()
    assert (spec.holderIdentity, spec.leaseTransitions, spec.leaseDurationSeconds) == (leader.who, 0, LEASE_DURATION)
    assert [e.identity for e in electors if e.is_leader] == [leader.who]
    assert candidates.terms.running() == [leader]


@pytest.mark.parametrize("lease_state", ["absent", "released"])
async def test_candidates_that_read_the_same_lease_cannot_both_take_it(
    candidates: Candidates, lease_state: str
) -> None:
    """Three candidates read the Lease (absent, or released by its last holder) at the same moment and all try to
    take it: the create, or the replace carrying the resourceVersion read, lands for exactly one of them."""
    if lease_state == "released":
        with pytest.raises(RuntimeError):
            await candidates.elector("previous").run(_fail)
        assert (await candidates.lease()).holderIdentity is None
    barrier = asyncio.Barrier(3)
    electors = [candidates.elector(f"racer-{n}", client=candidates.client(lockstep=barrier)) for n in range(3)]
    for elector in electors:
        candidates.start(elector)
    await eventually(lambda: bool(candidates.terms.all), 10, "a leader")
    (leader,) = candidates.terms.all
    await eventually(
        lambda: all(e.observed_holder == leader.who for e in electors), 10, "every candidate to see the leader"
    )
    assert candidates.terms.running() == [leader]
    assert [e.identity for e in electors if e.is_leader] == [leader.who]
    assert (await candidates.lease()).holderIdentity == leader.who


async def _fail() -> None:
    raise RuntimeError("lead failed")


async def test_two_candidates_never_lead_at_the_same_time(candidates: Candidates) -> None:
    """Each leads for a moment, hands over (its lead returns, the Lease is released), steps back briefly and
    competes again: the Lease changes hands again and again, and the terms never overlap."""
    electors = [candidates.elector("replica-a"), candidates.elector("replica-b")]
    both_leading: list[float] = []

    async def compete(elector: LeaderElector) -> None:
        while True:
            await elector.run(candidates.terms.lead(elector.identity, hold=0.3))
            await asyncio.sleep(2 * RETRY_PERIOD)  # let the other one take its turn

    async def watch() -> None:
        while True:
            if all(e.is_leader for e in electors):
                both_leading.append(time.monotonic())
            await asyncio.sleep(0.005)

    for elector in electors:
        candidates.spawn(compete(elector))
    candidates.spawn(watch())
    await eventually(
        lambda: all(len([t for t in candidates.terms.of(e.identity) if t.stopped]) >= 3 for e in electors),
        30,
        "each candidate to have led three times",
    )
    candidates.terms.assert_one_at_a_time()
    assert not both_leading
    spec = await candidates.lease()
    assert (spec.leaseTransitions or 0) >= 5


async def test_a_leader_shut_down_cleanly_hands_over_at_once(candidates: Candidates) -> None:
    """controller-runtime's durations: without the release the successor would wait 15 s."""
    durations: dict[str, Any] = {"lease_duration": 15, "renew_deadline": 10.0, "retry_period": RETRY_PERIOD}
    first, second = candidates.elector("first", **durations), candidates.elector("second", **durations)
    term, first_task = await candidates.lead(first)
    candidates.start(second)
    await eventually(lambda: second.observed_holder == "first", 10, "the second candidate to see the leader")

    first_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_task
    assert term.stopped is not None
    assert not first.is_leader
    await eventually(lambda: bool(candidates.terms.of("second")), 5, "the second candidate to lead")

    handover = candidates.terms.of("second")[0].started - term.stopped
    assert handover < RETRY_PERIOD * 1.2 + SLACK, f"took over {handover:.2f}s after the release"
    candidates.terms.assert_one_at_a_time()
    spec = await candidates.lease()
    assert (spec.holderIdentity, spec.leaseTransitions, spec.leaseDurationSeconds) == ("second", 1, 15)


async def test_a_crashed_leader_is_replaced_only_after_its_lease_expires(candidates: Candidates) -> None:
    crashing = candidates.elector("crashing", release_on_cancel=False)
    successor = candidates.elector("successor")
    term, crashing_task = await candidates.lead(crashing)
    candidates.start(successor)
    await eventually(lambda: successor.observed_holder == "crashing", 10, "the successor to see the leader")

    crashing_task.cancel()  # stops renewing without releasing, as a killed process would
    with pytest.raises(asyncio.CancelledError):
        await crashing_task
    crashed_at = time.monotonic()
    last_renewal = renewed(await candidates.lease())
    assert (await candidates.lease()).holderIdentity == "crashing"

    await eventually(lambda: bool(candidates.terms.of("successor")), LEASE_DURATION + 5, "the successor to lead")
    takeover = candidates.terms.of("successor")[0].started - crashed_at
    spec = await candidates.lease()
    assert spec.holderIdentity == "successor"
    assert spec.acquireTime is not None
    # By the Lease itself: taken only after the crashed leader's renewTime + leaseDurationSeconds.
    assert (spec.acquireTime - last_renewal).total_seconds() >= LEASE_DURATION
    # By this loop's clock: the last renewal was at most one retry period (and a request) before the crash, and
    # the successor, polling every retry period (+20% jitter), takes over soon after the expiry.
    assert LEASE_DURATION - RETRY_PERIOD - SLACK <= takeover <= LEASE_DURATION + 2 * RETRY_PERIOD * 1.2 + SLACK, (
        f"took over {takeover:.2f}s after the crash"
    )
    assert term.stopped is not None
    candidates.terms.assert_one_at_a_time()


async def test_a_holder_whose_clock_lags_keeps_the_lease_as_long_as_it_renews_it(candidates: Candidates) -> None:
    """Wall clocks alone are not trusted: a holder whose renewTimes are an hour old (its clock lags) keeps the
    Lease while it renews it, because the candidate sees the object change. Once it stops, the candidate waits a
    full lease duration of its own observation."""
    meta = ObjectMeta(name=candidates.lease_name, namespace=CONTROLLER_NAMESPACE)
    spec = LeaseSpec(holderIdentity="lagging", leaseDurationSeconds=LEASE_DURATION, renewTime=an_hour_ago())
    await candidates.observer.create(Lease(metadata=meta, spec=spec))

    async def lagging_holder() -> None:
        while True:
            await asyncio.sleep(RETRY_PERIOD)
            lease = await candidates.observer.get(Lease, candidates.lease_name, namespace=CONTROLLER_NAMESPACE)
            assert lease.spec is not None
            lease.spec.renewTime = an_hour_ago()
            await candidates.observer.replace(lease)

    holder = candidates.spawn(lagging_holder())
    candidate = candidates.elector("punctual")
    candidates.start(candidate)
    await eventually(lambda: candidate.observed_holder == "lagging", 10, "the candidate to see the holder")
    # Trusting renewTime alone, the candidate would take over at its next attempt, within a retry period.
    until = time.monotonic() + LEASE_DURATION + 1
    while time.monotonic() < until:
        assert not candidates.terms.all, "took over a Lease that is being renewed"
        await asyncio.sleep(0.02)

    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    stopped_at = time.monotonic()
    await eventually(lambda: bool(candidates.terms.all), LEASE_DURATION + 5, "the candidate to lead")
    takeover = candidates.terms.all[0].started - stopped_at
    assert takeover >= LEASE_DURATION - RETRY_PERIOD - SLACK, f"took over {takeover:.2f}s after the holder stopped"


def an_hour_ago() -> datetime:
    then = datetime.now(UTC) - timedelta(hours=1)
    return then if then.microsecond else then.replace(microsecond=1)  # the API server wants six digits


@pytest.mark.parametrize("cut", ["refuse", "blackhole"])
async def test_a_leader_cut_off_from_the_api_server_steps_down_within_the_renew_deadline(
    candidates: Candidates, cut: Literal["refuse", "blackhole"], caplog: pytest.LogCaptureFixture
) -> None:
    """`refuse`: every request fails at once and is retried; `blackhole`: the request hangs. Either way the
    leader stops leading within the renew deadline, before the Lease expires for the other candidate, which
    takes over only then."""
    caplog.set_level(logging.INFO, logger="proxycontroller.manager.leader")
    client, relay = await candidates.relayed_client()
    isolated = candidates.elector("isolated", client=client)
    other = candidates.elector("other")
    term, isolated_task = await candidates.lead(isolated)
    candidates.start(other)
    await eventually(lambda: other.observed_holder == "isolated", 10, "the other candidate to see the leader")

    relay.cut(cut)
    cut_at = time.monotonic()
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(isolated_task, RENEW_DEADLINE + 5)
    assert term.stopped is not None
    assert not isolated.is_leader
    stepped_down = term.stopped - cut_at
    # The last successful renewal started at most a retry period (and a request) before the cut; the leader
    # keeps retrying until the deadline rather than giving up at the first error.
    assert RENEW_DEADLINE - RETRY_PERIOD - SLACK <= stepped_down <= RENEW_DEADLINE + SLACK, (
        f"stepped down {stepped_down:.2f}s after the cut"
    )
    last_renewal = renewed(await candidates.lease())

    await eventually(lambda: bool(candidates.terms.of("other")), LEASE_DURATION + 5, "the other candidate to lead")
    spec = await candidates.lease()
    assert spec.holderIdentity == "other"
    assert spec.acquireTime is not None
    assert (spec.acquireTime - last_renewal).total_seconds() >= LEASE_DURATION
    candidates.terms.assert_one_at_a_time()
    messages = [record.getMessage() for record in caplog.records]
    assert any("isolated: became leader" in message for message in messages)
    assert any("isolated: lost leadership" in message for message in messages)


async def test_a_leader_that_finds_another_holder_in_the_lease_steps_down_at_once(candidates: Candidates) -> None:
    elector = candidates.elector("leader")
    term, task = await candidates.lead(elector)

    lease = await candidates.observer.get(Lease, candidates.lease_name, namespace=CONTROLLER_NAMESPACE)
    assert lease.spec is not None
    lease.spec.holderIdentity = "intruder"  # e.g. an operator moving leadership by hand
    lease.spec.leaseDurationSeconds = 60
    await candidates.observer.replace(lease)

    with pytest.raises(LeadershipLost, match="held by intruder"):
        await asyncio.wait_for(task, RETRY_PERIOD + 2 * SLACK)
    assert term.stopped is not None
    assert not elector.is_leader
    assert (await candidates.lease()).holderIdentity == "intruder"  # not written back


async def test_when_lead_fails_its_error_propagates_and_the_lease_is_released(candidates: Candidates) -> None:
    elector = candidates.elector("failing")

    async def lead() -> None:
        raise RuntimeError("reconciler broke")

    with pytest.raises(RuntimeError, match="reconciler broke"):
        await asyncio.wait_for(elector.run(lead), 10)
    spec = await candidates.lease()
    assert spec.holderIdentity is None
    assert spec.leaseDurationSeconds == 1
    assert not elector.is_leader
