"""The columns of a Gaia-like reference catalogue, and their validation."""

from __future__ import annotations

__all__ = (
    "EXTERNAL_COLUMNS",
    "GAIA_COLUMNS",
    "REFERENCE_SCHEMAS",
    "TWOMASS_COLUMNS",
    "TWOMASS_NAMES",
    "ColumnSpec",
    "RefcatSchemaError",
    "ValueRange",
    "standardize_columns",
)

import dataclasses
import warnings
from collections.abc import Mapping

import astropy.units as u
import numpy as np
from astropy.table import Column, MaskedColumn, Table


class RefcatSchemaError(ValueError):
    """A reference table lacks a column, or has one of the wrong type or
    unit; the message is one line that names the table and the columns."""


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """What a reference catalogue column must be."""

    dtype: np.dtype
    """Type the column is stored as; integer columns must be integers, float
    columns numbers, bool columns booleans."""

    unit: u.UnitBase | None
    """Unit of the stored values; `None` for dimensionless columns."""

    required: bool
    """Whether a table without the column is rejected.  Optional columns
    missing from a file are stored fully masked, so every shard has the same
    columns."""

    valid: ValueRange | None = None
    """Values the column may hold (in ``unit``); a table with any other
    value is rejected."""


@dataclasses.dataclass(frozen=True)
class ValueRange:
    """An interval of valid values, closed below."""

    low: float
    high: float
    high_included: bool
    """Whether ``high`` itself is valid (a latitude of 90 degrees is; a
    right ascension of 360 is written 0)."""

    def count_outside(self, values: np.ndarray) -> int:
        """Return how many values lie outside the interval.

        Parameters
        ----------
        values : `numpy.ndarray`
            Finite values.

        Returns
        -------
        count : `int`
            Number of values below ``low`` or above (or at, if excluded)
            ``high``.
        """
        above = values > self.high if self.high_included else values >= self.high
        return int(np.count_nonzero((values < self.low) | above))

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}{']' if self.high_included else ')'}"


def _spec(
    dtype: type, unit: str | None, required: bool = True, valid: ValueRange | None = None
) -> ColumnSpec:
    return ColumnSpec(np.dtype(dtype), None if unit is None else u.Unit(unit), required, valid)


GAIA_COLUMNS: Mapping[str, ColumnSpec] = {
    "source_id": _spec(np.int64, None),
    "ra": _spec(np.float64, "deg", valid=ValueRange(0.0, 360.0, high_included=False)),
    "dec": _spec(np.float64, "deg", valid=ValueRange(-90.0, 90.0, high_included=True)),
    "ra_error": _spec(np.float32, "mas"),
    "dec_error": _spec(np.float32, "mas"),
    "phot_g_mean_mag": _spec(np.float32, "mag"),
    "phot_g_mean_flux_over_error": _spec(np.float32, None),
    "phot_g_n_obs": _spec(np.int16, None, False),
    "phot_bp_mean_mag": _spec(np.float32, "mag"),
    "phot_bp_mean_flux_over_error": _spec(np.float32, None),
    "phot_bp_n_obs": _spec(np.int16, None, False),
    "phot_rp_mean_mag": _spec(np.float32, "mag"),
    "phot_rp_mean_flux_over_error": _spec(np.float32, None),
    "phot_rp_n_obs": _spec(np.int16, None, False),
    "astrometric_weight_al": _spec(np.float32, "mas-2", False),
    "astrometric_n_obs_al": _spec(np.int16, None, False),
    "astrometric_n_good_obs_al": _spec(np.int16, None, False),
    "astrometric_excess_noise": _spec(np.float32, "mas", False),
    "astrometric_excess_noise_sig": _spec(np.float32, None, False),
    "duplicated_source": _spec(np.bool_, None, False),
    "ref_epoch": _spec(np.float64, "yr"),
    "parallax": _spec(np.float32, "mas", False),
    "parallax_error": _spec(np.float32, "mas", False),
    "pmra": _spec(np.float32, "mas/yr"),
    "pmra_error": _spec(np.float32, "mas/yr"),
    "pmdec": _spec(np.float32, "mas/yr"),
    "pmdec_error": _spec(np.float32, "mas/yr"),
    "phot_variable_flag": _spec(np.bool_, None, False),
    "a_g_val": _spec(np.float32, "mag", False),
    "e_bp_min_rp_val": _spec(np.float32, "mag", False),
    "phot_bp_rp_excess_factor": _spec(np.float32, None, False),
    "astrometric_sigma5d_max": _spec(np.float32, "mas", False),
    "astrometric_params_solved": _spec(np.float32, None, False),
}
r"""Columns of a Gaia DR2/DR3 ``gaia_source`` table, as the Gaia archive
names them, that a reference catalogue keeps, with the units of the Gaia
data model: positions in degrees (``ra_error`` is the error of
:math:`\alpha\cos\delta`), their errors, parallaxes and excess noise in
mas, proper motions in mas/yr (``pmra`` is :math:`\mu_{\alpha*}`, which
includes :math:`\cos\delta`), ``ref_epoch`` in Julian years (TCB), Gaia's
Vega magnitudes.  Proper motion and parallax may be masked (Gaia's
two-parameter solutions); other columns of an input table are not kept."""

