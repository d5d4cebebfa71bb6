"""``coaddDriver.py``: warps and cell-based coadds of a repository's visits
on a registered skymap, under the name users of the Gen2 stack know; it
builds, prints and runs the ``pipetask run`` of the instrument's
``DRP.yaml#step3``.

SIGTERM and SIGINT are passed on to ``pipetask`` (a batch scheduler's time
limit sends SIGTERM); the command then says how far it got and how to
resume, and exits with 128 + the signal's number.  A resumed run replaces
what the stopped quanta left (``--clobber-outputs``) and skips the finished
ones (``--skip-existing``).
"""

from __future__ import annotations

__all__ = ("build_coadd_command", "coadd_driver", "main")

import shlex
import subprocess
import sys
from collections.abc import Sequence

import click

from ..discovery import instrument_entry
from ..skymap.register import SKYMAP_RUN
from .command_style import ScriptCommand, data_query_option, input_option, output_option, script_log_options
from .process_ccd import environment_executable
from .repository import collection_exists, nearest, open_repository
from .signal_forwarding import SignalForwarder

_EMPTY_GRAPH = "QuantumGraph was empty"
"""What pipetask says when every quantum asked for is done (or has no input)."""


def _check_skymap(butler: object, skymap: str, tracts: Sequence[int]) -> None:
    """Name an unregistered skymap or a tract it does not have, on one line."""
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


def _instrument(butler: object, inputs: Sequence[str], given: str | None) -> str:
    """The instrument whose visits are coadded: the one given, or the only one
    with a ``preliminary_visit_image`` in the inputs."""
    found = sorted(
        {
            str(ref.dataId["instrument"])
            for ref in butler.query_datasets(
                "preliminary_visit_image", collections=list(inputs), find_first=False, explain=False
            )
        }
    )
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
            f"say which instrument to coadd with --instrument (with preliminary_visit_image in "
            f"{', '.join(inputs)}: {what})"
        )
    return found[0]


def build_coadd_command(
    repo: str,
    *,
    instrument: str,
    skymap: str,
    where: str,
    inputs: Sequence[str],
    output: str,
    jobs: int,
    resume: bool,
    config_overrides: Sequence[str] = (),
) -> list[str]:
    """Return the ``pipetask run`` of ``pipelines/<instrument>/DRP.yaml#step3``.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    instrument : `str`
        Butler name of a registered instrument (whose pipelines folder
        holds DRP.yaml).
    skymap : `str`
        Registered skymap name.
    where : `str`
        Further data ID constraints (may be empty).
    inputs : sequence [`str`]
        Input collections (``skymaps`` is added).
    output : `str`
        Output chained collection.
    jobs : `int`
        Processes of ``pipetask run -j``.
    resume : `bool`
        Whether ``output`` exists: its last run is extended, finished
        quanta are skipped and what unfinished ones left is replaced
        (``--extend-run --skip-existing --clobber-outputs``).
    config_overrides : sequence [`str`]
        ``LABEL:KEY=VALUE`` config overrides.
    """
    query = f"skymap='{skymap}' AND instrument='{instrument}'" + (f" AND ({where})" if where else "")
    collections = [*inputs, *([SKYMAP_RUN] if SKYMAP_RUN not in inputs else [])]
    pipeline = instrument_entry(instrument).pipelines_dir / "DRP.yaml"
    command = [
        "pipetask", "run", "-b", repo, "-i", ",".join(collections), "-o", output,
        "-p", f"{pipeline}#step3", "-d", query, "-j", str(jobs),
        "--register-dataset-types",
    ]  # fmt: skip
    if resume:
        command += ["--extend-run", "--skip-existing", "--clobber-outputs"]
    for override in config_overrides:
        command += ["-c", override]
    return command


@click.command(cls=ScriptCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo")
@click.option("--skymap", required=True, help="Registered skymap to coadd on (butler register-skymap).")
@click.option(
    "--tract", "tracts", type=int, multiple=True, help="Tract(s) to coadd (default: all the data reach)."
)
@click.option(
    "--instrument", help="Instrument whose visits are coadded (default: the only one in the inputs)."
)
@data_query_option()
@input_option(
    required=True, help="Collections with the preliminary_visit_image inputs, comma-separated or repeated."
)
@output_option(required=True, metavar="COLL", help="Output chained collection.")
@click.option(
    "-c", "--config", "config_overrides", multiple=True, metavar="LABEL:KEY=VALUE", help="Config override."
)
@click.option(
    "-j", "--processes", "jobs", type=click.IntRange(min=1), default=1, show_default=True,
    help="Processes running quanta at once (pipetask run -j).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the command and stop.")
@script_log_options
def coadd_driver(
    repo: str,
    skymap: str,
    tracts: tuple[int, ...],
    instrument: str | None,
    where: str,
    inputs: tuple[str, ...],
    output: str,
    config_overrides: tuple[str, ...],
    jobs: int,
    dry_run: bool,
) -> None:
    """Warp REPO's calibrated visits onto the patches of a skymap and coadd
    each patch and band cell by cell (makeDirectWarp, assembleCellCoadd).

    The Gen2 coaddDriver.py, on the Gen3 middleware: it picks the
    instrument's pipelines/<instrument>/DRP.yaml#step3, prints the
    equivalent 'pipetask run' command and runs it.  An unregistered skymap,
    a tract the skymap lacks, or an unknown collection is named on one line
    before anything runs.  SIGTERM or SIGINT stops pipetask, and the
    command says how to resume.  Re-running the same command resumes a
    stopped or failed run into the same OUTPUT (--extend-run --skip-existing
    --clobber-outputs); when everything is coadded it says so.
    """
    with open_repository(repo, collections=list(inputs)) as butler:
        _check_skymap(butler, skymap, tracts)
        instrument = _instrument(butler, inputs, instrument)
        resume = collection_exists(butler, output)
    if tracts:
        tract_query = f"tract IN ({', '.join(str(t) for t in tracts)})"
        where = f"({where}) AND {tract_query}" if where else tract_query
    command = build_coadd_command(
        repo, instrument=instrument, skymap=skymap, where=where, inputs=inputs, output=output, jobs=jobs,
        resume=resume, config_overrides=config_overrides,
    )  # fmt: skip
    click.echo(f"$ {shlex.join(command)}", err=True)
    if dry_run:
        return
    with SignalForwarder() as forwarder:
        process = forwarder.popen(
            environment_executable(command), stdout=sys.stdout, stderr=subprocess.PIPE, text=True
        )
        tail: list[str] = []
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            tail = [*tail[-20:], line]
        status = forwarder.wait(process)
    rerun = shlex.join(["coaddDriver.py", *sys.argv[1:]])
    if forwarder.received is not None:
        click.echo(
            f"coaddDriver.py: stopped by {forwarder.name}; the finished quanta's outputs are kept in "
            f"{output}; to resume, re-run this command: {rerun}",
            err=True,
        )
        sys.exit(128 + forwarder.received)
    if status != 0 and resume and any(_EMPTY_GRAPH in line for line in tail):
        click.echo(f"coaddDriver.py: everything asked for is coadded in {output}; nothing to do.", err=True)
        return
    if status != 0:
        raise click.ClickException(
            f"pipetask exited with status {status} (see the log above); to resume once the cause is dealt "
            f"with, re-run this command: {rerun}"
        )


def main() -> None:
    """Run ``coaddDriver.py``."""
    coadd_driver.main(prog_name="coaddDriver.py")
