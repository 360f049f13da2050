"""`proxycontroller demo` as a user runs it: the seed's curl answers, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from proxycontroller.testing.servers.processes import tcp_ready
from tests.demo_process import demo_serving, logged_number, wait_exit

pytestmark = pytest.mark.e2e


def test_demo_serves_the_seeds_curl_and_stops_everything_on_ctrl_c(gloo_binary: Path, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with demo_serving(tmp_path / "w", log) as demo:
        text = log.read_text()
        assert "-H 'Host: default-petstore-8080'" in text
        assert "Try next" in text
        petstore_port = logged_number(r"petstore on 127\.0\.0\.1:(\d+)", text)
        xds_port = logged_number(r"serving xDS on 127\.0\.0\.1:(\d+)", text)
        assert tcp_ready("127.0.0.1", petstore_port)()
        assert tcp_ready("127.0.0.1", xds_port)()
        os.kill(demo.pid, signal.SIGINT)  # what Ctrl-C sends
        wait_exit(demo, 60)
        assert not demo.running(), "demo did not stop on Ctrl-C"
        assert "stopping..." in log.read_text()
        assert not tcp_ready("127.0.0.1", petstore_port)(), "petstore left running"
        assert not tcp_ready("127.0.0.1", xds_port)(), "Gloo left running"
