"""What the Gen2-named drivers of the DRP steps (``coaddDriver.py``,
``multiBandDriver.py``) share: the one-line checks of a skymap and an
instrument before anything runs, the ``pipetask run`` command of a subset of
the instrument's ``DRP.yaml``, their ``-c`` and ``-j`` options, and running
those commands one after the other with SIGTERM and SIGINT passed on.

A driver is re-run to resume: when its output collection exists, each
command extends its last run, skips the quanta that finished and replaces
what stopped ones left (``--extend-run --skip-existing --clobber-outputs``),
so a killed run resumes to the outputs of an uninterrupted one.
"""

from __future__ import annotations

__all__ = (
    "check_skymap",
    "config_overrides_option",
    "drp_pipeline",
    "find_instrument",
    "pipetask_run_command",
    "processes_option",
    "run_pipetask_commands",
    "visit_instruments",
)

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from ..discovery import instrument_entry
from .process_ccd import environment_executable
from .repository import nearest
from .signal_forwarding import SignalForwarder

_EMPTY_GRAPH = "QuantumGraph was empty"
"""What pipetask says when every quantum asked for is done (or has no input)."""

RESUME_OPTIONS = ("--extend-run", "--skip-existing", "--clobber-outputs")
"""``pipetask run`` options of a run into an existing output: its last run
is extended, finished quanta are skipped and what unfinished ones left is
replaced."""


config_overrides_option: Callable[[Callable], Callable] = click.option(
    "-c", "--config", "config_overrides", multiple=True, metavar="LABEL:KEY=VALUE", help="Config override."
)
"""A driver's ``-c``: passed to every ``pipetask run`` it makes."""

processes_option: Callable[[Callable], Callable] = click.option(
    "-j", "--processes", "jobs", type=click.IntRange(min=1), default=1, show_default=True,
    help="Processes running quanta at once (pipetask run -j).",
)  # fmt: skip
"""A driver's ``-j``: the processes of each ``pipetask run``."""


def check_skymap(butler: object, skymap: str, tracts: Sequence[int]) -> None:
    """Name an unregistered skymap or a tract it does not have, on one line.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    skymap : `str`
        Skymap name.
    tracts : sequence [`int`]
        Tracts asked for (may be empty).

    Raises
    ------
    click.ClickException
        Raised if the skymap is not registered or lacks a tract.
    """
    registered = sorted(record.name for record in butler.query_dimension_records("skymap"))
    if skymap not in registered:
        known = ", ".join(registered) if registered else "none; run butler register-skymap first"
        raise click.ClickException(
            f"unknown skymap {skymap!r}{nearest(skymap, registered)} (registered: {known})"
        )
    for tract in tracts:
        if not butler.query_dimension_records("tract", skymap=skymap, tract=tract, explain=False):
            count = len(butler.query_dimension_records("tract", skymap=skymap))
            raise click.ClickException(
                f"skymap {skymap!r} has no tract {tract} (its tracts are 0-{count - 1})"
            )


def visit_instruments(butler: object, inputs: Sequence[str]) -> list[str]:
    """Return the instruments with a ``preliminary_visit_image`` in the
    inputs, sorted."""
    return sorted(
        {
            str(ref.dataId["instrument"])
            for ref in butler.query_datasets(
                "preliminary_visit_image", collections=list(inputs), find_first=False, explain=False
            )
        }
    )


def drp_pipeline(instrument: str) -> Path:
    """Return the instrument's ``pipelines/<instrument>/DRP.yaml``."""
    return instrument_entry(instrument).pipelines_dir / "DRP.yaml"


