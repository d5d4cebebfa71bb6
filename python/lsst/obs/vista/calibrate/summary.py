"""``summary_stats`` of a calibrated exposure."""

from __future__ import annotations

__all__ = (
    "MIN_NOISE_PIXELS",
    "background_noise",
    "make_summary_stats",
    "pixel_scale_at_centre",
    "zenith_distance",
)

import math

import astropy.units as u
import numpy as np
from astro_metadata_translator import ObservationInfo
from astropy.stats import sigma_clipped_stats

from lsst.images import Box, ObservationSummaryStats, SkyProjection
from lsst.images.psfs import PointSpreadFunction

from ..psf_shape import psf_moments

_MAX_NOISE_SAMPLE = 200_000
"""Background pixels (a regular subsample) the sky noise is measured on."""

MIN_NOISE_PIXELS = 1000
"""Fewest background pixels for a measured sky noise (a ~3% estimate) or
noise correlation (each lag's to ~0.03); fewer are the wings of the sources
that cover the image, or a cutout too small to say."""


def background_noise(image: np.ndarray, background_pixels: np.ndarray) -> float:
    """Return the robust rms of background pixels of a background-subtracted image.

    Parameters
    ----------
    image : `numpy.ndarray`
        Background-subtracted pixels.
    background_pixels : `numpy.ndarray` [`bool`]
        Pixels that are neither masked nor in a (grown) source.

    Returns
    -------
    noise : `float`
        3-sigma clipped standard deviation (NaN with fewer than 1000 pixels).
    """
    values = image[background_pixels]
    if values.size < MIN_NOISE_PIXELS:
        return math.nan
    step = max(1, values.size // _MAX_NOISE_SAMPLE)
    _, _, std = sigma_clipped_stats(values[::step], sigma=3.0, maxiters=5)
    return float(std)


def pixel_scale_at_centre(sky_projection: SkyProjection, bbox: Box) -> float:
    """Return the pixel scale (arcsec per pixel) at the centre of a box.

    Parameters
    ----------
    sky_projection : `lsst.images.SkyProjection`
        The WCS.
    bbox : `lsst.images.Box`
        The box.

    Returns
    -------
    scale : `float`
        Mean of the separations to the next pixel along x and along y.
    """
    x, y = bbox.x.center, bbox.y.center
    sky = sky_projection.pixel_to_sky(x=np.array([x, x + 1.0, x]), y=np.array([y, y, y + 1.0]))
    return float(0.5 * (sky[0].separation(sky[1]) + sky[0].separation(sky[2])).to_value(u.arcsec))


def zenith_distance(obs_info: ObservationInfo) -> float:
    """Return the zenith distance of an observation.

    Parameters
    ----------
    obs_info : `astro_metadata_translator.ObservationInfo`
        The observation.

    Returns
    -------
    zenith_distance : `float`
        Degrees: ``arccos(1 / airmass)`` from the boresight airmass (the
        plane-parallel atmosphere, within 0.1 degree of the true distance up
        to airmass 2), else 90 degrees less the altitude at the start; NaN
        without either.
    """
    airmass = obs_info.boresight_airmass
    if airmass is not None and math.isfinite(airmass) and airmass >= 1.0:
        return math.degrees(math.acos(1.0 / airmass))
    altaz = obs_info.altaz_begin
    if altaz is not None and math.isfinite(altaz.alt.deg):
        return 90.0 - float(altaz.alt.deg)
    return math.nan


def make_summary_stats(
    *,
    psf: PointSpreadFunction,
    sky_projection: SkyProjection,
    bbox: Box,
    exposure_time: float,
    zenith_distance: float,
    zero_point: float | None,
    sky_level: float,
    sky_noise: float,
    mean_variance: float,
    astrometric_offset_mas: float,
    astrometric_rms_mas: float,
    n_psf_stars: int,
    reference_density: float,
) -> ObservationSummaryStats:
    """Return the summary statistics Rubin's calibrateImage fills.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        Final PSF model (moments at the bbox centre).
    sky_projection : `lsst.images.SkyProjection`
        Final WCS.
    bbox : `lsst.images.Box`
        Bounding box of the exposure.
    exposure_time : `float`
        Seconds.
    zenith_distance : `float`
        Degrees (`zenith_distance`).
    zero_point : `float` or `None`
        AB magnitude of one image unit.
    sky_level, sky_noise : `float`
        Median background and background rms (image units).
    mean_variance : `float`
        Mean of the variance plane over usable pixels.
    astrometric_offset_mas, astrometric_rms_mas : `float`
        Mean and rms separation of the astrometric matches (mas).
    n_psf_stars : `int`
        Stars the PSF model was fitted to (0 for the header PSF).
    reference_density : `float`
        Reference stars per square degree on the detector.

    Returns
    -------
    stats : `lsst.images.ObservationSummaryStats`
    """
    x_centre, y_centre = bbox.x.center, bbox.y.center
    ixx, iyy, ixy = psf_moments(psf, x=x_centre, y=y_centre)
    sigma = (ixx * iyy - ixy * ixy) ** 0.25
    centre = sky_projection.pixel_to_sky(x=x_centre, y=y_centre)
    corners = sky_projection.pixel_to_sky(
        x=np.array([bbox.x.start, bbox.x.stop - 1, bbox.x.stop - 1, bbox.x.start], dtype=float),
        y=np.array([bbox.y.start, bbox.y.start, bbox.y.stop - 1, bbox.y.stop - 1], dtype=float),
    )
    return ObservationSummaryStats(
        psfSigma=sigma,
        psfArea=4.0 * math.pi * sigma * sigma,
        psfIxx=ixx,
        psfIyy=iyy,
        psfIxy=ixy,
        ra=float(centre.ra.deg),
        dec=float(centre.dec.deg),
        pixelScale=pixel_scale_at_centre(sky_projection, bbox),
        zenithDistance=zenith_distance,
        expTime=exposure_time,
        zeroPoint=math.nan if zero_point is None else zero_point,
        skyBg=sky_level,
        skyNoise=sky_noise,
        meanVar=mean_variance,
        raCorners=tuple(float(v) for v in corners.ra.deg),
        decCorners=tuple(float(v) for v in corners.dec.deg),
        astromOffsetMean=astrometric_offset_mas / 1000.0,
        astromOffsetStd=astrometric_rms_mas / 1000.0,
        nPsfStar=n_psf_stars,
        refCatSourceDensity=reference_density,
    )
