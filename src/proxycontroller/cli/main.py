"""The `proxycontroller` command line."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from proxycontroller.cli.errors import BadInput, Failed, OneLineErrors, user_errors
from proxycontroller.cli.install import manifests_command, url_command
from proxycontroller.cli.params import (
    BindAddress,
    ListenAddress,
    bind_failure,
    check_port_free,
    kubeconfig_options,
    seconds_option,
)
from proxycontroller.config import ControllerConfig, load_config

if TYPE_CHECKING:  # the Kubernetes client is imported only by the commands that use it
    from proxycontroller.manager.backends import BackendChoice
    from proxycontroller.manager.probes import ProbeServer

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"])
log = logging.getLogger("proxycontroller.cli")


def _config(path: Path | None, namespaces: tuple[str, ...], proxy_namespace: str | None = None) -> ControllerConfig:
    """The configuration file with the command line's overrides; ConfigError naming the file or the option."""
    config = load_config(path)
    if namespaces:
        config = config.with_namespaces(namespaces)
    if proxy_namespace is not None:
        config = config.with_proxy_namespace(proxy_namespace)
    return config


def _setup_logging(level: str, log_format: str = "text") -> None:
    from proxycontroller.manager.logs import setup_logging

    setup_logging(level, log_format)


GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """The process-wide collector setting, made here at the entry point and nowhere else.

    Translation allocates many small objects and no reference cycles; with the default thresholds (700
    allocations) the cyclic collector walks the whole growing heap again and again: a first pass over 10k
    upstreams takes 0.83 s with them and 0.25 s with these. Cycles are still collected, less often."""
    gc.set_threshold(*GC_THRESHOLDS)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="proxycontroller")
def main() -> None:
    """Turns the Upstreams Gloo discovers into routes: watches Upstreams and writes Gloo Proxies."""
    tune_gc()


@main.command("render")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    help="Upstream file, directory (read recursively) or - for stdin; repeatable.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Controller configuration (YAML).",
)
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Route upstreams of this namespace (repeatable; * for all). Overrides the config.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json", "gateway-api"]),
    default="yaml",
    show_default=True,
    help="gateway-api: the HTTPRoutes and ReferenceGrants `output: gateway-api` would write (YAML), whatever the "
    "config's output.",
)
def render_command(paths: tuple[str, ...], config_path: Path | None, namespaces: tuple[str, ...], output: str) -> None:
    """Print the Proxies (or HTTPRoutes) the controller would write for the Upstreams in PATHs."""
    from proxycontroller.cli.render import render

    with user_errors(config_path):
        config = _config(config_path, namespaces)
        text, warnings = render(paths, config, output)
    for warning in [*config.advisories(), *warnings]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(text, nl=False)


def _controller_options(default_log_level: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options that say where resources live, how to route them and how much to log, handed to the command
    as one validated `config` and one `backend` (a bad value fails here, with exit status 2), logging set up."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(
            config_dir: Path | None,
            kubeconfig: Path | None,
            context: str | None,
            config_path: Path | None,
            namespaces: tuple[str, ...],
            proxy_namespace: str | None,
            log_level: str,
            log_format: str,
            **rest: object,
        ) -> None:
            from proxycontroller.manager.backends import BackendChoice

            _setup_logging(log_level, log_format)
            if config_dir is not None and (kubeconfig is not None or context is not None):
                given = "--kubeconfig" if kubeconfig is not None else "--context"
                raise BadInput(f"--config-dir (Gloo's directory mode) and {given} (a cluster) exclude each other")
            with user_errors(config_path):
                config = _config(config_path, namespaces, proxy_namespace)
            backend = BackendChoice(config_dir=config_dir, kubeconfig=kubeconfig, context=context, limits=config.limits)
            command(config=config, backend=backend, config_path=config_path, **rest)

        options = [
            click.option(
                "--config-dir",
                type=click.Path(path_type=Path),
                help="Gloo's directory config source (its --dir tree's config/ folder, holding upstreams/) "
                "instead of a cluster.",
            ),
            kubeconfig_options,
            click.option(
                "--config",
                "config_path",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Controller configuration (YAML).",
            ),
            click.option(
                "-n",
                "--namespace",
                "namespaces",
                multiple=True,
                help="Route upstreams of this namespace (repeatable; * for all). Overrides the config.",
            ),
            click.option(
                "--proxy-namespace", help="Namespace of the Proxy (Gloo's write namespace). Overrides the config."
            ),
            click.option(
                "--log-level",
                type=LOG_LEVELS,
                default=default_log_level,
                show_default=True,
                help="debug also shows the traceback behind an error.",
            ),
            click.option(
                "--log-format",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
                help="json: one object per line (time, level, logger, message and the objects it is about).",
            ),
        ]
        decorated: Callable[..., None] = wrapper
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