EXTERNAL_COLUMNS: Mapping[str, ColumnSpec] = {
    "source_id": GAIA_COLUMNS["source_id"],
    "ra": GAIA_COLUMNS["ra"],
    "dec": GAIA_COLUMNS["dec"],
}
"""Columns of an external catalogue whose positions are measured on the
coadds (an HSC, Rubin or Legacy Surveys object table): its integer ID and
ICRS position (degrees), stored under these names whatever the file calls
them (`standardize_columns`' ``names``)."""

TWOMASS_COLUMNS: Mapping[str, ColumnSpec] = {
    "source_id": GAIA_COLUMNS["source_id"],
    "ra": GAIA_COLUMNS["ra"],
    "dec": GAIA_COLUMNS["dec"],
    "err_maj": _spec(np.float32, "arcsec"),
    "err_min": _spec(np.float32, "arcsec", False),
    "j_m": _spec(np.float32, "mag"),
    "j_msigcom": _spec(np.float32, "mag"),
    "h_m": _spec(np.float32, "mag"),
    "h_msigcom": _spec(np.float32, "mag"),
    "k_m": _spec(np.float32, "mag"),
    "k_msigcom": _spec(np.float32, "mag"),
    "j_snr": _spec(np.float32, None, False),
    "h_snr": _spec(np.float32, None, False),
    "k_snr": _spec(np.float32, None, False),
    "jdate": _spec(np.float64, "d"),
}
"""Columns of the 2MASS Point Source Catalog (``fp_psc``) that a reference
catalogue keeps, under the PSC's names and units: position (degrees, J2000
ICRS, at the epoch of the 2MASS observation) and the major and minor axes
of its error ellipse (arcsec); J, H and Ks magnitudes (the 2MASS Vega
system; masked where the PSC has no detection in a band) with their total
errors ``*_msigcom``; ``jdate``, the Julian date of the observation, which
is the epoch of the position (the PSC has no proper motions).  The PSC's
unique integer key ``pts_key`` is stored as ``source_id`` (`TWOMASS_NAMES`)
like every catalogue's ID; its text columns (``designation``, ``ph_qual``,
flags) are not kept."""

TWOMASS_NAMES: Mapping[str, str] = {"source_id": "pts_key"}
"""The 2MASS PSC's names of `TWOMASS_COLUMNS` where they differ."""

REFERENCE_SCHEMAS: Mapping[str, tuple[Mapping[str, ColumnSpec], Mapping[str, str]]] = {
    "gaia": (GAIA_COLUMNS, {}),
    "2mass": (TWOMASS_COLUMNS, TWOMASS_NAMES),
}
"""The reference catalogue schemas ``butler ingest-refcat --schema`` takes:
their columns and the input's names of those that differ."""

_NOT_NULL = ("source_id", "ra", "dec", "ref_epoch", "jdate")
"""Columns without which a row is no reference star (or external position)."""

_KINDS = {"i": "an integer", "f": "a number", "b": "a boolean"}
"""What a column of each stored kind must be, for the error message."""

_KIND_NAMES = {
    "S": "text",
    "U": "text",
    "O": "objects",
    "c": "complex numbers",
    "M": "dates",
    "m": "durations",
}
"""Words for numpy kinds no column may have."""

_ACCEPTED_KINDS = {"i": "iu", "f": "fiu", "b": "b"}
"""Numpy kinds an input column of each stored kind may have."""


