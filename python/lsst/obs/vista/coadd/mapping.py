"""Where the pixels of a patch fall on a visit's detector: the input
position and pixel-area ratio of every output pixel, from the two WCSs."""

from __future__ import annotations

__all__ = ("PixelMapping", "box_intersection", "local_jacobian", "map_pixels", "overlap_box")

import dataclasses
import math

import astropy.units as u
import astropy.wcs
import numpy as np
from astropy.coordinates import SkyCoord

from lsst.images import Box, Interval, NoOverlapError, SkyProjection

_EDGE_SAMPLES = 65
"""Points per detector edge traced onto the tract to find the overlap."""


def _detector_position(
    tract_wcs: astropy.wcs.WCS, projection: SkyProjection, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the detector pixel (x, y) of tract pixels (x, y)."""
    ra, dec = tract_wcs.wcs_pix2world(x, y, 0)
    position = projection.sky_to_pixel(SkyCoord(ra=ra, dec=dec, unit=u.deg))
    return np.asarray(position.x, dtype=float), np.asarray(position.y, dtype=float)


def box_intersection(a: Box, b: Box) -> Box | None:
    """Return the intersection of two boxes, or `None` if they do not overlap."""
    try:
        return a.intersection(b)
    except NoOverlapError:
        return None


def overlap_box(
    tract_wcs: astropy.wcs.WCS, projection: SkyProjection, detector_bbox: Box, region: Box
) -> Box | None:
    """Return the tract pixels of ``region`` a detector may cover.

    Parameters
    ----------
    tract_wcs : `astropy.wcs.WCS`
        The tract WCS (0-based tract pixels).
    projection : `lsst.images.SkyProjection`
        The detector's WCS.
    detector_bbox : `lsst.images.Box`
        The detector's pixel box.
    region : `lsst.images.Box`
        The tract pixels of interest (a patch's outer box).

    Returns
    -------
    box : `lsst.images.Box` or `None`
        The smallest box of ``region`` holding the detector's edges traced
        onto the tract (grown by a pixel), or `None` if it misses ``region``.
    """
    t = np.linspace(0.0, 1.0, _EDGE_SAMPLES)
    x0, x1 = detector_bbox.x.start - 0.5, detector_bbox.x.stop - 0.5
    y0, y1 = detector_bbox.y.start - 0.5, detector_bbox.y.stop - 0.5
    x = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
    y = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
    sky = projection.pixel_to_sky(x=x, y=y)
    tract_x, tract_y = tract_wcs.wcs_world2pix(sky.ra.deg, sky.dec.deg, 0)
    if not (np.all(np.isfinite(tract_x)) and np.all(np.isfinite(tract_y))):
        return None
    box = Box(
        y=Interval(math.floor(tract_y.min()) - 1, math.ceil(tract_y.max()) + 2),
        x=Interval(math.floor(tract_x.min()) - 1, math.ceil(tract_x.max()) + 2),
    )
    y_start, y_stop = max(box.y.start, region.y.start), min(box.y.stop, region.y.stop)
    x_start, x_stop = max(box.x.start, region.x.start), min(box.x.stop, region.x.stop)
    if y_start >= y_stop or x_start >= x_stop:
        return None
    return Box(y=Interval(y_start, y_stop), x=Interval(x_start, x_stop))


@dataclasses.dataclass
class PixelMapping:
    """The input position of every output pixel of a box, as the exact
    transform on rows of nodes, interpolated along them to every output
    column, and the rows' weights for the interpolation between them.

    The resampler interpolates between the node rows pixel by pixel
    (`~lsst.obs.vista.coadd.resampling.resample_planes`): the mapping of
    the whole box is never held, as three float64 planes of its size
    would be.
    """

    box: Box
    """Output (tract) pixels."""

    node_rows: np.ndarray
    """``(3, n_rows, box.x.size)``: detector pixel x and y (parent
    coordinates) and the output pixel area over the input pixel area
    (``|det d(source)/d(output)|``) on each row of nodes, interpolated
    linearly to every output column."""

    lower_row: np.ndarray
    """For each output row, the node row below it."""

    upper_row: np.ndarray
    """For each output row, the node row above it (the last one at the end)."""

    upper_weight: np.ndarray
    """For each output row, the weight of `upper_row` (that of `lower_row`
    is one minus it): the value at output pixel (y, x) is
    ``lower + (upper - lower) * upper_weight[y]`` of ``node_rows[:, lower_row[y], x]``
    and ``node_rows[:, upper_row[y], x]``, bilinear between the nodes."""


def map_pixels(
    tract_wcs: astropy.wcs.WCS, projection: SkyProjection, box: Box, interpolation_length: int
) -> PixelMapping:
    """Map the tract pixels of a box onto a detector.

    The exact transform is evaluated on a grid with nodes every
    ``interpolation_length`` pixels and interpolated linearly in between,
    as Rubin's warper does: both WCSs are smooth on that scale.

    Parameters
    ----------
    tract_wcs : `astropy.wcs.WCS`
        The tract WCS (0-based tract pixels).
    projection : `lsst.images.SkyProjection`
        The detector's WCS.
    box : `lsst.images.Box`
        The tract pixels to map.
    interpolation_length : `int`
        Spacing of the exactly computed nodes (pixels).

    Returns
    -------
    mapping : `PixelMapping`
        Input positions and area ratios.
    """
    step = interpolation_length
    node_x = box.x.start + step * np.arange(math.ceil((box.x.size - 1) / step) + 1)
    node_y = box.y.start + step * np.arange(math.ceil((box.y.size - 1) / step) + 1)
    grid_x, grid_y = np.meshgrid(node_x.astype(float), node_y.astype(float))
    source_x, source_y = _detector_position(tract_wcs, projection, grid_x.ravel(), grid_y.ravel())
    source_x = source_x.reshape(grid_x.shape)
    source_y = source_y.reshape(grid_x.shape)
    if grid_x.shape[0] > 1 and grid_x.shape[1] > 1:
        dxdy, dxdx = np.gradient(source_x, step)
        dydy, dydx = np.gradient(source_y, step)
        determinant = np.abs(dxdx * dydy - dxdy * dydx)
    else:
        _, _, jacobian = local_jacobian(
            tract_wcs, projection, np.array([box.x.center]), np.array([box.y.center])
        )
        determinant = np.full(grid_x.shape, abs(np.linalg.det(jacobian[0])))
    # Output pixel (x, y) is at node coordinate ((x - start) / step, ...).
    lower_y, upper_weight_y = _linear_weights(box.y.size, step, grid_x.shape[0])
    lower_x, upper_weight_x = _linear_weights(box.x.size, step, grid_x.shape[1])
    upper_x = np.minimum(lower_x + 1, grid_x.shape[1] - 1)
    nodes = np.stack([source_x, source_y, determinant])
    node_rows = nodes[:, :, lower_x] + (nodes[:, :, upper_x] - nodes[:, :, lower_x]) * upper_weight_x
    upper_y = np.minimum(lower_y + 1, grid_x.shape[0] - 1)
    return PixelMapping(box, node_rows, lower_y, upper_y, upper_weight_y)


def _linear_weights(size: int, step: int, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return, for ``size`` pixels at node coordinates ``0, 1/step, ...``,
    the lower node of each and the weight of the upper one (the last pixels
    hold on to the last node pair)."""
    position = np.arange(size) / step
    lower = np.minimum(np.floor(position).astype(int), max(n_nodes - 2, 0))
    upper_weight = np.clip(position - lower, 0.0, 1.0) if n_nodes > 1 else np.zeros(size)
    return lower, upper_weight


def local_jacobian(
    tract_wcs: astropy.wcs.WCS, projection: SkyProjection, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the detector positions of tract pixels and the local Jacobians.

    Parameters
    ----------
    tract_wcs : `astropy.wcs.WCS`
        The tract WCS (0-based tract pixels).
    projection : `lsst.images.SkyProjection`
        The detector's WCS.
    x, y : `numpy.ndarray`
        Tract pixels (1-d, of the same length): all are transformed in one
        call of each WCS, which costs little more than one point.

    Returns
    -------
    source_x, source_y : `numpy.ndarray`
        Detector pixels of the tract pixels.
    jacobian : `numpy.ndarray`
        ``(n, 2, 2)``: ``[[dxs/dx, dxs/dy], [dys/dx, dys/dy]]`` at each, by
        central differences of half a pixel.
    """
    h = 0.5
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    px = np.stack([x, x + h, x - h, x, x])
    py = np.stack([y, y, y, y + h, y - h])
    sx, sy = _detector_position(tract_wcs, projection, px.ravel(), py.ravel())
    sx, sy = sx.reshape(px.shape), sy.reshape(py.shape)
    jacobian = np.stack(
        [
            np.stack([(sx[1] - sx[2]) / (2 * h), (sx[3] - sx[4]) / (2 * h)], axis=-1),
            np.stack([(sy[1] - sy[2]) / (2 * h), (sy[3] - sy[4]) / (2 * h)], axis=-1),
        ],
        axis=-2,
    )
    return sx[0], sy[0], jacobian
