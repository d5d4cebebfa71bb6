"""``processCcd.py``: the Gen2 command's name and options, running the
instrument's ``ProcessCcd`` pipeline with ``pipetask run``.

With ``-j N`` (N > 1) the data IDs are split into N balanced groups run
concurrently, each by one single-process quantum-backed run writing its own
RUN collection, chained into the output collection once all have ended
(`lsst.obs.vista.cli.sharded_run`): pipetask's own ``-j`` starts a process
per quantum, which costs more than it saves on single-detector quanta.

Running the same command again resumes a run that stopped for any reason
(`lsst.obs.vista.cli.run_state`); SIGTERM and SIGINT are passed on to the
pipetask processes (`lsst.obs.vista.cli.signal_forwarding`); a failed run
ends with a line naming the failed quanta and why
(`lsst.obs.vista.cli.quantum_failures`)."""

from __future__ import annotations

__all__ = ("build_pipetask_command", "environment_executable", "main", "parse_ids", "where_from_ids")

import getpass
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..discovery import instrument_entries, instrument_entry
from .command_style import ScriptCommand, data_query_option, input_option, output_option, script_log_options
from .repository import collection_exists, nearest, open_repository
from .repository_config import ensure_background_map_formatter
from .sharded_run import (
    DataId,
    GroupFailedError,
    chain_definition,
    query_data_ids,
    run_concurrently,
    split_balanced,
    where_for_group,
)
from .signal_forwarding import SignalForwarder

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

_REFERENCE_COLLECTIONS = ("refcats/gaia_dr3", "refcats/twomass_psc")
"""Chains of the reference catalogues calibrateImage reads by default (``butler ingest-refcat``
names them refcats/NAME): Gaia for astrometry and DECam's photometry, 2MASS for VIRCAM's and
WFCAM's photometry; added to the default inputs where they exist."""

_DEFAULT_LABEL = "calibrateImage"
"""Task a bare ``-C FILE`` or ``-c KEY=VALUE`` applies to (processCcd's own config in Gen2)."""


def parse_ids(ids: Sequence[str]) -> dict[str, list[str]]:
    """Read Gen2 ``--id`` arguments.

    Parameters
    ----------
    ids : `~collections.abc.Sequence` [`str`]
        ``KEY=VALUE`` items; ``VALUE`` may list alternatives joined by ``^``
        (``visit=1^2``), as Gen2's data-ID syntax did.

    Returns
    -------
    values : `dict` [`str`, `list` [`str`]]
        The values given for each key, in the order given.

    Raises
    ------
    click.BadParameter
        Raised for an item that is not ``KEY=VALUE``, or for more than one
        instrument.
    """
    values: dict[str, list[str]] = {}
    for item in ids:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--id")
        values.setdefault(key, []).extend(value.split("^"))
    if len(values.get("instrument", [])) > 1:
        raise click.BadParameter("one instrument at a time", param_hint="--id")
    return values


def where_from_ids(ids: Sequence[str]) -> tuple[str, str | None]:
    """Turn Gen2 ``--id`` arguments into a butler query expression.

    Parameters
    ----------
    ids : `~collections.abc.Sequence` [`str`]
        ``KEY=VALUE`` items, as `parse_ids` reads them.

    Returns
    -------
    where : `str`
        The ``-d`` expression, e.g. ``instrument='DECam' AND detector IN (20, 28)``.
    instrument : `str` or `None`
        The instrument named, if any.

    Raises
    ------
    click.BadParameter
        Raised for an item that is not ``KEY=VALUE``.
    """
    clauses: list[str] = []
    parsed = parse_ids(ids)
    for key, values in parsed.items():
        literals = [v if v.lstrip("-").isdigit() else repr(v) for v in values]
        if len(literals) == 1:
            clauses.append(f"{key}={literals[0]}")
        else:
            clauses.append(f"{key} IN ({', '.join(literals)})")
    instrument = parsed.get("instrument", [None])[0]
    return " AND ".join(clauses), instrument


