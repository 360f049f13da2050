"""The `proxycontroller` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from proxycontroller.config import ConfigError, ControllerConfig, load_config
from proxycontroller.model.documents import DocumentError
from proxycontroller.translate.strategies import StrategyError

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _config(path: Path | None, namespaces: tuple[str, ...]) -> ControllerConfig:
    config = load_config(path)
    if namespaces:
        config = config.model_copy(update={"namespaces": namespaces})
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="proxycontroller")
def main() -> None:
    """Turns the Upstreams Gloo discovers into routes: watches Upstreams and writes a Gloo Proxy."""


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
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def render_command(paths: tuple[str, ...], config_path: Path | None, namespaces: tuple[str, ...], output: str) -> None:
    """Print the Proxies the controller would write for the Upstreams in PATHs."""
    from proxycontroller.cli.render import render

    try:
        text, warnings = render(paths, _config(config_path, namespaces), output)
    except (DocumentError, ConfigError, StrategyError) as exc:
        _fail(str(exc))
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(text, nl=False)


if __name__ == "__main__":
    main()
