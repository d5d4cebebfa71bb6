"""The one place for PSF size conventions: FWHM <-> Gaussian sigma, and the
second moments and FWHM of any lsst-images PSF model."""

from __future__ import annotations

__all__ = ("FWHM_PER_SIGMA", "fwhm_from_moments", "kernel_moments", "psf_fwhm", "psf_moments")

import math

import galsim
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
    """Return the adaptive second moments of a PSF model's kernel image.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        The PSF model.
    x, y : `float`
        Position (parent pixel coordinates) to evaluate it at.

    Returns
    -------
    ixx, iyy, ixy : `float`
        Second moments (pixels**2) of the elliptical Gaussian that GalSim's
        HSM adaptive-moment fit matches to the kernel: the moments of the
        PSF itself for a Gaussian, and for other profiles a size that does
        not depend on the stamp the kernel is drawn in (unweighted moments
        of a Moffat profile do).
    """
    return kernel_moments(psf.compute_kernel_image(x=x, y=y).array)


def kernel_moments(kernel: np.ndarray) -> tuple[float, float, float]:
    """Return the adaptive second moments of a PSF kernel image.

    Parameters
    ----------
    kernel : `numpy.ndarray`
        The kernel image.

    Returns
    -------
    ixx, iyy, ixy : `float`
        Second moments (pixels**2), as `psf_moments` defines them; for a
        kernel too small or odd for the adaptive fit to converge (a model
        fitted to too few stars can be one), the plain second moments of
        its positive part, so that a degenerate PSF gives a size, not a crash.
    """
    try:
        result = galsim.hsm.FindAdaptiveMom(galsim.Image(np.ascontiguousarray(kernel, dtype=np.float64)))
    except galsim.GalSimHSMError:
        return _plain_moments(kernel)
    sigma2 = result.moments_sigma**2
    e1, e2 = result.observed_shape.e1, result.observed_shape.e2
    scale = sigma2 / math.sqrt(1.0 - e1 * e1 - e2 * e2)
    return float(scale * (1.0 + e1)), float(scale * (1.0 - e1)), float(scale * e2)


def _plain_moments(kernel: np.ndarray) -> tuple[float, float, float]:
    """Unweighted second moments of a kernel's positive part about its centroid."""
    weights = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
    total = weights.sum()
    if not total > 0:
        return math.nan, math.nan, math.nan
    y, x = np.indices(weights.shape)
    xc, yc = np.sum(weights * x) / total, np.sum(weights * y) / total
    # No pixelised profile is narrower than one pixel (variance 1/12 per axis).
    ixx = max(np.sum(weights * (x - xc) ** 2) / total, 1.0 / 12.0)
    iyy = max(np.sum(weights * (y - yc) ** 2) / total, 1.0 / 12.0)
    ixy = np.sum(weights * (x - xc) * (y - yc)) / total
    return float(ixx), float(iyy), float(ixy)


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
        `fwhm_from_moments` of the kernel image's adaptive moments (pixels):
        the exact FWHM for a Gaussian PSF, the Gaussian-equivalent otherwise.
    """
    ixx, iyy, _ = psf_moments(psf, x=x, y=y)
    return float(fwhm_from_moments(ixx, iyy))