def standardize_columns(
    table: Table,
    where: str,
    *,
    units_given: bool = False,
    columns: Mapping[str, ColumnSpec] = GAIA_COLUMNS,
    names: Mapping[str, str] | None = None,
) -> Table:
    """Check a table's columns against a schema (`GAIA_COLUMNS` by default)
    and return them in the stored types and units.

    Parameters
    ----------
    table : `astropy.table.Table`
        A Gaia-like table, read from a file or a shard.
    where : `str`
        What the table is (file and HDU, or dataset and htm7 trixel), for
        the error message.
    units_given : `bool`, optional
        Whether every dimensioned column must carry its unit (shards, which
        are written with units) or may have none, meaning the Gaia unit
        (FITS files, which often lack TUNIT cards).  A column with a unit is
        converted to the Gaia unit either way.
    columns : `~collections.abc.Mapping` [`str`, `ColumnSpec`], optional
        The schema: `GAIA_COLUMNS`, `TWOMASS_COLUMNS` or `EXTERNAL_COLUMNS`.
    names : `~collections.abc.Mapping` [`str`, `str`], optional
        The input's name of a stored column, where it differs (an external
        catalogue's ``object_id`` for ``source_id``); error messages use
        the input's names.

    Returns
    -------
    standardized : `astropy.table.Table`
        The schema's columns in their order, stored types and units; optional
        ones that were missing are fully masked; NaNs are masked.

    Raises
    ------
    RefcatSchemaError
        Raised if a required column is missing, a column has the wrong
        type or a unit not convertible to the Gaia one, a row has no
        ``source_id``, finite position or epoch, or a position is out of
        range (``ra`` in [0, 360), ``dec`` in [-90, 90] degrees); one line
        naming ``where`` and every such column with its count of bad
        rows.
    """
    names = dict(names or {})
    problems = []
    missing = [
        names.get(name, name)
        for name, spec in columns.items()
        if spec.required and names.get(name, name) not in table.colnames
    ]
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    standardized = {}
    for name, spec in columns.items():
        source = names.get(name, name)
        if source not in table.colnames:
            if source not in missing:
                standardized[name] = MaskedColumn(
                    np.zeros(len(table), dtype=spec.dtype), mask=True, unit=spec.unit, name=name
                )
            continue
        column = table[source]
        problem = _type_problem(column, spec) or _unit_problem(column, spec, units_given)
        if problem:
            problems.append(f"column {source!r} {problem}")
            continue
        standardized[name] = converted = _convert(column, spec, name)
        if name in _NOT_NULL and (n_null := np.count_nonzero(converted.mask)):
            problems.append(f"column {source!r} has {_values(n_null)} null or not finite")
        if spec.valid is not None:
            n_outside = spec.valid.count_outside(np.ma.getdata(converted)[~converted.mask])
            if n_outside:
                problems.append(
                    f"column {source!r} has {_values(n_outside)} outside {spec.valid} {spec.unit}"
                )
    if problems:
        raise RefcatSchemaError(f"{where}: {'; '.join(problems)}")
    return Table(standardized)


def _values(n: int) -> str:
    return f"{n} value{'s' if n > 1 else ''}"


def _type_problem(column: Column, spec: ColumnSpec) -> str | None:
    kind = spec.dtype.kind
    if column.ndim != 1:
        return f"has shape {column.shape[1:]} per row, not one value"
    if column.dtype.kind not in _ACCEPTED_KINDS[kind]:
        found = _KIND_NAMES.get(column.dtype.kind, column.dtype.name)
        return f"holds {found}, not {_KINDS[kind]}"
    return None


def _unit_problem(column: Column, spec: ColumnSpec, units_given: bool) -> str | None:
    unit = column.unit
    if isinstance(unit, u.UnrecognizedUnit):
        return f"has unit {str(unit)!r}, which astropy does not recognise"
    if spec.unit is None:
        if unit is not None and unit != u.dimensionless_unscaled:
            return f"has unit {unit.to_string()!r}, but is dimensionless"
        return None
    if unit is None:
        return f"has no unit, not {spec.unit.to_string()!r}" if units_given else None
    if not unit.is_equivalent(spec.unit):
        return f"has unit {unit.to_string()!r}, not convertible to {spec.unit.to_string()!r}"
    return None


def _convert(column: Column, spec: ColumnSpec, name: str) -> MaskedColumn:
    mask = np.ma.getmaskarray(column)
    values = np.ma.getdata(column)
    if spec.unit is not None and column.unit is not None and column.unit != spec.unit:
        values = (values * column.unit).to_value(spec.unit)
    if spec.dtype.kind == "f":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = values.astype(spec.dtype)
        mask = mask | ~np.isfinite(values)
    else:
        values = values.astype(spec.dtype)
    return MaskedColumn(values, mask=mask, unit=spec.unit, name=name)
