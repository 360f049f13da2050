"""A pass told what changed (Services and Upstreams coming, changing and going, Upstreams taking a Service
port and leaving it), or not told (a resync), gives the same Proxy and warnings as a fresh logic given the same
objects."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxycontroller.config import ControllerConfig
from proxycontroller.model.resources import ObjectKey, Resource, Service, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic

CONFIG = ControllerConfig.model_validate(
    {"namespaces": ["default", "gloo-system"], "sources": ["upstreams", "services"]}
)
NAMES = ("a", "b", "c")
PORTS = (80, 8080)


def make_service(name: str, ports: list[tuple[int, str]], version: int) -> Service:
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": "default", "labels": {"v": str(version)}},
            "spec": {
                "ports": [
                    {"name": f"p{port}{protocol}", "port": port, "protocol": protocol} for port, protocol in ports
                ]
            },
        }
    )


def make_upstream(name: str, namespace: str, spot: tuple[str, int] | None, version: int) -> Upstream:
    spec: dict[str, Any] = {"static": {"hosts": [{"addr": "10.0.0.1", "port": 80}]}}
    if spot is not None:
        spec = {"kube": {"serviceName": spot[0], "serviceNamespace": "default", "servicePort": spot[1]}}
    return Upstream.model_validate(
        {"metadata": {"name": name, "namespace": namespace, "labels": {"v": str(version)}}, "spec": spec}
    )


ports = st.lists(st.tuples(st.sampled_from(PORTS), st.sampled_from(("TCP", "UDP"))), max_size=2, unique_by=lambda p: p)
service_step = st.tuples(st.just("service"), st.sampled_from(NAMES), st.none() | ports)
# An Upstream either names a Service port (as discovery's do), or takes a target's own key, or neither.
upstream_name = st.sampled_from(("u1", "u2", "default-a-80", "default-b-8080"))
upstream_step = st.tuples(
    st.just("upstream"),
    st.tuples(upstream_name, st.sampled_from(("default", "gloo-system"))),
    st.none() | st.tuples(st.sampled_from(NAMES), st.sampled_from(PORTS)) | st.just("static"),
)


def rendered(logic: ProxyLogic, snapshot: Snapshot) -> tuple[bytes, tuple[str, ...]]:
    desired = logic.desired(snapshot)
    [proxy] = desired.objects
    return proxy.spec.json, desired.warnings


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(service_step, upstream_step), st.booleans()), max_size=12))
def test_passes_told_what_changed_agree_with_a_fresh_logic(steps: list[tuple[tuple[str, Any, Any], bool]]) -> None:
    """`hinted` False: a snapshot that says nothing of what changed (a resync), compared by identity."""
    registry = StrategyRegistry.discover()
    logic = ProxyLogic(CONFIG, registry)
    objects: dict[type[Resource], dict[ObjectKey, Resource]] = {Upstream: {}, Service: {}}
    snapshot = Snapshot.of_mappings({kind: dict(found) for kind, found in objects.items()})
    logic.desired(snapshot)
    for version, ((what, which, value), hinted) in enumerate(steps):
        kind: type[Resource]
        if what == "service":
            key, kind = ObjectKey("default", which), Service
            made: Resource | None = None if value is None else make_service(which, value, version)
        else:
            key, kind = ObjectKey(which[1], which[0]), Upstream
            spot = None if value in (None, "static") else value
            made = None if value is None else make_upstream(which[0], which[1], spot, version)
        if made is None:
            objects[kind].pop(key, None)
        else:
            objects[kind][key] = made
        copies = {k: dict(found) for k, found in objects.items()}
        snapshot = snapshot.followed_by(copies, {kind: [key]}) if hinted else Snapshot.of_mappings(copies)
        fresh = ProxyLogic(CONFIG, registry)
        expected = rendered(fresh, Snapshot.of_mappings({k: dict(found) for k, found in objects.items()}))
        assert rendered(logic, snapshot) == expected
