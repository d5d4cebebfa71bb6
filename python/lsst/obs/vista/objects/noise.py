"""The real noise of a coadd: its per-pixel variance plane corrected by what
its noise realisation shows, pixel to pixel correlation included.

Resampling correlates neighbouring coadd pixels, so the error of a sum of
pixels (a filtered pixel, a PSF flux, an aperture flux) is larger than the
variance plane says.  The coadd's noise realisation has the same
correlation (it went through the same warps and weights), so the
correlation measured on it gives the factor for any weighted sum.
"""

from __future__ import annotations

__all__ = ("CoaddNoise",)

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..calibrate.noise_correlation import correlation_error_factor, measure_noise_correlation


class CoaddNoise:
    """Error factors of weighted pixel sums on one coadd.

    Parameters
    ----------
    noise : `numpy.ndarray`
        The coadd's noise realisation.
    variance : `numpy.ndarray`
        Its variance plane.
    usable : `numpy.ndarray` [`bool`]
        Pixels with data.
    max_lag : `int`
        Largest lag (pixels) of the correlation measured: resampling with
        Lanczos-3 correlates pixels up to three input pixels apart.
    """

    def __init__(self, noise: np.ndarray, variance: np.ndarray, usable: np.ndarray, max_lag: int) -> None:
        good = usable & np.isfinite(noise) & np.isfinite(variance) & (variance > 0)
        normalised = np.where(good, noise / np.sqrt(np.where(good, variance, 1.0)), 0.0)
        self.pixel_ratio = float(np.std(normalised[good])) if good.any() else 1.0
        """Standard deviation of the noise realisation in units of the
        variance plane's sigma: 1 if the variance plane is right per pixel."""
        self.correlation = measure_noise_correlation(normalised, good, max_lag)
        """Correlation of neighbouring pixels (`measure_noise_correlation`)."""
        self._cache: dict[object, float] = {}

    _RATIO_KEY = "NOISE_PIXEL_RATIO"
    _CORRELATION_KEY = "NOISE_CORRELATION"

    @classmethod
    def of_planes(cls, planes: Any, max_lag: int, recorded: Mapping[str, Any] | None = None) -> CoaddNoise:
        """Return the noise detection recorded (``recorded``: its table's
        metadata), or measure it on the planes (`~.detection.coadd_planes`)
        if it recorded none."""
        noise = cls.from_metadata(recorded, max_lag) if recorded is not None else None
        return noise or cls(planes.noise, planes.variance, planes.usable, max_lag)

    @property
    def metadata(self) -> dict[str, Any]:
        """The measurement as table metadata (`from_metadata` reads it)."""
        return {self._RATIO_KEY: self.pixel_ratio, self._CORRELATION_KEY: self.correlation.ravel().tolist()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], max_lag: int) -> CoaddNoise | None:
        """Return the noise a detection table's metadata records, `None` if
        it records none or one of fewer lags than ``max_lag``."""
        if cls._CORRELATION_KEY not in metadata or cls._RATIO_KEY not in metadata:
            return None
        values = np.asarray(metadata[cls._CORRELATION_KEY], dtype=np.float64)
        size = math.isqrt(values.size)
        if size * size != values.size or size < 2 * max_lag + 1:
            return None
        lags = size // 2
        noise = cls.__new__(cls)
        noise.pixel_ratio = float(metadata[cls._RATIO_KEY])
        correlation = values.reshape(size, size)
        noise.correlation = correlation[
            lags - max_lag : lags + max_lag + 1, lags - max_lag : lags + max_lag + 1
        ]
        noise._cache = {}
        return noise

    def factor(self, weights: np.ndarray, key: object = None) -> float:
        """Return the factor by which the variance-plane error of a weighted
        sum of pixels is to be multiplied.

        Parameters
        ----------
        weights : `numpy.ndarray`
            The weights of the sum (a PSF kernel, a disc).
        key : `object`, optional
            A hashable name of the weights: the factor is computed once per
            key.

        Returns
        -------
        factor : `float`
            ``pixel_ratio`` times `correlation_error_factor`.
        """
        if key is not None and key in self._cache:
            return self._cache[key]
        value = self.pixel_ratio * correlation_error_factor(self.correlation, weights)
        if key is not None:
            self._cache[key] = value
        return value

    def disc_factor(self, radius: float) -> float:
        """Return `factor` for a circular aperture of ``radius`` pixels
        (computed for the radius rounded to half a pixel)."""
        rounded = max(0.5, round(2.0 * radius) / 2.0)
        if ("disc", rounded) in self._cache:
            return self._cache["disc", rounded]
        half = int(math.ceil(rounded))
        y, x = np.mgrid[-half : half + 1, -half : half + 1]
        disc = (x * x + y * y <= rounded * rounded).astype(float)
        return self.factor(disc, key=("disc", rounded))
