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
from collections.abc import Sequence

import click

from ..skymap.register import SKYMAP_RUN
from .command_style import ScriptCommand, data_query_option, input_option, output_option, script_log_options
from .pipeline_driver import (
    check_skymap,
    config_overrides_option,
    drp_pipeline,
    find_instrument,
    pipetask_run_command,
    processes_option,
    run_pipetask_commands,
)
from .repository import collection_exists, open_repository


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
    return pipetask_run_command(
        repo, pipeline=drp_pipeline(instrument), subset="step3", where=query, collections=collections,
        output=output, jobs=jobs, resume=resume, config_overrides=config_overrides,
    )  # fmt: skip


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
@config_overrides_option
@processes_option
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
        check_skymap(butler, skymap, tracts)
        instrument = find_instrument(butler, inputs, instrument, verb="coadd")
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
    if run_pipetask_commands([command], prog="coaddDriver.py", output=output):
        click.echo(f"coaddDriver.py: everything asked for is coadded in {output}; nothing to do.", err=True)


def main() -> None:
    """Run ``coaddDriver.py``."""
    coadd_driver.main(prog_name="coaddDriver.py")