def _check_ids(butler: Butler, repo: str, ids: dict[str, list[str]], instrument: str | None) -> None:
    """Raise `click.BadParameter` naming the first ``--id`` key that is no
    dimension, or value that is of the wrong type or that the repository
    does not have, with the nearest valid one.

    Values of dimensions that depend on the instrument are looked up for
    ``instrument`` only; ``instrument`` itself is checked first, when
    ``instrument`` is `None`.
    """
    from lsst.daf.butler import SkyPixDimension

    universe = butler.dimensions
    keys = universe.getStaticDimensions().names
    for key, values in ids.items():
        if key not in keys:
            raise click.BadParameter(
                f"{key}={'^'.join(values)}: unknown data ID key {key!r}{nearest(key, keys)}",
                param_hint="--id",
            )
        dimension = universe[key]
        # The pass without an instrument checks the instrument's value, the
        # pass with one the other values.
        if isinstance(dimension, SkyPixDimension) or (instrument is None) != (key == "instrument"):
            continue
        if dimension.primaryKey.getPythonType() is int:
            if wrong := [value for value in values if not value.lstrip("-").isdigit()]:
                raise click.BadParameter(f"{key}={wrong[0]}: {key} is an integer", param_hint="--id")
        data_id = (
            {"instrument": instrument} if "instrument" in dimension.required.names and instrument else {}
        )
        known = {
            str(record.dataId[key])
            for record in butler.query_dimension_records(key, data_id=data_id, explain=False)
        }
        if missing := [value for value in values if value not in known]:
            scope = f" for instrument {instrument}" if data_id else ""
            raise click.BadParameter(
                f"{key}={missing[0]}: {repo} has no such {key}{scope}{_valid_values(missing[0], known)}",
                param_hint="--id",
            )


def _valid_values(value: str, known: set[str]) -> str:
    """Return the nearest of the known values of a key to a wrong one, or
    what they are: a few listed, integers as their range."""
    if not known:
        return " (it has none)"
    if all(name.lstrip("-").isdigit() for name in known):
        numbers = sorted(map(int, known))
        return f" (it has {len(numbers)}, from {numbers[0]} to {numbers[-1]})"
    if suggestion := nearest(value, known):
        return suggestion
    return f" (it has {', '.join(sorted(known))})" if len(known) <= 5 else ""


def _choose_instrument(repo: str, where: str, known: Sequence[str], inputs: Sequence[str]) -> str:
    """Return the one instrument of ``known`` with data IDs to process
    matching ``where`` (in ``inputs``, or the instrument's defaults), for a
    command that named none."""
    from lsst.daf.butler import MissingCollectionError

    if len(known) == 1:
        return known[0]
    matching = []
    for name in known:
        if not _has_pipeline(name):
            continue
        constrained = " AND ".join(filter(None, [f"instrument={name!r}", where]))
        try:
            if query_data_ids(repo, _pipeline(name), inputs or [f"{name}/defaults"], constrained):
                matching.append(name)
        except MissingCollectionError:
            # Nothing of this instrument was ingested.
            continue
    if len(matching) == 1:
        return matching[0]
    if not matching:
        if where:
            raise click.UsageError(f"no data IDs in {repo} match {where!r}.")
        raise click.UsageError(f"{repo} holds no data IDs of instruments {', '.join(known) or '(none)'}.")
    raise click.UsageError(
        f"{repo} holds data IDs of instruments {', '.join(matching)}: say which with --id instrument=NAME."
    )


