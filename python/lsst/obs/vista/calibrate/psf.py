"""PSF stars and a Piff PSF model of one detector, with the header PSF as
the fallback."""

from __future__ import annotations

__all__ = (
    "PiffPsfDeterminerConfig",
    "PiffPsfDeterminerTask",
    "PsfStarSelectorConfig",
    "PsfStarSelectorTask",
)

import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

import astropy.table
import galsim
import numpy as np
from astropy.stats import sigma_clipped_stats
from scipy.spatial import cKDTree

import lsst.pex.config as pexConfig
from lsst.images import Box
from lsst.images.psfs import PiffWrapper, PointSpreadFunction
from lsst.pipe.base import Struct, Task

from ..psf_shape import FWHM_PER_SIGMA, psf_fwhm
from .skipped import say_skipped

if TYPE_CHECKING:
    import piff


class PsfStarSelectorConfig(pexConfig.Config):
    """Configuration for `PsfStarSelectorTask`."""

    minSnr = pexConfig.Field[float](
        doc=(
            "Minimum aperture S/N (instFlux / instFluxErr) of a PSF star: its stamp must constrain the "
            "profile, not just the centroid."
        ),
        default=50.0,
        check=lambda value: value > 0,
    )
    nSigmaSize = pexConfig.Field[float](
        doc=(
            "Half-width of the stellar locus in robust standard deviations (MAD) of the size "
            "sqrt((ixx + iyy) / 2) of the bright unflagged sources, about their sigma-clipped median."
        ),
        default=3.0,
        check=lambda value: value > 0,
    )
    headerSizeTolerance = pexConfig.Field[float](
        doc=(
            "Where the sources carry the header PSF's moments (``psf_ixx``, ``psf_iyy``), the locus is "
            "looked for only among bright sources whose size is within this fraction of the header PSF's: "
            "on a field of many bright galaxies the median size of all bright sources is a galaxy's.  "
            "Header seeing estimates are good to ~10-20%."
        ),
        default=0.3,
        check=lambda value: value > 0,
    )
    maxSizeSpread = pexConfig.Field[float](
        doc=(
            "Upper bound on that half-width as a fraction of the locus size, so that a locus broadened by "
            "galaxies cannot take in more of them.  It must leave room for the PSF's variation across the "
            "detector and the scatter of the sizes measured."
        ),
        default=0.15,
        check=lambda value: value > 0,
    )
    isolationRadius = pexConfig.Field[float](
        doc="A star with another detection closer than this (pixels) brighter than isolationFluxRatio "
        "times its own flux is not isolated: the neighbour would fall in its stamp.",
        default=8.0,
        check=lambda value: value >= 0,
    )
    isolationFluxRatio = pexConfig.Field[float](
        doc="Flux of a neighbour, relative to the star's, above which it spoils the star (isolationRadius).",
        default=0.05,
        check=lambda value: value >= 0,
    )


