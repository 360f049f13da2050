"""The controller as a user runs it (`proxycontroller run`), as a process that tests and benchmarks start."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from proxycontroller.testing.servers.processes import ManagedProcess, free_port, http_ready, running


@contextlib.contextmanager
def controller_process(
    work_dir: Path, backend_args: list[str], config: Mapping[str, object], env: Mapping[str, str] | None = None
) -> Iterator[tuple[ManagedProcess, int]]:
    """`proxycontroller run` with `config` (written as YAML) and `backend_args` (`--config-dir DIR` or
    `--kubeconfig FILE`); ready once /readyz answers. Yields the process and its probe port (/metrics).
    `env` is added to the test's environment (e.g. PYTHONPATH for a plugin strategy)."""
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
    process = ManagedProcess("proxycontroller", args, work_dir / "controller.log", env=dict(env or {}))
    with running(process, http_ready(f"http://127.0.0.1:{probe_port}/readyz"), timeout=60) as started:
        yield started, probe_port
