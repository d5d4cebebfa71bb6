"""``multiBandDriver.py``: the objects of a repository's coadds, under the
name users of the Gen2 stack know; it builds, prints and runs the
``pipetask run`` commands of the instrument's ``DRP.yaml#objects`` (multi-band
detection, merge, deblending, measurement, the ``object`` table),
``DRP.yaml#step4`` (forced photometry on the visits) and, given an external
catalogue, ``DRP.yaml#external``, one after the other into one output
collection.

The subsets run as separate pipetask runs, as Rubin runs its steps: in one
graph the visits would restrict the coadd bands to theirs.  Stopping,
resuming and "nothing to do" are as in ``coaddDriver.py``
(`lsst.obs.vista.cli.pipeline_driver`).
"""

from __future__ import annotations

__all__ = ("build_multi_band_commands", "main", "multi_band_driver")

import shlex
from collections.abc import Sequence
from pathlib import Path

import click

from lsst.daf.butler import MissingDatasetTypeError
from lsst.pipe.base import Pipeline

from .._resources import PIPELINES_DIR
from ..refcat.ingest import refcat_collection
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
    visit_instruments,
)
from .repository import collection_exists, open_repository

MULTI_INSTRUMENT_PIPELINE = PIPELINES_DIR / "MultiInstrument" / "DRP-objects.yaml"
"""The objects of coadds whose bands come from several instruments on one
skymap (no instrument in its data query): what runs when the inputs hold
visits of more than one instrument and no ``--instrument`` is given."""

COADD = "deep_coadd"
"""Dataset type the objects are detected and measured on."""


def _check_coadds(butler: object, inputs: Sequence[str], skymap: str, tracts: Sequence[int]) -> None:
    """Say on one line that the inputs hold no coadd of the skymap (or of its
    tracts asked for)."""
    where = f"tract IN ({', '.join(str(t) for t in tracts)})" if tracts else ""
    try:
        found = butler.query_datasets(
            COADD, collections=list(inputs), where=where, skymap=skymap, limit=1, explain=False
        )
    except MissingDatasetTypeError:
        found = []
    if not found:
        tract_text = f" tract {', '.join(str(t) for t in tracts)} of" if tracts else ""
        raise click.ClickException(
            f"no {COADD} on{tract_text} skymap {skymap!r} in {', '.join(inputs)}; "
            "make the coadds first (coaddDriver.py)"
        )


def _check_external(butler: object, external: str, output: str, resume: bool) -> None:
    """Say on one line that an external catalogue has not been ingested, or
    that the existing output was made without it (or without its latest
    ingest): pipetask refuses an output chain whose inputs differ."""
    collection = refcat_collection(external)
    if not collection_exists(butler, collection):
        raise click.ClickException(
            f"no external catalogue {external!r} ({collection} does not exist); ingest it "
            f"first: butler ingest-refcat REPO {external} FILE... --positions ID,RA,DEC"
        )
    if resume:
        runs = set(butler.collections.query(collection, flatten_chains=True))
        if not runs <= set(butler.collections.query(output, flatten_chains=True)):
            raise click.ClickException(
                f"{output} was made without {collection} (or before its latest ingest) in its inputs; "
                "measure the external catalogue into a new output collection"
            )


def _subset_overrides(
    pipeline: str, subsets: Sequence[str], overrides: Sequence[str]
) -> dict[str, list[str]]:
    """Share the ``LABEL:KEY=VALUE`` overrides out to the subsets that hold
    their task (pipetask refuses an override of a task it does not run)."""
    labels = {subset: set(Pipeline.from_uri(f"{pipeline}#{subset}").task_labels) for subset in subsets}
    shared: dict[str, list[str]] = {subset: [] for subset in subsets}
    for override in overrides:
        label = override.split(":", 1)[0]
        holders = [subset for subset in subsets if label in labels[subset]]
        if not holders:
            known = ", ".join(sorted(set().union(*labels.values())))
            raise click.ClickException(f"-c {override}: no task {label!r} runs (tasks: {known})")
        for subset in holders:
            shared[subset].append(override)
    return shared


