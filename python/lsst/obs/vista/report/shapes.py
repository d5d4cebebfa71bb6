"""Shapes the report draws: the PSF model's ellipticity across a detector
and the sizes and ellipticities of the measured sources."""

from __future__ import annotations

__all__ = ("PSF_GRID", "ShapeField", "ellipticity", "psf_model_shapes", "source_shapes")

import dataclasses

import numpy as np
from astropy.table import Table

from lsst.images import VisitImage

from ..psf_shape import fwhm_from_moments, psf_moments

PSF_GRID = 5
"""The PSF model is evaluated on a grid of this many points a side."""


@dataclasses.dataclass
class ShapeField:
    """Shapes at positions on a detector."""

    x: np.ndarray
    """Positions (pixels)."""

    y: np.ndarray

    e1: np.ndarray
    """Distortion ``(ixx - iyy) / (ixx + iyy)`` and ``2 ixy / (ixx + iyy)``."""

    e2: np.ndarray

    fwhm: np.ndarray
    """Gaussian-equivalent FWHM (`lsst.obs.vista.psf_shape.fwhm_from_moments`, pixels)."""

    @property
    def magnitude(self) -> np.ndarray:
        """``|e| = sqrt(e1**2 + e2**2)``."""
        return np.hypot(self.e1, self.e2)

    @property
    def angle(self) -> np.ndarray:
        """Position angle of the major axis, radians from the x axis."""
        return 0.5 * np.arctan2(self.e2, self.e1)


def ellipticity(ixx: np.ndarray, iyy: np.ndarray, ixy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distortion (e1, e2) of second moments.

    Parameters
    ----------
    ixx, iyy, ixy : `numpy.ndarray`
        Second moments (pixels**2).

    Returns
    -------
    e1, e2 : `numpy.ndarray`
        ``(ixx - iyy) / (ixx + iyy)`` and ``2 ixy / (ixx + iyy)`` (NaN
        where the trace is not positive).
    """
    ixx, iyy, ixy = (np.asarray(v, dtype=float) for v in (ixx, iyy, ixy))
    trace = ixx + iyy
    with np.errstate(divide="ignore", invalid="ignore"):
        good = trace > 0
        return np.where(good, (ixx - iyy) / trace, np.nan), np.where(good, 2.0 * ixy / trace, np.nan)


def psf_model_shapes(image: VisitImage, n: int = PSF_GRID) -> ShapeField:
    """Return the PSF model's shape on a grid over the detector.

    Parameters
    ----------
    image : `lsst.images.VisitImage`
        Exposure with its PSF model.
    n : `int`, optional
        Points a side, inset half a cell from the edges.

    Returns
    -------
    shapes : `ShapeField`
        Adaptive moments of the model's kernel (`psf_moments`) at each point.
    """
    bbox = image.bbox
    xs = bbox.x.start + (np.arange(n) + 0.5) * bbox.x.size / n
    ys = bbox.y.start + (np.arange(n) + 0.5) * bbox.y.size / n
    x, y = (grid.ravel() for grid in np.meshgrid(xs, ys))
    moments = np.array([psf_moments(image.psf, x=float(a), y=float(b)) for a, b in zip(x, y, strict=True)])
    e1, e2 = ellipticity(*moments.T)
    return ShapeField(x, y, e1, e2, fwhm_from_moments(moments[:, 0], moments[:, 1]))


def source_shapes(stars: Table, selected: np.ndarray) -> ShapeField:
    """Return the measured shapes of some sources of a ``single_visit_star`` table.

    Parameters
    ----------
    stars : `astropy.table.Table`
        ``single_visit_star`` (``x``, ``y``, ``ixx``, ``iyy``, ``ixy``).
    selected : `numpy.ndarray` [`bool`]
        Which rows.

    Returns
    -------
    shapes : `ShapeField`
        Shapes from the catalogue's second moments.
    """
    values = {
        name: np.asarray(stars[name], dtype=float)[selected] for name in ("x", "y", "ixx", "iyy", "ixy")
    }
    e1, e2 = ellipticity(values["ixx"], values["iyy"], values["ixy"])
    with np.errstate(invalid="ignore"):
        fwhm = fwhm_from_moments(values["ixx"], values["iyy"])
    return ShapeField(values["x"], values["y"], e1, e2, fwhm)
