"""`proxycontroller demo`: the seed's walkthrough on this machine, with the real Gloo and a real Envoy.

Builds Gloo if it is not in the cache, starts the petstore, Gloo (directory mode), the controller and Envoy on
loopback, runs the seed's curl, prints what to try next, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click

from proxycontroller.config import ControllerConfig, ListenerSettings, ProxySettings
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.controller import build_engine, build_logic
from proxycontroller.reconcile.engine import Engine
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.gloo import (
    REPO_ROOT,
    Gloo,
    ProxyState,
    start_gloo_directory,
    wait_for_proxy_status,
)
from proxycontroller.testing.servers.petstore import PETS_PATH, start_petstore
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.testing.servers.traffic import wait_for_status

UPSTREAM = "default-petstore-8080"


def build_gloo_with_progress() -> Path:
    """tools/testbin/build.sh gloo, showing its progress and the time spent (the first build takes minutes)."""
    script = REPO_ROOT / "tools" / "testbin" / "build.sh"
    if not script.exists():
        raise click.ClickException("demo needs a source checkout of proxycontroller (tools/testbin/build.sh)")
    process = subprocess.Popen([str(script), "gloo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    last_line = ["starting"]

    def follow() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            last_line[0] = line.strip()[:100]

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    while process.poll() is None:
        click.echo(f"\r\033[K[{time.monotonic() - started:5.0f}s] Gloo: {last_line[0]}", nl=False, err=True)
        time.sleep(0.5)
    reader.join(timeout=2)
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
def controller_thread(gloo: Gloo, listener_port: int) -> Iterator[Engine]:
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
        yield engine
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=10)


def run_demo(work_dir: Path | None, listener_port: int | None) -> None:
    gloo_binary = build_gloo_with_progress()
    port = listener_port or free_port()
    with contextlib.ExitStack() as stack:
        root = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="proxycontroller-demo-")))
        click.echo(f"working directory: {root}", err=True)
        _, petstore_port = stack.enter_context(start_petstore(root / "petstore"))
        click.echo(f"petstore on 127.0.0.1:{petstore_port}", err=True)
        try:
            gloo = stack.enter_context(start_gloo_directory(gloo_binary, root / "gloo"))
        except RuntimeError as error:  # Gloo's fixed ports are taken
            raise click.ClickException(str(error)) from error
        click.echo(f"Gloo (directory mode) serving xDS on 127.0.0.1:{gloo.xds_port}", err=True)
        upstream = {
            "metadata": {"name": UPSTREAM, "namespace": "gloo-system"},
            "static": {"hosts": [{"addr": "127.0.0.1", "port": petstore_port}]},
        }
        gloo.tree.write("upstreams", upstream)
        stack.enter_context(controller_thread(gloo, port))
        proxy_file = gloo.tree.proxy_path("my-cool-proxy")
        verdict = wait_for_proxy_status(
            proxy_file, states=(ProxyState.ACCEPTED,), timeout=60, alive=gloo.process.running
        )
        click.echo(f"controller wrote {proxy_file}; Gloo's verdict: {verdict.state.name}", err=True)
        envoy = stack.enter_context(start_envoy(root / "envoy", xds_port=gloo.xds_port, proxy_name="my-cool-proxy"))
        click.echo(f"Envoy (role gloo-system~my-cool-proxy) admin on {envoy.admin_url}", err=True)
        url = f"http://127.0.0.1:{port}{PETS_PATH}"
        try:
            body, status = wait_for_status(url, UPSTREAM, 200, timeout=60).decode(), 200
        except AssertionError as error:
            body, status = str(error), 0
        click.echo(f"\n$ curl {url} -H 'Host: {UPSTREAM}'")
        click.echo(body)
        upstreams_dir = gloo.tree.config_dir / "upstreams" / "gloo-system"
        click.echo(
            "\nTry next (Ctrl-C stops everything):\n"
            f"  proxycontroller status --config-dir {gloo.tree.config_dir}\n"
            f"  cp {upstreams_dir}/{UPSTREAM}.yaml {upstreams_dir}/another-8080.yaml && "
            f"sed -i 's/name: {UPSTREAM}/name: another-8080/' {upstreams_dir}/another-8080.yaml\n"
            f"  curl http://127.0.0.1:{port}{PETS_PATH} -H 'Host: another-8080'\n"
            f"  cat {proxy_file}"
        )
        if status != 200:
            raise click.ClickException("the seed's curl did not answer 200")
        with contextlib.suppress(KeyboardInterrupt):
            while gloo.process.running():
                time.sleep(1)
        click.echo("\nstopping...", err=True)
    sys.stdout.flush()
