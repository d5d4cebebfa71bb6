"""Measurement of objects on one band's coadd, free (the reference band) or
forced (at the reference centroid and Kron ellipse), with neighbours
replaced by noise.

What is measured, per object, in a stamp around it in which the pixels of
every other object's footprint are replaced by the coadd's noise
realisation (as Rubin's noise replacer does, with noise that has the
coadd's correlation):

- centroid and shape: GalSim's HSM adaptive moments (free mode; in forced
  mode the moments are measured, the position is the reference one);
- PSF flux: least-squares amplitude of the cell PSF at the centroid,
  ``sum(P D) / sum(P**2)``, error ``sqrt(sum(P**2 V)) / sum(P**2)``;
- aperture fluxes: sep's exact circular apertures;
- Kron radius and flux: sep's first-moment radius in the ellipse of the
  adaptive moments, flux in ``kronFactor`` Kron radii;
- extendedness: 1 where the PSF flux falls short of the Kron flux
  corrected to total with the PSF's own share of the Kron ellipse, by more
  than ``extendednessMinFraction`` and ``extendednessSigma`` errors.

Every error is the variance plane's times the real-noise factor of its
weights (`CoaddNoise`), which carries the resampling covariance.
"""

from __future__ import annotations

__all__ = (
    "PIXEL_FLAG_PLANES",
    "ObjectMeasurementConfig",
    "aperture_column",
    "measure_objects",
    "stellar_image",
)

import dataclasses
import functools
import math
from collections.abc import Sequence

import galsim
import numpy as np
import sep
from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.images import Box, Image
from lsst.images.cells import CellCoadd, CellIJ
from lsst.pipe.base import Struct

from ..calibrate.measurement import aperture_column
from ..psf_shape import kernel_moments
from .detection import mean_psf_kernel
from .noise import CoaddNoise

PIXEL_FLAG_PLANES = {
    "nodata": "NO_DATA",
    "saturated": "SATURATED",
    "clipped": "CLIPPED",
    "inexact_psf": "INEXACT_PSF",
}
"""Rubin's ``pixelFlags_<name>`` of coadd measurements and the deep_coadd
mask plane each one reports."""


_KRON_SEARCH_RADIUS = 6.0
"""Radius (in units of the moments' ellipse) within which the Kron radius
is computed (SExtractor's)."""


class ObjectMeasurementConfig(pexConfig.Config):
    """Configuration of the object measurements."""

    apertureRadii = pexConfig.ListField[float](
        doc="Radii (tract pixels) of the circular aperture fluxes (Rubin's Object ap03 ... ap25).",
        default=[3.0, 6.0, 9.0, 12.0, 17.0, 25.0],
        listCheck=lambda value: len(value) > 0,
        itemCheck=lambda value: value > 0,
    )
    stampHalfSize = pexConfig.Field[int](
        doc="Half-side (pixels) of the stamp an object is measured in; larger apertures are flagged.",
        default=40,
        check=lambda value: value >= 8,
    )
    kronFactor = pexConfig.Field[float](
        doc="Kron flux aperture in Kron radii (SExtractor's and Rubin's 2.5).",
        default=2.5,
        check=lambda value: value > 0,
    )
    kronMinRadius = pexConfig.Field[float](
        doc="Smallest Kron radius (in units of the moments' sqrt(a b)); a noisy radius is raised to it.",
        default=1.75,
        check=lambda value: value > 0,
    )
    extendednessMinFraction = pexConfig.Field[float](
        doc="Extended: the PSF flux below the corrected Kron flux by at least this fraction of it ...",
        default=0.03,
        check=lambda value: value >= 0,
    )
    extendednessSigma = pexConfig.Field[float](
        doc="... and by at least this many errors of the difference.",
        default=2.5,
        check=lambda value: value >= 0,
    )
    psfCoreFraction = pexConfig.Field[float](
        doc="pixelFlags_<name> are set by mask bits where the PSF is above this fraction of its peak.",
        default=0.02,
        check=lambda value: 0 < value < 1,
    )


