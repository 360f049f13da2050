"""Start a real server process, wait until it is ready, and always stop it again."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ProcessFailedError(RuntimeError):
    """A server process exited or never became ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def http_ready(url: str) -> Callable[[], bool]:
    """Ready once the URL answers 2xx (TLS certificate not verified: test servers self-sign)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError):
            return False

    return check


_PR_SET_PDEATHSIG = 1


def _prepare_child() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere), and give
    SIGINT and SIGQUIT their default action back. A shell without job control starts a background command
    with both ignored, its children inherit that, and a Python child then never sees Ctrl-C: how a test run
    was launched must not change how the servers it starts behave."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    for number in (signal.SIGINT, signal.SIGQUIT):
        # Python refuses in a child forked from a thread other than the main one: left as it is then.
        with contextlib.suppress(ValueError):
            signal.signal(number, signal.SIG_DFL)


@dataclass
class ManagedProcess:
    """One child process with its output in a log file; `stop()` is safe to call any number of times."""

    name: str
    args: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A new session so that stop() can signal the whole group (wrappers spawn children), and a
        # parent-death signal so that a test run killed outright (SIGKILL) leaves no server behind.
        self._popen = subprocess.Popen(
            list(self.args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_prepare_child,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.name} was never started"
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited (negative: the signal that ended it); None while it runs."""
        return None if self._popen is None else self._popen.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ProcessFailedError(
                    f"{self.name} exited before it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.1)
        raise ProcessFailedError(f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=grace)


@contextlib.contextmanager
def running(process: ManagedProcess, ready: Callable[[], bool], timeout: float = 60.0) -> Iterator[ManagedProcess]:
    """Start, wait for readiness, yield, and stop also when the body raises."""
    process.start()
    try:
        process.wait_ready(ready, timeout)
        yield process
    finally:
        process.stop()
