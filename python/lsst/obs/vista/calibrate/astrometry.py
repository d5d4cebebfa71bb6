"""Astrometric calibration: match detections to a reference catalogue and
fit a small correction to the header WCS."""

from __future__ import annotations

__all__ = ("AstrometryConfig", "AstrometryTask", "match_to_reference")

import math
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import sigma_clip
from astropy.table import Table
from scipy.spatial import cKDTree

import lsst.pex.config as pexConfig
from lsst.images import SkyProjection, Transform
from lsst.pipe.base import Struct, Task

from .skipped import say_skipped


class AstrometryConfig(pexConfig.Config):
    """Configuration for `AstrometryTask`."""

    searchRadius = pexConfig.Field[float](
        doc=(
            "Largest offset (arcsec) of the header WCS that the match looks for: pairs within it vote "
            "for the common offset before stars are matched."
        ),
        default=5.0,
        check=lambda value: value > 0,
    )
    matchRadius = pexConfig.Field[float](
        doc="Largest separation (arcsec) of a matched pair once the common offset is removed.",
        default=1.0,
        check=lambda value: value > 0,
    )
    minSignalToNoise = pexConfig.Field[float](
        doc=(
            "Smallest PSF-flux S/N of a detection used for matching: fainter centroids add noise, not signal."
        ),
        default=10.0,
        check=lambda value: value > 0,
    )
    minMatchesShift = pexConfig.Field[int](
        doc="Fewest matches for which a shift of the header WCS is fitted; with fewer it is kept.",
        default=3,
        check=lambda value: value >= 1,
    )
    minMatchesAffine = pexConfig.Field[int](
        doc="Fewest matches for which a full affine correction (shift, scale, rotation, shear) is fitted.",
        default=20,
        check=lambda value: value >= 3,
    )
    clipSigma = pexConfig.Field[float](
        doc=(
            "Matches with a residual beyond this many sigma of the residuals are rejected and the fit redone."
        ),
        default=3.0,
        check=lambda value: value > 0,
    )
    clipIterations = pexConfig.Field[int](
        doc="Rounds of rejection and refit.",
        default=3,
        check=lambda value: value >= 0,
    )


