"""The test API server is real: Gloo's CRDs are served, the RBAC `proxycontroller manifests` renders is enforced by
the RBAC authorizer, etcd compaction expires old resourceVersions, and the server comes back after a restart."""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Namespace, Secret

from proxycontroller.testing.servers.apiserver import (
    CONTROLLER_NAMESPACE,
    CONTROLLER_USER,
    KubeTestCluster,
    gloo_crd_files,
)

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]

Upstream = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
Proxy = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")
OTHER_NAMESPACE = "team-a"


def upstream(name: str, namespace: str, port: int = 8080) -> Any:
    return Upstream(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec={"static": {"hosts": [{"addr": "127.0.0.1", "port": port}]}},
    )


def proxy(name: str, namespace: str) -> Any:
    return Proxy(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec={"listeners": [{"name": "http", "bindAddress": "127.0.0.1", "bindPort": 8080}]},
    )


@pytest.fixture(scope="module")
def other_namespace(kube_cluster: KubeTestCluster) -> str:
    with Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests") as client:
        client.apply(Namespace(metadata=ObjectMeta(name=OTHER_NAMESPACE)))
    return OTHER_NAMESPACE


def first_event(events: Iterator[tuple[str, Any]]) -> tuple[str, Any]:
    """The first event of a lightkube watch; the watch (its HTTP stream) is closed again."""
    try:
        return next(events)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def http(cluster: KubeTestCluster, token: str) -> httpx2.Client:
    """A plain HTTP client that verifies the server against the CA the kubeconfigs carry."""
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    return httpx2.Client(
        base_url=cluster.server_url, verify=context, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


# -- CRDs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Proxy", "Upstream", "UpstreamGroup", "Settings"])
def test_gloo_crd_is_established_with_glooss_own_schema(
    kube_cluster: KubeTestCluster, admin_client: Client, kind: str
) -> None:
    crd_file = next(f for f in gloo_crd_files(REPO_ROOT) if f.name == f"gloo.solo.io_v1_{kind}.yaml")
    shipped = yaml.safe_load(crd_file.read_text())
    name = shipped["metadata"]["name"]

    crd = admin_client.get(CustomResourceDefinition, name)
    assert crd.status is not None
    assert {c.type for c in crd.status.conditions or [] if c.status == "True"} >= {"Established", "NamesAccepted"}
    # The schema the server enforces is Gloo's, unchanged by the trip through lightkube's models.
    with http(kube_cluster, kube_cluster.admin_token) as raw:
        served = raw.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    assert served["spec"]["versions"] == shipped["spec"]["versions"]
    # And the kind is served: an empty list in a namespace.
    plural = shipped["spec"]["names"]["plural"]
    with http(kube_cluster, kube_cluster.admin_token) as raw:
        answer = raw.get(f"/apis/gloo.solo.io/v1/namespaces/{CONTROLLER_NAMESPACE}/{plural}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == f"{kind}List"


def test_crd_schema_is_enforced(admin_client: Client) -> None:
    bad = Upstream(
        metadata=ObjectMeta(name="bad-port", namespace="default"),
        spec={"static": {"hosts": [{"addr": "127.0.0.1", "port": "not-a-number"}]}},
    )
    with pytest.raises(ApiError) as info:
        admin_client.create(bad)
    assert info.value.status.code == 422


# -- what the controller may do --------------------------------------------------------------------------


def test_tokens_authenticate_as_admin_and_as_the_controller(kube_cluster: KubeTestCluster) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with http(kube_cluster, kube_cluster.controller_token) as raw:
        user = raw.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review).json()
    assert user["status"]["userInfo"]["username"] == CONTROLLER_USER
    assert f"system:serviceaccounts:{CONTROLLER_NAMESPACE}" in user["status"]["userInfo"]["groups"]
    with http(kube_cluster, "not-a-token") as raw:
        assert raw.get("/api/v1/namespaces").status_code == 401


def test_controller_lists_and_watches_upstreams_in_all_namespaces(
    admin_client: Client, controller_client: Client, other_namespace: str
) -> None:
    admin_client.apply(upstream("list-probe", "default"))
    admin_client.apply(upstream("list-probe", other_namespace))

    seen = {
        (u.metadata.namespace, u.metadata.name)
        for u in controller_client.list(Upstream, namespace="*")
        if u.metadata is not None
    }
    assert {("default", "list-probe"), (other_namespace, "list-probe")} <= seen
    assert controller_client.get(Upstream, "list-probe", namespace=other_namespace).spec["static"]

    kind, obj = first_event(controller_client.watch(Upstream, namespace="*", server_timeout=5))
    assert kind == "ADDED"
    assert obj.metadata is not None


def test_controller_writes_its_proxy_in_gloo_system(controller_client: Client) -> None:
    created = controller_client.create(proxy("allowed-probe", CONTROLLER_NAMESPACE))
    assert created.metadata is not None
    assert created.metadata.namespace == CONTROLLER_NAMESPACE

    current = controller_client.get(Proxy, "allowed-probe", namespace=CONTROLLER_NAMESPACE)
    current.spec["listeners"][0]["bindPort"] = 8081
    replaced = controller_client.replace(current)
    assert replaced.spec["listeners"][0]["bindPort"] == 8081
    names = [p.metadata.name for p in controller_client.list(Proxy, namespace=CONTROLLER_NAMESPACE) if p.metadata]
    assert "allowed-probe" in names
    controller_client.delete(Proxy, "allowed-probe", namespace=CONTROLLER_NAMESPACE)


def test_controller_holds_a_lease_and_records_events_in_gloo_system(controller_client: Client) -> None:
    controller_client.create(
        Lease(
            metadata=ObjectMeta(name="proxycontroller", namespace=CONTROLLER_NAMESPACE),
            spec=LeaseSpec(holderIdentity="proxycontroller-0", leaseDurationSeconds=15),
        )
    )
    lease = controller_client.get(Lease, "proxycontroller", namespace=CONTROLLER_NAMESPACE)
    assert lease.spec is not None
    lease.spec.holderIdentity = "proxycontroller-1"
    controller_client.replace(lease)
    renewed = controller_client.get(Lease, "proxycontroller", namespace=CONTROLLER_NAMESPACE)
    assert renewed.spec is not None
    assert renewed.spec.holderIdentity == "proxycontroller-1"

    event = controller_client.create(
        Event(
            metadata=ObjectMeta(generateName="proxycontroller-", namespace=CONTROLLER_NAMESPACE),
            involvedObject=ObjectReference(kind="Proxy", name="gloo-proxy", namespace=CONTROLLER_NAMESPACE),
            reason="Probe",
            message="the controller may record events",
            type="Normal",
        )
    )
    assert event.metadata is not None
    assert event.metadata.name


# -- what it may not: least privilege, proven by the real RBAC authorizer --------------------------------

FORBIDDEN: dict[str, Callable[[Client], object]] = {
    "create a proxy outside gloo-system": lambda c: c.create(proxy("forbidden", "default")),
    "update a proxy outside gloo-system": lambda c: c.patch(
        Proxy, "forbidden", {"metadata": {"labels": {"a": "b"}}}, namespace="default"
    ),
    "delete a proxy outside gloo-system": lambda c: c.delete(Proxy, "forbidden", namespace="default"),
    # It writes by create and replace only (store/kube.py), so patch (and server-side apply) is not granted.
    "patch a proxy in gloo-system": lambda c: c.patch(
        Proxy, "forbidden", {"metadata": {"labels": {"a": "b"}}}, namespace=CONTROLLER_NAMESPACE
    ),
    "list proxies in every namespace": lambda c: list(c.list(Proxy, namespace="*")),
    "create an upstream": lambda c: c.create(upstream("forbidden", CONTROLLER_NAMESPACE)),
    "update an upstream": lambda c: c.patch(
        Upstream, "list-probe", {"metadata": {"labels": {"a": "b"}}}, namespace="default"
    ),
    "delete an upstream": lambda c: c.delete(Upstream, "list-probe", namespace="default"),
    "read a secret in gloo-system": lambda c: c.get(Secret, "gloo-secret", namespace=CONTROLLER_NAMESPACE),
    "list secrets in gloo-system": lambda c: list(c.list(Secret, namespace=CONTROLLER_NAMESPACE)),
    "list secrets in every namespace": lambda c: list(c.list(Secret, namespace="*")),
    "delete a lease": lambda c: c.delete(Lease, "proxycontroller", namespace=CONTROLLER_NAMESPACE),
    "take a lease outside gloo-system": lambda c: c.create(
        Lease(metadata=ObjectMeta(name="proxycontroller", namespace="default"))
    ),
    "list namespaces": lambda c: list(c.list(Namespace)),
}


@pytest.mark.parametrize("action", list(FORBIDDEN))
def test_controller_is_forbidden_to(action: str, controller_client: Client, other_namespace: str) -> None:
    with pytest.raises(ApiError) as info:
        FORBIDDEN[action](controller_client)
    assert info.value.status.code == 403, info.value.status
    assert info.value.status.reason == "Forbidden"
    assert CONTROLLER_USER in (info.value.status.message or "")


# -- etcd compaction and restarts ------------------------------------------------------------------------


def first_watch_answer(
    cluster: KubeTestCluster, path: str, resource_version: str, timeout: int = 5
) -> tuple[int, dict[str, Any]]:
    """The HTTP status of a watch from `resource_version` and its first event (if it answered 200)."""
    with (
        http(cluster, cluster.admin_token) as raw,
        raw.stream(
            "GET", path, params={"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": str(timeout)}
        ) as response,
    ):
        if response.status_code != 200:
            return response.status_code, json.loads(response.read())
        for line in response.iter_lines():
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                return 200, event
        return 200, {}


def test_compaction_makes_old_resource_versions_gone(kube_cluster: KubeTestCluster, admin_client: Client) -> None:
    created = admin_client.apply(upstream("compaction-probe", "default", port=8080), force=True)
    assert created.metadata is not None
    old = str(created.metadata.resourceVersion)
    for port in (8081, 8082):
        admin_client.apply(upstream("compaction-probe", "default", port=port), force=True)
    path = "/apis/gloo.solo.io/v1/namespaces/default/upstreams"

    # Before compaction a watch from the old version replays what happened since.
    status, event = first_watch_answer(kube_cluster, path, old)
    assert (status, event.get("type")) == (200, "MODIFIED"), event

    revision = kube_cluster.compact_etcd()
    assert revision > int(old)

    status, event = first_watch_answer(kube_cluster, path, old)
    # The API server answers 410 Gone: as the HTTP status, or (once the stream has started) as an ERROR event.
    code = status if status != 200 else event.get("object", {}).get("code")
    assert code == 410, (status, event)
    if status == 200:
        assert event["type"] == "ERROR"
        assert event["object"]["reason"] in ("Expired", "Gone")
    with http(kube_cluster, kube_cluster.admin_token) as raw:
        exact = raw.get(path, params={"resourceVersion": old, "resourceVersionMatch": "Exact"})
    assert exact.status_code == 410, exact.text

    # lightkube surfaces it as an ApiError with code 410, which a controller answers by listing again.
    with pytest.raises(ApiError) as info:
        first_event(admin_client.watch(Upstream, namespace="default", resource_version=old))
    assert info.value.status.code == 410

    # A watch from the current version still works.
    current = admin_client.get(Upstream, "compaction-probe", namespace="default")
    assert current.metadata is not None
    status, event = first_watch_answer(kube_cluster, path, str(current.metadata.resourceVersion), timeout=1)
    assert status == 200
    assert event.get("type") != "ERROR", event
    # Compacting twice with nothing written in between is harmless.
    assert kube_cluster.compact_etcd() >= revision


def test_api_answers_again_after_restart(kube_cluster: KubeTestCluster) -> None:
    with Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests") as admin:
        admin.apply(upstream("restart-probe", "default"), force=True)
    before = kube_cluster.pids["kube-apiserver"]
    url = kube_cluster.server_url

    kube_cluster.restart_apiserver()

    assert kube_cluster.pids["kube-apiserver"] != before
    assert kube_cluster.server_url == url
    # The kubeconfigs written at start still work: same port, same serving certificate, same tokens.
    with Client(KubeConfig.from_file(kube_cluster.controller_kubeconfig), field_manager="kube-tests") as client:
        assert client.get(Upstream, "restart-probe", namespace="default").metadata is not None
        client.create(proxy("after-restart", CONTROLLER_NAMESPACE))
        client.delete(Proxy, "after-restart", namespace=CONTROLLER_NAMESPACE)
        with pytest.raises(ApiError) as info:
            client.create(upstream("after-restart", CONTROLLER_NAMESPACE))
        assert info.value.status.code == 403


# -- loopback only ---------------------------------------------------------------------------------------


def listening_addresses(pid: int) -> Iterator[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """The TCP addresses the process listens on, read from /proc (its socket inodes in the LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word of the address in host (little-endian) order.
            address = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            yield ipaddress.ip_address(address), int(port_hex, 16)


def test_every_server_listens_on_loopback_only(kube_cluster: KubeTestCluster) -> None:
    pids = kube_cluster.pids
    assert set(pids) == {"etcd", "kube-apiserver"}
    for name, pid in pids.items():
        addresses = list(listening_addresses(pid))
        assert addresses, f"{name} listens nowhere?"
        for address, port in addresses:
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            assert address.is_loopback or (mapped is not None and mapped.is_loopback), (name, address, port)
    apiserver_ports = {port for _, port in listening_addresses(pids["kube-apiserver"])}
    assert kube_cluster.apiserver_port in apiserver_ports
