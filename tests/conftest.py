"""Fixtures shared by every test group."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
