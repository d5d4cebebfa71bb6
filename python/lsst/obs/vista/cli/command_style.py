"""One command-line style for every command of the package: the options
shared with ``butler`` and ``pipetask``, spelt as they spell them, and
errors on one line.

A command's mistakes (a typo'd option, a missing argument, a bad value)
are answered with one ``Error:`` line, click's nearest-option suggestion
included, not with click's usage block; an exception the command did not
expect is answered with one line naming it, its traceback logged at DEBUG
level, as is the cause of every `click.ClickException` (shown with
``--log-level DEBUG``).  The butler's own mistakes (no repository, unknown
collection, dataset type or data ID key) are made one line by
`lsst.obs.vista.cli.repository.open_repository`.
"""

from __future__ import annotations

__all__ = (
    "ButlerSubcommand",
    "ScriptCommand",
    "data_query_option",
    "input_option",
    "output_option",
    "script_log_options",
)

import functools
import logging
from collections.abc import Callable
from typing import IO, Any

import click

from lsst.daf.butler.cli.cliLog import CliLog
from lsst.daf.butler.cli.opt import log_level_option, long_log_option
from lsst.daf.butler.cli.utils import ButlerCommand, MWCommand, MWOptionDecorator, split_commas

from ..messages import one_line

_LOG = logging.getLogger(__name__)

input_option = MWOptionDecorator(
    "-i",
    "--input",
    "inputs",
    callback=split_commas,
    multiple=True,
    metavar="COLLECTION",
    help="Input collections, comma-separated or repeated, as in pipetask.",
)
"""``-i/--input``: input collections, as ``pipetask run`` takes them."""

output_option = MWOptionDecorator("-o", "--output")
"""``-o/--output``: what the command writes (a collection or a directory)."""

data_query_option = MWOptionDecorator(
    "-d",
    "--data-query",
    "--where",
    "where",
    default="",
    metavar="QUERY",
    help="Data ID query expression, as pipetask's -d and butler's --where, e.g. "
    "\"instrument='VIRCAM' AND detector IN (1, 2)\".",
)
"""``-d/--data-query`` and its ``butler`` spelling ``--where``."""


def script_log_options(command: Callable) -> Callable:
    """Add ``--log-level`` and ``--long-log`` to a stand-alone script, as
    ``butler`` and ``pipetask`` take them before their subcommand.

    `ScriptCommand` configures the logging from them before the command
    runs; they do not reach the command's function.
    """
    return log_level_option()(long_log_option()(command))


class _OneLineUsageError(click.UsageError):
    """A usage error shown as its one ``Error:`` line, with click's exit
    status of usage errors (2)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {one_line(self.format_message())}", file=file, err=True)


def _one_line_errors(callback: Callable) -> Callable:
    """Wrap a command's function so that what it raises ends the command
    with one line (see the module docstring)."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        context = click.get_current_context()
        try:
            return callback(*args, **kwargs)
        except click.UsageError as err:
            _LOG.debug("%s failed:", context.command_path, exc_info=err)
            raise _OneLineUsageError(err.format_message(), context) from err
        except click.ClickException as err:
            if err.__cause__ is not None:
                _LOG.debug("%s failed:", context.command_path, exc_info=err.__cause__)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            _LOG.debug("%s failed:", context.command_path, exc_info=err)
            message = one_line(str(err)) or "(no message)"
            raise click.ClickException(
                f"{type(err).__name__}: {message} (--log-level DEBUG shows where)"
            ) from err

    return wrapper


class _OneLineErrors(click.Command):
    """Command whose errors are one line (see the module docstring).

    The function is wrapped before daf_butler's command class wraps it in
    turn, which logs a traceback for any exception but a click one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("callback") is not None:
            kwargs["callback"] = _one_line_errors(kwargs["callback"])
        # butler's group gives its subcommands -h as well as --help, but click
        # builds a command's help option once, from the first context it runs
        # in: a command run on its own first (as tests do) would lose -h.
        settings = dict(kwargs.get("context_settings") or {})
        settings.setdefault("help_option_names", ["-h", "--help"])
        kwargs["context_settings"] = settings
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise _OneLineUsageError(err.format_message(), ctx) from err


class ButlerSubcommand(_OneLineErrors, ButlerCommand):
    """A ``butler`` subcommand of this package: butler's command class, with
    errors on one line.  ``butler`` configures the logging from its own
    ``--log-level``."""


class ScriptCommand(_OneLineErrors, MWCommand):
    """A stand-alone script (``processCcd.py``, ``ingestImages.py``,
    ``python -m lsst.obs.vista.report``): errors
    on one line, and the logging configured from `script_log_options`
    before the command runs."""

    def invoke(self, ctx: click.Context) -> Any:
        log_levels = ctx.params.pop("log_level", ())
        CliLog.initLog(longlog=ctx.params.pop("long_log", False))
        if log_levels:
            CliLog.setLogLevels(log_levels)
        return super().invoke(ctx)
