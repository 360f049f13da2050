"""The test host's network namespace is removed with its veth pair and everything running in it, also when the
block that used it raises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxycontroller.testing.servers.netns import NamespaceHost, namespace_host


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False).stdout


class _Failed(Exception):
    pass


def test_namespace_host_is_removed_with_its_processes_when_the_block_raises() -> None:
    seen: list[tuple[NamespaceHost, subprocess.Popen[bytes]]] = []

    def failing_test() -> None:
        with namespace_host() as host:
            sleeper = subprocess.Popen(host.command([sys.executable, "-c", "import time; time.sleep(600)"]))
            seen.append((host, sleeper))
            assert host.address in _ip("-n", host.name, "-4", "addr")
            assert host.gateway in _ip("-4", "addr", "show", "dev", host.host_interface)
            raise _Failed

    with pytest.raises(_Failed):
        failing_test()
    [(host, sleeper)] = seen
    assert sleeper.wait(timeout=10) != 0  # killed
    assert host.name not in _ip("netns", "list")
    assert host.host_interface not in _ip("link")
