"""Exposures, their noise, and their exact combination into a stack.

Noise model of one exposure (pixel k, gain-normalised ADU per DIT)
---------------------------------------------------------------------
CASU pixel values are raw ADU averaged over the NDIT reads, divided by the
flat field ``f_k`` (the input confidence map / 100) and multiplied by the
detector's GAINCOR.  For a true level ``m_k`` (sky + sources) the value
``y_k`` has expectation ``m_k`` and variance::

    var_k = m_k / (g_eff f_k) + sigma_r**2 / f_k**2
    g_eff = gain * NDIT / GAINCOR                      (e- per ADU)
    sigma_r = GAINCOR * read_noise / gain / sqrt(NDIT)  (ADU)

with ``gain`` (e-/ADU) and ``read_noise`` (e-) from camera.yaml.  The noise
is drawn from a Gaussian of exactly that variance (the Poisson limit: the
sky alone gives >~ 1000 e- per pixel).  A pixel whose expected raw level
``f_k m_k / GAINCOR`` reaches the detector's saturation (ADU per DIT) reads
exactly ``saturation * GAINCOR / f_k`` with no noise; bad pixels
(confidence 0) carry no information.

Stack (pixel p)
---------------
Each exposure i is a translation of the stack grid by a fractional offset,
so it is resampled with the same bilinear weights ``w_ik`` at every
pixel, and the stack is the confidence-weighted mean of all inputs::

    W_ik = w_ik c_ik,  S_p = sum_ik W_ik y_ik / sum_ik W_ik
    var(S_p) = sum_ik W_ik**2 var_ik / (sum_ik W_ik)**2 + BSCALE**2 / 12
    cov(S_p, S_q) = sum_ik W_ik(p) W_ik(q) var_ik / (sum W(p) sum W(q))

the last term of the variance being the rounding to BSCALE, independent
between pixels.  ``sum_ik W_ik`` is the stack confidence before its
normalisation to a median of 100.
"""

from __future__ import annotations

__all__ = (
    "COVARIANCE_LAGS",
    "DetectorNoise",
    "Exposure",
    "ExposureMaker",
    "StackAccumulator",
    "StackPixels",
    "input_confidence",
)

import dataclasses
import math
from functools import lru_cache

import numpy as np

from ._config import SimulationConfig
from ._random import Stream, generator

COVARIANCE_LAGS = ((1, 0), (0, 1), (1, 1), (1, -1))
"""Lags (dx, dy) of the covariance planes: plane n at pixel (x, y) is the
covariance of that pixel with pixel (x + dx, y + dy)."""


_BLOCK = 16
"""Stack rows resampled together (see `StackAccumulator`)."""


@dataclasses.dataclass(frozen=True)
class DetectorNoise:
    """Noise parameters of one detector in a synthetic exposure."""

    gain: float
    """Gain (e-/ADU) from camera.yaml."""

    read_noise: float
    """Read noise (e-) of one read (a correlated double sample)."""

    saturation: float
    """Raw level (ADU per DIT) at which the detector saturates."""

    gaincor: float
    """CASU gain correction: pixel values are raw ADU x GAINCOR."""

    ndit: int
    """DITs averaged in one exposure."""

    @classmethod
    def for_detector(cls, detector_id: int, config: SimulationConfig) -> DetectorNoise:
        """Return the noise parameters of a detector.

        Parameters
        ----------
        detector_id : `int`
            ``ESO DET CHIP NO``.
        config : `SimulationConfig`
            The simulation.

        Returns
        -------
        noise : `DetectorNoise`
            Parameters from camera.yaml; GAINCOR is the mean gain of the
            16 detectors over this one's, i.e. detectors of equal quantum
            efficiency normalised to a common gain.
        """
        camera = config.camera
        detector = camera.detectors[detector_id]
        mean_gain = sum(d.gain for d in camera.detectors.values()) / len(camera.detectors)
        return cls(
            gain=detector.gain,
            read_noise=detector.read_noise,
            saturation=detector.saturation,
            gaincor=round(mean_gain / detector.gain, 6),
            ndit=config.ndit,
        )

    @property
    def effective_gain(self) -> float:
        """Electrons per gain-normalised ADU of one exposure: gain x NDIT /
        GAINCOR."""
        return self.gain * self.ndit / self.gaincor

    @property
    def read_noise_adu(self) -> float:
        """Read noise of one exposure in gain-normalised ADU at f = 1."""
        return self.gaincor * self.read_noise / self.gain / math.sqrt(self.ndit)

    @property
    def saturation_level(self) -> float:
        """Saturation in gain-normalised ADU at f = 1."""
        return self.saturation * self.gaincor

    def variance(self, level: float | np.ndarray) -> float | np.ndarray:
        """Return the variance of an unsaturated pixel at f = 1.

        Parameters
        ----------
        level : `float` or `numpy.ndarray`
            True level (gain-normalised ADU per DIT).

        Returns
        -------
        variance : `float` or `numpy.ndarray`
            ``level / effective_gain + read_noise_adu**2``.
        """
        return level / self.effective_gain + self.read_noise_adu**2