def _resolve_request(
    repo: str, ids: Sequence[str], data_query: str, inputs: Sequence[str]
) -> tuple[str, str, list[str]]:
    """Check a command's data IDs and input collections against the
    repository before anything runs.

    Returns
    -------
    instrument : `str`
        The instrument processed.
    where : `str`
        The query expression of ``--id`` and ``-d`` together, constrained
        to the instrument.
    inputs : `list` [`str`]
        The input collections (the instrument's defaults and the Gaia
        reference catalogue if ingested, if none were given).

    Raises
    ------
    click.ClickException
        Raised, as one line, for a key or value that is not in the
        repository, an invalid query, or an input collection the
        repository does not have.
    """
    from lsst.daf.butler import MissingCollectionError

    parsed = parse_ids(ids)
    # The --id clauses are ANDed already; -d may hold an OR.
    where = " AND ".join(filter(None, [where_from_ids(ids)[0], f"({data_query})" if data_query else ""]))
    # Opened writeable: a writer killed inside a transaction leaves SQLite's
    # hot journal, which only a writeable connection rolls back, and the
    # first connections ``pipetask run`` opens are read-only (they would fail
    # with "attempt to write a readonly database").
    with open_repository(repo, writeable=True) as butler:
        known = sorted(record.name for record in butler.query_dimension_records("instrument"))
        _check_ids(butler, repo, parsed, None)
        for name in inputs:
            butler.collections.get_info(name)
        instrument = parsed["instrument"][0] if "instrument" in parsed else None
        if instrument is None:
            instrument = _choose_instrument(repo, where, known, inputs)
            where = " AND ".join(filter(None, [f"instrument={instrument!r}", where]))
        if not _has_pipeline(instrument):
            known = ", ".join(name for name in instrument_entries() if _has_pipeline(name))
            raise click.BadParameter(
                f"no ProcessCcd pipeline for {instrument!r} (known: {known})",
                param_hint="--id instrument",
            )
        _check_ids(butler, repo, parsed, instrument)
        if not inputs:
            inputs = [f"{instrument}/defaults"]
            for collection in _REFERENCE_COLLECTIONS:
                try:
                    butler.collections.get_info(collection)
                    inputs.append(collection)
                except MissingCollectionError:
                    pass
        # An identifier or a value of the wrong type in -d fails here, as
        # one line, rather than in pipetask.
        butler.query_data_ids(["exposure", "detector"], where=where, limit=1, explain=False)
    return instrument, where, list(inputs)


def build_pipetask_command(
    repo: str,
    *,
    instrument: str,
    where: str,
    inputs: Sequence[str],
    output: str,
    jobs: int,
    config_files: Sequence[str] = (),
    config_overrides: Sequence[str] = (),
    pipeline: Path | None = None,
    output_run: str | None = None,
    skip_existing_in: str | None = None,
) -> list[str]:
    """Return the ``pipetask run`` command of the instrument's ProcessCcd pipeline.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    instrument : `str`
        Butler name of the instrument (``VIRCAM``, ``DECam``).
    where : `str`
        Data-ID query expression.
    inputs : `~collections.abc.Sequence` [`str`]
        Input collections.
    output : `str`
        Output chained collection; with ``output_run``, the RUN collection
        is written without touching this chain (the caller chains it).
    jobs : `int`
        Processes.
    config_files, config_overrides : `~collections.abc.Sequence` [`str`]
        ``[LABEL:]FILE`` and ``[LABEL:]KEY=VALUE``; without a label they
        apply to ``calibrateImage``.
    pipeline : `pathlib.Path`, optional
        Pipeline file; ``pipelines/<instrument>/ProcessCcd.yaml`` by default.
    output_run : `str`, optional
        RUN collection to write instead of ``<output>/<timestamp>``.
    skip_existing_in : `str`, optional
        Collection whose finished quanta are not run again.

    Returns
    -------
    command : `list` [`str`]
    """
    if pipeline is None:
        pipeline = _pipeline(instrument)
    command = [
        "pipetask",
        "run",
        "-b",
        repo,
        "-i",
        ",".join(inputs),
        *(["--output-run", output_run] if output_run else ["-o", output]),
        "-p",
        str(pipeline),
        "--register-dataset-types",
        "-j",
        str(jobs),
    ]
    if where:
        command += ["-d", where]
    if skip_existing_in:
        command += ["--skip-existing-in", skip_existing_in]
    for option, values in (("-C", config_files), ("-c", config_overrides)):
        for value in values:
            labelled = ":" in value.split("=", 1)[0]
            command += [option, value if labelled else f"{_DEFAULT_LABEL}:{value}"]
    return command


def _pipeline(instrument: str) -> Path:
    """Return the ProcessCcd pipeline of a registered instrument."""
    return instrument_entry(instrument).pipelines_dir / "ProcessCcd.yaml"


