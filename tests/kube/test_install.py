"""`proxycontroller manifests | kubectl apply -f -` on the real API server, and the controller at work under exactly
what it rendered.

The API server validates every built-in kind (Deployment, PodDisruptionBudget, RBAC...); there is no kubelet, so
no pod runs, and the controller runs here as a process instead, with the stored Deployment's command line and the
stored ConfigMap's file, authenticated with a token the API server issues for the rendered ServiceAccount
(TokenRequest). The configuration routes two namespaces of its own and writes its
Proxy in gloo-system, so the RBAC it gets is Roles only; the instance is its own, so no other test's grants (the
test cluster's controller account) are involved.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, Secret, Service, ServiceAccount
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from proxycontroller.testing.servers.apiserver import KubeTestCluster
from proxycontroller.testing.servers.processes import ManagedProcess, free_port, http_ready, running

UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ProxyCR = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")

INSTANCE = "install-proof"
ACCOUNT = f"proxycontroller-{INSTANCE}"
PROXY = "install-proof"
ROUTED = ("install-team-a", "install-team-b")
CONFIG: dict[str, Any] = {
    "instance": INSTANCE,
    "namespaces": list(ROUTED),
    "proxies": [{"name": PROXY, "namespace": "gloo-system", "listeners": [{"name": "http", "bindPort": 8080}]}],
    "deployment": {"image": "registry.example/proxycontroller:test", "envoy": {"serviceType": "NodePort"}},
}


def render(tmp_path: Path) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    script = Path(sys.executable).parent / "proxycontroller"
    result = subprocess.run(
        [str(script), "manifests", "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def applied(kube_cluster: KubeTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rendered manifests, dry-run on the server, then applied: yields them."""
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="install-tests")
    try:
        for namespace in ROUTED:
            admin.apply(Namespace(metadata=ObjectMeta(name=namespace)), force=True)
        text = render(tmp_path_factory.mktemp("install"))
        dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=text)
        assert len(dry) == len(list(yaml.safe_load_all(text)))
        assert all(line.endswith("(server dry run)") for line in dry), dry
        with pytest.raises(ApiError):  # a dry run stores nothing
            admin.get(ServiceAccount, ACCOUNT, namespace="gloo-system")
        first = kube_cluster.kubectl("apply", "-f", "-", stdin=text)
        assert all(line.endswith(" created") for line in first), first
        budget = f"poddisruptionbudget.policy/{ACCOUNT}"
        stored: Any = admin.get(PodDisruptionBudget, ACCOUNT, namespace="gloo-system")
        again = kube_cluster.kubectl("apply", "-f", "-", stdin=text)
        # kubectl says "configured" for a PodDisruptionBudget every time (its selector's patch strategy is
        # `replace`, so the patch it sends is never empty); the object stays as it was.
        assert [line for line in again if not line.endswith(" unchanged")] == [f"{budget} configured"]
        after: Any = admin.get(PodDisruptionBudget, ACCOUNT, namespace="gloo-system")
        assert after.metadata.resourceVersion == stored.metadata.resourceVersion
        yield text
    finally:
        admin.close()


def test_everything_rendered_is_stored_as_rendered(applied: str, admin_client: Client) -> None:
    kinds: dict[str, Any] = {
        "ServiceAccount": ServiceAccount,
        "Role": Role,
        "RoleBinding": RoleBinding,
        "ConfigMap": ConfigMap,
        "Deployment": Deployment,
        "PodDisruptionBudget": PodDisruptionBudget,
        "Service": Service,
    }
    documents = list(yaml.safe_load_all(applied))
    for document in documents:
        meta = document["metadata"]
        stored: Any = admin_client.get(kinds[document["kind"]], meta["name"], namespace=meta["namespace"])
        assert stored.metadata.labels == meta["labels"]
    controller: Any = admin_client.get(Deployment, ACCOUNT, namespace="gloo-system")
    assert controller.spec.replicas == 2
    assert controller.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem is True
    envoy: Any = admin_client.get(Service, PROXY, namespace="gloo-system")
    assert envoy.spec.type == "NodePort"
    assert envoy.spec.ports[0].nodePort  # the API server allocated one


