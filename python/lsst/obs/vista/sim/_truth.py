"""Truth sidecar files: exact variance, covariance and noiseless model.

A product ``<stem>.fit`` has its truth in ``truth/<stem>_truth.fits``,
outside the directory that an ingest of the products scans.  Per detector
(pawprints) or for the whole image (tiles) it holds:

``VARIANCE[.DET1.CHIPn]``
    Exact variance (ADU**2) of each pixel value as read (BSCALE applied),
    including the BSCALE**2/12 of the rounding; NaN where confidence is 0.
``MODEL[.DET1.CHIPn]``
    Expectation of each pixel value (ADU): sky plus sources, resampled,
    weighted and saturated exactly as the pixels were; NaN where
    confidence is 0.
``COVAR.DET1.CHIPn`` (pawprints)
    Cube of the covariances of each pixel with its neighbours at the lags
    named by the LAGn cards; the bilinear resampling makes them positive.
``NSAT.DET1.CHIPn`` (pawprints)
    Number of exposures saturated among the inputs of each pixel.
``SOURCES.DET1.CHIPn`` (pawprints)
    Table of the true sources centred on the detector, with the true zero
    points and PSF in its cards (`lsst.obs.vista.sim._sources`).

The header cards give the parameters of the noise model.
"""

from __future__ import annotations

__all__ = (
    "TRUTH_DIRECTORY",
    "VARIANCE_COMMENT",
    "detector_truth_hdus",
    "robust_sky_noise",
    "truth_path",
    "wcs_cards",
)

import math
import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from ._plan import StackPlan
from ._stack import COVARIANCE_LAGS, StackPixels

TRUTH_DIRECTORY = "truth"
"""Sub-directory of the output directory that holds the truth files."""

VARIANCE_COMMENT = (
    "Pixel values y (gain-normalised ADU per DIT) of one exposure with true level m",
    "and flat field f = conf/100 have var = m/(GAINEFF f) + RDNADU**2/f**2,",
    "GAINEFF = GAIN NDIT/GAINCOR (e-/ADU), RDNADU = GAINCOR RDNOISE/GAIN/sqrt(NDIT).",
    "Stack: S = sum W y / sum W with W = bilinear weight x input confidence;",
    "var(S) = sum W**2 var / (sum W)**2 + IMBSCALE**2/12 (QUANTVAR).",
    "Saturated inputs (raw level >= SATURATE ADU per DIT) are exact, var 0.",
)
"""COMMENT cards that state the noise model."""

_WCS_KEY = re.compile(r"(CTYPE\d|CRVAL\d|CRPIX\d|CD\d_\d|PV\d_\d+|RADESYS|EQUINOX)$")


def truth_path(outdir: Path, stem: str) -> Path:
    """Return the truth file of a product.

    Parameters
    ----------
    outdir : `pathlib.Path`
        Output directory of the products.
    stem : `str`
        Stem of the product, e.g. ``v20120924_00100_st``.

    Returns
    -------
    path : `pathlib.Path`
        ``outdir/truth/<stem>_truth.fits``.
    """
    return outdir / TRUTH_DIRECTORY / f"{stem}_truth.fits"


def wcs_cards(header: fits.Header) -> list[fits.Card]:
    """Return the WCS cards of an image header."""
    return [card for card in header.cards if _WCS_KEY.match(card.keyword)]


def robust_sky_noise(
    counts: np.ndarray,
    bscale: float,
    model: np.ndarray,
    variance: np.ndarray,
    confidence: np.ndarray,
    sky: float | np.ndarray,
) -> float:
    """Measure the noise of sky pixels the way SKYNOISE is defined.

    Parameters
    ----------
    counts : `numpy.ndarray`
        Stored pixel values (the values are counts x BSCALE).
    bscale : `float`
        BSCALE.
    model, variance : `numpy.ndarray`
        The truth (used only to choose pixels free of sources).
    confidence : `numpy.ndarray`
        Confidence map.
    sky : `float` or `numpy.ndarray`
        True sky level (or map).

    Returns
    -------
    sigma : `float`
        1.4826 x the median absolute deviation of the sky-subtracted pixels
        with confidence 95-105 whose true level is within 0.1 sigma of the
        sky.

    Raises
    ------
    RuntimeError
        Raised if fewer than 100 such pixels exist.

    Notes
    -----
    Images beyond ~4e6 pixels (tiles) are sampled on a regular grid of
    about that many pixels, which sets the scatter to ~0.1%.
    The values lie on a lattice of step BSCALE, a sizeable fraction of
    sigma, on which medians jump by whole steps.  Each value is therefore
    spread uniformly over its step (a fixed-seed dither), which adds
    BSCALE**2/12 to the variance (Sheppard), taken off again.
    """
    stride = max(1, int(math.sqrt(counts.size / 4e6)))
    grid = (slice(None, None, stride), slice(None, None, stride))
    sky = sky[grid] if isinstance(sky, np.ndarray) else np.float32(sky)
    with np.errstate(invalid="ignore"):
        chosen = (confidence[grid] >= 95) & (confidence[grid] <= 105)
        chosen &= model[grid] - sky < 0.1 * np.sqrt(variance[grid])
    residual = counts[grid][chosen] * bscale - (sky[chosen] if np.ndim(sky) else sky)
    if residual.size < 100:
        raise RuntimeError(f"only {residual.size} sky pixels at confidence ~100; cannot measure SKYNOISE")
    residual += bscale * (np.random.default_rng(0).uniform(size=residual.size) - 0.5)
    spread = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    return float(np.sqrt(max(spread**2 - bscale**2 / 12.0, 0.0)))


