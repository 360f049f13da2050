"""How the command line ends on a user's mistake: one line, `error: <what is wrong>`, and a non-zero exit status.

Exit status 2: the command line or a file it names is wrong (the user has to change something). Exit status 1:
the command line may be right but what it points at does not work (a cluster that does not answer, refuses the
credentials, or a leader that lost its Lease). A user's mistake never shows a traceback; with `--log-level debug`
the debug log shows the one behind the line. Anything else escaping a command is a bug and shows its traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from click.exceptions import NoArgsIsHelpError

from proxycontroller.config import ConfigError
from proxycontroller.manager.preflight import StartupError
from proxycontroller.model.documents import DocumentError
from proxycontroller.store.errors import StoreError
from proxycontroller.translate.registry import StrategyError

log = logging.getLogger("proxycontroller.cli")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class BadInput(click.ClickException):
    """The command line or a file it names is wrong."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Failed(BadInput):
    """What the command line points at does not work (now)."""

    exit_code = EXIT_FAILED


@contextlib.contextmanager
def user_errors(config_path: Path | None = None) -> Iterator[None]:
    """Turns the errors a user's input or environment causes into BadInput or Failed. `config_path`: the
    configuration file, named in front of a strategy's error (its own message names the key)."""
    try:
        yield
    except StrategyError as exc:
        raise _logged(BadInput(f"{config_path}: {exc}" if config_path else str(exc))) from exc
    except StartupError as exc:
        raise _logged(Failed(str(exc)) if exc.exit_code == EXIT_FAILED else BadInput(str(exc))) from exc
    except (ConfigError, DocumentError, StoreError) as exc:
        raise _logged(BadInput(str(exc))) from exc
    except OSError as exc:  # a file or directory the system refused, e.g. a permission or a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        raise _logged(BadInput(f"{where}{exc.strerror or exc}")) from exc


def _logged(error: BadInput) -> BadInput:
    """The traceback behind the line, for `--log-level debug` (called inside the `except` that caught it)."""
    log.debug("the error below came from", exc_info=True)
    return error


class OneLineErrors(click.Group):
    """click's own usage errors (an unknown option, a bad value) as one `error:` line with a pointer to --help,
    like ours, instead of the usage text and `Error:`."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except NoArgsIsHelpError:  # `proxycontroller` alone prints the help, as it should
        raise
    except click.UsageError as exc:
        message = exc.format_message().rstrip(".")
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        raise BadInput(message[:1].lower() + message[1:] + hint) from exc