@pytest.fixture(scope="module")
def account_kubeconfig(applied: str, kube_cluster: KubeTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube_cluster.service_account_kubeconfig(
        ACCOUNT, "gloo-system", tmp_path_factory.mktemp("account") / "kubeconfig"
    )


def upstream(name: str, namespace: str) -> Any:
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 1}]}},
        }
    )


def routed(client: Client) -> set[str]:
    try:
        raw: Any = client.get(ProxyCR, PROXY, namespace="gloo-system")
    except ApiError:
        return set()
    listeners = raw.to_dict()["spec"].get("listeners") or [{}]
    return {vh["name"] for vh in (listeners[0].get("httpListener") or {}).get("virtualHosts") or []}


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def as_rendered(admin: Client, kubeconfig: Path, work: Path) -> tuple[ManagedProcess, int]:
    """The controller's container as the stored Deployment runs it (its command and arguments, its configuration
    from the stored ConfigMap) on this machine: the ConfigMap's file at a local path, the probe address on
    loopback, and a kubeconfig for the token the kubelet would mount."""
    deployment: Any = admin.get(Deployment, ACCOUNT, namespace="gloo-system")
    (container,) = deployment.spec.template.spec.containers
    stored: Any = admin.get(ConfigMap, ACCOUNT, namespace="gloo-system")
    config = work / "config.yaml"
    config.write_text(stored.data["config.yaml"])
    port = free_port()
    local = {
        "--config=/etc/proxycontroller/config.yaml": f"--config={config}",
        "--health-probe-bind-address=:9091": f"--health-probe-bind-address=127.0.0.1:{port}",
    }
    assert set(local) <= set(container.args), container.args
    args = [local.get(arg, arg) for arg in container.args]
    assert container.command == ["proxycontroller"]
    command = [str(Path(sys.executable).parent / "proxycontroller"), *args, "--kubeconfig", str(kubeconfig)]
    return ManagedProcess("proxycontroller", command, work / "controller.log"), port


def test_the_controller_works_as_rendered_with_exactly_the_rendered_rbac(
    account_kubeconfig: Path, admin_client: Client, tmp_path: Path
) -> None:
    admin_client.create(upstream("svc-a", ROUTED[0]))
    admin_client.create(upstream("svc-b", ROUTED[1]))
    admin_client.create(upstream("not-routed", "default"))
    process, port = as_rendered(admin_client, account_kubeconfig, tmp_path)
    try:
        # Leader election on, as deployed: the Lease is in gloo-system, under the rendered Role.
        with running(process, http_ready(f"http://127.0.0.1:{port}/readyz"), timeout=60):
            eventually(lambda: routed(admin_client) == {"svc-a", "svc-b"}, "the Proxy routes both namespaces")
            admin_client.delete(UpstreamCR, "svc-b", namespace=ROUTED[1])
            eventually(lambda: routed(admin_client) == {"svc-a"}, "a deleted upstream leaves the Proxy")
            lease: Any = admin_client.get(Lease, f"proxycontroller-{INSTANCE}", namespace="gloo-system")
            assert lease.spec.holderIdentity
            log = process.log_tail(200)
            assert "not allowed" not in log, log
            assert "forbidden" not in log.lower(), log
            assert log.splitlines()[-1].startswith("{"), log  # --log-format=json, as rendered
    finally:
        for name, namespace in (("svc-a", ROUTED[0]), ("svc-b", ROUTED[1]), ("not-routed", "default")):
            with contextlib.suppress(ApiError):
                admin_client.delete(UpstreamCR, name, namespace=namespace)


def proxy(name: str, namespace: str) -> Any:
    return ProxyCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Proxy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"listeners": [{"name": "http", "bindAddress": "::", "bindPort": 8080}]},
        }
    )