class ExposureMaker:
    """Single exposures of one detector, whose flat field (confidence map)
    is the same in every exposure.

    Parameters
    ----------
    noise : `DetectorNoise`
        The detector's noise parameters.
    confidence : `numpy.ndarray`
        Its input confidence map (percent); ``f = confidence / 100``.
    """

    def __init__(self, noise: DetectorNoise, confidence: np.ndarray) -> None:
        good = confidence > 0
        flat = np.where(good, confidence / 100.0, 1.0)
        # Per-pixel factors of the variance and the saturated level; bad
        # pixels get variance 0 and never saturate (they carry no weight).
        self._poisson = np.where(good, 1.0 / (noise.effective_gain * flat), 0.0).astype(np.float32)
        self._read = np.where(good, (noise.read_noise_adu / flat) ** 2, 0.0).astype(np.float32)
        self._saturated_value = np.where(good, noise.saturation_level / flat, np.inf).astype(np.float32)

    def expose(self, level: np.ndarray, rng: np.random.Generator) -> Exposure:
        """Make one exposure.

        Parameters
        ----------
        level : `numpy.ndarray`
            True level (sky + sources, gain-normalised ADU per DIT), float32.
        rng : `numpy.random.Generator`
            Source of the noise.

        Returns
        -------
        exposure : `Exposure`
            The flat-fielded pixel values and their truth.
        """
        values = rng.standard_normal(level.shape, dtype=np.float32)
        variance = np.empty_like(level)
        saturated = level >= self._saturated_value
        expected = np.where(saturated, self._saturated_value, level) if saturated.any() else level
        # Blocks of rows keep the passes in the CPU cache.
        for first in range(0, level.shape[0], _BLOCK):
            rows = slice(first, first + _BLOCK)
            block = variance[rows]
            np.multiply(level[rows], self._poisson[rows], out=block)
            block += self._read[rows]
            block[saturated[rows]] = 0.0
            noise = values[rows]
            noise *= np.sqrt(block)
            noise += expected[rows]
        return Exposure(values=values, expected=expected, variance=variance, saturated=saturated)


@dataclasses.dataclass(frozen=True)
class Exposure:
    """One flat-fielded exposure and its truth (float32 arrays)."""

    values: np.ndarray
    """Pixel values (gain-normalised ADU per DIT)."""

    expected: np.ndarray
    """Their expectation: the true level, or the saturated value."""

    variance: np.ndarray
    """Their variance (0 where saturated or bad)."""

    saturated: np.ndarray
    """`True` where the detector saturated."""


def input_confidence(detector_id: int, config: SimulationConfig) -> np.ndarray:
    """Return the confidence map of a detector's single exposures.

    Parameters
    ----------
    detector_id : `int`
        ``ESO DET CHIP NO``.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    confidence : `numpy.ndarray`
        ``(size, size)`` int16 percentages, like a CASU confidence map: a
        normalised flat field (median 100, about +-7% in large-scale
        gradients and pixel-to-pixel response) with two dead columns, a dead
        patch and a few dead pixels at 0.  The same for every exposure and
        stack.
    """
    return _input_confidence(detector_id, config.seed, config.size).copy()


