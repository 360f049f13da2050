"""Command-line values checked when they are parsed: a listen address, whether a port is free, a number of
seconds, and the options several commands share."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from proxycontroller.cli.errors import BadInput

_Command = TypeVar("_Command", bound=Callable[..., Any])


def parse_address(text: str, any_host: bool = False) -> tuple[str, int]:
    """`host:port` (`[v6 address]:port` for IPv6) as (host, port), the host without brackets; port 0 means any
    free port; with `any_host`, `:port` (empty host: every interface, as Go's listeners take it). ValueError
    says what is wrong."""
    host, colon, port = text.rpartition(":")
    if not colon or not (host or any_host):
        raise ValueError("expected host:port, e.g. 127.0.0.1:9091 or [::1]:9091")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from exc
    elif ":" in host:
        raise ValueError("put an IPv6 address in brackets, e.g. [::1]:9091")
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"port {port!r} is not a number")
    if int(port) > 65535:
        raise ValueError(f"port {int(port)} is out of range 0-65535")
    return host, int(port)


@dataclass(frozen=True)
class BindAddress:
    """A listen address as given with `flag`: host and port, or none (`host` None: the listener is off)."""

    flag: str
    host: str | None
    port: int = 0


class ListenAddress(click.ParamType[BindAddress]):
    """`host:port`, `:port` (every interface), or `0` or empty for none, as controller-runtime's bind addresses
    take them. A bad one is `error: --flag <value>: <what is wrong>`, as a taken one is when it is bound."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> BindAddress:
        if isinstance(value, BindAddress):
            return value
        flag = param.opts[0] if param is not None and param.opts else "address"
        if value in ("", "0"):
            return BindAddress(flag, None)
        try:
            return BindAddress(flag, *parse_address(str(value), any_host=True))
        except ValueError as exc:
            raise BadInput(f"{flag} {value}: {exc}") from exc


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an empty host gives :port, as it was given


def bind_failure(flag: str, host: str, port: int, error: OSError) -> BadInput:
    """`--flag host:port: address already in use` (the system's words, in lower case)."""
    reason = error.strerror or str(error)
    if isinstance(error, socket.gaierror):
        reason = f"cannot resolve the host: {reason}"
    return BadInput(f"{flag} {format_address(host, port)}: {reason[:1].lower()}{reason[1:]}")


def check_port_free(flag: str, host: str, port: int) -> None:
    """BadInput if `host:port` cannot be bound now (taken, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers that will listen there set it: only a live listener makes the port taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise bind_failure(flag, host, port, exc) from exc


def seconds_option(*names: str, default: float, help: str) -> Callable[[_Command], _Command]:
    """An option taking a number of seconds above zero, its default shown in --help."""
    return click.option(
        *names, type=click.FloatRange(min=0, min_open=True), default=default, show_default=True, help=help
    )


def kubeconfig_options(command: _Command) -> _Command:
    """--kubeconfig and --context: which cluster, as kubectl takes them."""
    options = [
        click.option(
            "--kubeconfig",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="Kubeconfig file; default: in-cluster service account, else $KUBECONFIG or ~/.kube/config.",
        ),
        click.option("--context", help="Kubeconfig context to use."),
    ]
    for option in reversed(options):  # the last decorator applied is the first shown
        command = option(command)
    return command
