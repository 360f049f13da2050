"""Fixtures shared by every test group."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxycontroller.testing.servers.apiserver import (
    KubeBinaries,
    KubeBuildError,
    KubeTestCluster,
    build_kube_binaries,
    kube_test_cluster,
)
from proxycontroller.testing.servers.gloo import GlooBuildError, build_gloo

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def gloo_binary() -> Path:
    """The real Gloo binary (built on first use, minutes on a cold cache; the packaging tests show the installed
    demo reusing it). Fails, never skips: these tests exist to run against the real control plane."""
    try:
        return build_gloo()
    except GlooBuildError as error:
        pytest.fail(f"cannot build Gloo: {error}", pytrace=False)


@pytest.fixture(scope="session")
def gloo_module_dir() -> Path:
    """Gloo's own source tree at v1.22.1 from its Go module: its CRDs and sample files are test data."""
    result = subprocess.run(
        [str(REPO / "tools" / "testbin" / "gloo-module.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"cannot fetch Gloo's Go module: {result.stderr.strip()}")
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def gloo_crds_dir(gloo_module_dir: Path) -> Path:
    return gloo_module_dir / "install" / "helm" / "gloo" / "crds"


@pytest.fixture(scope="session")
def gloo_petstore_upstream_file(gloo_module_dir: Path) -> Path:
    return (
        gloo_module_dir
        / "install"
        / "docker-compose-file"
        / "source_data"
        / "config"
        / "upstreams"
        / "gloo-system"
        / "petstore.yaml"
    )


# A real Kubernetes API server (etcd + kube-apiserver built from source), for tests/kube and tests/store. Session-
# scoped: built once (tools/testbin/build.sh kube, instant when cached), started once in a temporary directory on
# first use, stopped at the end of the session, also when tests fail. When the binaries cannot be built the
# fixture fails the tests that use it: these tests never skip.


@pytest.fixture(scope="session")
def kube_binaries() -> KubeBinaries:
    try:
        return build_kube_binaries(REPO)
    except KubeBuildError as error:
        pytest.fail(f"cannot build kube-apiserver/etcd for the kube tests:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory, kube_binaries: KubeBinaries) -> Iterator[KubeTestCluster]:
    with kube_test_cluster(tmp_path_factory.mktemp("kube-cluster"), binaries=kube_binaries, repo_root=REPO) as cluster:
        yield cluster