def build_multi_band_commands(
    repo: str,
    *,
    pipeline: Path,
    skymap: str,
    where: str,
    inputs: Sequence[str],
    output: str,
    jobs: int,
    resume: bool,
    external: str | None = None,
    config_overrides: Sequence[str] = (),
) -> list[list[str]]:
    """Return the ``pipetask run`` commands of a pipeline's ``#objects``,
    ``#step4`` and, with an external catalogue, ``#external``, in the order
    they run.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    pipeline : `pathlib.Path`
        An instrument's ``DRP.yaml`` (`drp_pipeline`) or
        `MULTI_INSTRUMENT_PIPELINE`.
    skymap : `str`
        Registered skymap name.
    where : `str`
        Further data ID constraints (may be empty).
    inputs : sequence [`str`]
        Input collections (``skymaps`` and the external catalogue's
        ``refcats/NAME`` are added).
    output : `str`
        Output chained collection of every command.
    jobs : `int`
        Processes of ``pipetask run -j``.
    resume : `bool`
        Whether ``output`` exists before the first command; the later ones
        always extend the run the first one made.
    external : `str`, optional
        Dataset type of an external catalogue ingested with ``butler
        ingest-refcat --positions``, measured on the coadds.
    config_overrides : sequence [`str`]
        ``LABEL:KEY=VALUE`` config overrides, each given to the commands
        that run task ``LABEL``.
    """
    query = f"skymap='{skymap}'" + (f" AND ({where})" if where else "")
    collections = [*inputs, *([SKYMAP_RUN] if SKYMAP_RUN not in inputs else [])]
    subsets = ["objects", "step4"]
    overrides = list(config_overrides)
    if external is not None:
        subsets.append("external")
        collections.append(refcat_collection(external))
        overrides.append(f"forcedPhotExternal:connections.external={external}")
    shared = _subset_overrides(str(pipeline), subsets, overrides)
    return [
        pipetask_run_command(
            repo,
            pipeline=pipeline,
            subset=subset,
            where=query,
            collections=collections,
            output=output,
            jobs=jobs,
            resume=resume or index > 0,
            config_overrides=shared[subset],
        )  # fmt: skip
        for index, subset in enumerate(subsets)
    ]


@click.command(cls=ScriptCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo")
@click.option("--skymap", required=True, help="Registered skymap the coadds are on.")
@click.option(
    "--tract", "tracts", type=int, multiple=True, help="Tract(s) to measure (default: all the coadds')."
)
@click.option(
    "--instrument",
    help="Instrument whose pipelines run (default: the only one with visits in the inputs; with visits of "
    "several, pipelines/MultiInstrument/DRP-objects.yaml over all of them).",
)
@data_query_option()
@input_option(
    required=True,
    help="Collections with the deep_coadd and preliminary_visit_image inputs, comma-separated or repeated.",
)
@output_option(required=True, metavar="COLL", help="Output chained collection.")
@click.option(
    "--external", metavar="NAME",
    help="External catalogue (butler ingest-refcat REPO NAME FILE... --positions ID,RA,DEC) whose "
    "positions are measured on the coadds (DRP.yaml#external: external_object per tract).",
)  # fmt: skip
@config_overrides_option
@processes_option
@click.option("--dry-run", is_flag=True, help="Print the commands and stop.")
@script_log_options
def multi_band_driver(
    repo: str,
    skymap: str,
    tracts: tuple[int, ...],
    instrument: str | None,
    where: str,
    inputs: tuple[str, ...],
    output: str,
    external: str | None,
    config_overrides: tuple[str, ...],
    jobs: int,
    dry_run: bool,
) -> None:
    """Detect, merge, deblend and measure the objects of REPO's coadds in
    every band (the object table per tract), then measure them on every
    visit (light curves) and, with --external, measure the coadds at an
    external catalogue's positions.

    The Gen2 multiBandDriver.py, on the Gen3 middleware: it picks the
    instrument's pipelines/<instrument>/DRP.yaml#objects, #step4 (and
    #external), or pipelines/MultiInstrument/DRP-objects.yaml's when the
    inputs hold the visits of several instruments (bands from different
    instruments on one skymap), prints the equivalent 'pipetask run'
    commands and runs them one after the other into OUTPUT.  An unregistered skymap, a tract
    the skymap lacks, an unknown collection, inputs without deep_coadd or
    an external catalogue not ingested is named on one line before
    anything runs.  SIGTERM or SIGINT stops pipetask, and the command says
    how to resume.  Re-running the same command resumes a stopped or failed
    run into the same OUTPUT (--extend-run --skip-existing
    --clobber-outputs); when everything is measured it says so.
    """
    with open_repository(repo, collections=list(inputs)) as butler:
        check_skymap(butler, skymap, tracts)
        _check_coadds(butler, inputs, skymap, tracts)
        if instrument is None and len(visit_instruments(butler, inputs)) > 1:
            pipeline = MULTI_INSTRUMENT_PIPELINE
        else:
            pipeline = drp_pipeline(find_instrument(butler, inputs, instrument, verb="measure"))
        resume = collection_exists(butler, output)
        if external is not None:
            _check_external(butler, external, output, resume)
    if tracts:
        tract_query = f"tract IN ({', '.join(str(t) for t in tracts)})"
        where = f"({where}) AND {tract_query}" if where else tract_query
    commands = build_multi_band_commands(
        repo, pipeline=pipeline, skymap=skymap, where=where, inputs=inputs, output=output, jobs=jobs,
        resume=resume, external=external, config_overrides=config_overrides,
    )  # fmt: skip
    for command in commands:
        click.echo(f"$ {shlex.join(command)}", err=True)
    if dry_run:
        return
    if run_pipetask_commands(commands, prog="multiBandDriver.py", output=output):
        click.echo(
            f"multiBandDriver.py: everything asked for is measured in {output}; nothing to do.", err=True
        )


def main() -> None:
    """Run ``multiBandDriver.py``."""
    multi_band_driver.main(prog_name="multiBandDriver.py")
