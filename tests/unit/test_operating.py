"""`run`'s operating flags as a user gives them: controller-runtime's bind addresses (and the older name), port 0,
`0` for none, one line for a mistake; JSON log lines; `status` on Proxies it manages."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from proxycontroller.manager.logs import JsonFormatter
from proxycontroller.testing.servers.processes import ManagedProcess
from tests.unit.test_cli_errors import SCRIPT, invoke, isolated_env


def started(tmp_path: Path, *flags: str) -> ManagedProcess:
    (tmp_path / "config" / "upstreams").mkdir(parents=True, exist_ok=True)
    args = [SCRIPT, "run", "--config-dir", str(tmp_path / "config"), "--log-format", "json", *flags]
    return ManagedProcess("controller", args, tmp_path / "run.log", env=isolated_env(tmp_path)).start()


def said(process: ManagedProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in process.log_path.read_text().splitlines()]


def serving(process: ManagedProcess) -> dict[str, str]:
    urls = {}
    for line in said(process):
        message = str(line["message"])
        if message.startswith("serving "):
            urls[message.split(" on ")[0].removeprefix("serving ")] = str(line["url"])
    return urls


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_metrics_and_probes_on_ports_of_their_own_chosen_by_the_system(tmp_path: Path) -> None:
    process = started(tmp_path, "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0")
    try:
        process.wait_ready(lambda: len(serving(process)) == 2, 30)
        urls = serving(process)
        metrics, probes = urls["/metrics"], urls["/healthz, /readyz, /statusz"]
        assert metrics != probes
        assert not metrics.endswith(":0")
        assert status_of(f"{probes}/healthz") == 200
        assert status_of(f"{probes}/metrics") == 404  # the metrics are on their own listener
        with urllib.request.urlopen(f"{metrics}/metrics", timeout=2) as response:
            assert b"controller_runtime_reconcile_total" in response.read()
    finally:
        process.stop()
    assert process.returncode == 0


def test_zero_turns_a_listener_off_and_the_older_flag_still_works(tmp_path: Path) -> None:
    process = started(tmp_path, "--probe-address", "127.0.0.1:0", "--metrics-bind-address", "0")
    try:
        process.wait_ready(lambda: bool(serving(process)), 30)
        assert list(serving(process)) == ["/healthz, /readyz, /statusz"]
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--metrics-bind-address", "localhost"], "--metrics-bind-address localhost: expected host:port"),
        (["--health-probe-bind-address", "::1:80"], "--health-probe-bind-address ::1:80: put an IPv6 address in"),
        (
            ["--health-probe-bind-address", "127.0.0.1:0", "--probe-address", "127.0.0.1:0"],
            "--health-probe-bind-address and --probe-address are the same option: give one",
        ),
        (["--graceful-shutdown-timeout", "0"], "--graceful-shutdown-timeout"),
        (["--log-format", "xml"], "--log-format"),
    ],
)
def test_a_bad_flag_is_one_line(tmp_path: Path, flags: list[str], error: str) -> None:
    result = invoke(["run", "--config-dir", str(tmp_path), *flags], tmp_path)
    assert result.returncode == 2
    assert error in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_a_json_line_names_the_objects_and_keeps_the_error() -> None:
    name = "proxycontroller.reconcile.engine"
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, "%s left", ("x",), None)
    record.about = {"proxy": "gloo-system/p", "upstream": "gloo-system/u"}
    record.added = ["a"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "x left"
    assert (line["level"], line["logger"]) == ("warning", "proxycontroller.reconcile.engine")
    assert (line["proxy"], line["upstream"], line["added"]) == ("gloo-system/p", "gloo-system/u", ["a"])
    assert line["time"].endswith("Z")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))  # one line, however many the traceback has
    assert "ValueError" in line["error"]
    assert "Traceback" in line["stacktrace"]
