"""Shared by the benchmark scripts: timing, peak memory, tables that put figures beside their baseline, and the
controller under test as a process (`proxycontroller run`, the CLI a user runs)."""

from __future__ import annotations

import contextlib
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from proxycontroller.testing.servers.processes import ManagedProcess, ProcessFailedError, free_port, running

T = TypeVar("T")


def timed(function: Callable[[], T], repeat: int = 3) -> tuple[T, float]:
    """The result and the best wall time (seconds) of `repeat` runs: the least disturbed by a noisy machine."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return result, best


def peak_memory(function: Callable[[], object]) -> int:
    """Peak bytes Python allocated while `function` ran."""
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(f"| {line} |" for line in lines)


# -- the controller under test, as a process ---------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ControllerSource:
    """Which proxycontroller the benchmark runs: the checkout's own (installed editable in the virtualenv), or
    the `src/` of one commit, unpacked with `git archive` and put first on PYTHONPATH."""

    description: str
    pythonpath: Path | None

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.pythonpath)} if self.pythonpath is not None else {}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], check=True, capture_output=True, text=True).stdout


def controller_source(rev: str | None, stack: contextlib.ExitStack) -> ControllerSource:
    """`rev` None: the checkout's working tree. Else the commit's src/, in a temporary directory kept open by
    `stack` (so a benchmark can measure a commit while others edit the working tree)."""
    if rev is None:
        head = _git("rev-parse", "--short=12", "HEAD").strip()
        dirty = bool(_git("status", "--porcelain", "--", "src").strip())
        state = " + uncommitted changes in src/" if dirty else ""
        return ControllerSource(f"working tree {REPO_ROOT / 'src'} (commit {head}{state})", None)
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    unpacked = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"proxycontroller-{commit[:12]}-")))
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(unpacked)], input=archive, check=True)
    return ControllerSource(f"commit {commit[:12]} (git archive of src/)", unpacked / "src")


def proxycontroller_command() -> list[str]:
    """The `proxycontroller` console script of this virtualenv (it imports whatever PYTHONPATH puts first)."""
    return [str(Path(sys.executable).parent / "proxycontroller")]


@dataclass(frozen=True)
class RunningController:
    process: ManagedProcess
    probe_url: str  # http://127.0.0.1:<port>: /metrics, /healthz, /readyz

    def metric_total(self, name: str) -> float | None:
        """The sum over every label set of a counter on /metrics; None when it is not served."""
        try:
            with urllib.request.urlopen(f"{self.probe_url}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        values = [
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((name + "{", name + " "))
        ]
        return sum(values) if values else None


@contextlib.contextmanager
def controller_process(
    source: ControllerSource,
    work_dir: Path,
    backend_args: Sequence[str],
    config: dict[str, Any] | None = None,
    log_level: str = "info",
) -> Iterator[RunningController]:
    """`proxycontroller run <backend_args>` as a user runs it; stopped on exit, also on error. Ready means only
    that it is running: each benchmark waits for the Proxy it expects, which holds whatever the internals are."""
    work_dir.mkdir(parents=True, exist_ok=True)
    args = [*proxycontroller_command(), "run", *backend_args]
    if config is not None:
        config_path = work_dir / "controller.yaml"
        config_path.write_text(yaml.safe_dump(config))
        args += ["--config", str(config_path)]
    port = free_port()
    args += ["--probe-address", f"127.0.0.1:{port}", "--log-level", log_level]
    process = ManagedProcess("proxycontroller", args, work_dir / "controller.log", env=source.env())
    with running(process, process.running, timeout=10) as started:
        yield RunningController(started, f"http://127.0.0.1:{port}")


def assert_running(process: ManagedProcess) -> None:
    if not process.running():
        raise ProcessFailedError(f"{process.name} exited; log {process.log_path}:\n{process.log_tail()}")


def vm_hwm_kib(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM in /proc/<pid>/status), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def spread(samples: Sequence[float]) -> tuple[str, str, str]:
    """Median, min and max, in ms."""
    return ms(statistics.median(samples)), ms(min(samples)), ms(max(samples))


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "n/a"


def build_seed() -> Path:
    """The seed's binary (tools/seed), built on demand by `tools/testbin/build.sh seed` (instant once cached)."""
    result = subprocess.run(
        [str(REPO_ROOT / "tools" / "testbin" / "build.sh"), "seed"],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"building the seed failed (exit {result.returncode})")
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        if name == "SEED" and Path(value).is_file():
            return Path(value)
    raise RuntimeError(f"build.sh seed printed no SEED=<path>: {result.stdout!r}")