FORBIDDEN: dict[str, Callable[[Client], object]] = {
    "write a Proxy in a routed namespace": lambda c: c.create(proxy("intruder", ROUTED[0])),
    "write a Proxy in default": lambda c: c.create(proxy("intruder", "default")),
    "patch its own Proxy": lambda c: c.patch(
        ProxyCR, PROXY, {"metadata": {"labels": {"a": "b"}}}, namespace="gloo-system"
    ),
    "write an Upstream": lambda c: c.create(upstream("intruder", ROUTED[0])),
    "read Upstreams of a namespace not routed": lambda c: list(c.list(UpstreamCR, namespace="default")),
    "read Upstreams of every namespace": lambda c: list(c.list(UpstreamCR, namespace="*")),
    "read a Secret": lambda c: list(c.list(Secret, namespace="gloo-system")),
    "write a Secret": lambda c: c.create(
        Secret(metadata=ObjectMeta(name="intruder", namespace="gloo-system"), stringData={"a": "b"})
    ),
    "take a Lease elsewhere": lambda c: c.create(
        Lease(metadata=ObjectMeta(name="intruder", namespace=ROUTED[0]), spec=LeaseSpec(holderIdentity="x"))
    ),
    "record an Event elsewhere": lambda c: c.create(
        Event(
            metadata=ObjectMeta(name="intruder", namespace=ROUTED[0]),
            involvedObject=ObjectReference(kind="Proxy", name=PROXY, namespace=ROUTED[0]),
            reason="Probe",
            message="forbidden",
        )
    ),
    "change its own Role": lambda c: c.delete(Role, ACCOUNT, namespace="gloo-system"),
}


@pytest.fixture
def account(account_kubeconfig: Path) -> Iterator[Client]:
    client = Client(KubeConfig.from_file(account_kubeconfig), field_manager="install-tests")
    yield client
    client.close()


@pytest.mark.parametrize("action", list(FORBIDDEN))
def test_the_rendered_account_may_not(action: str, account: Client) -> None:
    with pytest.raises(ApiError) as info:
        FORBIDDEN[action](account)
    assert info.value.status.code == 403, info.value.status.message


def test_the_rendered_account_may_what_it_needs(account: Client) -> None:
    """The other side of the forbidden ones: the same client is let through where the rendered RBAC grants."""
    for namespace in ROUTED:
        list(account.list(UpstreamCR, namespace=namespace))
    list(account.list(ProxyCR, namespace="gloo-system"))
    event = Event(
        metadata=ObjectMeta(name="install-proof-probe", namespace="gloo-system"),
        involvedObject=ObjectReference(kind="Proxy", name=PROXY, namespace="gloo-system"),
        reason="Probe",
        message="allowed",
    )
    account.create(event)


def test_kustomize_builds_the_rendered_file(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    """The output is a plain kustomize resource: kustomize (inside kubectl) takes it, adds a label, swaps the
    image. No server is involved; kubectl is the one built with the API server."""
    script = Path(sys.executable).parent / "proxycontroller"
    rendered = subprocess.run([str(script), "manifests"], capture_output=True, text=True, timeout=60, check=True)
    (tmp_path / "proxycontroller.yaml").write_text(rendered.stdout)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [proxycontroller.yaml]\nlabels: [{pairs: {team: edge}}]\nimages:\n"
        "- {name: proxycontroller, newName: registry.example/proxycontroller, newTag: '9.9'}\n"
    )
    built = list(yaml.safe_load_all("\n".join(kube_cluster.kubectl("kustomize", str(tmp_path)))))
    original = list(yaml.safe_load_all(rendered.stdout))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in original
    )
    assert all(d["metadata"]["labels"]["team"] == "edge" for d in built)
    (controller,) = [d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == "proxycontroller"]
    assert controller["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/proxycontroller:9.9"
