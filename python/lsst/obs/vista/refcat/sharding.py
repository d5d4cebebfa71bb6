"""Reading Gaia-like (or external) FITS and Parquet tables and splitting them
into htm7 shards."""

from __future__ import annotations

__all__ = ("PARQUET_SUFFIXES", "merge_shard", "read_reference_file", "shard_rows")

import warnings
from collections.abc import Mapping
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table, unique, vstack

from .pixelization import htm7_index
from .schema import GAIA_COLUMNS, ColumnSpec, RefcatSchemaError, standardize_columns

PARQUET_SUFFIXES = (".parquet", ".pq")
"""File name endings read as Parquet; other files are read as FITS."""


def read_reference_file(
    path: Path, *, columns: Mapping[str, ColumnSpec] = GAIA_COLUMNS, names: Mapping[str, str] | None = None
) -> Table:
    """Read a FITS file's first table HDU or a Parquet file and check its
    columns.

    Parameters
    ----------
    path : `pathlib.Path`
        A Gaia-like table (``gaia_source`` columns, see `GAIA_COLUMNS`) or
        an external catalogue (`~.schema.EXTERNAL_COLUMNS`).
    columns : `~collections.abc.Mapping` [`str`, `ColumnSpec`], optional
        The schema the table must have.
    names : `~collections.abc.Mapping` [`str`, `str`], optional
        The file's name of a schema column, where it differs.

    Returns
    -------
    table : `astropy.table.Table`
        The schema's columns, in their stored types and units.

    Raises
    ------
    RefcatSchemaError
        Raised, with one line naming the file (and HDU), if the file is not
        a table or its columns are not the schema's.
    """
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            table = Table.read(path, format="parquet")
        except (OSError, TypeError, ValueError) as error:
            raise RefcatSchemaError(f"{path}: not readable as a Parquet table ({error})") from error
        return standardize_columns(table, str(path), columns=columns, names=names)
    try:
        with fits.open(path, memmap=False) as hdus:
            index = next((i for i, hdu in enumerate(hdus) if isinstance(hdu, fits.BinTableHDU)), None)
            with warnings.catch_warnings():
                # A TUNIT astropy cannot parse becomes an UnrecognizedUnit,
                # which the column check reports.
                warnings.simplefilter("ignore", u.UnitsWarning)
                table = None if index is None else Table.read(hdus[index])
    except (OSError, TypeError, ValueError) as error:
        raise RefcatSchemaError(f"{path}: not readable as a FITS table ({error})") from error
    if table is None:
        raise RefcatSchemaError(f"{path}: no binary table HDU")
    return standardize_columns(table, f"{path}[HDU {index}]", columns=columns, names=names)


def shard_rows(table: Table) -> dict[int, Table]:
    """Split a reference table by the htm7 trixel of each row's position.

    Parameters
    ----------
    table : `astropy.table.Table`
        Reference rows with the `GAIA_COLUMNS`; of rows with the same
        ``source_id``, the last one is kept (later files win).

    Returns
    -------
    shards : `dict` [`int`, `astropy.table.Table`]
        Rows of each trixel, sorted by ``source_id``.
    """
    table = unique(table, keys="source_id", keep="last")
    trixels = htm7_index(table["ra"], table["dec"])
    shards = {}
    for trixel in np.unique(trixels):
        rows = table[trixels == trixel]
        rows.sort("source_id")
        shards[int(trixel)] = rows
    return shards


def merge_shard(
    stored: Table | None, new: Table, columns: Mapping[str, ColumnSpec] = GAIA_COLUMNS
) -> Table | None:
    """Return a shard's rows after adding new ones, or `None` if the stored
    shard already holds them.

    Parameters
    ----------
    stored : `astropy.table.Table` or `None`
        The shard in the repository, if any, standardized by
        `standardize_columns`.
    new : `astropy.table.Table`
        Rows of the same trixel to add, sorted by ``source_id``.  A row
        whose ``source_id`` is in ``stored`` replaces the stored row (a
        later release or a corrected file).
    columns : `~collections.abc.Mapping` [`str`, `ColumnSpec`], optional
        The schema of the shards.

    Returns
    -------
    merged : `astropy.table.Table` or `None`
        The shard to write, sorted by ``source_id``; `None` if every new
        row is in ``stored`` already, identical.
    """
    if stored is None:
        return new
    kept = stored[~np.isin(stored["source_id"], new["source_id"])]
    merged = vstack([kept, new], join_type="exact", metadata_conflicts="silent")
    merged.sort("source_id")
    return None if _same_rows(stored, merged, columns) else merged


def _same_rows(a: Table, b: Table, columns: Mapping[str, ColumnSpec]) -> bool:
    """Whether two tables sorted by ``source_id`` hold the same values, with
    the same masks."""
    if len(a) != len(b):
        return False
    for name in columns:
        mask_a, mask_b = np.ma.getmaskarray(a[name]), np.ma.getmaskarray(b[name])
        if not np.array_equal(mask_a, mask_b):
            return False
        values_a, values_b = np.ma.getdata(a[name])[~mask_a], np.ma.getdata(b[name])[~mask_b]
        if not np.array_equal(values_a, values_b):
            return False
    return True