def _image_hdu(data: np.ndarray, name: str, cards: list[fits.Card]) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data=data, name=name)
    for card in cards:
        hdu.header.append(card, end=True)
    return hdu


def detector_truth_hdus(
    plan: StackPlan, detector_id: int, pixels: StackPixels, image_header: fits.Header
) -> list[fits.ImageHDU]:
    """Return the truth HDUs of one detector of a pawprint stack.

    Parameters
    ----------
    plan : `StackPlan`
        The stack.
    detector_id : `int`
        ``ESO DET CHIP NO``.
    pixels : `StackPixels`
        The detector's stack and truth.
    image_header : `astropy.io.fits.Header`
        Header of the detector's image extension.

    Returns
    -------
    hdus : `list` [`astropy.io.fits.ImageHDU`]
        VARIANCE, MODEL, COVAR and NSAT, each with the image's WCS and the
        noise parameters.
    """
    config = plan.config
    noise = plan.noise[detector_id]
    name = image_header["EXTNAME"]
    parameters = [
        fits.Card("DETECTOR", detector_id, "ESO DET CHIP NO"),
        fits.Card("SKYTRUE", plan.sky[detector_id], "[adu] true sky level (SKYLEVEL)"),
        fits.Card("SKYNOISE", image_header["SKYNOISE"], "[adu] SKYNOISE of the image"),
        fits.Card("GAIN", noise.gain, "[e-/adu] detector gain (camera.yaml)"),
        fits.Card("RDNOISE", noise.read_noise, "[e-] read noise of one read (camera.yaml)"),
        fits.Card("GAINCOR", noise.gaincor, "pixel values are raw ADU x GAINCOR"),
        fits.Card("NDIT", config.ndit, "DITs averaged per exposure"),
        fits.Card("DIT", config.dit, "[s] integration time; pixel values are per DIT"),
        fits.Card("GAINEFF", noise.effective_gain, "[e-/adu] GAIN x NDIT / GAINCOR"),
        fits.Card("RDNADU", noise.read_noise_adu, "[adu] exposure read noise at f=1"),
        fits.Card("SKYVAR1", noise.variance(plan.sky[detector_id]), "[adu2] exposure sky variance at f=1"),
        fits.Card("NICOMB", config.n_exposures, "exposures in the stack"),
        fits.Card("SATURATE", noise.saturation, "[adu] raw saturation level per DIT"),
        fits.Card("SATNORM", noise.saturation_level, "[adu] SATURATE x GAINCOR"),
        fits.Card("IMBSCALE", config.bscale, "BSCALE (quantisation step) of the image"),
        fits.Card("QUANTVAR", config.bscale**2 / 12.0, "[adu2] BSCALE**2/12 in VARIANCE"),
    ]
    wcs = wcs_cards(image_header)
    variance = _image_hdu(pixels.variance, f"VARIANCE.{name}", [*parameters, *wcs])
    variance.header["BUNIT"] = "adu**2"
    for line in VARIANCE_COMMENT:
        variance.header.add_comment(line)
    model = _image_hdu(pixels.model, f"MODEL.{name}", [*parameters[:2], *wcs])
    model.header["BUNIT"] = "adu"
    lags = [
        fits.Card(f"LAG{plane + 1}", f"{dx},{dy}", f"plane {plane + 1}: cov with pixel (x{dx:+d}, y{dy:+d})")
        for plane, (dx, dy) in enumerate(COVARIANCE_LAGS)
    ]
    covariance = _image_hdu(pixels.covariance, f"COVAR.{name}", [parameters[0], *lags])
    covariance.header["BUNIT"] = "adu**2"
    saturated = _image_hdu(pixels.saturated, f"NSAT.{name}", [parameters[0], *wcs])
    return [variance, model, covariance, saturated]