def match_to_reference(
    x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, *, search: float, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections to reference positions in pixel space.

    Parameters
    ----------
    x, y : `numpy.ndarray`
        Detection positions (pixels).
    ref_x, ref_y : `numpy.ndarray`
        Reference positions projected by the header WCS (pixels).
    search : `float`
        Largest common offset looked for (pixels).
    radius : `float`
        Largest separation of a pair after the common offset (pixels).

    Returns
    -------
    source_index, reference_index : `numpy.ndarray` [`int`]
        Mutually nearest pairs within ``radius`` after the common offset,
        which is the mode of all pair offsets within ``search`` (found on a
        grid of ``radius / 2`` cells).
    """
    empty = np.zeros(0, dtype=int)
    if len(x) == 0 or len(ref_x) == 0:
        return empty, empty
    sources = np.column_stack([x, y])
    references = np.column_stack([ref_x, ref_y])
    pairs = cKDTree(references).query_ball_point(sources, search)
    dx = np.concatenate([references[p, 0] - sources[i, 0] for i, p in enumerate(pairs) if p] or [np.zeros(0)])
    dy = np.concatenate([references[p, 1] - sources[i, 1] for i, p in enumerate(pairs) if p] or [np.zeros(0)])
    if len(dx) == 0:
        return empty, empty
    cell = 0.5 * radius
    edges = np.arange(-search, search + cell, cell)
    counts, x_edges, y_edges = np.histogram2d(dx, dy, bins=[edges, edges])
    ix, iy = np.unravel_index(np.argmax(counts), counts.shape)
    near = (np.abs(dx - 0.5 * (x_edges[ix] + x_edges[ix + 1])) < radius) & (
        np.abs(dy - 0.5 * (y_edges[iy] + y_edges[iy + 1])) < radius
    )
    offset = np.array([np.median(dx[near]), np.median(dy[near])])
    shifted = sources + offset
    distance, nearest = cKDTree(references).query(shifted, distance_upper_bound=radius)
    found = np.isfinite(distance)
    _, back = cKDTree(shifted).query(references)
    source_index = np.flatnonzero(found)
    mutual = back[nearest[found]] == source_index
    return source_index[mutual], nearest[found][mutual]


class AstrometryTask(Task):
    """Refine the header WCS against reference stars.

    Notes
    -----
    Reference stars (already propagated to the epoch of the exposure) are
    projected to pixels by the header WCS and matched to detections.  The
    correction is an affine map of pixel coordinates applied before the
    header WCS, so that the header's distortion model (ZPN for CASU, TPV
    for the CP) is kept: a shift when at least ``minMatchesShift`` stars
    match, a full affine map from ``minMatchesAffine``, fitted by weighted
    least squares with sigma clipping; with fewer matches, no reference
    stars on the detector or no reference catalogue the header WCS is kept,
    said in one log line and ``SKIPPED_ASTROMETRY``.  Offsets and scatter
    are reported in milliarcseconds.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = AstrometryConfig
    config: AstrometryConfig
    _DefaultName: ClassVar[str] = "astrometry"

    def run(
        self,
        sources: Table,
        reference: Table | None,
        sky_projection: SkyProjection,
        pixel_scale: float,
        *,
        name: str,
    ) -> Struct:
        """Match and fit.

        Parameters
        ----------
        sources : `astropy.table.Table`
            Measured sources: ``x``, ``y``, ``xErr``, ``yErr``,
            ``psfInstFlux``, ``psfInstFluxErr`` and ``usable`` (bool).
        reference : `astropy.table.Table` or `None`
            Reference stars on the detector at the exposure's epoch:
            ``coord_ra``, ``coord_dec`` (deg), ``id``; `None` without a
            reference catalogue.
        sky_projection : `lsst.images.SkyProjection`
            The header WCS.
        pixel_scale : `float`
            Pixel scale (arcsec per pixel), to convert the radii.
        name : `str`
            What to call the exposure in log messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``sky_projection`` (refined, or the header's), ``fitted``
            (`bool`), ``model`` (``"affine"``, ``"shift"`` or ``"header"``),
            ``source_index``/``reference_index`` of the matches used,
            ``offset_mas`` (mean separation of the matches under the header
            WCS), ``rms_mas`` (rms separation under the final WCS),
            ``n_matches`` and ``metadata``.
        """
        if reference is None or len(reference) == 0:
            what = "no reference catalogue" if reference is None else "no reference stars on the detector"
            none = np.zeros(0, dtype=int)
            return self._result(
                sky_projection, False, "header", none, none, math.nan, math.nan,
                say_skipped(self.log, name, "ASTROMETRY", f"{what}; keeping the header WCS"),
            )  # fmt: skip
        snr = np.asarray(sources["psfInstFlux"]) / np.asarray(sources["psfInstFluxErr"])
        usable = np.asarray(sources["usable"], dtype=bool) & (snr >= self.config.minSignalToNoise)
        candidates = np.flatnonzero(usable)
        ref_pixels = sky_projection.sky_to_pixel(
            SkyCoord(np.asarray(reference["coord_ra"]) * u.deg, np.asarray(reference["coord_dec"]) * u.deg)
        )
        ref_x, ref_y = np.atleast_1d(ref_pixels.x), np.atleast_1d(ref_pixels.y)
        x = np.asarray(sources["x"], dtype=float)[candidates]
        y = np.asarray(sources["y"], dtype=float)[candidates]
        found, ref_index = match_to_reference(
            x,
            y,
            ref_x,
            ref_y,
            search=self.config.searchRadius / pixel_scale,
            radius=self.config.matchRadius / pixel_scale,
        )
        source_index = candidates[found]
        n_matches = len(source_index)
        to_mas = pixel_scale * 1000.0
        header_offset = np.hypot(
            ref_x[ref_index] - sources["x"][source_index], ref_y[ref_index] - sources["y"][source_index]
        )
        offset_mas = float(np.mean(header_offset) * to_mas) if n_matches else float("nan")
        if n_matches < self.config.minMatchesShift:
            skipped = say_skipped(
                self.log,
                name,
                "ASTROMETRY",
                f"{n_matches} reference matches (< {self.config.minMatchesShift}); keeping the header WCS",
            )
            rms = float(np.sqrt(np.mean(header_offset**2)) * to_mas) if n_matches else float("nan")
            return self._result(
                sky_projection, False, "header", source_index, ref_index, offset_mas, rms, skipped
            )

        model = "affine" if n_matches >= self.config.minMatchesAffine else "shift"
        keep = np.ones(n_matches, dtype=bool)
        xs = np.asarray(sources["x"], float)[source_index]
        ys = np.asarray(sources["y"], float)[source_index]
        weight = 1.0 / np.hypot(
            np.asarray(sources["xErr"], float)[source_index], np.asarray(sources["yErr"], float)[source_index]
        ).clip(1e-3)
        for _ in range(self.config.clipIterations + 1):
            matrix = _fit_affine(
                xs[keep],
                ys[keep],
                ref_x[ref_index][keep],
                ref_y[ref_index][keep],
                weight[keep],
                shift_only=(model == "shift"),
            )
            fx, fy = _apply(matrix, xs, ys)
            residual = np.hypot(fx - ref_x[ref_index], fy - ref_y[ref_index])
            clipped = ~sigma_clip(residual, sigma=self.config.clipSigma, maxiters=1, masked=True).mask
            if np.array_equal(clipped, keep) or clipped.sum() < self.config.minMatchesShift:
                break
            keep = clipped
        rms = float(np.sqrt(np.mean(residual[keep] ** 2)) * to_mas)
        correction = Transform.affine(sky_projection.pixel_frame, sky_projection.pixel_frame, matrix)
        approximation = sky_projection.fits_approximation
        refined = SkyProjection(
            correction.then(sky_projection.pixel_to_sky_transform),
            None if approximation is None else correction.then(approximation.pixel_to_sky_transform),
        )
        self.log.info(
            "%s: %s WCS correction from %d of %d matches; offset %.0f mas, rms %.0f mas.",
            name,
            model,
            int(keep.sum()),
            n_matches,
            offset_mas,
            rms,
        )
        return self._result(refined, True, model, source_index[keep], ref_index[keep], offset_mas, rms)

    @staticmethod
    def _result(
        sky_projection: SkyProjection,
        fitted: bool,
        model: str,
        source_index: np.ndarray,
        reference_index: np.ndarray,
        offset_mas: float,
        rms_mas: float,
        skipped: dict[str, str] | None = None,
    ) -> Struct:
        return Struct(
            sky_projection=sky_projection,
            fitted=fitted,
            model=model,
            source_index=source_index,
            reference_index=reference_index,
            offset_mas=offset_mas,
            rms_mas=rms_mas,
            n_matches=len(source_index),
            metadata={
                "ASTROM_MODEL": model,
                "ASTROM_NMATCH": len(source_index),
                "ASTROM_OFFSET_MAS": offset_mas,
                "ASTROM_RMS_MAS": rms_mas,
                **(skipped or {}),
            },
        )


def _fit_affine(
    x: np.ndarray,
    y: np.ndarray,
    ref_x: np.ndarray,
    ref_y: np.ndarray,
    weight: np.ndarray,
    *,
    shift_only: bool,
) -> np.ndarray:
    """Return the 3x3 augmented matrix mapping (x, y) onto (ref_x, ref_y)
    by weighted least squares (a pure shift if ``shift_only``)."""
    matrix = np.eye(3)
    if shift_only:
        matrix[0, 2] = np.average(ref_x - x, weights=weight**2)
        matrix[1, 2] = np.average(ref_y - y, weights=weight**2)
        return matrix
    design = np.column_stack([x, y, np.ones_like(x)]) * weight[:, None]
    for row, target in enumerate((ref_x, ref_y)):
        coefficients, *_ = np.linalg.lstsq(design, target * weight, rcond=None)
        matrix[row] = coefficients
    matrix[2] = (0.0, 0.0, 1.0)
    return matrix


def _apply(matrix: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2], matrix[1, 0] * x + matrix[1, 1] * y + matrix[
        1, 2
    ]
