"""The detections of one visit and detector against the reference catalogue
that ``calibrateImage`` calibrated them with: astrometric and photometric
residuals of the matched stars."""

from __future__ import annotations

__all__ = ("ReferenceMatches", "TaskConfigs", "match_reference")

import dataclasses
import logging

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table
from astropy.time import Time

from lsst.daf.butler import Butler, MissingDatasetTypeError
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

from ..calibrate.photometry import reference_magnitudes
from ..refcat import load_reference_stars
from ..refcat.pixelization import REFCAT_DIMENSION, htm7_overlapping
from .gather import DetectorData
from .statistics import clean_point_sources

_LOG = logging.getLogger(__name__)

_TASK_LABEL = "calibrateImage"
"""Pipeline label of the task whose outputs the report reads."""

_FALLBACK_MAGNITUDE = "phot_g_mean_mag"
"""Reference magnitude compared with in a band that has no colour term."""


class TaskConfigs:
    """The ``calibrateImage`` config of each RUN collection, read once.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the report.
    """

    def __init__(self, butler: Butler) -> None:
        self._butler = butler
        self._configs: dict[str, object | None] = {}

    def __call__(self, run: str) -> object | None:
        """Return the config ``calibrateImage`` ran with in a RUN collection
        (`None` if it was not saved there)."""
        if run not in self._configs:
            try:
                self._configs[run] = self._butler.get(f"{_TASK_LABEL}_config", collections=[run])
            except (LookupError, MissingDatasetTypeError) as err:
                _LOG.warning("No %s_config in %s (%s); no reference comparison.", _TASK_LABEL, run, err)
                self._configs[run] = None
            except ValueError as err:
                # A config saved by another version of the task (a field renamed or removed
                # since) does not load; the rest of the report does not need it.
                _LOG.warning(
                    "%s_config in %s does not load in this version (%s); no reference comparison.",
                    _TASK_LABEL, run, err,
                )  # fmt: skip
                self._configs[run] = None
        return self._configs[run]

    @property
    def runs(self) -> dict[str, object | None]:
        """The configs read so far, by RUN collection."""
        return dict(self._configs)


@dataclasses.dataclass
class ReferenceMatches:
    """Sources of one detector matched to the reference catalogue."""

    catalog: str | None
    """Dataset type of the reference catalogue, `None` if there is none."""

    x: np.ndarray
    """Source positions (pixels) of the matches."""

    y: np.ndarray

    d_ra: np.ndarray
    """Source minus reference position along RA (times cos Dec) and Dec (mas)."""

    d_dec: np.ndarray

    reference_mag: np.ndarray
    """Reference magnitude predicted in the band (AB), or the fallback's."""

    source_mag: np.ndarray
    """Our PSF magnitude (AB), or -2.5 log10 of the instrumental PSF flux
    shifted by the median difference where there is no zero point."""

    used: np.ndarray
    """Matches the zero point was fitted to (``calib_photometry_used``)."""

    magnitude_label: str
    """What ``reference_mag`` is (colour term, or the fallback and why)."""

    note: str
    """What was compared, or why nothing was."""

    @property
    def n(self) -> int:
        """Number of matches."""
        return int(self.x.size)


