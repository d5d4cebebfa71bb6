"""Measurement of detected sources: centroids, PSF and aperture fluxes,
adaptive second moments and pixel flags, with errors from the variance
plane."""

from __future__ import annotations

__all__ = (
    "PIXEL_FLAG_PLANES",
    "UNUSABLE_PIXEL_FLAGS",
    "SourceMeasurementConfig",
    "SourceMeasurementTask",
    "aperture_column",
    "fit_psf_fluxes",
)

import math
from typing import ClassVar

import galsim
import numpy as np
import sep
from astropy.table import Table
from scipy.interpolate import RegularGridInterpolator

import lsst.pex.config as pexConfig
from lsst.images import Box, Mask
from lsst.images.psfs import PointSpreadFunction
from lsst.pipe.base import Struct, Task

from ..psf_shape import psf_moments

PIXEL_FLAG_PLANES = {
    "saturated": "SATURATED",
    "nodata": "NO_DATA",
    "interpolated": "INTERPOLATED",
    "cr": "COSMIC_RAY",
    "bad": "BAD",
}
"""Rubin's ``pixelFlags_<name>`` and the mask plane each one reports; every
catalogue has them all (`False` where the mask has no such plane)."""

UNUSABLE_PIXEL_FLAGS = ("nodata", "saturated", "bad", "cr")
"""`PIXEL_FLAG_PLANES` whose pixels are left out of the measurements."""


def aperture_column(radius: float) -> str:
    """Return the column prefix of the circular aperture flux of a radius.

    Parameters
    ----------
    radius : `float`
        Radius in pixels.

    Returns
    -------
    prefix : `str`
        ``ap<radius>`` as Rubin names them: ``ap03``, ``ap04p5``, ``ap12``.
    """
    whole = int(radius)
    if radius == whole:
        return f"ap{whole:02d}"
    return f"ap{whole:02d}p{round((radius - whole) * 10):d}"


class SourceMeasurementConfig(pexConfig.Config):
    """Configuration for `SourceMeasurementTask`."""

    apertureRadii = pexConfig.ListField[float](
        doc="Radii (pixels) of the circular aperture fluxes; columns are named by `aperture_column`.",
        default=[3.0, 4.5, 6.0, 9.0, 12.0, 17.0],
        listCheck=lambda value: len(value) > 0,
        itemCheck=lambda value: value > 0,
    )
    apertureSubpixels = pexConfig.Field[int](
        doc="Subpixel sampling per axis of the aperture boundary (sep's subpix).",
        default=5,
        check=lambda value: value >= 1,
    )
    psfCoreFraction = pexConfig.Field[float](
        doc=(
            "A flagged pixel (saturated, NO_DATA, ...) affects a source's pixelFlags_<name> when the PSF "
            "kernel centred on the source is above this fraction of its peak there."
        ),
        default=0.01,
        check=lambda value: 0 < value < 1,
    )


