"""Fixtures for the packaging tests: the wheel as a user builds it, installed into a fresh virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Not copied into the build tree: caches and the checkout's own virtualenv are no part of a source release.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis"
)


def outside_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH: the installed package, not the checkout's sources, must answer."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@dataclass(frozen=True)
class InstalledDemo:
    venv: Path
    wheel: Path
    seconds: dict[str, float]

    @property
    def proxycontroller(self) -> Path:
        return self.venv / "bin" / "proxycontroller"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


@pytest.fixture(scope="session")
def installed_demo(tmp_path_factory: pytest.TempPathFactory) -> InstalledDemo:
    """`python -m build` (sdist, then the wheel from the sdist, as a release is built) of a copy of this
    checkout, and `pip install '<wheel>[demo]'` into a new virtualenv, all outside the repository."""
    root = tmp_path_factory.mktemp("packaging")
    seconds: dict[str, float] = {}
    source = root / "source"
    # symlinks=True: the build must follow src/proxycontroller/testing/testbin -> tools/testbin itself.
    shutil.copytree(REPO, source, symlinks=True, ignore=IGNORED)
    started = time.monotonic()
    build_venv = root / "build-venv"
    run([sys.executable, "-m", "venv", str(build_venv)], root, 120)
    run([str(build_venv / "bin" / "pip"), "install", "-q", "build"], root, 600)
    run([str(build_venv / "bin" / "python"), "-m", "build", "-o", str(root / "dist"), str(source)], root, 600)
    seconds["build"] = time.monotonic() - started
    (wheel,) = (root / "dist").glob("proxycontroller-*.whl")
    started = time.monotonic()
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], root, 120)
    run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[demo]"], root, 900)
    seconds["install"] = time.monotonic() - started
    return InstalledDemo(venv=venv, wheel=wheel, seconds=seconds)
