"""Multi-epoch repeatability: PSF fluxes of the same sources measured in
different visits of one band, normalised by their combined errors."""

from __future__ import annotations

__all__ = ("MIN_NORMALISATION_PAIRS", "VisitPair", "match_visit_pair", "repeatability_by_band")

import dataclasses
import itertools
from collections.abc import Mapping

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table, vstack

from .statistics import finite_or_none

MIN_NORMALISATION_PAIRS = 3
"""Matched pairs needed to normalise instrumental fluxes by their median
ratio: with fewer, the normalisation removes most of what is compared."""


@dataclasses.dataclass
class VisitPair:
    """Sources matched between two visits of one band."""

    visits: tuple[int, int]
    """The two visits."""

    n_matched: int
    """Sources matched (one to one, within the radius)."""

    flux: str
    """``"nJy"`` (calibrated ``psfFlux``), ``"instrumental"`` (``psfInstFlux``
    normalised by the median ratio of the pairs), or ``"none"``."""

    ratio: float | None
    """Median instrumental flux ratio (first visit / second) applied, if any."""

    deltas: np.ndarray
    """(f_i - f_j) / sqrt(sigma_i**2 + sigma_j**2) of each usable pair."""

    note: str
    """What was compared, or why nothing was."""

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready description (without the deltas)."""
        return {
            "visits": list(self.visits),
            "n_matched": self.n_matched,
            "n_pairs": int(self.deltas.size),
            "flux": self.flux,
            "ratio": finite_or_none(self.ratio),
            "note": self.note,
        }


def match_visit_pair(first: Table, second: Table, visits: tuple[int, int], radius: u.Quantity) -> VisitPair:
    """Compare the PSF fluxes of the sources two visits share.

    Parameters
    ----------
    first, second : `astropy.table.Table`
        Clean point sources of each visit (``single_visit_star`` rows).
    visits : `tuple` [`int`, `int`]
        The two visits, for the record.
    radius : `astropy.units.Quantity`
        Largest separation of a match.

    Returns
    -------
    pair : `VisitPair`
        Matches are mutual nearest neighbours within ``radius``.  Where
        both visits have calibrated fluxes the deltas use ``psfFlux``
        (nJy); where either has none (no zero point), the instrumental
        fluxes of the second visit are scaled by the median flux ratio of
        the pairs, which needs `MIN_NORMALISATION_PAIRS` pairs.
    """
    empty = np.zeros(0)
    if len(first) == 0 or len(second) == 0:
        return VisitPair(visits, 0, "none", None, empty, "no clean point sources in one of the visits")
    first_coords = SkyCoord(_column(first, "coord_ra") * u.deg, _column(first, "coord_dec") * u.deg)
    second_coords = SkyCoord(_column(second, "coord_ra") * u.deg, _column(second, "coord_dec") * u.deg)
    forward, separation, _ = match_coordinates_sky(first_coords, second_coords)
    backward, _, _ = match_coordinates_sky(second_coords, first_coords)
    matched = (separation <= radius) & (backward[forward] == np.arange(len(first)))
    i = np.flatnonzero(matched)
    j = forward[matched]
    if i.size == 0:
        return VisitPair(visits, 0, "none", None, empty, f"no sources within {radius:.1f}")
    flux_i, error_i = _column(first, "psfFlux")[i], _column(first, "psfFluxErr")[i]
    flux_j, error_j = _column(second, "psfFlux")[j], _column(second, "psfFluxErr")[j]
    calibrated = np.isfinite(flux_i) & np.isfinite(error_i) & np.isfinite(flux_j) & np.isfinite(error_j)
    if calibrated.all():
        deltas = (flux_i - flux_j) / np.hypot(error_i, error_j)
        return VisitPair(visits, int(i.size), "nJy", None, deltas, "calibrated psfFlux (nJy)")
    flux_i, error_i = _column(first, "psfInstFlux")[i], _column(first, "psfInstFluxErr")[i]
    flux_j, error_j = _column(second, "psfInstFlux")[j], _column(second, "psfInstFluxErr")[j]
    positive = (flux_i > 0) & (flux_j > 0)
    if np.sum(positive) < MIN_NORMALISATION_PAIRS:
        return VisitPair(
            visits,
            int(i.size),
            "none",
            None,
            empty,
            f"no zero point; {int(np.sum(positive))} pair(s), fewer than the {MIN_NORMALISATION_PAIRS} "
            "needed to normalise instrumental fluxes",
        )
    ratio = float(np.median(flux_i[positive] / flux_j[positive]))
    deltas = (flux_i - ratio * flux_j) / np.hypot(error_i, ratio * error_j)
    return VisitPair(
        visits,
        int(i.size),
        "instrumental",
        ratio,
        deltas,
        f"no zero point: psfInstFlux, second visit scaled by the median flux ratio {ratio:.4g}",
    )


def repeatability_by_band(
    stars_by_visit: Mapping[tuple[str, str, int], list[Table]], radius: u.Quantity
) -> dict[tuple[str, str], list[VisitPair]]:
    """Match every pair of visits of each instrument and band.

    Parameters
    ----------
    stars_by_visit : `~collections.abc.Mapping`
        Clean point sources (`clean_point_sources`) of ``single_visit_star``
        tables, one table per detector, by (instrument, band, visit).
    radius : `astropy.units.Quantity`
        Largest separation of a match.

    Returns
    -------
    pairs : `dict` [`tuple` [`str`, `str`], `list` [`VisitPair`]]
        Visit pairs by (instrument, band); an instrument and band with a
        single visit has an empty list.
    """
    clean: dict[tuple[str, str], dict[int, Table]] = {}
    for (instrument, band, visit), tables in stars_by_visit.items():
        clean.setdefault((instrument, band), {})[visit] = vstack(tables, metadata_conflicts="silent")
    result: dict[tuple[str, str], list[VisitPair]] = {}
    for key, visits in sorted(clean.items()):
        result[key] = [
            match_visit_pair(visits[a], visits[b], (a, b), radius)
            for a, b in itertools.combinations(sorted(visits), 2)
        ]
    return result


def _column(table: Table, name: str) -> np.ndarray:
    return np.asarray(table[name], dtype=float)
