"""`proxycontroller run` as deployed: two replicas against the real API server, one leads, the other takes over."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.coordination_v1 import Lease

from proxycontroller.testing.servers.apiserver import CONTROLLER_SERVICE_ACCOUNT, KubeTestCluster
from proxycontroller.testing.servers.controller import controller_process
from tests.unit.test_cli_errors import invoke

UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ProxyCR = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")
INSTANCE = "replicas"
PROXY = "replicated-proxy"


def routed(client: Client) -> list[str] | None:
    try:
        raw: Any = client.get(ProxyCR, PROXY, namespace="gloo-system")
    except Exception:  # not written yet
        return None
    listeners = raw.to_dict()["spec"].get("listeners") or [{}]
    return [vh["name"] for vh in (listeners[0].get("httpListener") or {}).get("virtualHosts") or []]


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s")


def lease_holder(client: Client) -> str | None:
    lease: Any = client.get(Lease, f"proxycontroller-{INSTANCE}", namespace="gloo-system")
    holder: str | None = lease.spec.holderIdentity
    return holder


def create_upstream(client: Client, name: str) -> None:
    client.create(
        UpstreamCR.from_dict(
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": name, "namespace": "gloo-system"},
                "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 1}]}},
            }
        )
    )


def test_two_replicas_one_leader_and_a_takeover(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    config = {"proxy": {"name": PROXY}, "instance": INSTANCE, "namespaces": ["gloo-system"]}
    backend = ["--kubeconfig", str(kube_cluster.controller_kubeconfig)]
    try:
        create_upstream(admin, "replica-alpha")
        with controller_process(tmp_path / "a", backend, config) as (first, _):
            eventually(lambda: "replica-alpha" in (routed(admin) or []))
            with controller_process(tmp_path / "b", backend, config) as (second, _):
                holder = lease_holder(admin)
                assert holder, "no leader"
                first.stop()  # SIGTERM: the leader releases its Lease on the way out
                create_upstream(admin, "replica-beta")
                eventually(lambda: "replica-beta" in (routed(admin) or []), timeout=30)
                new_holder = eventually(lambda: (lease_holder(admin) or holder) != holder and lease_holder(admin))
                assert new_holder != holder
                assert second.running(), second.log_tail()
                assert "became leader" in second.log_path.read_text()
        assert "became leader" in first.log_path.read_text()
    finally:
        for name in ("replica-alpha", "replica-beta"):
            with contextlib.suppress(Exception):  # already gone
                admin.delete(UpstreamCR, name, namespace="gloo-system")
        admin.close()


def run_or_status(command: str, *args: str) -> list[str]:
    """The command with `args`; `run` without probes and leader election (only the checks at start matter)."""
    return [command, *args, *(["--probe-address", "", "--no-leader-elect"] if command == "run" else [])]


def with_token(kubeconfig: Path, token: str, target: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"]["token"] = token
    target.write_text(yaml.safe_dump(config))
    return target


@pytest.mark.parametrize("command", ["run", "status"])
def test_credentials_the_api_server_refuses_end_in_one_line(
    kube_cluster: KubeTestCluster, tmp_path: Path, command: str
) -> None:
    kubeconfig = with_token(kube_cluster.controller_kubeconfig, "not-a-token", tmp_path / "wrong.kubeconfig")
    result = invoke(run_or_status(command, "--kubeconfig", str(kubeconfig)), tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: cluster {kube_cluster.server_url} (kubeconfig {kubeconfig}, context {CONTROLLER_SERVICE_ACCOUNT}) "
        "refused the credentials: 401 Unauthorized\n"
    )


@pytest.mark.parametrize("command", ["run", "status"])
def test_what_rbac_forbids_is_named(kube_cluster: KubeTestCluster, tmp_path: Path, command: str) -> None:
    """The controller's service account may manage Proxies in gloo-system only (the rendered RBAC)."""
    kubeconfig = str(kube_cluster.controller_kubeconfig)
    result = invoke(run_or_status(command, "--kubeconfig", kubeconfig, "--proxy-namespace", "default"), tmp_path)
    assert result.returncode == 1, result.stderr
    # `run` logs the advisory first (default is not Gloo's write namespace), then ends in the error.
    *_, line = result.stderr.splitlines()
    assert result.stderr.count("error: ") == 1
    assert line.startswith(f"error: cluster {kube_cluster.server_url} ")
    assert ": not allowed to list proxies.gloo.solo.io in default: " in line
    assert "Traceback" not in result.stdout + result.stderr


def test_status_passes_the_checks_on_a_cluster_it_may_read(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    result = invoke(["status", "--kubeconfig", str(kube_cluster.controller_kubeconfig), "--timeout", "10"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_services_as_a_source_without_the_rbac_for_them_is_named(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    """The rendered RBAC the cluster runs the controller under is for the default sources (Upstreams only)."""
    config = tmp_path / "services.yaml"
    config.write_text("sources: [upstreams, services]\n")
    args = ["run", "--kubeconfig", str(kube_cluster.controller_kubeconfig), "--config", str(config)]
    result = invoke(args, tmp_path)
    assert result.returncode == 1, result.stderr
    *_, line = result.stderr.splitlines()
    assert result.stderr.count("error: ") == 1
    assert ": not allowed to list services in gloo-system: " in line  # the core group has no name to show
    assert "Traceback" not in result.stdout + result.stderr
