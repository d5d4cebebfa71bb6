"""Ingest of Gaia-like FITS tables into a butler repository as htm7 shards.

Collections
    The shards of catalogue ``NAME`` are found through the chained
    collection ``refcats/NAME``.  Each ingest that changes anything writes
    the shards it creates or changes to a new run,
    ``refcats/NAME/<UTC time>``, and puts that run first in the chain, so
    that a shard written again hides its older version (dataset lookups,
    the quantum-graph builder's included, take the first match along the
    chain).  A run is never written to twice, so no file is ever
    overwritten in place.
Atomicity
    Every file is read and checked before anything is written; a bad file
    (not a regular file, not a reference table, a position out of range, or
    no rows when no other file has any) stops the whole ingest, reported on
    one line.  The new run, its shards
    and the chain are then written in one transaction: all of it reaches
    the repository or none of it.
Re-running
    Rows whose ``source_id`` a shard holds already replace the stored ones;
    a shard that would not change is not written, so ingesting the same
    files again writes nothing.
"""

from __future__ import annotations

__all__ = ("REFCAT_STORAGE_CLASS", "RefcatIngestReport", "ingest_refcat", "refcat_collection")

import dataclasses
import datetime
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from astropy.table import Table, vstack

from lsst.daf.butler import (
    Butler,
    CollectionType,
    DatasetType,
    MissingCollectionError,
    MissingDatasetTypeError,
)
from lsst.utils.logging import PeriodicLogger, getLogger

from ..ingest.walk import find_files
from .pixelization import REFCAT_DIMENSION
from .schema import GAIA_COLUMNS, ColumnSpec, RefcatSchemaError, standardize_columns
from .sharding import merge_shard, read_reference_file, shard_rows

_LOG = getLogger("lsst.obs.vista.refcat")

REFCAT_STORAGE_CLASS = "ArrowAstropy"
"""Storage class of a shard: an astropy table with units, in Parquet."""


class _RepositoryError(RuntimeError):
    """The repository cannot take the shards; one line."""


def refcat_collection(name: str) -> str:
    """Return the chained collection through which a catalogue's shards are
    found.

    Parameters
    ----------
    name : `str`
        Dataset type name of the catalogue, e.g. ``gaia_dr3``.

    Returns
    -------
    collection : `str`
        ``refcats/<name>``.
    """
    return f"refcats/{name}"