def find_instrument(butler: object, inputs: Sequence[str], given: str | None, *, verb: str) -> str:
    """Return the instrument whose visits a driver works on: the one given,
    or the only one with a ``preliminary_visit_image`` in the inputs.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    inputs : sequence [`str`]
        Input collections.
    given : `str` or `None`
        The ``--instrument`` option.
    verb : `str`
        What the driver does with the visits (``coadd``, ``measure``), for
        the error message.

    Raises
    ------
    click.ClickException
        Raised if the given instrument has no visit in the inputs, or if
        none is given and the inputs hold none or several.
    """
    found = visit_instruments(butler, inputs)
    if given is not None:
        if given not in found:
            raise click.ClickException(
                f"no preliminary_visit_image of instrument {given!r} in {', '.join(inputs)}"
                f"{nearest(given, found)}"
            )
        return given
    if len(found) != 1:
        what = ", ".join(found) if found else "none"
        raise click.ClickException(
            f"say which instrument to {verb} with --instrument (with preliminary_visit_image in "
            f"{', '.join(inputs)}: {what})"
        )
    return found[0]


def pipetask_run_command(
    repo: str,
    *,
    pipeline: Path,
    subset: str,
    where: str,
    collections: Sequence[str],
    output: str,
    jobs: int,
    resume: bool,
    config_overrides: Sequence[str] = (),
) -> list[str]:
    """Return the ``pipetask run`` of a subset of a pipeline.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    pipeline : `pathlib.Path`
        The pipeline YAML (`drp_pipeline`, or a multi-instrument one).
    subset : `str`
        Label of the pipeline's subset (``step3``, ``objects``, ...).
    where : `str`
        The data query (``-d``).
    collections : sequence [`str`]
        Input collections.
    output : `str`
        Output chained collection.
    jobs : `int`
        Processes of ``pipetask run -j``.
    resume : `bool`
        Whether ``output`` exists when the command runs (`RESUME_OPTIONS`).
    config_overrides : sequence [`str`]
        ``LABEL:KEY=VALUE`` config overrides.
    """
    command = [
        "pipetask", "run", "-b", repo, "-i", ",".join(collections), "-o", output,
        "-p", f"{pipeline}#{subset}", "-d", where, "-j", str(jobs),
        "--register-dataset-types",
    ]  # fmt: skip
    if resume:
        command += RESUME_OPTIONS
    for override in config_overrides:
        command += ["-c", override]
    return command


def run_pipetask_commands(commands: Sequence[Sequence[str]], *, prog: str, output: str) -> bool:
    """Run ``pipetask run`` commands one after the other, stopping them on
    SIGTERM or SIGINT.

    On a signal the command running is passed it; then a line says where the
    finished quanta's outputs are and how to resume, and the process exits
    with 128 + the signal's number.  A failed command stops the sequence
    with an error naming its status and how to resume.

    Parameters
    ----------
    commands : sequence [sequence [`str`]]
        The commands (`pipetask_run_command`); a command with
        `RESUME_OPTIONS` whose graph is empty has nothing left to do and
        the next one runs.
    prog : `str`
        The driver's name, for its messages and the command that resumes.
    output : `str`
        Output collection of the commands.

    Returns
    -------
    nothing_done : `bool`
        Whether every command found nothing to do.

    Raises
    ------
    click.ClickException
        Raised if a command fails.
    """
    rerun = shlex.join([prog, *sys.argv[1:]])
    nothing_done = True
    with SignalForwarder() as forwarder:
        for command in commands:
            process = forwarder.popen(
                environment_executable(list(command)), stdout=sys.stdout, stderr=subprocess.PIPE, text=True
            )
            tail: list[str] = []
            assert process.stderr is not None
            for line in process.stderr:
                sys.stderr.write(line)
                tail = [*tail[-20:], line]
            status = forwarder.wait(process)
            if forwarder.received is not None:
                click.echo(
                    f"{prog}: stopped by {forwarder.name}; the finished quanta's outputs are kept in "
                    f"{output}; to resume, re-run this command: {rerun}",
                    err=True,
                )
                sys.exit(128 + forwarder.received)
            resumed = RESUME_OPTIONS[0] in command
            if status != 0 and resumed and any(_EMPTY_GRAPH in line for line in tail):
                continue
            if status != 0:
                raise click.ClickException(
                    f"pipetask exited with status {status} (see the log above); to resume once the cause "
                    f"is dealt with, re-run this command: {rerun}"
                )
            nothing_done = False
    return nothing_done
