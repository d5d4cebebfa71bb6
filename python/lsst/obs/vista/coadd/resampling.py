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

from lsst.images import Box

from .lanczos import LANCZOS_ORDER, lanczos_weights
from .mapping import PixelMapping

_TABLE_STEPS = 4096
"""Offsets per pixel at which the weights are tabulated: interpolated
linearly between them, they are off by less than 3e-8 (the kernel's
curvature times a step squared), below float32's resolution, and still
sum to 1; half the resampling time went into computing them exactly."""


def _weight_table() -> np.ndarray:
    """Return the normalised weights at offsets ``0, 1/N, ..., 1``
    (``(N + 1, 2a)``, N = `_TABLE_STEPS`)."""
    table = np.empty((_TABLE_STEPS + 1, 2 * LANCZOS_ORDER))
    for row in range(_TABLE_STEPS + 1):
        lanczos_weights(row / _TABLE_STEPS, table[row])
    return table


_WEIGHTS = _weight_table()


@numba.njit(cache=True, nogil=True)
def _tabulated_weights(offset: float, table: np.ndarray, weights: np.ndarray) -> None:
    """Fill ``weights`` as `lanczos_weights` does, from ``table``: exact at
    offset 0 (a tap on the pixel), linear between the tabulated offsets."""
    position = offset * (table.shape[0] - 1)
    row = min(int(position), table.shape[0] - 2)
    fraction = position - row
    for k in range(table.shape[1]):
        weights[k] = table[row, k] + fraction * (table[row + 1, k] - table[row, k])


@numba.njit(cache=True, nogil=True)
def _window_or(mask: np.ndarray, size: int) -> np.ndarray:
    """Return the OR of each ``size x size`` window of a ``(ny, nx, n)``
    mask, indexed by the window's lower corner (one OR along each axis in
    turn, instead of ``size**2`` per output pixel)."""
    height, width, n_mask = mask.shape
    rows = np.zeros((height, max(width - size + 1, 0), n_mask), dtype=mask.dtype)
    for y in range(height):
        for x in range(rows.shape[1]):
            for m in range(n_mask):
                bits = mask[y, x, m]
                for k in range(1, size):
                    bits |= mask[y, x + k, m]
                rows[y, x, m] = bits
    window = np.zeros((max(height - size + 1, 0), rows.shape[1], n_mask), dtype=mask.dtype)
    for y in range(window.shape[0]):
        for k in range(size):
            for x in range(rows.shape[1]):
                for m in range(n_mask):
                    window[y, x, m] |= rows[y + k, x, m]
    return window


