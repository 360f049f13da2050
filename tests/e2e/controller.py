"""The controller as a user runs it (`proxycontroller run`), as a process the e2e tests start and stop."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from proxycontroller.infra.processes import ManagedProcess, free_port, http_ready, running


@contextlib.contextmanager
def run_controller(work_dir: Path, backend_args: list[str], config: Mapping[str, object]) -> Iterator[ManagedProcess]:
    """`proxycontroller run` with `config` (YAML), ready once /readyz answers (its caches are synced)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "controller.yaml"
    config_path.write_text(yaml.safe_dump(dict(config)))
    probe_port = free_port()
    args = [
        str(Path(sys.executable).parent / "proxycontroller"),
        "run",
        *backend_args,
        "--config",
        str(config_path),
        "--probe-address",
        f"127.0.0.1:{probe_port}",
        "--log-level",
        "debug",
    ]
    process = ManagedProcess("proxycontroller", args, work_dir / "controller.log")
    with running(process, http_ready(f"http://127.0.0.1:{probe_port}/readyz"), timeout=60) as started:
        yield started
