"""Photometric calibration: the header zero point, and a zero point fitted
to reference stars where enough of them, with colours, are matched."""

from __future__ import annotations

__all__ = (
    "ColorTermConfig",
    "PhotometryConfig",
    "PhotometryTask",
    "match_by_position",
    "reference_magnitudes",
)

import math
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import sigma_clipped_stats
from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.images import SkyProjection
from lsst.pipe.base import Struct, Task

from .skipped import say_skipped


class ColorTermConfig(pexConfig.Config):
    """A reference catalogue's prediction of one band's AB magnitude:
    ``mag = primary + sum_k coefficients[k] * color**k``, with
    ``color = colorColumns[0] - colorColumns[1]``."""

    primary = pexConfig.Field[str](doc="Reference magnitude column the polynomial adds to.", default="")
    colorColumns = pexConfig.ListField[str](
        doc="The two reference magnitude columns whose difference is the colour.",
        default=[],
        listCheck=lambda value: len(value) in (0, 2),
    )
    coefficients = pexConfig.ListField[float](
        doc="Polynomial coefficients in the colour, constant term first.", default=[0.0]
    )
    colorRange = pexConfig.ListField[float](
        doc=(
            "Range of colours the polynomial was fitted over, low and high; colours outside are clipped to "
            "it.  Empty: no clipping."
        ),
        default=[],
        listCheck=lambda value: len(value) == 0 or (len(value) == 2 and value[0] < value[1]),
    )
    defaultColor = pexConfig.Field[float](
        doc="Colour used for reference stars whose colour is not measured (unless requireColor).",
        default=0.0,
    )
    requireColor = pexConfig.Field[bool](
        doc=(
            "Leave out reference stars whose colour is not measured, rather than give them defaultColor "
            "(where the colour term is steep, a guessed colour is worse than no star)."
        ),
        default=False,
    )


def reference_magnitudes(reference: Table, term: ColorTermConfig) -> np.ndarray:
    """Return the band magnitudes a colour term predicts for reference stars.

    Parameters
    ----------
    reference : `astropy.table.Table`
        Reference stars with the term's magnitude columns (mag).
    term : `ColorTermConfig`
        The colour term.

    Returns
    -------
    mag : `numpy.ndarray`
        Predicted AB magnitudes; NaN where the primary magnitude is missing
        (NaN or masked), or with ``requireColor`` the colour.
    """
    primary = _magnitudes(reference[term.primary])
    if term.colorColumns:
        first, second = term.colorColumns
        color = _magnitudes(reference[first]) - _magnitudes(reference[second])
        if not term.requireColor:
            color = np.where(np.isfinite(color), color, term.defaultColor)
        if term.colorRange:
            color = np.clip(color, *term.colorRange)
    else:
        color = np.zeros(len(reference))
    return primary + np.polynomial.polynomial.polyval(color, list(term.coefficients))


def _magnitudes(column: np.ndarray) -> np.ndarray:
    """Return a magnitude column as floats, NaN where it is masked."""
    return np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)


