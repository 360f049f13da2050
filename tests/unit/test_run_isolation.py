"""`proxycontroller run` in Gloo's directory layout with a plugin that blocks: the process stays responsive
(/healthz, /statusz name the stuck strategy), the Proxy file the last good pass wrote stays byte for byte, and
SIGTERM stops the process within its grace period even though the plugin never returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from proxycontroller.testing.servers.processes import free_port
from tests.unit.directory_mode import get, wait_for, write_upstream

PLUGIN = """
from pathlib import Path
import threading
import proxycontroller as pc

MARKER = Path(__file__).with_name("block")


@pc.strategy("stuck-when-told")
def stuck_when_told(upstream, options):
    if MARKER.exists():
        threading.Event().wait()  # never returns
    return pc.virtual_host(upstream.metadata.name, [upstream.metadata.name], [pc.route_to(upstream)])
"""


def test_a_stuck_plugin_keeps_the_last_proxy_and_sigterm_still_stops_the_process(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stuck_plugin.py").write_text(PLUGIN)
    config_dir = tmp_path / "gloo"
    write_upstream(config_dir, "a")
    config = {
        "strategy": {"kind": "plugin", "plugin": "stuck_plugin:stuck_when_told"},
        "reconcile": {"passTimeoutSeconds": 0.5, "errorBackoffSeconds": 0.1, "errorBackoffCapSeconds": 0.5},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "plugins")}
    command = [str(Path(sys.executable).parent / "proxycontroller"), "run", "--config-dir", str(config_dir)]
    command += ["--config", str(tmp_path / "config.yaml"), "--probe-address", f"127.0.0.1:{port}"]
    log = (tmp_path / "controller.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        proxy_file = config_dir / "proxies" / "gloo-system" / "my-cool-proxy.yaml"
        wait_for(lambda: proxy_file.exists() and b"routeAction" in proxy_file.read_bytes())
        good = proxy_file.read_bytes()
        (tmp_path / "plugins" / "block").touch()
        write_upstream(config_dir, "b")

        def reports_the_stuck_strategy() -> bool:
            status, body = get(f"http://127.0.0.1:{port}/statusz")
            detail = json.loads(body) if status == 200 else {}
            return bool(detail.get("consecutive_failures", 0) >= 2 and "stuck-when-told" in detail["last_error"])

        wait_for(reports_the_stuck_strategy)
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert proxy_file.read_bytes() == good
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        text = (tmp_path / "controller.log").read_text()
        assert "Traceback" not in text
        assert "stuck-when-told" in text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
