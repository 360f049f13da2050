"""`proxycontroller demo` run from this checkout's console script, for the tests that watch it stop."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import ManagedProcess


@contextlib.contextmanager
def demo_serving(work_dir: Path, log: Path) -> Iterator[ManagedProcess]:
    """The demo started with `work_dir`, its output in `log`, once the seed's curl has answered the pets; stopped
    when the block exits (also when the test fails)."""
    args = [str(Path(sys.executable).parent / "proxycontroller"), "demo", "--work-dir", str(work_dir)]
    demo = ManagedProcess("demo", args, log).start()
    try:
        demo.wait_ready(lambda: PETS_BODY.decode() in log.read_text(errors="replace"), timeout=180)
        yield demo
    finally:
        demo.stop()


def logged_number(pattern: str, text: str) -> int:
    """The number the demo's output shows in the group of `pattern` (a port, a pid)."""
    found = re.search(pattern, text)
    assert found is not None, f"the demo did not log {pattern!r}"
    return int(found.group(1))


def wait_exit(process: ManagedProcess, timeout: float) -> None:
    """Wait up to `timeout` seconds for `process` to exit by itself (the caller asserts that it did)."""
    deadline = time.monotonic() + timeout
    while process.running() and time.monotonic() < deadline:
        time.sleep(0.2)