@numba.njit(cache=True, nogil=True)
def _resample(
    image: np.ndarray,
    variance: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    no_data: np.ndarray,
    node_rows: np.ndarray,
    lower_row: np.ndarray,
    upper_row: np.ndarray,
    upper_weight: np.ndarray,
    origin_x: float,
    origin_y: float,
    out_image: np.ndarray,
    out_variance: np.ndarray,
    out_noise: np.ndarray,
    out_mask: np.ndarray,
    out_valid: np.ndarray,
    table: np.ndarray,
) -> None:
    a = LANCZOS_ORDER
    height, width = image.shape
    n_mask = mask.shape[2]
    window = _window_or(mask, 2 * a)
    wx = np.empty(2 * a)
    wy = np.empty(2 * a)
    wx_squared = np.empty(2 * a)
    bits = np.empty(n_mask, dtype=mask.dtype)
    for oy in range(out_image.shape[0]):
        low, high, t = lower_row[oy], upper_row[oy], upper_weight[oy]
        for ox in range(out_image.shape[1]):
            # The mapping, interpolated between the node rows (see
            # PixelMapping.upper_weight), in the input array's coordinates.
            x = node_rows[0, low, ox] + (node_rows[0, high, ox] - node_rows[0, low, ox]) * t - origin_x
            y = node_rows[1, low, ox] + (node_rows[1, high, ox] - node_rows[1, low, ox]) * t - origin_y
            out_valid[oy, ox] = False
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            x0 = int(np.floor(x))
            y0 = int(np.floor(y))
            if x0 - a + 1 < 0 or y0 - a + 1 < 0 or x0 + a >= width or y0 + a >= height:
                continue
            _tabulated_weights(x - x0, table, wx)
            _tabulated_weights(y - y0, table, wy)
            value = 0.0
            var = 0.0
            noise_value = 0.0
            touched_no_data = False
            if x != x0 and y != y0:
                # Every tap has a weight: the mask is the OR of the window.
                for m in range(n_mask):
                    bits[m] = window[y0 - a + 1, x0 - a + 1, m]
                    if bits[m] & no_data[m]:
                        touched_no_data = True
                if touched_no_data:
                    continue
                # The kernel is separable: sums along x first.  The taps are
                # indexed with unsigned integers (they lie on the input, as
                # checked above), which spares numba's test for a negative index
                # on each of the 108 reads.
                for kx in range(2 * a):
                    wx_squared[kx] = wx[kx] * wx[kx]
                first_x = np.uint64(x0 - a + 1)
                for ky in range(2 * a):
                    sy = np.uint64(y0 - a + 1 + ky)
                    image_row, variance_row, noise_row = image[sy], variance[sy], noise[sy]
                    row_value = 0.0
                    row_var = 0.0
                    row_noise = 0.0
                    for kx in range(2 * a):
                        sx = first_x + np.uint64(kx)
                        row_value += wx[kx] * image_row[sx]
                        row_var += wx_squared[kx] * variance_row[sx]
                        row_noise += wx[kx] * noise_row[sx]
                    value += wy[ky] * row_value
                    var += wy[ky] * wy[ky] * row_var
                    noise_value += wy[ky] * row_noise
            else:
                # On a pixel column or row, the kernel reaches only its taps
                # of nonzero weight.
                bits[:] = 0
                for ky in range(2 * a):
                    sy = y0 - a + 1 + ky
                    for kx in range(2 * a):
                        sx = x0 - a + 1 + kx
                        w = wy[ky] * wx[kx]
                        if w == 0.0:
                            continue
                        for m in range(n_mask):
                            bits[m] |= mask[sy, sx, m]
                            if mask[sy, sx, m] & no_data[m]:
                                touched_no_data = True
                        value += w * image[sy, sx]
                        var += w * w * variance[sy, sx]
                        noise_value += w * noise[sy, sx]
                if touched_no_data:
                    continue
            scale = node_rows[2, low, ox] + (node_rows[2, high, ox] - node_rows[2, low, ox]) * t
            out_image[oy, ox] = value * scale
            out_variance[oy, ox] = var * scale * scale
            out_noise[oy, ox] = noise_value * scale
            out_mask[oy, ox] = bits
            out_valid[oy, ox] = True


@dataclasses.dataclass
class ResampledPlanes:
    """The planes of an input on the output grid (arrays of the output box's shape)."""

    image: np.ndarray
    """Resampled image (NaN where not `valid`)."""

    variance: np.ndarray
    """Per-pixel variance of `image` (NaN where not `valid`)."""

    noise: np.ndarray
    """The input's noise realisation, resampled with the same weights."""

    mask: np.ndarray
    """OR of the mask bits of the input pixels each kernel touched
    (``(ny, nx, n)``, the input's mask layout; 0 where not `valid`)."""

    valid: np.ndarray
    """Pixels whose kernel lay wholly on input pixels with data."""