def _ellipse(ixx: float, iyy: float, ixy: float) -> tuple[float, float, float]:
    """Return the semi-axes and position angle (radians) of second moments."""
    trace, diff = ixx + iyy, ixx - iyy
    root = math.sqrt(0.25 * diff * diff + ixy * ixy)
    a2, b2 = 0.5 * trace + root, max(0.5 * trace - root, 1e-6)
    return math.sqrt(a2), math.sqrt(b2), 0.5 * math.atan2(2.0 * ixy, diff)


def measure_objects(
    coadd: CellCoadd,
    planes: Struct,
    noise: CoaddNoise,
    ownership: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    own: Sequence[Sequence[int]],
    config: ObjectMeasurementConfig,
    *,
    fixed_centroid: bool = False,
    kron: Table | None = None,
    centroid_only: bool = False,
) -> Table:
    """Measure objects on a coadd.

    Parameters
    ----------
    coadd : `lsst.images.cells.CellCoadd`
        The coadd (mask and PSF).
    planes : `lsst.pipe.base.Struct`
        Its background-subtracted planes (`~.detection.coadd_planes`).
    noise : `CoaddNoise`
        Its real noise.
    ownership : `numpy.ndarray`
        ``object_detection_merged_footprints``: the object row owning each
        pixel.
    x, y : `numpy.ndarray`
        Starting (free) or reference (forced) positions, tract pixels.
    own : `~collections.abc.Sequence` [`~collections.abc.Sequence` [`int`]]
        Per object, the ownership labels of its own pixels (its row; a
        parent's children's rows).
    config : `ObjectMeasurementConfig`
        What to measure.
    fixed_centroid : `bool`, optional
        Keep the given positions (the adaptive moments are still measured).
    kron : `astropy.table.Table`, optional
        Forced mode: the reference ``kron_a``, ``kron_b``, ``kron_theta``
        and ``kron_radius`` per object, used instead of measuring them; the
        positions are then kept.
    centroid_only : `bool`, optional
        Measure the centroid, the moments and the PSF flux only (the other
        columns stay NaN and flagged): what the reference measurement
        needs of every band to combine their centroids.

    Returns
    -------
    measurements : `astropy.table.Table`
        One row per object, Rubin's per-band column names without the band
        prefix, fluxes in the coadd's unit (nJy), plus ``kron_*`` (the Kron
        ellipse, for forced measurement).
    """
    forced = kron is not None
    fixed_centroid = fixed_centroid or forced
    n = len(x)
    bbox = coadd.bbox
    height, width = planes.image.shape
    half = config.stampHalfSize
    psf_factor = noise.factor(mean_psf_kernel(coadd), key="psf")
    columns: dict[str, np.ndarray] = {
        "x": np.array(x, dtype=float),
        "y": np.array(y, dtype=float),
        "centroid_flag": np.zeros(n, bool),
        "psfFlux": np.full(n, np.nan),
        "psfFluxErr": np.full(n, np.nan),
        "psfFlux_flag": np.ones(n, bool),
        "psfFlux_flag_edge": np.zeros(n, bool),
        "ixx": np.full(n, np.nan),
        "iyy": np.full(n, np.nan),
        "ixy": np.full(n, np.nan),
        "i_flag": np.ones(n, bool),
        "ixxPSF": np.full(n, np.nan),
        "iyyPSF": np.full(n, np.nan),
        "ixyPSF": np.full(n, np.nan),
        "kronRad": np.full(n, np.nan),
        "kronFlux": np.full(n, np.nan),
        "kronFluxErr": np.full(n, np.nan),
        "kronFlux_flag": np.ones(n, bool),
        "kron_a": np.full(n, np.nan),
        "kron_b": np.full(n, np.nan),
        "kron_theta": np.full(n, np.nan),
        "kron_radius": np.full(n, np.nan),
        "extendedness": np.full(n, np.nan),
        "extendedness_flag": np.ones(n, bool),
    }
    # Aperture fluxes per object and radius, into their columns (here in
    # the column order) after the loop.
    aperture_prefixes = [aperture_column(radius) for radius in config.apertureRadii]
    for prefix in aperture_prefixes:
        columns[f"{prefix}Flux"] = columns[f"{prefix}FluxErr"] = columns[f"{prefix}Flux_flag"] = np.empty(0)
    radii = np.asarray(config.apertureRadii, dtype=np.float64)
    aperture_flux = np.full((n, radii.size), np.nan)
    aperture_error = np.full((n, radii.size), np.nan)
    aperture_flag = np.ones((n, radii.size), bool)
    for name in PIXEL_FLAG_PLANES:
        columns[f"pixelFlags_{name}"] = np.zeros(n, bool)
        columns[f"pixelFlags_{name}Center"] = np.zeros(n, bool)
    # The planes of the pixel flags as bits of one array: one OR per object
    # and region instead of one per plane.
    flagged = [name for name, plane in PIXEL_FLAG_PLANES.items() if plane in coadd.mask.schema.names]
    flag_bits = np.zeros((height, width), np.uint32)
    for bit, name in enumerate(flagged):
        flag_bits |= coadd.mask.get(PIXEL_FLAG_PLANES[name]).astype(np.uint32) << bit
    psf_moments: dict[object, tuple[float, float, float]] = {}
    for i in range(n):
        col, row = float(x[i]) - bbox.x.start, float(y[i]) - bbox.y.start
        if not (0 <= col < width and 0 <= row < height):
            columns["centroid_flag"][i] = True
            continue
        ic, ir = int(round(col)), int(round(row))
        ys = slice(max(ir - half, 0), min(ir + half + 1, height))
        xs = slice(max(ic - half, 0), min(ic + half + 1, width))
        truncated = ys.stop - ys.start < 2 * half + 1 or xs.stop - xs.start < 2 * half + 1
        labels = ownership[ys, xs]
        if len(own[i]) == 1:
            neighbours = (labels > 0) & (labels != own[i][0])
        else:
            neighbours = (labels > 0) & ~np.isin(labels, own[i])
        usable = planes.usable[ys, xs]
        data = np.where(neighbours, planes.noise[ys, xs], planes.image[ys, xs])
        data = np.ascontiguousarray(np.where(usable, data, 0.0))
        variance = np.ascontiguousarray(planes.variance[ys, xs])
        # Stamp coordinates of the position.
        sx, sy = col - xs.start, row - ys.start
        cell = coadd.grid.index_of(x=ic + bbox.x.start, y=ir + bbox.y.start)
        if not _has_psf(coadd, cell):
            # No input covers the cell (a band whose visits miss part of the patch): no data here.
            columns["centroid_flag"][i] = True
            continue
        if cell not in psf_moments:
            # The cell's PSF is one kernel: its moments once per cell.
            psf_moments[cell] = kernel_moments(coadd.psf[cell].array)
        kxx, kyy, kxy = psf_moments[cell]
        moments = _adaptive_moments(data, ~usable, sx, sy, math.sqrt(0.5 * (kxx + kyy)))
        if moments is not None:
            mx, my, ixx, iyy, ixy = moments
            columns["ixx"][i], columns["iyy"][i], columns["ixy"][i] = ixx, iyy, ixy
            columns["i_flag"][i] = False
            if not fixed_centroid:
                if math.hypot(mx - sx, my - sy) < 3.0:
                    sx, sy = mx, my
                else:
                    columns["centroid_flag"][i] = True
        elif not fixed_centroid:
            columns["centroid_flag"][i] = True
        columns["x"][i], columns["y"][i] = sx + xs.start + bbox.x.start, sy + ys.start + bbox.y.start
        if not _has_psf(coadd, coadd.grid.index_of(x=round(columns["x"][i]), y=round(columns["y"][i]))):
            # The centroid moved into a cell without inputs.
            columns["centroid_flag"][i] = True
            continue
        kernel = stellar_image(coadd, float(columns["x"][i]), float(columns["y"][i]))
        psf_stamp = _paste(kernel, ys.start + bbox.y.start, xs.start + bbox.x.start, data.shape)
        columns["psfFlux_flag_edge"][i] = truncated or abs(float(psf_stamp.sum() - kernel.array.sum())) > 1e-3
        weights = np.where(usable, psf_stamp, 0.0)
        norm = float(np.sum(weights * weights))
        if norm > 0:
            columns["psfFlux"][i] = float(np.sum(weights * data)) / norm
            columns["psfFluxErr"][i] = psf_factor * math.sqrt(float(np.sum(weights**2 * variance))) / norm
            columns["psfFlux_flag"][i] = not columns["psfFluxErr"][i] > 0
        columns["ixxPSF"][i], columns["iyyPSF"][i], columns["ixyPSF"][i] = kxx, kyy, kxy
        if centroid_only:
            continue
        core = psf_stamp > config.psfCoreFraction * float(kernel.array.max())
        centre = (
            slice(max(ir - ys.start - 1, 0), ir - ys.start + 2),
            slice(max(ic - xs.start - 1, 0), ic - xs.start + 2),
        )
        core_bits = int(np.bitwise_or.reduce(flag_bits[ys, xs][core]))
        centre_bits = int(np.bitwise_or.reduce(flag_bits[ys, xs][centre], axis=None))
        for bit, name in enumerate(flagged):
            columns[f"pixelFlags_{name}"][i] = bool(core_bits >> bit & 1)
            columns[f"pixelFlags_{name}Center"][i] = bool(centre_bits >> bit & 1)
        stamp = _Stamp(data.astype(np.float32), variance.astype(np.float32), ~usable, sx, sy, half)
        aperture_flux[i], aperture_error[i], aperture_flag[i] = _aperture_fluxes(stamp, radii)
        if forced:
            ellipse = tuple(
                float(kron[name][i]) for name in ("kron_a", "kron_b", "kron_theta", "kron_radius")
            )
        elif moments is not None:
            ellipse = _kron_ellipse(stamp, *_ellipse(*moments[2:]), config)
        else:
            ellipse = (math.nan, math.nan, math.nan, math.nan)
        _kron_flux(columns, i, stamp, ellipse, noise, config)
        if np.isfinite(columns["kronFlux"][i]):
            _extendedness(columns, i, kernel, ellipse, config)
    for k, (radius, prefix) in enumerate(zip(config.apertureRadii, aperture_prefixes, strict=True)):
        columns[f"{prefix}Flux"] = aperture_flux[:, k]
        columns[f"{prefix}FluxErr"] = aperture_error[:, k] * noise.disc_factor(radius)
        columns[f"{prefix}Flux_flag"] = aperture_flag[:, k]
    return Table(columns)