@dataclasses.dataclass
class RefcatIngestReport:
    """What an ingest of reference catalogue files did."""

    n_files: int = 0
    n_rows: int = 0
    """Rows read from the files."""

    failed: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Files that stopped the ingest, with the error line."""

    error: str | None = None
    """Why nothing was written although every file was read (the
    repository's collections or dataset type)."""

    new: list[int] = dataclasses.field(default_factory=list)
    """htm7 trixels of the shards created."""

    merged: list[int] = dataclasses.field(default_factory=list)
    """htm7 trixels of stored shards rows were added to or replaced in."""

    unchanged: list[int] = dataclasses.field(default_factory=list)
    """htm7 trixels whose stored shards held the rows already."""

    run: str | None = None
    """Run the shards were written to, if any."""

    @property
    def ok(self) -> bool:
        """Whether the ingest succeeded (possibly writing nothing, because
        nothing was new)."""
        return not self.failed and self.error is None


def ingest_refcat(
    butler: Butler,
    name: str,
    paths: Iterable[str | Path],
    *,
    progress_interval: float = 10.0,
    columns: Mapping[str, ColumnSpec] = GAIA_COLUMNS,
    names: Mapping[str, str] | None = None,
) -> RefcatIngestReport:
    """Shard Gaia-like (or external) tables into htm7 datasets of a repository.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the repository.
    name : `str`
        Dataset type name of the catalogue (``gaia_dr3`` is the one the
        pipelines look for by default).
    paths : iterable [`str` or `pathlib.Path`]
        FITS files whose first table HDU has the schema's columns, or
        Parquet files (``.parquet``, ``.pq``).
    progress_interval : `float`, optional
        Seconds between progress lines.
    columns : `~collections.abc.Mapping` [`str`, `ColumnSpec`], optional
        The schema: `GAIA_COLUMNS` for a reference catalogue,
        `~.schema.EXTERNAL_COLUMNS` for positions to measure.
    names : `~collections.abc.Mapping` [`str`, `str`], optional
        The files' name of a schema column where it differs (e.g.
        ``{"source_id": "object_id"}``).

    Returns
    -------
    report : `RefcatIngestReport`
        What was written; failures have been logged (logger
        ``lsst.obs.vista.refcat``), one line each.
    """
    start = time.perf_counter()
    paths = [Path(path) for path in paths]
    report = RefcatIngestReport(n_files=len(paths))
    try:
        # A name the repository cannot take stops the ingest before any file is read.
        _dataset_type(butler, name)
        shards = _read_files(paths, report, progress_interval, columns, names)
        if shards is None:
            return report
        to_write = _merge_with_stored(butler, name, shards, report, columns)
        if to_write:
            _write(butler, name, to_write, report, progress_interval)
    except _RepositoryError as error:
        report.error = str(error)
        _LOG.error("Nothing ingested: %s", error)
        return report
    elapsed = time.perf_counter() - start
    if report.run is None:
        _LOG.info(
            "Nothing new: the %d %s shards these files touch hold their rows already (%.1f s).",
            len(report.unchanged),
            name,
            elapsed,
        )
    else:
        _LOG.info(
            "Ingested %d rows into %d %s shards (%d new, %d merged, %d unchanged) in run %s of %s (%.1f s).",
            report.n_rows,
            len(report.new) + len(report.merged),
            name,
            len(report.new),
            len(report.merged),
            len(report.unchanged),
            report.run,
            refcat_collection(name),
            elapsed,
        )
    return report


def _read_files(
    paths: list[Path],
    report: RefcatIngestReport,
    progress_interval: float,
    columns: Mapping[str, ColumnSpec],
    names: Mapping[str, str] | None,
) -> dict[int, Table] | None:
    """Read and check every file and split their rows into shards; `None`
    if any file failed.

    A file without rows fails when no other file has any (an ingest that
    would write nothing is most often a wrong file); next to files with
    rows it is only named, as a chunk of a catalogue cut to a region may
    be empty.
    """
    progress = PeriodicLogger(_LOG, interval=progress_interval)
    # Only regular files are opened: a FIFO would wait for a writer.
    found = find_files(paths)
    tables = []
    empty = []
    for n_read, path in enumerate(found.given, start=1):
        try:
            if path in found.rejected:
                raise RefcatSchemaError(f"{path}: {found.rejected[path]}")
            if path.is_dir():
                raise RefcatSchemaError(f"{path}: a directory, not a file")
            table = read_reference_file(path, columns=columns, names=names)
        except RefcatSchemaError as error:
            report.failed[path] = str(error)
            _LOG.error("%s", error)
            continue
        if len(table) == 0:
            empty.append(path)
        tables.append(table)
        report.n_rows += len(table)
        progress.log("Read %d/%d files (%d rows).", n_read, len(paths), report.n_rows)
    for path in empty:
        if report.n_rows == 0:
            report.failed[path] = f"{path}: no rows"
            _LOG.error("%s: no rows", path)
        elif not report.failed:
            _LOG.warning("%s: no rows; ingesting the rows of the other files", path)
    if report.failed:
        _LOG.error("Nothing ingested: %d of %d files failed.", len(report.failed), len(paths))
        return None
    shards = shard_rows(vstack(tables, join_type="exact")) if tables else {}
    _LOG.info("Read %d files: %d rows in %d htm7 trixels.", len(paths), report.n_rows, len(shards))
    return shards


def _dataset_type(butler: Butler, name: str) -> tuple[DatasetType, bool]:
    """Return the catalogue's dataset type and whether it is registered,
    checking that a registered one is a reference catalogue's."""
    try:
        wanted = DatasetType(name, (REFCAT_DIMENSION,), REFCAT_STORAGE_CLASS, universe=butler.dimensions)
    except ValueError as error:
        raise _RepositoryError(f"{name!r} is not a dataset type name ({error})") from error
    try:
        existing = butler.get_dataset_type(name)
    except MissingDatasetTypeError:
        return wanted, False
    if existing != wanted:
        raise _RepositoryError(
            f"dataset type {name!r} exists with dimensions {existing.dimensions} and storage class "
            f"{existing.storageClass_name}, not ({REFCAT_DIMENSION}) and {REFCAT_STORAGE_CLASS}"
        )
    return existing, True


def _merge_with_stored(
    butler: Butler,
    name: str,
    shards: dict[int, Table],
    report: RefcatIngestReport,
    columns: Mapping[str, ColumnSpec],
) -> dict[int, Table]:
    """Merge the new rows of each trixel with its stored shard; return the
    shards that change."""
    chain = refcat_collection(name)
    _, registered = _dataset_type(butler, name)
    try:
        kind = butler.collections.get_info(chain).type
    except MissingCollectionError:
        kind = None
    chain_exists = kind is not None
    if chain_exists and kind is not CollectionType.CHAINED:
        raise _RepositoryError(f"collection {chain} is a {kind.name} collection, not a CHAINED one")
    stored_refs = {}
    if registered and chain_exists and shards:
        refs = butler.query_datasets(
            name,
            collections=chain,
            where=f"{REFCAT_DIMENSION} IN (:trixels)",
            bind={"trixels": list(shards)},
            limit=None,
            explain=False,
        )
        stored_refs = {ref.dataId[REFCAT_DIMENSION]: ref for ref in refs}
    to_write = {}
    for trixel, rows in shards.items():
        stored = None
        if (ref := stored_refs.get(trixel)) is not None:
            where = f"{name} shard {REFCAT_DIMENSION}={trixel} in {ref.run}"
            try:
                stored = standardize_columns(butler.get(ref), where, units_given=True, columns=columns)
            except RefcatSchemaError as error:
                raise _RepositoryError(str(error)) from error
        merged = merge_shard(stored, rows, columns)
        if merged is None:
            report.unchanged.append(trixel)
            continue
        (report.new if stored is None else report.merged).append(trixel)
        to_write[trixel] = merged
    return to_write


def _write(
    butler: Butler, name: str, shards: dict[int, Table], report: RefcatIngestReport, progress_interval: float
) -> None:
    """Write the shards to a new run first in the catalogue's chain, in one
    transaction."""
    dataset_type, registered = _dataset_type(butler, name)
    if not registered:
        butler.registry.registerDatasetType(dataset_type)
    chain = refcat_collection(name)
    run = f"{chain}/{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%S.%fZ}"
    _LOG.info("Writing %d %s shards to run %s.", len(shards), name, run)
    progress = PeriodicLogger(_LOG, interval=progress_interval)
    with butler.transaction():
        butler.collections.register(run, CollectionType.RUN)
        for n_written, (trixel, table) in enumerate(sorted(shards.items()), start=1):
            butler.put(table, dataset_type, {REFCAT_DIMENSION: trixel}, run=run)
            progress.log("Wrote %d/%d shards.", n_written, len(shards))
        butler.collections.register(chain, CollectionType.CHAINED)
        butler.collections.prepend_chain(chain, run)
    report.run = run
