"""Statistics of the report: normalised residuals of background pixels,
distributions against a unit Gaussian, and the sources fit to compare."""

from __future__ import annotations

__all__ = (
    "DEPTH_SIGMA",
    "clean_point_sources",
    "distribution_summary",
    "finite_or_none",
    "normalised_background_residuals",
    "point_source_depth",
)

import math
from typing import Any

import numpy as np
from astropy.table import Table

from lsst.images import VisitImage

from ..calibrate.catalog import usable_for_calibration
from ..isr.background import robust_sigma
from ..isr.masks import unflagged

MAX_PIXELS_PER_DETECTOR = 200_000
"""Background pixels (a regular subsample) a detector contributes to the
pooled normalised-residual distribution."""


DEPTH_SIGMA = 5.0
"""Significance of the point-source depth quoted (Rubin's and the Legacy
Surveys' 5 sigma)."""


def finite_or_none(value: Any) -> float | None:
    """Return ``value`` as a finite `float`, or `None` if missing or not finite.

    Parameters
    ----------
    value : `typing.Any`
        A number or `None`.

    Returns
    -------
    number : `float` or `None`
    """
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def normalised_background_residuals(image: VisitImage) -> np.ndarray:
    """Return image / sqrt(variance) of the background pixels of a
    background-subtracted exposure.

    Parameters
    ----------
    image : `lsst.images.VisitImage`
        ``preliminary_visit_image`` (background subtracted, DETECTED set).

    Returns
    -------
    residuals : `numpy.ndarray`
        One value per pixel with no mask plane set (so neither DETECTED nor
        masked), a finite value and a positive variance; at most
        `MAX_PIXELS_PER_DETECTOR`, taken at a regular stride.  For a
        correct variance plane they follow N(0, 1).
    """
    values = np.asarray(image.image.array, dtype=np.float64)
    variance = np.asarray(image.variance.array, dtype=np.float64)
    selected = unflagged(image.mask) & np.isfinite(values) & np.isfinite(variance) & (variance > 0)
    values = values[selected]
    variance = variance[selected]
    step = max(1, math.ceil(values.size / MAX_PIXELS_PER_DETECTOR))
    return values[::step] / np.sqrt(variance[::step])


def distribution_summary(values: np.ndarray) -> dict[str, float | int | None]:
    """Return the numbers a histogram against N(0, 1) is judged by.

    Parameters
    ----------
    values : `numpy.ndarray`
        Normalised values (expected N(0, 1)).

    Returns
    -------
    summary : `dict`
        ``n``, ``median`` and ``robust_std`` (the clipped standard deviation
        of `lsst.obs.vista.isr.background.robust_sigma`, the estimator of
        isr's noise ratio); `None` with fewer than two values.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return {"n": int(values.size), "median": None, "robust_std": None}
    return {
        "n": int(values.size),
        "median": finite_or_none(np.median(values)),
        "robust_std": finite_or_none(robust_sigma(values)),
    }


def clean_point_sources(stars: Table) -> np.ndarray:
    """Return which sources of a ``single_visit_star`` table are clean point sources.

    Parameters
    ----------
    stars : `astropy.table.Table`
        ``single_visit_star``.

    Returns
    -------
    selected : `numpy.ndarray` [`bool`]
        Extendedness 0, none of the flags that keep a source out of
        calibration (`lsst.obs.vista.calibrate.usable_for_calibration`), and
        a positive instrumental PSF flux error.
    """
    if len(stars) == 0:
        return np.zeros(0, dtype=bool)
    error = np.asarray(stars["psfInstFluxErr"], dtype=float)
    return (
        usable_for_calibration(stars)
        & (np.asarray(stars["extendedness"], dtype=float) == 0)
        & np.isfinite(error)
        & (error > 0)
    )


def point_source_depth(
    kernel: np.ndarray,
    sky_noise: float | None,
    zero_point: float | None,
    *,
    correlation_factor: float = 1.0,
    n_sigma: float = DEPTH_SIGMA,
) -> float | None:
    """Return the AB magnitude of a point source detected at ``n_sigma`` in
    its PSF flux on the sky background.

    Parameters
    ----------
    kernel : `numpy.ndarray`
        PSF kernel image (any normalisation).
    sky_noise : `float` or `None`
        Per-pixel noise of the background (image units).
    zero_point : `float` or `None`
        AB magnitude of one image unit.
    correlation_factor : `float`, optional
        How much correlated pixel noise (a stack's resampling) raises the
        PSF-flux error above that of white noise: ``calibrateImage``'s
        ``NOISE_CORR_PSF``.
    n_sigma : `float`, optional
        Significance.

    Returns
    -------
    depth : `float` or `None`
        ``zero_point - 2.5 log10(n_sigma * correlation_factor * sky_noise *
        sqrt(NEA))``, where the noise-equivalent area
        ``NEA = (sum k)**2 / sum k**2`` of the kernel makes
        ``sky_noise * sqrt(NEA)`` the error of an optimal (PSF-weighted)
        flux on a flat background of white noise; `None` without a zero
        point or a positive noise.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if zero_point is None or sky_noise is None or not (sky_noise > 0) or not math.isfinite(zero_point):
        return None
    area = float(np.sum(kernel)) ** 2 / float(np.sum(kernel**2))
    error = correlation_factor * sky_noise * math.sqrt(area)
    return finite_or_none(zero_point - 2.5 * math.log10(n_sigma * error))