@main.command("run")
@_controller_options(default_log_level="info")
@click.option(
    "--health-probe-bind-address",
    "health_probe_address",
    type=ListenAddress(),
    help="host:port for /healthz, /readyz and /statusz ([::1]:port for IPv6, :port for every interface, port 0 for "
    "any free one, 0 or empty for none)  [default: 127.0.0.1:9091]",
)
@click.option("--probe-address", type=ListenAddress(), help="The same as --health-probe-bind-address (older name).")
@click.option(
    "--metrics-bind-address",
    type=ListenAddress(),
    help="host:port for /metrics (as above); default: on the health probe address.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="On a cluster: reconcile only while holding the Lease (run several replicas safely).",
)
@seconds_option(
    "--graceful-shutdown-timeout",
    "grace_period",
    default=10.0,
    help="Seconds a stop (SIGTERM, SIGINT) may take: the write in flight, the Lease released.",
)
def run_command(
    config: ControllerConfig,
    backend: BackendChoice,
    config_path: Path | None,
    health_probe_address: BindAddress | None,
    probe_address: BindAddress | None,
    metrics_bind_address: BindAddress | None,
    leader_elect: bool,
    grace_period: float,
) -> None:
    """Watch Upstreams and keep the managed Proxy up to date until stopped (Ctrl-C, SIGTERM)."""
    import asyncio

    from proxycontroller.manager.controller import build_logic
    from proxycontroller.manager.leader import LeadershipLost
    from proxycontroller.manager.run import (
        STARTUP_TIMEOUT_SECONDS,
        GracePeriodExceeded,
        check_backend,
        run_controller,
    )

    with user_errors(config_path):
        logic = build_logic(config)
    for advisory in config.advisories():
        log.warning("%s", advisory)
    if health_probe_address is not None and probe_address is not None:
        raise BadInput("--health-probe-bind-address and --probe-address are the same option: give one")
    probes = health_probe_address or probe_address or BindAddress("--health-probe-bind-address", "127.0.0.1", 9091)
    servers = _bind_servers(probes, metrics_bind_address)
    try:
        with user_errors(config_path):
            asyncio.run(check_backend(config, backend, STARTUP_TIMEOUT_SECONDS, upstreams=True))
            asyncio.run(run_controller(config, backend, servers, leader_elect, logic, grace_period))
    except LeadershipLost as exc:
        raise Failed(f"lost leadership, exiting so that a restart begins with fresh caches: {exc}") from exc
    except GracePeriodExceeded as exc:
        raise Failed(f"{exc}; exiting anyway") from exc
    finally:
        for server in servers:
            server.stop()


def _bind_servers(probes: BindAddress, metrics: BindAddress | None) -> list[ProbeServer]:
    """The listeners for the probes and /metrics, bound now so that a taken or wrong address fails at start in
    one line naming the flag. /metrics shares the probes' listener unless given an address of its own."""
    from proxycontroller.manager.probes import ProbeServer

    same = metrics is None or ((metrics.host, metrics.port) == (probes.host, probes.port) and metrics.port != 0)
    wanted = [(probes, same, True)] if same else [(probes, False, True), (metrics, True, False)]
    servers: list[ProbeServer] = []
    for address, serve_metrics, serve_probes in wanted:
        if address is None or address.host is None:
            continue
        try:
            servers.append(ProbeServer(address.host, address.port, metrics=serve_metrics, probes=serve_probes))
        except OSError as exc:
            for server in servers:
                server.stop()
            raise bind_failure(address.flag, address.host, address.port, exc) from exc
    return servers


