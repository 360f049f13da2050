"""Clients of the real Kubernetes API server for the tests in tests/kube; the server itself, `kube_cluster`, is
in tests/conftest.py (tests/store uses it too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig

from proxycontroller.testing.servers.apiserver import KubeTestCluster

KUBE_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/kube needs the real API server: mark it `kube`."""
    for item in items:
        if item.path.resolve().is_relative_to(KUBE_TESTS):
            item.add_marker(pytest.mark.kube)


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