def match_by_position(
    sources: Table, reference: Table | None, sky_projection: SkyProjection, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Match reference stars to sources by position, each to its nearest.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Sources with ``x``, ``y`` (parent pixel coordinates).
    reference : `astropy.table.Table` or `None`
        Reference stars with ``coord_ra``, ``coord_dec`` (deg).
    sky_projection : `lsst.images.SkyProjection`
        The WCS of the sources' pixels.
    radius : `float`
        Largest separation of a match (arcsec).

    Returns
    -------
    source_index, reference_index : `numpy.ndarray` [`int`]
        Matched pairs: a source and a star that are each other's nearest,
        within ``radius``.
    """
    empty = np.zeros(0, dtype=int)
    if reference is None or len(reference) == 0 or len(sources) == 0:
        return empty, empty
    sky = sky_projection.pixel_to_sky(
        x=np.asarray(sources["x"], dtype=float), y=np.asarray(sources["y"], dtype=float)
    )
    measured = SkyCoord(np.atleast_1d(sky.ra.to(u.deg)), np.atleast_1d(sky.dec.to(u.deg)))
    stars = SkyCoord(
        np.asarray(reference["coord_ra"], dtype=float) * u.deg,
        np.asarray(reference["coord_dec"], dtype=float) * u.deg,
    )
    nearest_star, separation, _ = measured.match_to_catalog_sky(stars)
    nearest_source, _, _ = stars.match_to_catalog_sky(measured)
    source_index = np.arange(len(sources))
    mutual = (nearest_source[nearest_star] == source_index) & (separation.to_value(u.arcsec) <= radius)
    return source_index[mutual], np.asarray(nearest_star)[mutual]


class PhotometryConfig(pexConfig.Config):
    """Configuration for `PhotometryTask`."""

    colorTerms = pexConfig.ConfigDictField(
        keytype=str,
        itemtype=ColorTermConfig,
        doc=(
            "Colour terms by band: how the reference catalogue predicts each band's AB magnitude.  A band "
            "without one keeps the header zero point.  Instrument overrides name their published source."
        ),
        default={},
    )
    minMatches = pexConfig.Field[int](
        doc="Fewest usable matched stars for a fitted zero point to be measured and reported.",
        default=3,
        check=lambda value: value >= 1,
    )
    minStarsToApply = pexConfig.Field[int](
        doc=(
            "Fewest stars (after clipping) for the fitted zero point to replace the header's.  Colour "
            "terms and reference photometry scatter by ~0.1 mag per star, and header zero points are good "
            "to ~0.05-0.1 mag, so a fit from fewer stars would not be better."
        ),
        default=10,
        check=lambda value: value >= 1,
    )
    minSignalToNoise = pexConfig.Field[float](
        doc="Smallest PSF-flux S/N of a star used for the fit.",
        default=10.0,
        check=lambda value: value > 0,
    )
    clipSigma = pexConfig.Field[float](
        doc="Residuals beyond this many sigma (robust) are left out of the zero point.",
        default=3.0,
        check=lambda value: value > 0,
    )
    matchRadius = pexConfig.Field[float](
        doc=(
            "Largest separation (arcsec) of a source and a star of a photometric reference catalogue that is "
            "not the astrometric one (matched through the fitted WCS).  2MASS positions are good to "
            "~0.1 arcsec at their 1997-2001 epochs, and most stars move < 20 mas/yr."
        ),
        default=1.0,
        check=lambda value: value > 0,
    )
    doApplyFit = pexConfig.Field[bool](
        doc="Apply the fitted zero point (else it is only reported, and the header's is applied).",
        default=True,
    )


class PhotometryTask(Task):
    """Choose the photometric zero point of an exposure.

    Notes
    -----
    The zero point is the AB magnitude of one image unit (per exposure, the
    image's own normalisation), so calibrated fluxes are
    ``instFlux * 10**(-0.4 * (zp - 31.4))`` nJy.  The header zero point
    comes from isr (CASU MAGZPT with the Vega-to-AB offset, CP MAGZERO).
    Where at least ``minMatches`` matched, unflagged stars with S/N above
    ``minSignalToNoise`` have a colour-term prediction, the fitted zero
    point is the sigma-clipped median of ``mag_ref + 2.5 log10(instFlux)``
    over them, its error the clipped standard deviation over sqrt(N).  It
    is always reported; it is applied from ``minStarsToApply`` stars, or
    from ``minMatches`` when the header has no zero point.  Where no zero
    point is fitted, one log line and ``SKIPPED_PHOTOMETRY`` say why and
    whether the header's is kept or, without one, calibrated fluxes are NaN.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = PhotometryConfig
    config: PhotometryConfig
    _DefaultName: ClassVar[str] = "photometry"

    def run(
        self,
        sources: Table,
        reference: Table | None,
        source_index: np.ndarray,
        reference_index: np.ndarray,
        *,
        band: str,
        header_zero_point: float | None,
        name: str,
    ) -> Struct:
        """Fit (or keep) the zero point.

        Parameters
        ----------
        sources : `astropy.table.Table`
            Measured sources with aperture-corrected ``psfInstFlux``,
            ``psfInstFluxErr`` and ``usable``.
        reference : `astropy.table.Table` or `None`
            Reference stars, or `None` if no catalogue was read.
        source_index, reference_index : `numpy.ndarray` [`int`]
            Matched pairs (from the astrometric match).
        band : `str`
            Band of the exposure.
        header_zero_point : `float` or `None`
            AB zero point from the header, if any.
        name : `str`
            What to call the exposure in log messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``zero_point`` (applied; `None` if neither is known),
            ``fitted_zero_point``, ``fitted_error``, ``offset`` (fitted minus
            header), ``scatter`` (clipped std of the residuals, mag),
            ``n_stars``, ``source_index`` (stars used), ``source``
            (``"fit"``, ``"header"``, or ``"none"`` when no zero point is
            known) and ``metadata``.
        """
        fit = self._fit(sources, reference, source_index, reference_index, band=band)
        use_fit = (
            fit.zero_point is not None
            and self.config.doApplyFit
            and (fit.n_stars >= self.config.minStarsToApply or header_zero_point is None)
        )
        zero_point = fit.zero_point if use_fit else header_zero_point
        skipped = {}
        if fit.zero_point is None:
            kept = (
                "keeping the header zero point"
                if header_zero_point is not None
                else "no zero point in the header either: calibrated fluxes are NaN"
            )
            skipped = say_skipped(self.log, name, "PHOTOMETRY", f"{fit.reason}; {kept}")
        elif zero_point is None:
            skipped = say_skipped(
                self.log,
                name,
                "PHOTOMETRY",
                "the fitted zero point is not applied (doApplyFit is False) and the header has none: "
                "calibrated fluxes are NaN",
            )
        offset = (
            fit.zero_point - header_zero_point
            if fit.zero_point is not None and header_zero_point is not None
            else None
        )
        if fit.zero_point is not None:
            self.log.info(
                "%s: fitted zero point %.4f +/- %.4f from %d stars (scatter %.3f mag), header %s; %s used.",
                name,
                fit.zero_point,
                fit.error,
                fit.n_stars,
                fit.scatter,
                "none" if header_zero_point is None else f"{header_zero_point:.4f}",
                "fitted" if use_fit else "header",
            )
        # "none" says in the metadata what the NaN fluxes mean.
        source = "fit" if use_fit else ("header" if header_zero_point is not None else "none")
        return Struct(
            zero_point=zero_point,
            fitted_zero_point=fit.zero_point,
            fitted_error=fit.error,
            offset=offset,
            scatter=fit.scatter,
            n_stars=fit.n_stars,
            source_index=fit.used,
            source=source,
            metadata={
                "PHOTOCAL_SOURCE": source,
                "PHOTOCAL_ZP": zero_point,
                "PHOTOCAL_ZP_HEADER": header_zero_point,
                "PHOTOCAL_ZP_FIT": fit.zero_point,
                "PHOTOCAL_ZP_FIT_ERR": fit.error,
                "PHOTOCAL_OFFSET": offset,
                "PHOTOCAL_SCATTER": fit.scatter,
                "PHOTOCAL_NSTARS": fit.n_stars,
                **skipped,
            },
        )

    def _fit(
        self,
        sources: Table,
        reference: Table | None,
        source_index: np.ndarray,
        reference_index: np.ndarray,
        *,
        band: str,
    ) -> Struct:
        """Return the fitted zero point, or `None` and the ``reason`` why
        none was fitted."""

        def nothing(reason: str) -> Struct:
            return Struct(
                zero_point=None,
                error=None,
                scatter=None,
                n_stars=0,
                used=np.zeros(0, dtype=int),
                reason=reason,
            )

        if reference is None:
            return nothing("no reference catalogue")
        term = self.config.colorTerms.get(band)
        if term is None:
            return nothing(f"no colour term for band {band!r}")
        absent = [column for column in (term.primary, *term.colorColumns) if column not in reference.colnames]
        if absent:
            return nothing(
                f"the reference catalogue has no column {', '.join(map(repr, absent))} of band {band!r}'s "
                "colour term"
            )
        ref_mag = reference_magnitudes(reference[reference_index], term)
        flux = np.asarray(sources["psfInstFlux"], dtype=float)[source_index]
        error = np.asarray(sources["psfInstFluxErr"], dtype=float)[source_index]
        usable = (
            np.asarray(sources["usable"], dtype=bool)[source_index]
            & np.isfinite(ref_mag)
            & (flux > self.config.minSignalToNoise * error)
        )
        if usable.sum() < self.config.minMatches:
            return nothing(
                f"{int(usable.sum())} usable photometric reference stars (< {self.config.minMatches})"
            )
        estimates = ref_mag[usable] + 2.5 * np.log10(flux[usable])
        mean, median, std = sigma_clipped_stats(estimates, sigma=self.config.clipSigma, maxiters=5)
        kept = np.abs(estimates - median) <= self.config.clipSigma * max(std, 1e-6)
        n_stars = int(kept.sum())
        return Struct(
            zero_point=float(median),
            error=float(std / math.sqrt(max(n_stars, 1))),
            scatter=float(std),
            n_stars=n_stars,
            used=source_index[usable][kept],
            reason=None,
        )