class PsfStarSelectorTask(Task):
    """Select PSF stars from a detection catalogue.

    Notes
    -----
    A source is a PSF candidate when it is unflagged (``flag`` False), has
    finite positive moments and flux with ``instFlux / instFluxErr >=
    minSnr``, lies on the stellar locus and is isolated.  The locus is the
    sigma-clipped (3 sigma, MAD) median size of the bright unflagged sources
    (those within ``headerSizeTolerance`` of the header PSF's size, when the
    sources carry it); stars, all of one size, are its densest clump,
    galaxies are larger and spread out.  Candidates lie within ``min(nSigmaSize * MAD_std,
    maxSizeSpread * median)`` of it.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = PsfStarSelectorConfig
    config: PsfStarSelectorConfig
    _DefaultName: ClassVar[str] = "starSelector"

    def run(self, sources: astropy.table.Table) -> Struct:
        """Select the PSF candidates.

        Parameters
        ----------
        sources : `astropy.table.Table`
            Detections with columns ``x``, ``y``, ``instFlux``,
            ``instFluxErr``, ``ixx``, ``iyy`` and ``flag``.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``candidate``: `numpy.ndarray` [`bool`], one per source;
            ``locus_size``: `float` or `None`, the locus size
            sqrt((ixx + iyy) / 2) (pixels), `None` with no bright source.
        """
        n = len(sources)
        if n == 0:
            return Struct(candidate=np.zeros(0, dtype=bool), locus_size=None)
        flux = np.asarray(sources["instFlux"], dtype=float)
        flux_err = np.asarray(sources["instFluxErr"], dtype=float)
        with np.errstate(invalid="ignore"):
            size = np.sqrt(
                0.5 * (np.asarray(sources["ixx"], dtype=float) + np.asarray(sources["iyy"], float))
            )
            bright = (
                ~np.asarray(sources["flag"], dtype=bool)
                & np.isfinite(size)
                & (size > 0)
                & (flux_err > 0)
                & (flux > self.config.minSnr * flux_err)
            )
        seed = bright.copy()
        if "psf_ixx" in sources.colnames and "psf_iyy" in sources.colnames:
            header_size = np.sqrt(
                0.5 * (np.asarray(sources["psf_ixx"], dtype=float) + np.asarray(sources["psf_iyy"], float))
            )
            with np.errstate(invalid="ignore"):
                seed &= np.abs(size / header_size - 1.0) <= self.config.headerSizeTolerance
        if not seed.any():
            return Struct(candidate=np.zeros(n, dtype=bool), locus_size=None)
        _, locus, spread = sigma_clipped_stats(size[seed], sigma=3.0, maxiters=10, stdfunc="mad_std")
        half_width = min(self.config.nSigmaSize * spread, self.config.maxSizeSpread * locus)
        candidate = bright & (np.abs(size - locus) <= half_width)
        candidate &= self._isolated(sources, flux, candidate)
        return Struct(candidate=candidate, locus_size=float(locus))

    def _isolated(self, sources: astropy.table.Table, flux: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """Return whether each source has no spoiling neighbour (True where
        not a candidate: only candidates are tested)."""
        isolated = np.ones(len(sources), dtype=bool)
        if self.config.isolationRadius == 0 or len(sources) < 2:
            return isolated
        xy = np.column_stack([np.asarray(sources["x"], float), np.asarray(sources["y"], float)])
        tree = cKDTree(xy)
        for index in np.flatnonzero(candidate):
            neighbours = tree.query_ball_point(xy[index], self.config.isolationRadius)
            others = [k for k in neighbours if k != index]
            if others and np.any(flux[others] > self.config.isolationFluxRatio * flux[index]):
                isolated[index] = False
        return isolated


class PiffPsfDeterminerConfig(pexConfig.Config):
    """Configuration for `PiffPsfDeterminerTask`.

    The defaults are chosen for speed at ~1% FWHM accuracy: a small pixel
    grid (the profile itself, not a parametric guess at it), a quadratic
    variation solved by Piff's C++ solver, at most ``maxStars`` stars and
    four iterations with chi-square outlier rejection.
    """

    starSelector = pexConfig.ConfigurableField(
        target=PsfStarSelectorTask,
        doc="Selection of PSF candidates from the detections.",
    )
    maxSizeMismatch = pexConfig.Field[float](
        doc=(
            "Largest fractional difference between the model's FWHM at the detector centre and the FWHM of "
            "the stellar locus (both from adaptive moments); a larger one means the fit went wrong (too "
            "few stars, a galaxy among them) and the header PSF is kept."
        ),
        default=0.1,
        check=lambda value: value > 0,
    )
    minStars = pexConfig.Field[int](
        doc=(
            "Fewest stars (fitted, not counting the reserved ones) for a Piff model; with fewer the header "
            "PSF is kept.  Five stars constrain a constant profile and show up a bad one."
        ),
        default=5,
        check=lambda value: value >= 1,
    )
    maxStars = pexConfig.Field[int](
        doc=(
            "Most candidates (fitted plus reserved) given to Piff, drawn at random from all of them so that "
            "they cover the detector.  The fit time grows in proportion; ~80 fitted stars pin a quadratic "
            "variation of the FWHM to ~1%."
        ),
        default=100,
        check=lambda value: value >= 1,
    )
    reserveFraction = pexConfig.Field[float](
        doc=(
            "Fraction of those stars left out of the fit for validation (``reserved``); none are reserved "
            "when that would leave fewer than minStars to fit."
        ),
        default=0.2,
        check=lambda value: 0 <= value < 1,
    )
    modelSize = pexConfig.Field[int](
        doc=(
            "Side of Piff's PixelGrid model in grid samples (odd).  The cost of a fit grows as the square "
            "of the number of samples; 11 samples at samplesPerFwhm=3 span ~1.8 FWHM each side of the "
            "centre when the spacing exceeds a pixel, more below that."
        ),
        default=11,
        check=lambda value: value > 0 and value % 2 == 1,
    )
    samplesPerFwhm = pexConfig.Field[float](
        doc=(
            "Grid samples per FWHM of the header PSF: the grid spacing is max(1, FWHM / samplesPerFwhm) "
            "pixels, so a grid of modelSize samples spans the same part of the profile whatever the "
            "seeing.  The grid is never finer than the pixels."
        ),
        default=3.0,
        check=lambda value: value > 0,
    )
    stampPadding = pexConfig.Field[int](
        doc="Pixels of star stamp beyond the model grid on each side, for centroid shifts.",
        default=2,
        check=lambda value: value >= 0,
    )
    interpOrder = pexConfig.Field[int](
        doc=(
            "Order of the polynomial in x, y followed by each grid sample (Piff BasisPolynomial).  Lowered "
            "when there are fewer than starsPerInterpTerm stars per polynomial term."
        ),
        default=2,
        check=lambda value: value >= 0,
    )
    starsPerInterpTerm = pexConfig.Field[int](
        doc="Fitted stars needed per polynomial term to keep an order (order 2 has 6 terms).",
        default=4,
        check=lambda value: value >= 1,
    )
    interpSolver = pexConfig.ChoiceField[str](
        doc="Linear solver of the BasisPolynomial interpolation.",
        default="cpp",
        allowed={
            "cpp": "Piff's compiled Eigen solver (about twice as fast).",
            "scipy": "numpy/scipy.",
        },
    )
    outlierNSigma = pexConfig.Field[float](
        doc=(
            "Stars whose chi-square exceeds this many sigma of its distribution are rejected (Piff "
            "ChisqOutliers): galaxies and blends that the selection let through.  0 disables."
        ),
        default=4.0,
        check=lambda value: value >= 0,
    )
    outlierMaxRemove = pexConfig.Field[float](
        doc="Largest fraction of the fitted stars rejected per iteration.",
        default=0.1,
        check=lambda value: 0 < value <= 1,
    )
    maxIter = pexConfig.Field[int](
        doc="Most Piff iterations (fit, reflux, outlier rejection); it stops earlier on convergence.",
        default=4,
        check=lambda value: value >= 2,
    )


class PiffPsfDeterminerTask(Task):
    """Fit a Piff PSF model to the stars of one detector.

    Notes
    -----
    Star stamps are cut from the background-subtracted image with weights
    1 / variance (0 on ``bad`` pixels) and handed to Piff as GalSim images
    whose origin is the parent pixel coordinate of their first pixel, with a
    one-pixel-per-unit WCS: Piff's positions are the parent coordinates, as
    `lsst.images.psfs.PiffWrapper` evaluates them.  The model is a PixelGrid
    whose samples vary as a polynomial in x, y.

    The header PSF (``fallback``) is kept, with one log line and
    ``SKIPPED_PSF`` in the metadata, when fewer than ``minStars``
    candidates have complete stamps, or when Piff fails or returns a model
    with no finite positive size or one whose size is off its stars'.

    Piff's own log goes to the ``piff`` child of this task's log, only when
    that is enabled for DEBUG (it writes a few lines per iteration).
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = PiffPsfDeterminerConfig
    config: PiffPsfDeterminerConfig
    starSelector: PsfStarSelectorTask
    _DefaultName: ClassVar[str] = "psfDeterminer"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.makeSubtask("starSelector")

    def run(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        bad: np.ndarray,
        bbox: Box,
        sources: astropy.table.Table,
        fallback: PointSpreadFunction,
        name: str,
        *,
        seed: int = 0,
    ) -> Struct:
        """Select PSF stars and fit the model.

        Parameters
        ----------
        image : `numpy.ndarray`
            Background-subtracted pixels.
        variance : `numpy.ndarray`
            Variance of the pixels.
        bad : `numpy.ndarray` [`bool`]
            Pixels not to use (NO_DATA, SATURATED, BAD, CR...).
        bbox : `lsst.images.Box`
            Parent bounding box of the arrays: ``image[j, i]`` is centred on
            ``x = bbox.x.start + i, y = bbox.y.start + j``.
        sources : `astropy.table.Table`
            Detections (see `PsfStarSelectorTask.run`), positions in parent
            coordinates.
        fallback : `lsst.images.psfs.PointSpreadFunction`
            The header PSF: kept when no model can be fitted; its FWHM sets
            the grid spacing and its kernel size the model's.
        name : `str`
            What to call the detector in log messages.
        seed : `int`, optional
            Seed of the random choice of fitted and reserved stars;
            ``calibrateImage`` derives it from the data ID, so that a rerun
            chooses the same stars.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``psf`` (`~lsst.images.psfs.PiffWrapper`, or ``fallback``);
            ``is_fallback``; ``candidate``, ``used`` (fitted and not rejected)
            and ``reserved`` (`numpy.ndarray` [`bool`], one per source);
            ``n_used``; ``fwhm``, the model's `psf_fwhm` at the bbox centre
            (pixels); ``reason`` (why the fallback was kept, else `None`);
            ``metadata`` (``PSF_MODEL`` 'piff' or 'header', ``PSF_NSTARS``,
            ``PSF_NRESERVED``, ``PSF_NCANDIDATES``, ``PSF_FWHM``, and
            ``SKIPPED_PSF`` with the fallback).
        """
        n = len(sources)
        selection = self.starSelector.run(sources)
        candidate = selection.candidate
        x_centre, y_centre = bbox.x.center, bbox.y.center
        header_fwhm = psf_fwhm(fallback, x=x_centre, y=y_centre)
        spacing = max(1.0, header_fwhm / self.config.samplesPerFwhm)
        radius = math.ceil(0.5 * self.config.modelSize * spacing) + self.config.stampPadding
        stamps = np.flatnonzero(candidate & self._inside(sources, bbox, radius))

        rng = np.random.default_rng(seed)
        chosen = rng.permutation(stamps)[: self.config.maxStars]
        n_reserve = int(round(self.config.reserveFraction * len(chosen)))
        if len(chosen) - n_reserve < self.config.minStars:
            n_reserve = 0
        reserved = np.zeros(n, dtype=bool)
        reserved[chosen[:n_reserve]] = True
        used = np.zeros(n, dtype=bool)

        def keep_header(reason: str, level: int = logging.INFO) -> Struct:
            skipped = say_skipped(self.log, name, "PSF", f"{reason}; keeping the header PSF", level=level)
            none = np.zeros(n, dtype=bool)
            return Struct(
                psf=fallback,
                is_fallback=True,
                candidate=candidate,
                used=none,
                reserved=none,
                n_used=0,
                fwhm=header_fwhm,
                reason=reason,
                metadata={**self._metadata("header", 0, none, candidate, header_fwhm), **skipped},
            )

        n_fit = len(chosen) - n_reserve
        if n_fit < self.config.minStars:
            return keep_header(f"{n_fit} PSF stars (< minStars={self.config.minStars})")

        # Imported here, not with the module: piff brings in scikit-learn (a second of start-up),
        # and the coadd and object tasks import this package for its noise correlation only.
        import piff

        stars = [
            self._make_star(image, variance, bad, bbox, sources, index, radius, is_reserve=k < n_reserve)
            for k, index in enumerate(chosen)
        ]
        piff_psf = piff.SimplePSF(
            piff.PixelGrid(scale=spacing, size=self.config.modelSize),
            piff.BasisPolynomial(order=self._interp_order(n_fit), solver=self.config.interpSolver),
            outliers=(
                piff.ChisqOutliers(nsigma=self.config.outlierNSigma, max_remove=self.config.outlierMaxRemove)
                if self.config.outlierNSigma > 0
                else None
            ),
            max_iter=self.config.maxIter,
        )
        piff_log = self.log.getChild("piff")
        try:
            piff_psf.fit(
                stars,
                {0: galsim.PixelScale(1.0)},
                None,
                logger=piff_log if piff_log.isEnabledFor(logging.DEBUG) else None,
            )
            psf = PiffWrapper(piff_psf, bounds=bbox, stamp_size=fallback.kernel_bbox.x.size)
            fwhm = psf_fwhm(psf, x=x_centre, y=y_centre)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as error:
            # Piff raises these (GalSim's errors are RuntimeErrors) when stars
            # cannot be fitted or the system is singular.
            return keep_header(f"Piff fit failed ({error})", logging.WARNING)
        if not (math.isfinite(fwhm) and fwhm > 0):
            return keep_header("Piff model has no finite size", logging.WARNING)
        locus_fwhm = FWHM_PER_SIGMA * selection.locus_size
        if abs(fwhm / locus_fwhm - 1.0) > self.config.maxSizeMismatch:
            return keep_header(
                f"Piff model FWHM {fwhm:.2f} px differs from its stars' {locus_fwhm:.2f} px by over "
                f"{100 * self.config.maxSizeMismatch:.0f}%",
                logging.WARNING,
            )

        for index, star in zip(chosen, piff_psf.stars, strict=True):
            used[index] = not star.is_reserve and not star.is_flagged
        n_used = int(np.count_nonzero(used))
        return Struct(
            psf=psf,
            is_fallback=False,
            candidate=candidate,
            used=used,
            reserved=reserved,
            n_used=n_used,
            fwhm=fwhm,
            reason=None,
            metadata=self._metadata("piff", n_used, reserved, candidate, fwhm),
        )

    def _interp_order(self, n_fit: int) -> int:
        """Return the highest order up to interpOrder that has
        starsPerInterpTerm stars per polynomial term."""
        order = self.config.interpOrder
        while order > 0 and n_fit < self.config.starsPerInterpTerm * (order + 1) * (order + 2) // 2:
            order -= 1
        return order

    @staticmethod
    def _inside(sources: astropy.table.Table, bbox: Box, radius: int) -> np.ndarray:
        """Return whether each source's stamp lies inside the bbox."""
        if len(sources) == 0:
            return np.zeros(0, dtype=bool)
        ix = np.rint(np.asarray(sources["x"], dtype=float))
        iy = np.rint(np.asarray(sources["y"], dtype=float))
        with np.errstate(invalid="ignore"):
            return (
                (ix - radius >= bbox.x.start)
                & (ix + radius < bbox.x.stop)
                & (iy - radius >= bbox.y.start)
                & (iy + radius < bbox.y.stop)
            )

    @staticmethod
    def _make_star(
        image: np.ndarray,
        variance: np.ndarray,
        bad: np.ndarray,
        bbox: Box,
        sources: astropy.table.Table,
        index: int,
        radius: int,
        *,
        is_reserve: bool,
    ) -> piff.Star:
        """Cut one star's stamp as a Piff star in parent coordinates."""
        import piff

        x, y = float(sources["x"][index]), float(sources["y"][index])
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        rows = slice(y0 - bbox.y.start, y0 - bbox.y.start + 2 * radius + 1)
        columns = slice(x0 - bbox.x.start, x0 - bbox.x.start + 2 * radius + 1)
        pixels = np.asarray(image[rows, columns], dtype=np.float64)
        with np.errstate(divide="ignore"):
            weight = np.where(bad[rows, columns], 0.0, 1.0 / np.asarray(variance[rows, columns], np.float64))
        wcs = galsim.PixelScale(1.0)
        data = piff.StarData(
            galsim.Image(np.where(bad[rows, columns], 0.0, pixels), xmin=x0, ymin=y0, wcs=wcs),
            galsim.PositionD(x, y),
            weight=galsim.Image(weight, xmin=x0, ymin=y0, wcs=wcs),
            properties={"is_reserve": is_reserve},
        )
        return piff.Star(data, None)

    @staticmethod
    def _metadata(
        model: str, n_used: int, reserved: np.ndarray, candidate: np.ndarray, fwhm: float
    ) -> dict[str, Any]:
        """Return the scalars recorded in the output's metadata."""
        return {
            "PSF_MODEL": model,
            "PSF_NSTARS": n_used,
            "PSF_NRESERVED": int(np.count_nonzero(reserved)),
            "PSF_NCANDIDATES": int(np.count_nonzero(candidate)),
            "PSF_FWHM": float(fwhm),
        }
