"""The ``single_visit_star`` catalogue: calibrated columns, sky
coordinates, extendedness and the flags Rubin's tables carry."""

from __future__ import annotations

__all__ = ("add_calibrated_fluxes", "add_sky_coordinates", "classify_extendedness", "usable_for_calibration")

import astropy.units as u
import numpy as np
from astropy.table import Table

from lsst.images import SkyProjection

from ..isr.assembly import nanojansky_per_unit

_REJECTING_FLAGS = (
    "pixelFlags_edge",
    "pixelFlags_nodata",
    "pixelFlags_saturatedCenter",
    "pixelFlags_interpolatedCenter",
    "pixelFlags_crCenter",
    "pixelFlags_badCenter",
    "deblend_blended",
    "centroid_flag",
    "psfFlux_flag",
)
"""Flags any one of which keeps a source out of PSF, astrometric and
photometric calibration."""


def usable_for_calibration(sources: Table) -> np.ndarray:
    """Return which sources may calibrate the exposure.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Measured sources.

    Returns
    -------
    usable : `numpy.ndarray` [`bool`]
        Sources with none of the rejecting flags (edge, NO_DATA, saturated,
        interpolated, cosmic-ray or bad centre, blended, failed centroid or
        PSF flux) and a positive PSF flux.
    """
    usable = np.asarray(sources["psfInstFlux"], dtype=float) > 0
    for flag in _REJECTING_FLAGS:
        if flag in sources.colnames:
            usable &= ~np.asarray(sources[flag], dtype=bool)
    return usable


def classify_extendedness(
    sources: Table, *, reference_prefix: str, flux_ratio: float, size_ratio: float
) -> None:
    """Add ``extendedness`` and ``sizeExtendedness`` (0 point-like, 1 extended).

    Parameters
    ----------
    sources : `astropy.table.Table`
        Measured sources with aperture-corrected PSF fluxes, the reference
        aperture flux, and source and PSF second moments; modified in place.
    reference_prefix : `str`
        Column prefix of the aperture flux the PSF flux is corrected to.
    flux_ratio : `float`
        A source whose PSF flux is below this fraction of its aperture flux
        (by more than 2 sigma) is extended, as Rubin's
        ``psfFlux / cModelFlux < 0.985`` rule.
    size_ratio : `float`
        A source whose second-moment trace exceeds the PSF's by this factor
        (by more than 2 sigma of the size scatter of point sources) is
        extended by size.
    """
    psf = np.asarray(sources["psfInstFlux"], dtype=float)
    psf_error = np.asarray(sources["psfInstFluxErr"], dtype=float)
    aperture = np.asarray(sources[f"{reference_prefix}InstFlux"], dtype=float)
    aperture_error = np.asarray(sources[f"{reference_prefix}InstFluxErr"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = psf / aperture
        ratio_error = np.abs(ratio) * np.hypot(psf_error / psf, aperture_error / aperture)
        extended = ratio + 2.0 * ratio_error < flux_ratio
        trace = np.asarray(sources["ixx"], dtype=float) + np.asarray(sources["iyy"], dtype=float)
        psf_trace = np.asarray(sources["psf_ixx"], dtype=float) + np.asarray(sources["psf_iyy"], dtype=float)
        # The trace of a point source scatters like its centroid variance.
        size_error = 2.0 * np.sqrt(
            np.asarray(sources["xErr"], float) ** 2 + np.asarray(sources["yErr"], float) ** 2
        )
        size_extended = trace - 2.0 * size_error > size_ratio * psf_trace
    sources["extendedness"] = np.where(np.isfinite(ratio), extended.astype(float), np.nan)
    sources["sizeExtendedness"] = np.where(np.isfinite(trace), size_extended.astype(float), np.nan)


def add_calibrated_fluxes(sources: Table, zero_point: float | None, flux_prefixes: list[str]) -> None:
    """Add nJy fluxes and AB magnitudes for instrumental flux columns.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Sources with ``<prefix>InstFlux`` and ``<prefix>InstFluxErr``;
        modified in place.
    zero_point : `float` or `None`
        AB magnitude of one image unit; `None` leaves calibrated columns NaN.
    flux_prefixes : `list` [`str`]
        Prefixes to calibrate (``psf``, ``ap12``, ...).
    """
    scale = np.nan if zero_point is None else nanojansky_per_unit(zero_point)
    for prefix in flux_prefixes:
        flux = np.asarray(sources[f"{prefix}InstFlux"], dtype=float) * scale
        error = np.asarray(sources[f"{prefix}InstFluxErr"], dtype=float) * scale
        sources[f"{prefix}Flux"] = flux * u.nJy
        sources[f"{prefix}FluxErr"] = error * u.nJy
        with np.errstate(divide="ignore", invalid="ignore"):
            magnitude = np.where(flux > 0, (np.where(flux > 0, flux, 1.0) * u.nJy).to_value(u.ABmag), np.nan)
            sources[f"{prefix}Mag"] = magnitude * u.ABmag
            sources[f"{prefix}MagErr"] = (
                (2.5 / np.log(10.0)) * error / np.where(flux > 0, flux, np.nan) * u.mag
            )


def add_sky_coordinates(sources: Table, sky_projection: SkyProjection) -> None:
    """Set ``coord_ra``/``coord_dec`` (deg) of sources from a WCS.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Sources with ``x``, ``y`` (parent pixel coordinates); modified in
        place.
    sky_projection : `lsst.images.SkyProjection`
        The WCS.
    """
    if len(sources):
        sky = sky_projection.pixel_to_sky(
            x=np.asarray(sources["x"], dtype=float), y=np.asarray(sources["y"], dtype=float)
        )
        sources["coord_ra"] = sky.ra.to(u.deg)
        sources["coord_dec"] = sky.dec.to(u.deg)
    else:
        sources["coord_ra"] = np.zeros(0) * u.deg
        sources["coord_dec"] = np.zeros(0) * u.deg
