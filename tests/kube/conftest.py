"""A real Kubernetes API server (etcd + kube-apiserver built from source) for the tests in tests/kube.

`kube_cluster` is session-scoped: built once (tools/testbin/build.sh kube, instant when cached), started once
in a temporary directory, stopped at the end of the session, also when tests fail. When the binaries cannot be
built the fixture fails the tests that use it: these tests never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig

from proxycontroller.testing.servers.apiserver import (
    KubeBinaries,
    KubeBuildError,
    KubeTestCluster,
    build_kube_binaries,
    kube_test_cluster,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/kube needs the real API server: mark it `kube`."""
    for item in items:
        if item.path.resolve().is_relative_to(KUBE_TESTS):
            item.add_marker(pytest.mark.kube)


@pytest.fixture(scope="session")
def kube_binaries() -> KubeBinaries:
    try:
        return build_kube_binaries(REPO_ROOT)
    except KubeBuildError as error:
        pytest.fail(f"cannot build kube-apiserver/etcd for the kube tests:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory, kube_binaries: KubeBinaries) -> Iterator[KubeTestCluster]:
    with kube_test_cluster(
        tmp_path_factory.mktemp("kube-cluster"), binaries=kube_binaries, repo_root=REPO_ROOT
    ) as cluster:
        yield cluster


@pytest.fixture
def admin_client(kube_cluster: KubeTestCluster) -> Iterator[Client]:
    """A lightkube client as cluster admin (system:masters), default namespace `default`."""
    client = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    yield client
    client.close()


@pytest.fixture
def controller_client(kube_cluster: KubeTestCluster) -> Iterator[Client]:
    """A lightkube client as the controller's service account, default namespace `gloo-system`."""
    client = Client(KubeConfig.from_file(kube_cluster.controller_kubeconfig), field_manager="proxycontroller")
    yield client
    client.close()
