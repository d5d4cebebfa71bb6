"""A visit's PSF carried onto the tract grid, and the weighted PSF of a
coadd cell."""

from __future__ import annotations

__all__ = ("combine_kernels", "warp_psf_kernel")

from collections.abc import Sequence

import numpy as np

from lsst.images.psfs import PointSpreadFunction

from .resampling import resample_image


def warp_psf_kernel(
    psf: PointSpreadFunction, source_x: float, source_y: float, jacobian: np.ndarray, size: int
) -> np.ndarray:
    """Return the kernel image of a detector's PSF on the tract grid.

    The detector's kernel image at the input position is resampled, with
    the Lanczos-3 kernel that warps the pixels, at the detector offsets
    ``J u`` of the tract pixel offsets ``u``: what warping a point source
    there gives.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        The detector's PSF model.
    source_x, source_y : `float`
        Detector position (parent pixels) the tract pixel maps to.
    jacobian : `numpy.ndarray`
        ``d(detector)/d(tract)`` there (`lsst.obs.vista.coadd.mapping.local_jacobian`).
    size : `int`
        Side of the returned kernel (odd, tract pixels).

    Returns
    -------
    kernel : `numpy.ndarray`
        ``size x size`` kernel centred on its middle pixel, summing to 1.
    """
    kernel = psf.compute_kernel_image(x=source_x, y=source_y)
    half = size // 2
    u_y, u_x = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    offset_x = jacobian[0, 0] * u_x + jacobian[0, 1] * u_y
    offset_y = jacobian[1, 0] * u_x + jacobian[1, 1] * u_y
    # Array index of detector offset 0 is minus the kernel box's start.
    values = resample_image(kernel.array, offset_x - kernel.bbox.x.start, offset_y - kernel.bbox.y.start)
    return values / values.sum()


def combine_kernels(kernels: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Return the weighted mean of kernel images (the PSF of a weighted
    mean of images with those PSFs), normalised to sum to 1."""
    total = np.tensordot(np.asarray(weights, dtype=float), np.asarray(kernels, dtype=float), axes=1)
    return total / total.sum()
