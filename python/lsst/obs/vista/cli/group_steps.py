"""Running one group's ``pipetask`` and ``butler`` commands in turn in this
process, as ``python -m lsst.obs.vista.cli.group_steps COMMAND...`` (each
COMMAND one shell-quoted command line).

The commands are the installed programs' click groups called in-process, so
the middleware is imported once for the group rather than once per command
(importing it takes most of a small command's CPU time).  Each command's
logging is set up by the command itself and undone when it ends, so a
``--log-file`` holds that command's log only.

A failed command skips the remaining ones except the last, which runs
whenever the first succeeded: the last registers what the others wrote (a
quantum-backed run's ``butler transfer-from-graph``).  A SIGTERM or SIGINT
stops the command running, unless it is the last, which is left to finish,
and skips the remaining ones as a failure does.  The exit status is the first
failed command's, or 128 + the signal's number if a signal came before any
command failed.
"""

from __future__ import annotations

__all__ = ("STOP_SIGNALS", "main", "run_steps")

import shlex
import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType

import click

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""Signals that stop a group.  A runner may start the group's process with
them blocked: they are unblocked once handled, so that one received while
the process starts up stops the group before its first command instead of
killing the process mid-import."""


class _Stopped(BaseException):
    """Raised in the running command by a signal (its number the argument):
    a `BaseException`, so that the executor's handling of a failed quantum
    (``except Exception``) does not take it for one and go on with the next
    quantum."""


class _StepRunner:
    """Runs commands in-process; while installed, SIGTERM and SIGINT stop the
    command running if it may be stopped, and are recorded in any case."""

    def __init__(self) -> None:
        self.received: int | None = None
        """The first signal received, or `None`."""
        self._stoppable = False

    def install(self) -> None:
        """Handle `STOP_SIGNALS` from now on (in the main thread), those
        pending included."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def run(self, argv: Sequence[str], *, stoppable: bool) -> int:
        """Run one ``pipetask`` or ``butler`` command and return its exit
        status, as the installed program's process would end with.

        Parameters
        ----------
        argv : `~collections.abc.Sequence` [`str`]
            The command, its program first.
        stoppable : `bool`
            Whether a signal stops it (exit status 128 + the signal's
            number); otherwise it finishes.

        Returns
        -------
        status : `int`
        """
        from lsst.daf.butler.cli.cliLog import CliLog

        program = _program(argv[0])
        try:
            try:
                self._stoppable = stoppable
                if stoppable and self.received is not None:
                    # The signal came as the command was being started.
                    raise _Stopped(self.received)
                # Standalone mode: click reports usage errors and failures,
                # and converts them to exit statuses, as the program does.
                program.main(args=list(argv[1:]), prog_name=argv[0], standalone_mode=True)
            finally:
                self._stoppable = False
        except _Stopped as stopped:
            status = 128 + stopped.args[0]
        except SystemExit as ended:
            status = _exit_status(ended.code)
        except Exception:
            # What the interpreter does with an uncaught exception.
            traceback.print_exc()
            status = 1
        else:
            status = 0
        finally:
            # The next command sets up logging (and its log file) afresh.
            CliLog.resetLog()
            sys.stdout.flush()
            sys.stderr.flush()
        return status

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._stoppable:
            self._stoppable = False
            raise _Stopped(signum)


def _program(name: str) -> click.Command:
    """Return the click group of the ``pipetask`` or ``butler`` program."""
    if name == "pipetask":
        from lsst.ctrl.mpexec.cli.pipetask import cli
    elif name == "butler":
        from lsst.daf.butler.cli.butler import cli
    else:
        raise click.UsageError(f"{name!r} is not a program run in-process (pipetask, butler)")
    return cli


def _exit_status(code: object) -> int:
    """Return the exit status `SystemExit` with ``code`` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_steps(steps: Sequence[Sequence[str]]) -> int:
    """Run commands in turn in this process; return the group's exit status.

    Parameters
    ----------
    steps : `~collections.abc.Sequence` [`~collections.abc.Sequence` [`str`]]
        ``pipetask`` and ``butler`` commands, each program first.

    Returns
    -------
    status : `int`
        0 if all succeeded, else the first failed command's exit status, or
        128 + the number of the signal received before any failed.

    Notes
    -----
    Must run in the main thread, where Python delivers signals.
    """
    for argv in steps:
        _program(argv[0])
    runner = _StepRunner()
    runner.install()
    status = 0
    last = len(steps) - 1
    for k, argv in enumerate(steps):
        if k == 0 and runner.received is not None:
            # Stopped before the group started: there is nothing to register.
            break
        if (status != 0 or runner.received is not None) and k < last:
            continue
        result = runner.run(argv, stoppable=k < last)
        if result != 0 and status == 0:
            status = result
            if k == 0:
                # Nothing was produced for the last command to keep.
                break
    if status == 0 and runner.received is not None:
        status = 128 + runner.received
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the group given on the command line; return its exit status.

    Parameters
    ----------
    argv : `~collections.abc.Sequence` [`str`], optional
        The commands, each one shell-quoted command line; ``sys.argv[1:]``
        by default.

    Returns
    -------
    status : `int`
    """
    commands = sys.argv[1:] if argv is None else argv
    try:
        return run_steps([shlex.split(command) for command in commands])
    except click.UsageError as error:
        error.show()
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
