"""Pixel-to-pixel noise correlation, measured on the background, and the
factor by which it inflates the error of a weighted sum of pixels.

A resampled and stacked image (a CASU pawprint stack) has correct per-pixel
variances but correlated neighbours: the error of a flux summed over many
pixels is then larger than the per-pixel variances say (by up to
``1/sqrt(k)``, ``k`` the resampling factor).  A single exposure (a DECam CP
image) has a factor of 1.
"""

from __future__ import annotations

__all__ = ("correlation_error_factor", "measure_noise_correlation")

import math

import numpy as np
import scipy.fft

_MAX_WINDOW = 1024
"""Side of the central window (pixels) the correlation is measured in."""


def measure_noise_correlation(residual: np.ndarray, background: np.ndarray, max_lag: int) -> np.ndarray:
    """Return the correlation of normalised background residuals at small lags.

    Parameters
    ----------
    residual : `numpy.ndarray`
        ``(image - background) / sqrt(variance)``.
    background : `numpy.ndarray` [`bool`]
        Pixels that are sky: not masked and not in a (grown) source.
    max_lag : `int`
        Largest lag (pixels) per axis.

    Returns
    -------
    correlation : `numpy.ndarray`
        ``(2 max_lag + 1)**2`` array; ``correlation[max_lag + dy, max_lag + dx]``
        is the mean of ``r(y, x) r(y + dy, x + dx)`` over pairs of sky pixels
        divided by the mean of ``r**2``: 1 at zero lag, symmetric, 0 where no
        pair exists.  Measured in a central window of at most 1024 pixels.
    """
    height, width = residual.shape
    rows = slice(max(0, (height - _MAX_WINDOW) // 2), max(0, (height - _MAX_WINDOW) // 2) + _MAX_WINDOW)
    columns = slice(max(0, (width - _MAX_WINDOW) // 2), max(0, (width - _MAX_WINDOW) // 2) + _MAX_WINDOW)
    values = np.where(background[rows, columns], residual[rows, columns], 0.0).astype(np.float64)
    weight = background[rows, columns].astype(np.float64)
    size = 2 * max_lag + 1
    correlation = np.zeros((size, size))
    zero = float(np.sum(values * values)) / max(float(weight.sum()), 1.0)
    if not zero > 0:
        correlation[max_lag, max_lag] = 1.0
        return correlation
    # Sums of products at every lag by FFT: the autocorrelation of the sky
    # values, and of the sky mask for the number of pairs.  Zero padding by
    # ``max_lag`` keeps the circular correlation from wrapping at the lags kept.
    h, w = values.shape
    shape = (scipy.fft.next_fast_len(h + max_lag, real=True), scipy.fft.next_fast_len(w + max_lag, real=True))
    transform = scipy.fft.rfft2(np.stack([values, weight]), s=shape)
    products = scipy.fft.irfft2(transform * np.conj(transform), s=shape)
    lags = np.arange(-max_lag, max_lag + 1)
    sums = products[0][np.ix_(lags % shape[0], lags % shape[1])]
    # The mask's autocorrelation counts pairs: integers up to FFT round-off.
    pairs = np.rint(products[1][np.ix_(lags % shape[0], lags % shape[1])])
    correlation = np.divide(sums, pairs * zero, out=correlation, where=pairs > 0)
    correlation[max_lag, max_lag] = 1.0
    return correlation


def correlation_error_factor(correlation: np.ndarray, weights: np.ndarray) -> float:
    """Return the factor correlated noise multiplies a weighted sum's error by.

    Parameters
    ----------
    correlation : `numpy.ndarray`
        Output of `measure_noise_correlation`.
    weights : `numpy.ndarray`
        The weights of the sum (a PSF kernel for PSF fluxes, a disc for an
        aperture).

    Returns
    -------
    factor : `float`
        ``sqrt(sum_ab rho(a, b) A(a, b) / A(0, 0))`` with ``A`` the
        autocorrelation of ``weights``: the ratio of the true error of
        ``sum(w I)`` to the one computed from per-pixel variances, for
        noise of uniform variance (at least 1 is not enforced: anticorrelated
        noise gives less).
    """
    max_lag = correlation.shape[0] // 2
    weights = np.asarray(weights, dtype=np.float64)
    h, w = weights.shape
    # Imported here: scipy.signal (with scipy.stats) takes a third of a
    # CPU-second to import, and every process that loads a pipeline holding
    # calibrateImage imports this module (processCcd.py, pipetask qgraph,
    # butler transfer-from-graph ...).
    import scipy.signal

    # The autocorrelation of the weights at the lags the correlation has only.

    full = scipy.signal.correlate(weights, weights, mode="full", method="fft")
    autocorrelation = np.zeros_like(correlation, dtype=np.float64)
    ly, lx = min(max_lag, h - 1), min(max_lag, w - 1)
    autocorrelation[max_lag - ly : max_lag + ly + 1, max_lag - lx : max_lag + lx + 1] = full[
        h - 1 - ly : h + ly, w - 1 - lx : w + lx
    ]
    ratio = float(np.sum(correlation * autocorrelation)) / float(autocorrelation[max_lag, max_lag])
    return math.sqrt(max(ratio, 0.0))