@main.command("status")
@_controller_options(default_log_level="warning")
@seconds_option("--timeout", default=30.0, help="Seconds to wait for the store.")
def status_command(config: ControllerConfig, backend: BackendChoice, config_path: Path | None, timeout: float) -> None:
    """List the managed Proxies: virtual hosts, size, and Gloo's verdict (HTTPRoutes with output: gateway-api)."""
    import asyncio

    from proxycontroller.manager.run import check_backend, managed_proxies

    with user_errors(config_path):
        asyncio.run(check_backend(config, backend, timeout, upstreams=False))
        if config.output == "gateway-api":
            _route_status(config, backend, timeout)
            return
        try:
            reports = asyncio.run(managed_proxies(config, backend, timeout))
        except TimeoutError as exc:
            raise Failed(f"no answer from {backend.describe()} within {timeout:g}s") from exc
    if not reports:
        namespaces = ", ".join(config.proxy_namespaces)
        click.echo(f"no Proxy managed by instance {config.instance!r} in namespace {namespaces}")
        return
    header = ("PROXY", "VIRTUAL HOSTS", "SPEC BYTES", "COMPRESSED", "GLOO", "REASON")
    rows = [
        (
            f"{r.namespace}/{r.name}",
            "?" if r.virtual_hosts is None else str(r.virtual_hosts),
            "?" if r.spec_bytes is None else str(r.spec_bytes),
            r.compression,
            r.state,
            r.reason.replace("\\n", " ")[:120],
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _route_status(config: ControllerConfig, backend: BackendChoice, timeout: float) -> None:
    import asyncio

    from proxycontroller.manager.controller import route_namespaces
    from proxycontroller.manager.run import managed_routes

    try:
        routes = asyncio.run(managed_routes(config, backend, timeout))
    except TimeoutError as exc:
        raise Failed(f"no answer from {backend.describe()} within {timeout:g}s") from exc
    if not routes:
        namespaces = ", ".join(route_namespaces(config))
        click.echo(f"no HTTPRoute managed by instance {config.instance!r} in namespace {namespaces}")
        return
    header = ("HTTPROUTE", "HOSTNAMES", "RULES", "VERDICT")
    rows = [(f"{r.namespace}/{r.name}", str(r.hostnames), str(r.rules), r.verdict[:300]) for r in routes]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@main.command("demo")
@click.option(
    "--work-dir", type=click.Path(path_type=Path, file_okay=False), help="Keep files here (default: temporary)."
)
@click.option("--port", type=click.IntRange(1, 65535), help="Envoy's listener port (default: a free one).")
@click.option("--exit-after-curl", is_flag=True, help="Stop everything after the seed's curl (for scripts and CI).")
def demo_command(work_dir: Path | None, port: int | None, exit_after_curl: bool) -> None:
    """The seed's walkthrough on this machine: petstore, real Gloo, the controller and a real Envoy."""
    from proxycontroller.cli.demo import run_demo

    if port is not None:
        check_port_free("--port", "127.0.0.1", port)  # before the minutes a first Gloo build takes
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_demo(work_dir, port, exit_after_curl=exit_after_curl)


@main.group("config")
def config_group() -> None:
    """About the configuration file."""


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the configuration file's JSON Schema, the options of every strategy installed included."""
    import json

    from proxycontroller.translate.registry import StrategyRegistry
    from proxycontroller.translate.schema import config_schema

    with user_errors():
        schema = config_schema(StrategyRegistry.discover())
    click.echo(json.dumps(schema, indent=2))


# Installing on a cluster (cli/install.py).
main.add_command(manifests_command)
main.add_command(url_command)


if __name__ == "__main__":
    main()