def _has_pipeline(instrument: str) -> bool:
    return instrument in instrument_entries() and _pipeline(instrument).is_file()


def environment_executable(command: list[str]) -> list[str]:
    """Return a command with its program taken from this Python's environment
    (the ``bin`` of its virtual environment) if it is there, so that a run
    finds the ``pipetask`` of this installation without an activated venv."""
    executable = Path(sys.executable).with_name(command[0])
    return [str(executable) if executable.exists() else command[0], *command[1:]]


def _qbb_steps(repo: str, run_command: list[str], graph: str, summary: str, log: str) -> list[list[str]]:
    """Return the quantum-backed commands doing what ``run_command`` (a
    ``pipetask run -j 1 --output-run RUN``) does, through ``graph``, with
    the execution report written to ``summary`` and the log to ``log``
    (JSON) besides the standard error."""
    options = list(run_command[2:])
    options.remove("--register-dataset-types")
    del options[options.index("-j") : options.index("-j") + 2]
    return [
        ["pipetask", "qgraph", *options, "--qgraph-datastore-records", "-q", graph],
        ["pipetask", "pre-exec-init-qbb", repo, graph],
        ["pipetask", "--log-file", log, "run-qbb", repo, graph, "-j", "1", "--summary", summary],
        ["butler", "transfer-from-graph", graph, repo, "--register-dataset-types"],
    ]


def _run_serial(
    repo: str, command: list[str], scratch: Path, forwarder: SignalForwarder, dry_run: bool
) -> tuple[int, list[tuple[Path, Path]]]:
    """Print and (unless ``dry_run``) run one ``pipetask run``; return its
    exit status and its execution report and log files (written to
    ``scratch``, so left out of the command printed)."""
    click.echo("$ " + shlex.join(command))
    if dry_run or forwarder.received is not None:
        return 0, []
    summary, log = scratch / "summary.json", scratch / "log.json"
    reporting = [command[0], "--log-file", str(log), *command[1:], "--summary", str(summary)]
    process = forwarder.popen(
        environment_executable(reporting), env={**os.environ, "TMPDIR": str(scratch / "tmp")}
    )
    return forwarder.wait(process), [(summary, log)]


