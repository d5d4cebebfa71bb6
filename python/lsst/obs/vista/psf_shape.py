"""The one place for PSF size conventions: FWHM <-> Gaussian sigma, and the
second moments and FWHM of any lsst-images PSF model."""

from __future__ import annotations

__all__ = ("FWHM_PER_SIGMA", "fwhm_from_moments", "psf_fwhm", "psf_moments")

import math

import numpy as np

from lsst.images.psfs import PointSpreadFunction

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM of a Gaussian in units of its sigma (2.3548...)."""


def fwhm_from_moments(ixx: float | np.ndarray, iyy: float | np.ndarray) -> float | np.ndarray:
    """Return the FWHM of the Gaussian with the same trace of second moments.

    Parameters
    ----------
    ixx, iyy : `float` or `numpy.ndarray`
        Second moments (pixels**2).

    Returns
    -------
    fwhm : `float` or `numpy.ndarray`
        ``FWHM_PER_SIGMA * sqrt((ixx + iyy) / 2)`` (pixels).
    """
    return FWHM_PER_SIGMA * np.sqrt(0.5 * (ixx + iyy))


def psf_moments(psf: PointSpreadFunction, *, x: float, y: float) -> tuple[float, float, float]:
    """Return the unweighted second moments of a PSF model's kernel image.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        The PSF model.
    x, y : `float`
        Position (parent pixel coordinates) to evaluate it at.

    Returns
    -------
    ixx, iyy, ixy : `float`
        Second moments (pixels**2) about the kernel's centroid.
    """
    kernel = psf.compute_kernel_image(x=x, y=y)
    array = kernel.array.astype(np.float64)
    total = array.sum()
    rows, columns = np.indices(array.shape, dtype=np.float64)
    x_mean = (columns * array).sum() / total
    y_mean = (rows * array).sum() / total
    dx, dy = columns - x_mean, rows - y_mean
    return (
        float((dx * dx * array).sum() / total),
        float((dy * dy * array).sum() / total),
        float((dx * dy * array).sum() / total),
    )


def psf_fwhm(psf: PointSpreadFunction, *, x: float, y: float) -> float:
    """Return the second-moment FWHM of a PSF model at a position.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        The PSF model.
    x, y : `float`
        Position (parent pixel coordinates).

    Returns
    -------
    fwhm : `float`
        `fwhm_from_moments` of the kernel image's moments (pixels): the
        exact FWHM for a Gaussian PSF, the Gaussian-equivalent otherwise.
    """
    ixx, iyy, _ = psf_moments(psf, x=x, y=y)
    return float(fwhm_from_moments(ixx, iyy))
