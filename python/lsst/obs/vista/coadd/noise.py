"""A noise realisation of an input image with its per-pixel variance and,
for a resampled stack, its pixel-to-pixel correlation.

Rubin warps a realisation of white noise of the input variance
(``direct_warp_noise0``), which records the covariance that warping adds.
A CASU pawprint stack is itself resampled, so its neighbouring pixels are
already correlated; colouring the white noise with the correlation measured
on the input's sky gives a realisation whose warp and coadd carry both.
"""

from __future__ import annotations

__all__ = ("colouring_kernel", "noise_realization")

import numpy as np
import scipy.fft


def colouring_kernel(correlation: np.ndarray) -> np.ndarray:
    """Return the kernel ``h`` whose autocorrelation is ``correlation``.

    Parameters
    ----------
    correlation : `numpy.ndarray`
        ``(2L + 1)**2`` correlation of the noise at lags up to ``L`` (1 at
        lag 0), as `lsst.obs.vista.calibrate.noise_correlation.measure_noise_correlation`
        returns it.

    Returns
    -------
    kernel : `numpy.ndarray`
        The zero-phase square root of the correlation's power spectrum
        (negative powers, from measurement noise, set to 0), on a grid four
        times the correlation's size, scaled so that ``sum(h**2) = 1``:
        white noise of unit variance convolved with it has unit variance
        and the given correlation.
    """
    size = 4 * correlation.shape[0]
    lag = correlation.shape[0] // 2
    padded = np.zeros((size, size))
    for dy in range(-lag, lag + 1):
        for dx in range(-lag, lag + 1):
            padded[dy % size, dx % size] = correlation[lag + dy, lag + dx]
    power = np.clip(np.fft.fft2(padded).real, 0.0, None)
    kernel = np.fft.fftshift(np.fft.ifft2(np.sqrt(power)).real)
    return kernel / np.sqrt(np.sum(kernel**2))


def noise_realization(
    variance: np.ndarray, rng: np.random.Generator, kernel: np.ndarray | None = None
) -> np.ndarray:
    """Return Gaussian noise with a given per-pixel variance.

    Parameters
    ----------
    variance : `numpy.ndarray`
        Per-pixel variance (non-finite or negative: no noise there).
    rng : `numpy.random.Generator`
        Source of the draws.
    kernel : `numpy.ndarray`, optional
        `colouring_kernel` of the input's correlation; white noise if `None`.

    Returns
    -------
    noise : `numpy.ndarray`
        float32 noise of ``variance``'s shape.
    """
    # In float32 throughout, the precision of the result: half the time of
    # float64 draws and transforms.
    unit = rng.standard_normal(variance.shape, dtype=np.float32)
    if kernel is not None and kernel.size > 1:
        unit = _convolve_same(unit, kernel.astype(np.float32))
    sigma = np.sqrt(np.where(np.isfinite(variance) & (variance > 0), variance, 0.0), dtype=np.float32)
    return unit * sigma


def _convolve_same(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Return the linear convolution of ``values`` with ``kernel`` over
    ``values``' pixels, by FFT: the kernel's element ``(n - 1) // 2`` along
    each axis of length ``n`` is taken as its centre.

    The transforms are zero-padded to at least the full convolution's size,
    so that nothing wraps around; `scipy.fft` alone is used because
    `scipy.signal`, which offers the same, takes a third of a CPU-second to
    import (with `scipy.stats`) in every process that warps.
    """
    full = tuple(v + k - 1 for v, k in zip(values.shape, kernel.shape, strict=True))
    shape = tuple(scipy.fft.next_fast_len(size, real=True) for size in full)
    product = scipy.fft.rfft2(values, shape) * scipy.fft.rfft2(kernel, shape)
    convolved = scipy.fft.irfft2(product, shape)
    start = tuple((k - 1) // 2 for k in kernel.shape)
    return convolved[tuple(slice(s, s + v) for s, v in zip(start, values.shape, strict=True))]
