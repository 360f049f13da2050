"""`proxycontroller demo` as a user runs it: the seed's curl answers, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import ManagedProcess, tcp_ready

pytestmark = pytest.mark.e2e


def test_demo_serves_the_seeds_curl_and_stops_everything_on_ctrl_c(gloo_binary: Path, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    demo = ManagedProcess(
        "demo", [str(Path(sys.executable).parent / "proxycontroller"), "demo", "--work-dir", str(tmp_path / "w")], log
    ).start()
    try:
        demo.wait_ready(lambda: PETS_BODY.decode() in log.read_text(errors="replace"), timeout=180)
        text = log.read_text()
        assert "-H 'Host: default-petstore-8080'" in text
        assert "Try next" in text
        petstore_port = int(re.search(r"petstore on 127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
        xds_port = int(re.search(r"serving xDS on 127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
        assert tcp_ready("127.0.0.1", petstore_port)()
        assert tcp_ready("127.0.0.1", xds_port)()
        os.kill(demo.pid, signal.SIGINT)  # what Ctrl-C sends
        deadline = time.monotonic() + 60
        while demo.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not demo.running(), "demo did not stop on Ctrl-C"
        assert "stopping..." in log.read_text()
        assert not tcp_ready("127.0.0.1", petstore_port)(), "petstore left running"
        assert not tcp_ready("127.0.0.1", xds_port)(), "Gloo left running"
    finally:
        demo.stop()