@lru_cache(maxsize=32)
def _input_confidence(detector_id: int, seed: int, size: int) -> np.ndarray:
    rng = generator(seed, Stream.CONFIDENCE, detector_id)
    axis = ((np.arange(size) + 0.5) / size).astype(np.float32)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=2)
    # Response 1 + gradient + pixel noise has median 1 (both terms are
    # symmetric about 0), so the percentages have median 100.
    response = 0.04 * np.cos(math.pi * axis[None, :] + phases[0])
    response = response * np.cos(math.pi * axis[:, None] + phases[1]) + 1.0
    response += 0.05 * rng.standard_normal((size, size), dtype=np.float32)
    confidence = np.clip(np.rint(100.0 * response), 1, 200).astype(np.int16)
    confidence[:, rng.choice(size, size=2, replace=False)] = 0
    radius = max(3.0, size / 40.0)
    cx, cy = rng.uniform(0.2 * size, 0.8 * size, size=2)
    yy, xx = np.ogrid[:size, :size]
    confidence[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = 0
    dead = rng.choice(size * size, size=max(1, size * size // 2000), replace=False)
    confidence.ravel()[dead] = 0
    return confidence


@dataclasses.dataclass(frozen=True)
class StackPixels:
    """One detector of a stack and its exact truth."""

    counts: np.ndarray
    """Written pixel values, int32 (physical value = counts x BSCALE)."""

    confidence: np.ndarray
    """Stack confidence, int16 percent (median 100; 0 where no data)."""

    model: np.ndarray
    """Expectation of the physical pixel values (float32, NaN where no
    data)."""

    variance: np.ndarray
    """Variance of the physical pixel values (float32, NaN where no data)."""

    covariance: np.ndarray
    """``(4, ny, nx)`` covariances with the neighbours at
    `COVARIANCE_LAGS` (float32; 0 at the edges, NaN where no data)."""

    saturated: np.ndarray
    """Number of exposures saturated in the inputs of each pixel (int16)."""

    bscale: float
    """BSCALE of ``counts``."""

    @property
    def image(self) -> np.ndarray:
        """Physical pixel values as a reader sees them (float64)."""
        return self.counts * self.bscale


class StackAccumulator:
    """Bilinear, confidence-weighted combination of translated exposures,
    with its exact variance and neighbour covariances.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the stack.
    confidence : `numpy.ndarray`
        Input confidence map of the exposures (their weights).

    Notes
    -----
    Stack pixel x = n + j (n the integer part of the exposure's offset, t
    its fraction, j = 0..size) interpolates exposure pixels j - 1 (weight
    t) and j (weight 1 - t); a border of zeros around the exposure (no
    data) makes the kernel the same at every pixel.  Arrays are float32,
    which keeps the per-exposure passes memory-bound at half the cost; sums
    of at most 4 x NICOMB positive terms lose < 1e-6.
    """

    def __init__(self, shape: tuple[int, int], confidence: np.ndarray) -> None:
        self._shape = shape
        ny, nx = shape
        size = confidence.shape[0]
        self._weighted = np.zeros(shape, np.float32)
        self._weight = np.zeros(shape, np.float32)
        self._expected = np.zeros(shape, np.float32)
        self._variance = np.zeros(shape, np.float32)
        self._covariance = np.zeros((len(COVARIANCE_LAGS), ny, nx), np.float32)
        self._saturated = np.zeros(shape, np.int16)
        self._confidence = confidence.astype(np.float32)
        self._squared = self._confidence**2
        self._good = confidence > 0
        self._padded_confidence = np.pad(self._confidence, 1)
        # Work buffers for one block of rows, small enough to stay in the
        # CPU cache through all the passes over the block.
        self._padded = np.zeros((_BLOCK + 1, size + 2), np.float32)
        self._rows = np.empty((_BLOCK + 1, size + 1), np.float32)
        self._rows_scratch = np.empty((_BLOCK + 1, size + 1), np.float32)
        self._out = np.empty((_BLOCK, size + 1), np.float32)
        self._out_scratch = np.empty((_BLOCK, size + 1), np.float32)

    def add(self, origin: np.ndarray, exposure: Exposure) -> None:
        """Resample one exposure onto the stack grid and add it.

        Parameters
        ----------
        origin : `numpy.ndarray`
            Position (x, y) of the exposure's pixel (0, 0) on the stack grid
            (non-negative).
        exposure : `Exposure`
            The exposure.
        """
        size = self._confidence.shape[0]
        (nx0, ny0), (tx, ty) = np.divmod(origin, 1.0)
        saturated = exposure.saturated & self._good if exposure.saturated.any() else None
        for first in range(0, size + 1, _BLOCK):
            last = min(first + _BLOCK, size + 1)
            region = (slice(int(ny0) + first, int(ny0) + last), slice(int(nx0), int(nx0) + size + 1))
            self._add_block(first, last, region, exposure, saturated, tx, ty)

    def _fill(self, first: int, last: int, *factors: np.ndarray) -> np.ndarray:
        """Put the product of exposure arrays, rows first - 1 to last - 1
        (zero off the exposure), in the padded block buffer."""
        size = self._confidence.shape[0]
        count = last - first + 1
        low, high = max(first - 1, 0), min(last, size)
        target = self._padded[low - (first - 1) : high - (first - 1), 1:-1]
        np.multiply(factors[0][low:high], factors[1][low:high], out=target)
        self._padded[: low - (first - 1)] = 0.0
        self._padded[high - (first - 1) : count] = 0.0
        return self._padded[:count]

    def _interpolate(self, padded: np.ndarray, tx: float, ty: float, squared: bool) -> np.ndarray:
        """Apply the bilinear weights (or their squares) to padded rows."""
        rows, rows_scratch = self._rows[: len(padded)], self._rows_scratch[: len(padded)]
        out, out_scratch = self._out[: len(padded) - 1], self._out_scratch[: len(padded) - 1]
        wx, wy = ((t * t, (1.0 - t) ** 2) if squared else (t, 1.0 - t) for t in (tx, ty))
        _two_tap(padded[:, :-1], padded[:, 1:], wx, rows, rows_scratch)
        _two_tap(rows[:-1], rows[1:], wy, out, out_scratch)
        return out

    def _add_block(
        self,
        first: int,
        last: int,
        region: tuple[slice, slice],
        exposure: Exposure,
        saturated: np.ndarray | None,
        tx: float,
        ty: float,
    ) -> None:
        """Add the stack rows ``first:last`` (relative to the exposure's
        region) of one exposure."""
        for target, quantity in ((self._weighted, exposure.values), (self._expected, exposure.expected)):
            padded = self._fill(first, last, self._confidence, quantity)
            target[region] += self._interpolate(padded, tx, ty, squared=False)
        padded = self._padded_confidence[first : last + 1]
        self._weight[region] += self._interpolate(padded, tx, ty, squared=False)
        padded = self._fill(first, last, self._squared, exposure.variance)
        self._variance[region] += self._interpolate(padded, tx, ty, squared=True)
        # An input pixel reached by two stack pixels correlates them: the
        # right tap of p is the left tap of p + (1, 0), the upper one the
        # lower one of p + (0, 1), the upper right one the lower left one of
        # p + (1, 1).  The lag (1, -1) is the lag (1, 1) one row down, made
        # in `finish`.
        out, scratch = self._out[: last - first], self._out_scratch[: last - first]
        sx, sy = tx * (1.0 - tx), ty * (1.0 - ty)
        if sx:
            _two_tap(padded[:-1, 1:], padded[1:, 1:], (ty * ty, (1.0 - ty) ** 2), out, scratch)
            out *= np.float32(sx)
            self._covariance[0][region] += out
        if sy:
            _two_tap(padded[1:, :-1], padded[1:, 1:], (tx * tx, (1.0 - tx) ** 2), out, scratch)
            out *= np.float32(sy)
            self._covariance[1][region] += out
        if sx and sy:
            np.multiply(padded[1:, 1:], np.float32(sx * sy), out=out)
            self._covariance[2][region] += out
        if saturated is not None:
            padded = self._fill(first, last, saturated, self._good)
            self._saturated[region] += self._interpolate(padded, tx, ty, squared=False) > 0

    def finish(self, bscale: float) -> StackPixels:
        """Return the stack and its truth; the accumulator is used up.

        Parameters
        ----------
        bscale : `float`
            Quantisation step of the written pixels.

        Returns
        -------
        pixels : `StackPixels`
            The stack, its confidence normalised to median 100, and its
            truth.
        """
        weight = self._weight
        # The median of every third pixel in each direction is the median
        # to < 0.1%, well within the rounding of the percentages.
        sample = weight[::3, ::3]
        scale = np.float32(100.0 / np.median(sample[sample > 0]))
        confidence = np.rint(weight * scale).astype(np.int16)
        # Pixels whose confidence rounds to 0 are dropped, so that
        # confidence 0 means exactly "no data".
        data = confidence > 0
        no_data = ~data
        inverse = np.divide(np.float32(1.0), weight, out=np.zeros_like(weight), where=data)
        image = self._weighted
        image *= inverse
        image *= np.float32(1.0 / bscale)
        counts = np.rint(image, out=image).astype(np.int32)
        model = self._expected
        model *= inverse
        variance = self._variance
        variance *= inverse
        variance *= inverse
        variance += np.float32(bscale**2 / 12.0)
        covariance = self._covariance
        # The lag (1, -1) numerator is that of lag (1, 1) one row down.
        covariance[3][1:] = covariance[2][:-1]
        ny, nx = self._shape
        for plane, (dx, dy) in zip(covariance, COVARIANCE_LAGS, strict=True):
            plane *= inverse
            # Pixels whose neighbour is off the grid have a zero numerator.
            rows = slice(max(0, -dy), ny - max(0, dy))
            partner_rows = slice(max(0, dy), ny - max(0, -dy))
            plane[rows, : nx - dx] *= inverse[partner_rows, dx:]
        for array in (model, variance, *covariance):
            array[no_data] = np.nan
        self._saturated[no_data] = 0
        return StackPixels(
            counts=counts,
            confidence=confidence,
            model=model,
            variance=variance,
            covariance=covariance,
            saturated=self._saturated,
            bscale=bscale,
        )


def _two_tap(
    low: np.ndarray, high: np.ndarray, weights: tuple[float, float], out: np.ndarray, scratch: np.ndarray
) -> None:
    """``out = weights[0] * low + weights[1] * high``, in place."""
    np.multiply(low, np.float32(weights[0]), out=out)
    np.multiply(high, np.float32(weights[1]), out=scratch)
    out += scratch