class SourceMeasurementTask(Task):
    """Measure detected sources.

    Notes
    -----
    - Centroid: sep's windowed position (SExtractor XWIN) with a Gaussian
      window of the PSF's sigma, which for a Gaussian PSF on a sky-limited
      image is the maximum-likelihood position; its error is the
      Cramer-Rao bound ``sqrt(2 Ixx_psf) / (S/N)_psf`` per axis.
    - PSF flux: the amplitude of the PSF model at the centroid, fitted by
      unweighted least squares over the PSF stamp, ``sum(P D) / sum(P**2)``
      with error ``sqrt(sum(P**2 V)) / sum(P**2)`` (as afw's PsfFlux):
      unweighted, so that the source's own Poisson variance does not bias
      the flux.  Pixels that are masked are left out of the sums.
    - Aperture fluxes: sep's exact circular apertures, errors from the
      variance plane, masked pixels left out.
    - Shapes: GalSim's HSM adaptive second moments (``ixx``, ``iyy``,
      ``ixy``, pixels**2, PSF included).
    - Flags: ``pixelFlags_<name>`` when a pixel of the mask plane lies where
      the PSF is above ``psfCoreFraction`` of its peak, ``..Center`` in the
      central 3x3 pixels; ``pixelFlags_edge`` when the PSF stamp leaves the
      image; ``deblend_blended`` when sep deblended the source from others.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = SourceMeasurementConfig
    config: SourceMeasurementConfig
    _DefaultName: ClassVar[str] = "measurement"

    def run(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        mask: Mask,
        bbox: Box,
        detections: Table,
        psf: PointSpreadFunction,
    ) -> Struct:
        """Measure sources.

        Parameters
        ----------
        image : `numpy.ndarray`
            Background-subtracted pixels (float32).
        variance : `numpy.ndarray`
            Variance plane (float32).
        mask : `lsst.images.Mask`
            Mask of the exposure.
        bbox : `lsst.images.Box`
            Bounding box of the image (parent coordinates of the arrays).
        detections : `astropy.table.Table`
            Output of `SourceDetectionTask`: ``x``, ``y`` (parent) and
            ``blended`` at least.
        psf : `lsst.images.psfs.PointSpreadFunction`
            PSF model.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``sources``: `astropy.table.Table` of instrumental measurements
            (image units), one row per detection, in detection order.
        """
        planes = {
            name: mask.get(plane) for name, plane in PIXEL_FLAG_PLANES.items() if plane in mask.schema.names
        }
        unusable = np.zeros(image.shape, dtype=bool)
        for name in UNUSABLE_PIXEL_FLAGS:
            if name in planes:
                unusable |= planes[name]
        data = np.ascontiguousarray(np.where(unusable, np.float32(0), image), dtype=np.float32)
        variance = np.ascontiguousarray(variance, dtype=np.float32)
        n = len(detections)
        sources = Table()
        # Array (0-based) coordinates for sep, parent coordinates for the PSF.
        x_array = np.asarray(detections["x"], dtype=float) - bbox.x.start
        y_array = np.asarray(detections["y"], dtype=float) - bbox.y.start
        psf_ixx, psf_iyy = self._psf_widths(psf, detections, bbox)
        psf_sigma = np.sqrt(0.5 * (psf_ixx + psf_iyy))
        if n:
            x_win, y_win, win_flag = sep.winpos(data, x_array, y_array, psf_sigma, mask=unusable)
            moved = (
                ~np.isfinite(x_win)
                | ~np.isfinite(y_win)
                | (np.hypot(x_win - x_array, y_win - y_array) > 2.0 * psf_sigma)
            )
            x_win = np.where(moved, x_array, x_win)
            y_win = np.where(moved, y_array, y_win)
        else:
            x_win, y_win, moved = x_array, y_array, np.zeros(0, dtype=bool)
        sources["x"] = x_win + bbox.x.start
        sources["y"] = y_win + bbox.y.start
        sources["centroid_flag"] = moved

        psf_fit = fit_psf_fluxes(
            data,
            variance,
            unusable,
            planes,
            bbox,
            sources["x"],
            sources["y"],
            psf,
            self.config.psfCoreFraction,
        )
        sources["psfInstFlux"] = psf_fit.flux
        sources["psfInstFluxErr"] = psf_fit.error
        sources["psfFlux_flag"] = ~np.isfinite(psf_fit.flux) | ~(psf_fit.error > 0)
        snr = np.where(psf_fit.error > 0, psf_fit.flux / np.where(psf_fit.error > 0, psf_fit.error, 1.0), 0.0)
        snr = np.clip(snr, 1e-3, None)
        sources["xErr"] = np.sqrt(2.0 * psf_ixx) / snr
        sources["yErr"] = np.sqrt(2.0 * psf_iyy) / snr

        for radius in self.config.apertureRadii:
            prefix = aperture_column(radius)
            if n:
                flux, error, flag = sep.sum_circle(
                    data,
                    x_win,
                    y_win,
                    radius,
                    var=variance,
                    mask=unusable,
                    subpix=self.config.apertureSubpixels,
                )
            else:
                flux = error = np.zeros(0)
                flag = np.zeros(0, dtype=np.int16)
            sources[f"{prefix}InstFlux"] = flux
            sources[f"{prefix}InstFluxErr"] = error
            sources[f"{prefix}Flux_flag"] = (flag & (sep.APER_TRUNC | sep.APER_HASMASKED)) != 0

        shapes = self._shapes(data, unusable, x_win, y_win, psf_sigma)
        sources["ixx"], sources["iyy"], sources["ixy"] = shapes.ixx, shapes.iyy, shapes.ixy
        sources["shape_flag"] = shapes.flag
        sources["psf_ixx"], sources["psf_iyy"] = psf_ixx, psf_iyy

        sources["pixelFlags_edge"] = psf_fit.edge
        # Every flag column, False where the mask has no such plane, so that catalogues concatenate.
        for name in PIXEL_FLAG_PLANES:
            sources[f"pixelFlags_{name}"] = psf_fit.flags.get(name, np.zeros(n, dtype=bool))
        for name in PIXEL_FLAG_PLANES:
            sources[f"pixelFlags_{name}Center"] = psf_fit.center_flags.get(name, np.zeros(n, dtype=bool))
        sources["deblend_blended"] = np.asarray(detections["blended"], dtype=bool)
        return Struct(sources=sources)

    def _psf_widths(self, psf: PointSpreadFunction, detections: Table, bbox: Box) -> tuple[np.ndarray, ...]:
        """Return the PSF's second moments at each detection, interpolated
        from a 3x3 grid of kernel images (the PSF varies slowly)."""
        n = len(detections)
        grid_x = np.unique(np.linspace(bbox.x.start, bbox.x.stop - 1, 3))
        grid_y = np.unique(np.linspace(bbox.y.start, bbox.y.stop - 1, 3))
        moments = np.array([[psf_moments(psf, x=x, y=y)[:2] for x in grid_x] for y in grid_y])
        # The interpolator needs two nodes per axis; across a box one pixel wide the PSF is constant.
        if len(grid_y) == 1:
            grid_y, moments = np.append(grid_y, grid_y + 1), np.concatenate([moments, moments], axis=0)
        if len(grid_x) == 1:
            grid_x, moments = np.append(grid_x, grid_x + 1), np.concatenate([moments, moments], axis=1)
        if n == 0:
            return np.zeros(0), np.zeros(0)
        points = np.column_stack([np.asarray(detections["y"], float), np.asarray(detections["x"], float)])
        points[:, 0] = np.clip(points[:, 0], grid_y[0], grid_y[-1])
        points[:, 1] = np.clip(points[:, 1], grid_x[0], grid_x[-1])
        result = []
        for k in range(2):
            interpolate = RegularGridInterpolator((grid_y, grid_x), moments[:, :, k])
            result.append(interpolate(points))
        return result[0], result[1]

    def _shapes(
        self, data: np.ndarray, unusable: np.ndarray, x: np.ndarray, y: np.ndarray, psf_sigma: np.ndarray
    ) -> Struct:
        """Measure HSM adaptive moments in stamps around each source."""
        n = len(x)
        ixx, iyy, ixy = (np.full(n, np.nan) for _ in range(3))
        flag = np.ones(n, dtype=bool)
        height, width = data.shape
        for i in range(n):
            half = max(4, int(math.ceil(5.0 * psf_sigma[i])))
            row, column = int(round(y[i])), int(round(x[i]))
            ys = slice(max(row - half, 0), min(row + half + 1, height))
            xs = slice(max(column - half, 0), min(column + half + 1, width))
            stamp = galsim.Image(
                np.ascontiguousarray(data[ys, xs], dtype=np.float64), xmin=xs.start, ymin=ys.start
            )
            badpix = galsim.Image(unusable[ys, xs].astype(np.int32), xmin=xs.start, ymin=ys.start)
            try:
                result = galsim.hsm.FindAdaptiveMom(
                    stamp,
                    badpix=badpix,
                    guess_sig=float(psf_sigma[i]),
                    guess_centroid=galsim.PositionD(float(x[i]), float(y[i])),
                    strict=False,
                )
            except galsim.GalSimHSMError:
                # Raised, even when not strict, for a stamp with no usable pixel.
                continue
            if result.moments_status != 0:
                continue
            sigma2 = result.moments_sigma**2
            e1, e2 = result.observed_shape.e1, result.observed_shape.e2
            scale = sigma2 / math.sqrt(max(1.0 - e1 * e1 - e2 * e2, 1e-12))
            ixx[i], iyy[i], ixy[i] = scale * (1 + e1), scale * (1 - e1), scale * e2
            flag[i] = False
        return Struct(ixx=ixx, iyy=iyy, ixy=ixy, flag=flag)


def fit_psf_fluxes(
    data: np.ndarray,
    variance: np.ndarray,
    unusable: np.ndarray,
    planes: dict[str, np.ndarray],
    bbox: Box,
    x: np.ndarray,
    y: np.ndarray,
    psf: PointSpreadFunction,
    core_fraction: float,
) -> Struct:
    """Fit the PSF amplitude at given positions and flag what its core covers.

    Parameters
    ----------
    data : `numpy.ndarray`
        Background-subtracted pixels, 0 where ``unusable``.
    variance : `numpy.ndarray`
        Variance plane.
    unusable : `numpy.ndarray`
        Pixels left out of the sums.
    planes : `dict` [`str`, `numpy.ndarray`]
        Mask planes by ``pixelFlags_<name>`` name.
    bbox : `lsst.images.Box`
        Bounding box of the arrays (parent coordinates).
    x, y : `numpy.ndarray`
        Positions (parent pixel coordinates).
    psf : `lsst.images.psfs.PointSpreadFunction`
        PSF model.
    core_fraction : `float`
        A mask plane flags a position where the PSF there is above this
        fraction of its peak.

    Returns
    -------
    result : `lsst.pipe.base.Struct`
        ``flux`` and ``error`` (image units; NaN if no usable pixel),
        ``edge`` (the PSF stamp leaves the image), ``flags`` and
        ``center_flags`` (by plane name, the PSF core and the central 3x3
        pixels).
    """
    n = len(x)
    flux = np.full(n, np.nan)
    error = np.full(n, np.nan)
    edge = np.zeros(n, dtype=bool)
    flags = {name: np.zeros(n, dtype=bool) for name in planes}
    center_flags = {name: np.zeros(n, dtype=bool) for name in planes}
    height, width = data.shape
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        kernel = psf.compute_stellar_image(x=float(xi), y=float(yi))
        kbox = kernel.bbox
        y0, x0 = kbox.y.start - bbox.y.start, kbox.x.start - bbox.x.start
        y1, x1 = y0 + kernel.array.shape[0], x0 + kernel.array.shape[1]
        ys, xs = slice(max(y0, 0), min(y1, height)), slice(max(x0, 0), min(x1, width))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            edge[i] = True
            continue
        edge[i] = y0 < 0 or x0 < 0 or y1 > height or x1 > width
        weights = kernel.array[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        core = weights > core_fraction * kernel.array.max()
        for name, plane in planes.items():
            flags[name][i] = bool(plane[ys, xs][core].any())
        row, column = int(round(yi - bbox.y.start)), int(round(xi - bbox.x.start))
        centre = (slice(max(row - 1, 0), row + 2), slice(max(column - 1, 0), column + 2))
        for name, plane in planes.items():
            center_flags[name][i] = bool(plane[centre].any())
        weights = np.where(unusable[ys, xs], 0.0, weights)
        norm = float(np.sum(weights * weights))
        if norm <= 0:
            continue
        flux[i] = float(np.sum(weights * data[ys, xs])) / norm
        error[i] = math.sqrt(float(np.sum(weights * weights * variance[ys, xs]))) / norm
    return Struct(flux=flux, error=error, edge=edge, flags=flags, center_flags=center_flags)