def match_reference(
    butler: Butler, data: DetectorData, config: object | None, radius: u.Quantity
) -> ReferenceMatches:
    """Match the clean point sources of a detector to its reference stars.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with the report's collections (which hold the reference
        catalogue's shards).
    data : `DetectorData`
        The detector's outputs.
    config : `lsst.pex.config.Config` or `None`
        ``calibrateImage``'s config: the reference catalogue is its
        ``astrometry_ref_cat`` connection, the reference magnitude of the
        band its ``photometry.colorTerms`` entry.
    radius : `astropy.units.Quantity`
        Largest separation of a match.

    Returns
    -------
    matches : `ReferenceMatches`
        Mutual nearest neighbours within ``radius`` of the clean point
        sources (not flagged, extendedness 0) and the reference stars
        inside the detector, at the epoch of the observation.
    """
    catalog = None if config is None else str(config.connections.astrometry_ref_cat)
    stats = data.image.summary_stats
    if catalog is None or stats is None:
        return _nothing(catalog, "no calibrateImage config or summary statistics")
    corners = zip(stats.raCorners, stats.decCorners, strict=True)
    polygon = ConvexPolygon([UnitVector3d(LonLat.fromDegrees(ra, dec)) for ra, dec in corners])
    trixels = htm7_overlapping(polygon)
    try:
        refs = butler.query_datasets(
            catalog,
            where=f"{REFCAT_DIMENSION} IN ({', '.join(str(t) for t in trixels)})",
            explain=False,
        )
    except MissingDatasetTypeError:
        refs = []
    if not refs:
        return _nothing(catalog, f"no {catalog} shard on the detector in these collections")
    shards = {int(ref.dataId[REFCAT_DIMENSION]): butler.get(ref) for ref in refs}
    obs_info = data.image.obs_info
    epoch = Time(obs_info.datetime_begin) + 0.5 * obs_info.exposure_time
    reference = load_reference_stars(shards, epoch=epoch, region=polygon, name=catalog)
    stars = data.stars[clean_point_sources(data.stars)]
    if len(reference) == 0 or len(stars) == 0:
        return _nothing(catalog, f"{len(reference)} {catalog} stars and {len(stars)} clean point sources")
    sources = SkyCoord(_values(stars, "coord_ra") * u.deg, _values(stars, "coord_dec") * u.deg)
    targets = SkyCoord(_values(reference, "coord_ra") * u.deg, _values(reference, "coord_dec") * u.deg)
    forward, separation, _ = match_coordinates_sky(sources, targets)
    backward, _, _ = match_coordinates_sky(targets, sources)
    matched = (separation <= radius) & (backward[forward] == np.arange(len(stars)))
    i, j = np.flatnonzero(matched), forward[matched]
    d_ra, d_dec = targets[j].spherical_offsets_to(sources[i])
    band = data.data_id["band"]
    term = config.photometry.colorTerms.get(band)
    # The colour term may be for a separate photometric catalogue (2MASS for VIRCAM and WFCAM).
    if term is not None and {term.primary, *term.colorColumns} <= set(reference.colnames):
        reference_mag = reference_magnitudes(reference[j], term)
        label = f"{catalog} through the colour term of band {band} (AB)"
    else:
        reference_mag = _values(reference[j], _FALLBACK_MAGNITUDE)
        label = f"{catalog} {_FALLBACK_MAGNITUDE} (no colour term for band {band}: offset and colour trend)"
    source_mag = _values(stars[i], "psfMag")
    note = f"{i.size} matches within {radius:.1f}"
    if not np.isfinite(source_mag).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            source_mag = -2.5 * np.log10(_values(stars[i], "psfInstFlux"))
        shift = np.nanmedian(reference_mag - source_mag) if i.size else 0.0
        source_mag = source_mag + shift
        note += "; no zero point: instrumental magnitudes shifted by their median difference"
    return ReferenceMatches(
        catalog=catalog,
        x=_values(stars[i], "x"),
        y=_values(stars[i], "y"),
        d_ra=d_ra.to_value(u.mas),
        d_dec=d_dec.to_value(u.mas),
        reference_mag=reference_mag,
        source_mag=source_mag,
        used=np.asarray(stars["calib_photometry_used"][i], dtype=bool),
        magnitude_label=label,
        note=note,
    )


def _nothing(catalog: str | None, note: str) -> ReferenceMatches:
    empty = np.zeros(0)
    return ReferenceMatches(
        catalog, empty, empty, empty, empty, empty, empty, np.zeros(0, dtype=bool), "", note
    )


def _values(table: Table, name: str) -> np.ndarray:
    column = table[name]
    if hasattr(column, "filled"):
        column = column.filled(np.nan)
    return np.asarray(column, dtype=float)
