"""Lanczos-3 resampling of an image, its variance, a noise realisation and
its mask onto another pixel grid, conserving flux.

Every output pixel is the Lanczos-3 interpolation of the input at the
input position it maps to (a 6 x 6 kernel, the weights normalised to sum
to 1, as Rubin's warper does), times the ratio of the output pixel's area to
the input pixel's, so that a source's summed flux is the same on both
grids.  The variance is ``sum(w**2 var)`` times the square of that ratio:
right per pixel for independent input pixels.  The covariance the kernel
puts between neighbouring output pixels is not in the variance plane; it
is carried by the noise realisation, warped with the same weights.  An
output pixel is NO_DATA where the kernel reaches past the input's edge or
onto a NO_DATA input pixel, and it carries the OR of the mask bits of the
input pixels its kernel touches.
"""

from __future__ import annotations

__all__ = ("ResampledPlanes", "resample_image", "resample_planes")

import dataclasses

import numba
import numpy as np

from .lanczos import LANCZOS_ORDER, lanczos_weights


@numba.njit(cache=True, nogil=True)
def _resample(
    image: np.ndarray,
    variance: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    no_data: np.ndarray,
    source_x: np.ndarray,
    source_y: np.ndarray,
    flux_scale: np.ndarray,
    out_image: np.ndarray,
    out_variance: np.ndarray,
    out_noise: np.ndarray,
    out_mask: np.ndarray,
    out_valid: np.ndarray,
) -> None:
    a = LANCZOS_ORDER
    height, width = image.shape
    n_mask = mask.shape[2]
    wx = np.empty(2 * a)
    wy = np.empty(2 * a)
    for oy in range(source_x.shape[0]):
        for ox in range(source_x.shape[1]):
            x = source_x[oy, ox]
            y = source_y[oy, ox]
            out_valid[oy, ox] = False
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            x0 = int(np.floor(x))
            y0 = int(np.floor(y))
            if x0 - a + 1 < 0 or y0 - a + 1 < 0 or x0 + a >= width or y0 + a >= height:
                continue
            lanczos_weights(x - x0, wx)
            lanczos_weights(y - y0, wy)
            value = 0.0
            var = 0.0
            noise_value = 0.0
            touched_no_data = False
            for ky in range(2 * a):
                sy = y0 - a + 1 + ky
                for kx in range(2 * a):
                    sx = x0 - a + 1 + kx
                    w = wy[ky] * wx[kx]
                    if w == 0.0:
                        continue
                    for m in range(n_mask):
                        bits = mask[sy, sx, m]
                        if bits & no_data[m]:
                            touched_no_data = True
                        out_mask[oy, ox, m] |= bits
                    value += w * image[sy, sx]
                    var += w * w * variance[sy, sx]
                    noise_value += w * noise[sy, sx]
            if touched_no_data:
                continue
            scale = flux_scale[oy, ox]
            out_image[oy, ox] = value * scale
            out_variance[oy, ox] = var * scale * scale
            out_noise[oy, ox] = noise_value * scale
            out_valid[oy, ox] = True


@dataclasses.dataclass
class ResampledPlanes:
    """The planes of an input on the output grid (arrays of the output's shape)."""

    image: np.ndarray
    """Resampled image (NaN where not `valid`)."""

    variance: np.ndarray
    """Per-pixel variance of `image` (NaN where not `valid`)."""

    noise: np.ndarray
    """The input's noise realisation, resampled with the same weights."""

    mask: np.ndarray
    """OR of the mask bits of the input pixels each kernel touched
    (``(ny, nx, n)``, the input's mask layout)."""

    valid: np.ndarray
    """Pixels whose kernel lay wholly on input pixels with data."""


def resample_planes(
    image: np.ndarray,
    variance: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    no_data_bits: np.ndarray,
    source_x: np.ndarray,
    source_y: np.ndarray,
    flux_scale: np.ndarray,
) -> ResampledPlanes:
    """Resample an input's planes onto an output grid.

    Parameters
    ----------
    image, variance, noise : `numpy.ndarray`
        The input's planes (same 2-d shape).
    mask : `numpy.ndarray`
        The input's mask array, ``(ny, nx, n)`` as `lsst.images.Mask.array`.
    no_data_bits : `numpy.ndarray`
        The NO_DATA plane's bits in each of the ``n`` mask elements.
    source_x, source_y : `numpy.ndarray`
        Input array coordinates (0-based, pixel centres at integers) of
        each output pixel; NaN where the output pixel maps nowhere.
    flux_scale : `numpy.ndarray`
        Output pixel area over input pixel area at each output pixel.

    Returns
    -------
    planes : `ResampledPlanes`
        The resampled planes.
    """
    shape = source_x.shape
    out_image = np.full(shape, np.nan, dtype=np.float32)
    out_variance = np.full(shape, np.nan, dtype=np.float32)
    out_noise = np.full(shape, np.nan, dtype=np.float32)
    out_mask = np.zeros(shape + mask.shape[2:], dtype=mask.dtype)
    out_valid = np.zeros(shape, dtype=bool)
    _resample(
        np.ascontiguousarray(image, dtype=np.float32),
        np.ascontiguousarray(variance, dtype=np.float32),
        np.ascontiguousarray(noise, dtype=np.float32),
        np.ascontiguousarray(mask),
        np.ascontiguousarray(no_data_bits, dtype=mask.dtype),
        np.ascontiguousarray(source_x, dtype=np.float64),
        np.ascontiguousarray(source_y, dtype=np.float64),
        np.ascontiguousarray(flux_scale, dtype=np.float64),
        out_image,
        out_variance,
        out_noise,
        out_mask,
        out_valid,
    )
    return ResampledPlanes(out_image, out_variance, out_noise, out_mask, out_valid)


def resample_image(image: np.ndarray, source_x: np.ndarray, source_y: np.ndarray) -> np.ndarray:
    """Lanczos-3 interpolate a plain image (a PSF kernel) at input positions.

    Parameters
    ----------
    image : `numpy.ndarray`
        The input image.
    source_x, source_y : `numpy.ndarray`
        Input array coordinates of each output pixel.

    Returns
    -------
    values : `numpy.ndarray`
        The interpolated values (float64), 0 where the kernel reaches past
        the input's edge (an image that is 0 beyond its edge, as a PSF
        kernel is, loses nothing there but the Lanczos ringing).
    """
    padded = np.pad(np.asarray(image, dtype=np.float32), LANCZOS_ORDER)
    shape = np.shape(source_x)
    zeros = np.zeros_like(padded)
    planes = resample_planes(
        padded,
        zeros,
        zeros,
        np.zeros(padded.shape + (1,), dtype=np.uint8),
        np.zeros(1, dtype=np.uint8),
        np.asarray(source_x, dtype=np.float64) + LANCZOS_ORDER,
        np.asarray(source_y, dtype=np.float64) + LANCZOS_ORDER,
        np.ones(shape),
    )
    return np.where(planes.valid, planes.image, 0.0).astype(np.float64)