def _run_sharded(
    repo: str,
    groups: Sequence[Sequence[DataId]],
    *,
    instrument: str,
    inputs: Sequence[str],
    output: str,
    scratch: Path,
    forwarder: SignalForwarder,
    dry_run: bool,
    **options: Any,
) -> tuple[int, list[tuple[Path, Path]], list[str]]:
    """Print and (unless ``dry_run``) run the pipeline as concurrent
    single-process groups and chain their runs into ``output``; return the
    exit status, the execution report and log files, and the groups' runs."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    runs = [f"{output}/{stamp}/part{k}" for k in range(len(groups))]
    runs_commands = [
        build_pipetask_command(
            repo, instrument=instrument, where=where_for_group(instrument, group), inputs=inputs,
            output=output, jobs=1, output_run=run, **options,
        )
        for group, run in zip(groups, runs, strict=True)
    ]  # fmt: skip
    children = chain_definition(repo, output, runs, inputs)
    reports = [(scratch / f"part{k}.json", scratch / f"part{k}-log.json") for k in range(len(groups))]
    steps = [
        _qbb_steps(repo, command, str(scratch / f"part{k}.qg"), str(summary), str(log))
        for k, (command, (summary, log)) in enumerate(zip(runs_commands, reports, strict=True))
    ]
    for group_steps in steps:
        click.echo("$ (" + " && ".join(shlex.join(step) for step in group_steps[:-1]) + "; "
                   + shlex.join(group_steps[-1]) + ") &")  # fmt: skip
    click.echo("$ wait")
    click.echo("$ " + shlex.join(["butler", "collection-chain", repo, output, *children]))
    if dry_run:
        return 0, [], runs
    status = 0
    try:
        run_concurrently(
            [(f"part{k}", group_steps) for k, group_steps in enumerate(steps)],
            forwarder,
            {"TMPDIR": str(scratch / "tmp")},
        )
    except GroupFailedError as error:
        status = 1
        if forwarder.received is None:
            for name, exit_status in error.failed:
                k = int(name.removeprefix("part"))
                click.echo(
                    f"processCcd.py: group {name} ({len(groups[k])} data IDs, run {runs[k]}) failed with "
                    f"exit status {exit_status}.",
                    err=True,
                )
    from lsst.daf.butler import Butler, CollectionType

    # The runs of the groups that registered anything are chained, failed
    # or not: they hold finished quanta only once the unfinished ones'
    # outputs are removed, and a re-run goes on from them.
    with Butler.from_config(repo, writeable=True) as butler:
        present = set(butler.collections.query(f"{output}/{stamp}/*", CollectionType.RUN))
        if present:
            butler.collections.register(output, CollectionType.CHAINED)
            butler.collections.redefine_chain(
                output, [child for child in children if child not in runs or child in present]
            )
    if status == 0 and forwarder.received is None:
        click.echo(
            f"processCcd.py: {sum(map(len, groups))} data IDs in {len(groups)} groups, chained as {output}"
        )
    return status, reports, runs


def _run(
    repo: str,
    *,
    instrument: str,
    where: str,
    inputs: Sequence[str],
    output: str,
    jobs: int,
    dry_run: bool,
    **options: Sequence[str],
) -> int:
    """Run (or resume) the pipeline on the data IDs not yet processed in
    ``output``; return the exit status.

    A SIGTERM or SIGINT is forwarded to the commands running; once they have
    stopped, what they registered is kept, the outputs of the quanta they
    did not finish are removed, and the exit status is 128 + the signal's
    number.  Whatever stopped the run, the same command resumes it.
    """
    from lsst.daf.butler import Butler
    from lsst.pipe.base import Pipeline

    # Imported here, as the middleware is: they import pipe_base and the
    # ingest package (lsst-images), which --help and a command refused before
    # anything runs do without.
    from .quantum_failures import failure_line, read_failures
    from .run_state import finished_data_ids, output_runs, remove_unfinished_outputs

    pipeline = _pipeline(instrument)
    with SignalForwarder() as forwarder:
        with open_repository(repo, writeable=not dry_run) as butler:
            graph = Pipeline.from_uri(str(pipeline)).to_graph()
            graph.resolve(butler.registry)
            if not dry_run:
                # What a killed run or a failed quantum left, registered or
                # not, would be in the way of a re-run or listed twice.
                remove_unfinished_outputs(butler, graph, output_runs(butler, output))
            finished = finished_data_ids(butler, graph, output, where)
            resuming = collection_exists(butler, output)
        data_ids = query_data_ids(repo, pipeline, inputs, where)
        if not data_ids:
            raise click.UsageError(f"no data IDs to process in {repo} for {where!r}")
        to_do = [data_id for data_id in data_ids if data_id not in finished]
        if not to_do:
            click.echo(
                f"processCcd.py: all {len(data_ids)} data IDs are processed in {output}; nothing to do "
                "(give another --output to process them again)."
            )
            return 0
        if resuming:
            # Resuming: the finished quanta's outputs are inputs, and those
            # quanta are not run again.
            inputs, skip_existing_in = [output], output
        else:
            skip_existing_in = None
        with tempfile.TemporaryDirectory(prefix="processCcd-") as directory:
            scratch = Path(directory)
            (scratch / "tmp").mkdir()
            if jobs == 1:
                command = build_pipetask_command(
                    repo, instrument=instrument, where=where, inputs=inputs, output=output, jobs=1,
                    skip_existing_in=skip_existing_in, **options,
                )  # fmt: skip
                status, reports = _run_serial(repo, command, scratch, forwarder, dry_run)
                runs: list[str] = []
            else:
                status, reports, runs = _run_sharded(
                    repo, split_balanced(to_do, jobs), instrument=instrument, inputs=inputs, output=output,
                    scratch=scratch, forwarder=forwarder, dry_run=dry_run, skip_existing_in=skip_existing_in,
                    **options,
                )  # fmt: skip
            if dry_run:
                return 0
            with Butler.from_config(repo, writeable=True) as butler:
                # A group whose registration did not happen left only files,
                # in the directory of a run that is not in the chain.
                chained = output_runs(butler, output)
                remove_unfinished_outputs(
                    butler, graph, [*chained, *(run for run in runs if run not in chained)]
                )
                done = len(finished_data_ids(butler, graph, output, where))
            failures = read_failures(reports)
    resume = f"re-run this command: {shlex.join(['processCcd.py', *sys.argv[1:]])}"
    progress = f"{done} of {len(data_ids)} data IDs are processed in {output}"
    if forwarder.received is not None:
        click.echo(
            f"processCcd.py: stopped by {forwarder.name}; {progress} and the unfinished quanta's outputs "
            f"are removed; to resume, {resume}",
            err=True,
        )
        return 128 + forwarder.received
    if status != 0:
        click.echo(f"processCcd.py: {progress}; to resume once the cause is dealt with, {resume}", err=True)
        cause = (
            failure_line(failures)
            if failures
            else f"pipetask exited with status {status} (see the log above)"
        )
        click.echo(f"processCcd.py: {cause}", err=True)
        return status
    return 0


@click.command(cls=ScriptCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="KEY=VALUE",
    help="Data ID to process, e.g. --id instrument=DECam --id visit=802955^803277 (repeatable; ^ joins); "
    "ANDed with --data-query.",
)
@data_query_option()
@click.option(
    "-C",
    "--config-file",
    "config_files",
    multiple=True,
    metavar="[LABEL:]FILE",
    help="pex_config override file; without LABEL it applies to calibrateImage.",
)
@click.option(
    "-c",
    "--config",
    "config_overrides",
    multiple=True,
    metavar="[LABEL:]KEY=VALUE",
    help="One config override; without LABEL it applies to calibrateImage.",
)
@click.option(
    "-j",
    "--processes",
    "jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of processes; above 1, concurrent single-process runs on balanced groups of data IDs.",
)
@input_option(help="Input collections, comma-separated or repeated (default <instrument>/defaults, and "
              "refcats/gaia_dr3 and refcats/twomass_psc where ingested).")  # fmt: skip
@output_option(metavar="COLL", help="Output chained collection (default u/$USER/processCcd).")
@click.option("--dry-run", is_flag=True, help="Print the commands and stop.")
@script_log_options
def process_ccd(
    repo: str,
    ids: tuple[str, ...],
    where: str,
    config_files: tuple[str, ...],
    config_overrides: tuple[str, ...],
    jobs: int,
    output: str | None,
    inputs: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Run single-frame processing (isr, calibrateImage) of REPO's exposures.

    The Gen2 processCcd.py, on the Gen3 middleware: it picks the
    instrument's pipelines/<instrument>/ProcessCcd.yaml, prints the
    equivalent 'pipetask run' command, and runs it.  With -j N above 1 it
    prints and runs N concurrent single-process runs (pipetask qgraph,
    pre-exec-init-qbb, run-qbb, butler transfer-from-graph), one per
    balanced group of data IDs, each into its own RUN collection, and the
    'butler collection-chain' that makes OUTPUT search them all.

    The data IDs are those of --id and -d together; the instrument is the
    one they name, or the repository's only one with data IDs matching
    them.  A key, value, collection or query the repository does not know
    is named on one line before anything runs.

    Re-running the same command resumes a run that was stopped (SIGTERM,
    Ctrl-C) or failed: the unfinished quanta's outputs are removed and only
    the data IDs not yet processed in OUTPUT are run.  Give another --output
    to process data IDs again.
    """
    ensure_background_map_formatter(repo, report=lambda line: click.echo(line, err=True))
    instrument, where, inputs = _resolve_request(repo, ids, where, inputs)
    if output is None:
        output = f"u/{os.environ.get('USER') or getpass.getuser()}/processCcd"
    raise click.exceptions.Exit(
        _run(
            repo, instrument=instrument, where=where, inputs=inputs, output=output, jobs=jobs,
            dry_run=dry_run, config_files=config_files, config_overrides=config_overrides,
        )
    )  # fmt: skip


def main() -> None:
    """Run ``processCcd.py``."""
    process_ccd.main(prog_name="processCcd.py")
