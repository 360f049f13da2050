"""The conformance suite runs every test on each backend: `backend` is parametrized over memory, directory and kube.

Tests on the kube backend are marked `kube`; they use the real API server of tests/conftest.py (`kube_cluster`), with
Gloo's CRDs installed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.store.backends import DirectoryBackend, KubeBackend, MemoryBackend, StoreBackend

MEMORY = pytest.param("memory")
DIRECTORY = pytest.param("directory")
KUBE = pytest.param("kube", marks=pytest.mark.kube)


async def _open(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    made: StoreBackend
    if request.param == "memory":
        made = MemoryBackend()
    elif request.param == "directory":
        made = DirectoryBackend(tmp_path)
    else:
        kube = KubeBackend(request.getfixturevalue("kube_cluster"), tmp_path)
        await kube.start()
        made = kube
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(params=[MEMORY, DIRECTORY, KUBE])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    async for made in _open(request, tmp_path):
        yield made


@pytest.fixture(params=[MEMORY, DIRECTORY])
async def blankable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """The backends that can hold an object with nothing in it, not even metadata (an API server cannot)."""
    async for made in _open(request, tmp_path):
        yield made


@pytest.fixture(params=[DIRECTORY, KUBE])
async def fallible_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """The backends that can fail to reach their store (memory cannot)."""
    async for made in _open(request, tmp_path):
        yield made


@pytest.fixture(autouse=True)
def _store_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="proxycontroller.store")
