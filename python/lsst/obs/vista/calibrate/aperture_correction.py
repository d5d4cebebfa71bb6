"""Aperture correction of PSF fluxes, measured on the PSF stars."""

from __future__ import annotations

__all__ = ("ApertureCorrectionConfig", "ApertureCorrectionTask")

from typing import ClassVar

import numpy as np
from astropy.stats import sigma_clip
from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.images import Box
from lsst.images.fields import ChebyshevField
from lsst.pipe.base import Struct, Task

from .measurement import aperture_column
from .skipped import say_skipped

PSF_FLUX_ALGORITHM = "base_PsfFlux_instFlux"
"""Name of the PSF flux in an aperture-correction map, as Rubin's tasks name it."""


class ApertureCorrectionConfig(pexConfig.Config):
    """Configuration for `ApertureCorrectionTask`."""

    referenceRadius = pexConfig.Field[float](
        doc=(
            "Radius (pixels; one of the measurement's apertureRadii) of the aperture flux the PSF flux is "
            "scaled to: large enough to hold nearly all of a star's light, small enough for its S/N."
        ),
        default=12.0,
        check=lambda value: value > 0,
    )
    minStars = pexConfig.Field[int](
        doc=(
            "Fewest stars for a measured correction; with fewer it is 1 (and the metadata says so).  One "
            "bright star measures it to its S/N, and without it point sources look extended."
        ),
        default=1,
        check=lambda value: value >= 1,
    )
    minStarsLinear = pexConfig.Field[int](
        doc="Fewest PSF stars for a correction that varies linearly across the detector.",
        default=30,
        check=lambda value: value >= 3,
    )
    clipSigma = pexConfig.Field[float](
        doc="Ratios beyond this many sigma are left out.", default=3.0, check=lambda value: value > 0
    )


class ApertureCorrectionTask(Task):
    """Measure the ratio of a large aperture flux to the PSF flux on PSF
    star candidates and apply it to the PSF fluxes.

    Notes
    -----
    The correction is a `ChebyshevField` (constant, or of order 1 with
    enough stars) fitted to the sigma-clipped ratios, weighted by their
    inverse errors (the brightest stars measure it best), stored in the
    exposure's aperture-correction map under ``base_PsfFlux_instFlux``.
    With fewer than ``minStars`` stars it is 1, said in one log line and
    ``SKIPPED_APCORR``.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = ApertureCorrectionConfig
    config: ApertureCorrectionConfig
    _DefaultName: ClassVar[str] = "apertureCorrection"

    def run(self, sources: Table, stars: np.ndarray, bbox: Box, *, name: str) -> Struct:
        """Measure and apply the aperture correction.

        Parameters
        ----------
        sources : `astropy.table.Table`
            Measured sources; ``psfInstFlux`` and ``psfInstFluxErr`` are
            multiplied by the correction in place.
        stars : `numpy.ndarray` [`bool`]
            The PSF stars.
        bbox : `lsst.images.Box`
            Bounds of the correction field.
        name : `str`
            What to call the exposure in log messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``field`` (`ChebyshevField`), ``n_stars``, ``measured`` (`bool`)
            and ``metadata``.
        """
        prefix = aperture_column(self.config.referenceRadius)
        aperture = np.asarray(sources[f"{prefix}InstFlux"], dtype=float)
        psf_flux = np.asarray(sources["psfInstFlux"], dtype=float)
        usable = stars & np.isfinite(aperture) & (psf_flux > 0) & ~np.asarray(sources[f"{prefix}Flux_flag"])
        ratio = np.where(usable, aperture / np.where(psf_flux > 0, psf_flux, 1.0), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio_error = np.abs(ratio) * np.hypot(
                np.asarray(sources[f"{prefix}InstFluxErr"], dtype=float) / aperture,
                np.asarray(sources["psfInstFluxErr"], dtype=float) / psf_flux,
            )
        usable &= np.isfinite(ratio_error) & (ratio_error > 0)
        ratio = np.where(usable, ratio, np.nan)
        kept = usable.copy()
        if usable.sum():
            kept[usable] = ~sigma_clip(ratio[usable], sigma=self.config.clipSigma, masked=True).mask
        n_stars = int(kept.sum())
        skipped = {}
        if n_stars < self.config.minStars:
            skipped = say_skipped(
                self.log,
                name,
                "APCORR",
                f"{n_stars} stars for the aperture correction (< {self.config.minStars}); it is 1",
            )
            field = ChebyshevField(bbox, np.array([[1.0]]))
            measured = False
        else:
            order = 1 if n_stars >= self.config.minStarsLinear else 0
            field = ChebyshevField.fit(
                bbox,
                ratio[kept],
                order,
                y=np.asarray(sources["y"], dtype=float)[kept],
                x=np.asarray(sources["x"], dtype=float)[kept],
                weight=1.0 / ratio_error[kept],
            )
            measured = True
        correction = field(x=np.asarray(sources["x"], dtype=float), y=np.asarray(sources["y"], dtype=float))
        sources["psfInstFlux"] = psf_flux * correction
        sources["psfInstFluxErr"] = np.asarray(sources["psfInstFluxErr"], dtype=float) * correction
        median = float(np.median(ratio[kept])) if n_stars else 1.0
        return Struct(
            field=field,
            n_stars=n_stars,
            measured=measured,
            metadata={
                "APCORR_NSTARS": n_stars,
                "APCORR_MEDIAN": median,
                "APCORR_MEASURED": measured,
                **skipped,
            },
        )