@dataclasses.dataclass
class _Stamp:
    """An object's stamp, neighbours replaced, as sep measures it."""

    data: np.ndarray
    variance: np.ndarray
    bad: np.ndarray
    x: float
    """Column of the object (stamp pixels)."""
    y: float
    """Row of the object (stamp pixels)."""
    half: int
    """Half-side of a whole stamp (pixels): larger apertures are flagged."""


_APERTURE_FAILED = sep.APER_TRUNC | sep.APER_HASMASKED
"""sep aperture flags that make a flux unreliable."""


def _aperture_fluxes(stamp: _Stamp, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an object's circular aperture fluxes, their errors from the
    variance plane and their flags (one sep call for all the radii)."""
    fluxes, errors, flags = sep.sum_circle(
        stamp.data,
        np.full(radii.size, stamp.x),
        np.full(radii.size, stamp.y),
        radii,
        var=stamp.variance,
        mask=stamp.bad,
        subpix=5,
    )
    return fluxes, errors, ((flags & _APERTURE_FAILED) != 0) | (radii > stamp.half)


def _kron_ellipse(
    stamp: _Stamp, a: float, b: float, theta: float, config: ObjectMeasurementConfig
) -> tuple[float, float, float, float]:
    """Return the Kron ellipse (a, b, theta, Kron radius in units of a and
    b) of the moments' ellipse (a, b, theta)."""
    radius, flag = sep.kron_radius(
        stamp.data, [stamp.x], [stamp.y], [a], [b], [theta], _KRON_SEARCH_RADIUS, mask=stamp.bad
    )
    kron_radius = float(radius[0]) if flag[0] == 0 and np.isfinite(radius[0]) else math.nan
    return a, b, theta, max(kron_radius, config.kronMinRadius) if np.isfinite(kron_radius) else math.nan


def _kron_flux(
    columns: dict[str, np.ndarray],
    i: int,
    stamp: _Stamp,
    ellipse: tuple[float, float, float, float],
    noise: CoaddNoise,
    config: ObjectMeasurementConfig,
) -> None:
    """Record object ``i``'s Kron ellipse and measure its Kron flux in it."""
    a, b, theta, kron_radius = ellipse
    columns["kron_a"][i], columns["kron_b"][i] = a, b
    columns["kron_theta"][i], columns["kron_radius"][i] = theta, kron_radius
    if not (np.isfinite(kron_radius) and a > 0 and b > 0):
        return
    aperture = config.kronFactor * kron_radius
    flux, error, flag = sep.sum_ellipse(
        stamp.data,
        [stamp.x],
        [stamp.y],
        [a],
        [b],
        [theta],
        aperture,
        var=stamp.variance,
        mask=stamp.bad,
        subpix=5,
    )
    equivalent_radius = aperture * math.sqrt(a * b)
    columns["kronRad"][i] = kron_radius * math.sqrt(a * b)
    columns["kronFlux"][i] = flux[0]
    columns["kronFluxErr"][i] = error[0] * noise.disc_factor(equivalent_radius)
    columns["kronFlux_flag"][i] = bool(flag[0] & _APERTURE_FAILED) or equivalent_radius > stamp.half


def _has_psf(coadd: CellCoadd, cell: CellIJ) -> bool:
    """Whether the coadd has a PSF (so inputs) in a cell of its grid."""
    return coadd.psf.bounds.contains_cell(cell)


def stellar_image(coadd: CellCoadd, x: float, y: float) -> Image:
    """Return the coadd's PSF model of a star at tract pixel (x, y): its
    cell's kernel shifted to the position by `_band_limited_shift`, on tract
    pixels.

    The cell's kernel already holds what the warps did to a star (each
    visit's kernel is resampled as its pixels were), so the shift to the
    star's sub-pixel position is a pure translation of the coadd's PSF.  An
    interpolating kernel such as Lanczos-3 would also smooth it, by an
    amount that depends on the sub-pixel phase: stars' PSF fluxes low by up
    to 0.04% (at half a pixel), a pull of -0.1 at S/N 300.
    """
    kernel = coadd.psf.compute_kernel_image(x=x, y=y)
    kbox = kernel.bbox
    x0, y0 = int(round(x)) + kbox.x.start, int(round(y)) + kbox.y.start
    array = _band_limited_shift(kernel.array, x - round(x), y - round(y))
    return Image(array, bbox=Box.factory[y0 : y0 + kbox.y.size, x0 : x0 + kbox.x.size])


def _band_limited_shift(array: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Return a kernel image shifted by a sub-pixel offset.

    Parameters
    ----------
    array : `numpy.ndarray`
        The kernel, sampled finer than its band limit (a coadd PSF is) and
        close to 0 at its edges: the shift is the trigonometric (periodic
        sinc) interpolation of its samples, exact for such a kernel, which
        wraps around at the edges.
    dx, dy : `float`
        The shift (pixels) along x (columns) and y (rows).

    Returns
    -------
    shifted : `numpy.ndarray` [`float`]
        Pixel ``(j, i)`` is the band-limited interpolation of ``array`` at
        ``(j - dy, i - dx)``; the sum is kept.
    """
    array = np.asarray(array, dtype=np.float64)
    return _periodic_sinc(array.shape[0], dy) @ array @ _periodic_sinc(array.shape[1], dx).T


def _periodic_sinc(size: int, shift: float) -> np.ndarray:
    """Return the matrix that shifts ``size`` periodic samples by ``shift``
    pixels with their trigonometric interpolant: the Dirichlet kernel
    ``sin(pi t) / (size sin(pi t / size))`` of the offsets ``t`` (odd
    ``size``; ``tan`` for even, whose Nyquist term is split evenly)."""
    if shift == round(shift):
        return np.roll(np.eye(size), int(round(shift)), axis=0)
    # The matrix is Toeplitz: its values at the 2 size - 1 offsets j - k.
    offset = np.arange(1 - size, size) - shift
    angle = np.pi * offset / size
    values = np.sin(np.pi * offset) / (size * (np.sin(angle) if size % 2 else np.tan(angle)))
    return values[_toeplitz_index(size)]


@functools.cache
def _toeplitz_index(size: int) -> np.ndarray:
    """Return ``j - k + size - 1`` of a ``size`` square matrix."""
    return np.subtract.outer(np.arange(size), np.arange(size)) + size - 1


def _paste(kernel, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
    """Return a kernel image (parent coordinates) on a stamp whose first
    pixel is (y0, x0), 0 elsewhere."""
    stamp = np.zeros(shape)
    kbox = kernel.bbox
    ky, kx = kbox.y.start - y0, kbox.x.start - x0
    ys = slice(max(ky, 0), min(ky + kernel.array.shape[0], shape[0]))
    xs = slice(max(kx, 0), min(kx + kernel.array.shape[1], shape[1]))
    if ys.start < ys.stop and xs.start < xs.stop:
        stamp[ys, xs] = kernel.array[ys.start - ky : ys.stop - ky, xs.start - kx : xs.stop - kx]
    return stamp


def _adaptive_moments(
    data: np.ndarray, bad: np.ndarray, sx: float, sy: float, psf_sigma: float
) -> tuple[float, float, float, float, float] | None:
    """Return HSM's centroid (stamp coordinates) and second moments, or
    `None` if the moments fail."""
    try:
        result = galsim.hsm.FindAdaptiveMom(
            galsim.Image(data, xmin=0, ymin=0),
            badpix=galsim.Image(bad.astype(np.int32), xmin=0, ymin=0) if bad.any() else None,
            guess_sig=psf_sigma,
            guess_centroid=galsim.PositionD(sx, sy),
            strict=False,
        )
    except galsim.GalSimHSMError:
        return None
    if result.moments_status != 0:
        return None
    sigma2 = result.moments_sigma**2
    e1, e2 = result.observed_shape.e1, result.observed_shape.e2
    scale = sigma2 / math.sqrt(max(1.0 - e1 * e1 - e2 * e2, 1e-12))
    centre = result.moments_centroid
    return centre.x, centre.y, scale * (1 + e1), scale * (1 - e1), scale * e2


def _extendedness(
    columns: dict[str, np.ndarray],
    i: int,
    kernel: Image,
    ellipse: tuple[float, float, float, float],
    config: ObjectMeasurementConfig,
) -> None:
    """Set the extendedness of object ``i`` from its PSF and Kron fluxes."""
    a, b, theta, kron_radius = ellipse
    psf = np.ascontiguousarray(kernel.array, dtype=np.float32)
    # The stellar image is in tract pixels, centred on the object.
    ky = columns["y"][i] - kernel.bbox.y.start
    kx = columns["x"][i] - kernel.bbox.x.start
    inside, _, _ = sep.sum_ellipse(
        psf, [kx], [ky], [a], [b], [theta], config.kronFactor * kron_radius, subpix=5
    )
    share = float(inside[0]) / float(psf.sum())
    if not share > 0:
        return
    kron_total = columns["kronFlux"][i] / share
    kron_error = columns["kronFluxErr"][i] / share
    psf_flux, psf_error = columns["psfFlux"][i], columns["psfFluxErr"][i]
    if not (np.isfinite(kron_total) and np.isfinite(psf_flux) and kron_total > 0):
        return
    shortfall = kron_total * (1.0 - config.extendednessMinFraction) - psf_flux
    sigma = math.hypot(psf_error, kron_error)
    columns["extendedness"][i] = float(shortfall > config.extendednessSigma * sigma)
    columns["extendedness_flag"][i] = False