def resample_planes(
    image: np.ndarray,
    variance: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    no_data_bits: np.ndarray,
    mapping: PixelMapping,
    origin: tuple[int, int],
    out_box: Box | None = None,
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
    mapping : `lsst.obs.vista.coadd.mapping.PixelMapping`
        The input position (parent pixels) and area ratio of every output
        pixel; positions off the input are NaN.
    origin : `tuple` [`int`, `int`]
        Parent pixel (x, y) of the input arrays' first element.
    out_box : `lsst.images.Box`, optional
        The output pixels to return planes over, holding ``mapping.box``
        (by default ``mapping.box``): those outside it are not valid.

    Returns
    -------
    planes : `ResampledPlanes`
        The resampled planes, over ``out_box``.
    """
    out_box = mapping.box if out_box is None else out_box
    shape = out_box.shape
    planes = ResampledPlanes(
        image=np.full(shape, np.nan, dtype=np.float32),
        variance=np.full(shape, np.nan, dtype=np.float32),
        noise=np.full(shape, np.nan, dtype=np.float32),
        mask=np.zeros(shape + mask.shape[2:], dtype=mask.dtype),
        valid=np.zeros(shape, dtype=bool),
    )
    sl = mapping.box.slice_within(out_box)
    _resample(
        np.ascontiguousarray(image, dtype=np.float32),
        np.ascontiguousarray(variance, dtype=np.float32),
        np.ascontiguousarray(noise, dtype=np.float32),
        np.ascontiguousarray(mask),
        np.ascontiguousarray(no_data_bits, dtype=mask.dtype),
        np.ascontiguousarray(mapping.node_rows, dtype=np.float64),
        mapping.lower_row,
        mapping.upper_row,
        np.ascontiguousarray(mapping.upper_weight, dtype=np.float64),
        float(origin[0]),
        float(origin[1]),
        planes.image[sl],
        planes.variance[sl],
        planes.noise[sl],
        planes.mask[sl],
        planes.valid[sl],
        _WEIGHTS,
    )
    return planes


@numba.njit(cache=True, nogil=True)
def _interpolate(
    image: np.ndarray, source_x: np.ndarray, source_y: np.ndarray, table: np.ndarray, out: np.ndarray
) -> None:
    """`resample_image`'s values (the image planes of `_resample`, without
    mask, variance and noise), on flat arrays of positions.

    The kernel's placement repeats `_resample`'s on purpose: numba does not
    inline a compiled helper shared by both as well, and `_resample`, the
    warps' inner loop, slows down with it.
    """
    a = LANCZOS_ORDER
    height, width = image.shape
    wx = np.empty(2 * a)
    wy = np.empty(2 * a)
    for k in range(source_x.size):
        x = source_x[k]
        y = source_y[k]
        out[k] = 0.0
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        x0 = int(np.floor(x))
        y0 = int(np.floor(y))
        if x0 - a + 1 < 0 or y0 - a + 1 < 0 or x0 + a >= width or y0 + a >= height:
            continue
        _tabulated_weights(x - x0, table, wx)
        _tabulated_weights(y - y0, table, wy)
        value = 0.0
        if x != x0 and y != y0:
            for ky in range(2 * a):
                sy = y0 - a + 1 + ky
                row_value = 0.0
                for kx in range(2 * a):
                    row_value += wx[kx] * image[sy, x0 - a + 1 + kx]
                value += wy[ky] * row_value
        else:
            for ky in range(2 * a):
                for kx in range(2 * a):
                    w = wy[ky] * wx[kx]
                    if w != 0.0:
                        value += w * image[y0 - a + 1 + ky, x0 - a + 1 + kx]
        # Rounded to float32 as the image plane of resample_planes is.
        out[k] = np.float32(value)


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
        The interpolated values (float64, rounded to float32 as the
        resampled image plane is), 0 where the kernel reaches past the
        input's edge (an image that is 0 beyond its edge, as a PSF kernel
        is, loses nothing there but the Lanczos ringing).
    """
    padded = np.pad(np.asarray(image, dtype=np.float32), LANCZOS_ORDER)
    source_x = np.asarray(source_x, dtype=np.float64)
    values = np.empty(source_x.shape)
    _interpolate(
        padded,
        source_x.ravel() + LANCZOS_ORDER,
        np.asarray(source_y, dtype=np.float64).ravel() + LANCZOS_ORDER,
        _WEIGHTS,
        values.reshape(-1),
    )
    return values
