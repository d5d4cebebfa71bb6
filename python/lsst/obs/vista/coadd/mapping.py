"""Where the pixels of a patch fall on a visit's detector: the input
position and pixel-area ratio of every output pixel, from the two WCSs."""

from __future__ import annotations

__all__ = ("PixelMapping", "box_intersection", "local_jacobian", "map_pixels", "overlap_box")

import dataclasses
import math

import astropy.units as u
import astropy.wcs
import numpy as np
import scipy.ndimage
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
    """The input position of every output pixel of a box."""

    box: Box
    """Output (tract) pixels."""

    source_x: np.ndarray
    """Detector pixel x of each output pixel (parent coordinates)."""

    source_y: np.ndarray
    """Detector pixel y of each output pixel (parent coordinates)."""

    flux_scale: np.ndarray
    """Output pixel area over input pixel area, ``|det d(source)/d(output)|``."""


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
        _, _, jacobian = local_jacobian(tract_wcs, projection, float(box.x.center), float(box.y.center))
        determinant = np.full(grid_x.shape, abs(np.linalg.det(jacobian)))
    # Output pixel (x, y) is at node coordinate ((x - start) / step, ...).
    out_y, out_x = np.mgrid[0 : box.y.size, 0 : box.x.size].astype(float) / step

    def interpolate(values: np.ndarray) -> np.ndarray:
        return scipy.ndimage.map_coordinates(values, [out_y, out_x], order=1, mode="nearest")

    return PixelMapping(box, interpolate(source_x), interpolate(source_y), interpolate(determinant))


def local_jacobian(
    tract_wcs: astropy.wcs.WCS, projection: SkyProjection, x: float, y: float
) -> tuple[float, float, np.ndarray]:
    """Return the detector position of a tract pixel and the local Jacobian.

    Returns
    -------
    source_x, source_y : `float`
        Detector pixel of tract pixel (x, y).
    jacobian : `numpy.ndarray`
        ``[[dxs/dx, dxs/dy], [dys/dx, dys/dy]]`` by central differences of
        half a pixel.
    """
    h = 0.5
    px = np.array([x, x + h, x - h, x, x])
    py = np.array([y, y, y, y + h, y - h])
    sx, sy = _detector_position(tract_wcs, projection, px, py)
    jacobian = np.array(
        [
            [(sx[1] - sx[2]) / (2 * h), (sx[3] - sx[4]) / (2 * h)],
            [(sy[1] - sy[2]) / (2 * h), (sy[3] - sy[4]) / (2 * h)],
        ]
    )
    return float(sx[0]), float(sy[0]), jacobian
