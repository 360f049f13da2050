"""Events written to the real API server as the controller's service account: a flapping outcome is one Event
whose series counts the repeats, and a flood of distinct ones stops at the cap per minute."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from proxycontroller.model.resources import PROXY, ObjectKey
from proxycontroller.store.events import WARNING, EventRecorder, Occurrence
from proxycontroller.store.kube import make_async_client
from proxycontroller.store.kube_events import REPORTING_CONTROLLER, KubeEventSink
from proxycontroller.testing.servers.apiserver import KubeTestCluster
from tests.kube.test_run_command import with_token

NAMESPACE = "gloo-system"
# Read as plain dicts: other tests leave core/v1 Events without an eventTime, which lightkube's typed model refuses.
EventCR = create_namespaced_resource("events.k8s.io", "v1", "Event", "events")


def events_on(client: Client, name: str) -> list[dict[str, Any]]:
    """The events.k8s.io/v1 Events regarding the object `name` in gloo-system."""
    listed: Any = client.list(EventCR, namespace=NAMESPACE)
    events: list[dict[str, Any]] = [raw.to_dict() for raw in listed]
    return [e for e in events if (e.get("regarding") or {}).get("name") == name]


def distinct_skips(proxy_name: str, count: int) -> list[Occurrence]:
    """`count` warnings on one Proxy, each about another Upstream: no two are the same Event."""
    key = ObjectKey(NAMESPACE, proxy_name)
    return [Occurrence(PROXY, key, None, WARNING, "UpstreamSkipped", f"upstream {n}") for n in range(count)]


def test_a_flapping_outcome_is_one_event_with_a_series_and_a_flood_stops_at_the_cap(
    kube_cluster: KubeTestCluster, admin_client: Client
) -> None:
    counted: list[str] = []

    async def scenario() -> None:
        client = make_async_client(kube_cluster.controller_kubeconfig)  # the controller's RBAC, not admin's
        # A clock that stands still: no token comes back while the test runs, however slow the machine.
        recorder = EventRecorder(
            KubeEventSink(client), per_minute=10, series_every=0.0, count=counted.append, clock=lambda: 0.0
        )
        flapping = Occurrence(PROXY, ObjectKey(NAMESPACE, "flapping-proxy"), None, WARNING, "UpstreamSkipped", "x")
        try:
            for _ in range(50):
                recorder.record(flapping)
            await recorder.flush()  # the first: one Event
            for _ in range(49):
                recorder.record(flapping)
            await recorder.flush()  # 99 in all: one series update
            for occurrence in distinct_skips("flooded-proxy", 30):
                recorder.record(occurrence)
            await recorder.flush()
        finally:
            await client.close()

    asyncio.run(scenario())
    (flapping,) = events_on(admin_client, "flapping-proxy")
    assert flapping["series"]["count"] == 99
    assert flapping["reportingController"] == REPORTING_CONTROLLER
    assert flapping["reportingInstance"] == socket.gethostname()
    assert (flapping["regarding"]["kind"], flapping["regarding"]["apiVersion"]) == ("Proxy", "gloo.solo.io/v1")
    flooded = events_on(admin_client, "flooded-proxy")
    assert len(flooded) == 8  # 10 a minute: two went to the flapping one
    assert counted.count("created") == 9
    assert counted.count("updated") == 1
    assert counted.count("dropped") == 22
    assert "failed" not in counted


def test_an_event_the_server_refuses_is_logged_and_counted_never_raised(
    kube_cluster: KubeTestCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counted: list[str] = []
    kubeconfig = with_token(kube_cluster.controller_kubeconfig, "not-a-token", tmp_path / "wrong.kubeconfig")

    async def scenario() -> None:
        client = make_async_client(kubeconfig)
        recorder = EventRecorder(KubeEventSink(client), count=counted.append)
        try:
            for occurrence in distinct_skips("refused-proxy", 3):
                recorder.record(occurrence)
            await recorder.flush()
        finally:
            await client.close()

    with caplog.at_level(logging.DEBUG, logger="proxycontroller.store.events"):
        asyncio.run(scenario())
    assert counted == ["failed"] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the same failure again is not news
    assert warnings[0].startswith("could not record Event UpstreamSkipped on Proxy gloo-system/refused-proxy: ")
    assert "401" in warnings[0]
