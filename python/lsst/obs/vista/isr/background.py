"""Robust background statistics with sources masked, cell by cell.

Both the empirical noise check and the background-measured variance model
need the noise of the sky alone: pixels of detected sources (and of known
catalogue sources) must be excluded, and the sky level must be removed
locally because it is not subtracted from the images.  The image is cut into
square cells; in each cell sources are detected on the smoothed,
background-subtracted pixels and grown, and the statistics come from the
remaining pixels.  Working per cell keeps every temporary array small, and
lets a caller that needs only a global number visit a sample of cells.
"""

from __future__ import annotations

__all__ = ("BackgroundStatisticsConfig", "CellResiduals", "cell_residuals", "robust_sigma", "tile_cells")

import dataclasses
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

import lsst.pex.config as pexConfig


class BackgroundStatisticsConfig(pexConfig.Config):
    """How background pixels are selected: cells, detection and growing."""

    cellSize = pexConfig.Field[int](
        doc="Side of the square cells (pixels) in which the background level and noise are measured.",
        default=128,
        check=lambda value: value >= 16,
    )
    smoothingSigma = pexConfig.Field[float](
        doc="Sigma (pixels) of the Gaussian smoothing before source detection; about the PSF sigma.",
        default=1.0,
        check=lambda value: value > 0,
    )
    threshold = pexConfig.Field[float](
        doc=(
            "Detection threshold, in units of the robust rms of the smoothed residuals.  At 3 the peaks of "
            "pure noise are masked too, which made the measured noise 0.5% low against the truth of the "
            "tests' stacks; at 4 it agrees to 0.01%."
        ),
        default=4.0,
        check=lambda value: value > 0,
    )
    grow = pexConfig.Field[int](
        doc="Detections are grown by this many pixels to mask source wings.",
        default=4,
        check=lambda value: value >= 0,
    )
    minPixels = pexConfig.Field[int](
        doc="Minimum number of background pixels for a cell to be used.",
        default=200,
        check=lambda value: value > 0,
    )
    backgroundFilterSize = pexConfig.Field[int](
        doc=(
            "Side (pixels) of the running median that is the local background; 0 takes the cell's median "
            "as a constant background.  Where the wings of bright sources fill a cell (cutouts of ~100 "
            "pixels around a bright star), only a running median follows them; 11 pixels left the noise "
            "ratios of the real DECam CP cutouts within 0.99-1.07, the range measured independently."
        ),
        default=0,
        check=lambda value: value == 0 or (value >= 3 and value % 2 == 1),
    )

    def measure(
        self,
        image: np.ndarray,
        good: np.ndarray,
        cell: tuple[slice, slice],
        *,
        variance: np.ndarray | None = None,
        known_sources: np.ndarray | None = None,
    ) -> CellResiduals | None:
        """Call `cell_residuals` with this configuration.

        Parameters
        ----------
        image, good, cell, variance, known_sources
            As for `cell_residuals`.

        Returns
        -------
        result : `CellResiduals` or `None`
            As for `cell_residuals`.
        """
        return cell_residuals(
            image,
            good,
            cell,
            variance=variance,
            known_sources=known_sources,
            smoothing_sigma=self.smoothingSigma,
            threshold=self.threshold,
            grow=self.grow,
            min_pixels=self.minPixels,
            filter_size=self.backgroundFilterSize,
        )


_IQR_TO_SIGMA = 1.0 / 1.3489795003921634
"""Interquartile range of a unit normal distribution, inverted."""

_CLIP = 3.0
"""Clipping half-width of `robust_sigma`, in sigmas."""

_CLIPPED_VARIANCE = 0.9733369246625415
"""Variance of a unit normal distribution truncated at +-3 sigma."""

_SEED_STRIDE = 4
_MIN_SEED = 1000
"""Quantiles that seed an estimate (a clipping width, a detection threshold)
or set a cell's background level are taken from every ``_SEED_STRIDE``-th
value of samples with at least ``_MIN_SEED`` values left: partial sorts are
most of the cost of these statistics, a 1-2% error in a seed does not reach
the result, and a median over 250 or more pixels is within ~8% of a pixel's
sigma, which adds under 1% to no measured variance (0.04% for the ~4000
pixels of a typical cell)."""


def robust_sigma(values: np.ndarray, iterations: int = 2) -> float:
    """Return the standard deviation of normally distributed ``values``
    contaminated by outliers.

    Parameters
    ----------
    values : `numpy.ndarray`
        Sample (any shape); must not be empty.
    iterations : `int`
        Number of clipping passes.

    Returns
    -------
    sigma : `float`
        Standard deviation of the values within 3 sigma of their mean,
        divided by the square root of the variance a normal distribution
        keeps within +-3 sigma; the first sigma is the interquartile range
        over 1.349.

    Notes
    -----
    Quantiles alone are not enough: pixel values quantised by BSCALE (a
    third of an ADU for CASU stacks, against a noise of a few ADU) make the
    interquartile range jump between multiples of the quantum, which biased
    variance estimates by up to 12% in tests.  The clipped standard
    deviation is unbiased for quantised data (the quantisation variance is
    part of the true variance) and nearly as efficient as the plain one.
    """
    values = np.ravel(values)
    # The quartiles only seed the clipping, which the passes below refine
    # with the whole sample: a quarter of a large sample seeds as well.
    seed = values[::_SEED_STRIDE] if values.size >= _SEED_STRIDE * _MIN_SEED else values
    q25, centre, q75 = _order_statistics(seed, (0.25, 0.5, 0.75))
    sigma = float(q75 - q25) * _IQR_TO_SIGMA
    for _ in range(iterations):
        if sigma <= 0:
            break
        kept = values[np.abs(values - centre) < _CLIP * sigma]
        centre = float(kept.mean())
        sigma = float(kept.std() / np.sqrt(_CLIPPED_VARIANCE))
    return sigma


def _iqr_sigma(values: np.ndarray) -> float:
    """Interquartile range over 1.349: a detection threshold's noise, where
    the few-percent bias of `robust_sigma`'s Notes does not matter."""
    q25, q75 = _order_statistics(values, (0.25, 0.75))
    return float(q75 - q25) * _IQR_TO_SIGMA


def _order_statistics(values: np.ndarray, fractions: tuple[float, ...]) -> list[float]:
    """The values of rank ``fraction * (n - 1)``, rounded, in a 1-d sample.

    One partial sort without interpolation: `numpy.percentile` costs several
    times more on the few thousand values of a cell, and for seeds, levels
    and thresholds the difference between neighbouring ranks is immaterial.
    """
    ranks = [round(fraction * (values.size - 1)) for fraction in fractions]
    ordered = np.partition(values, ranks)
    return [float(ordered[rank]) for rank in ranks]


def _median(values: np.ndarray) -> float:
    """Median of a 1-d sample, as an order statistic."""
    return _order_statistics(values, (0.5,))[0]


def _sparse_sample(pixels: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """The selected pixels of every other row and column (all of them if
    that leaves fewer than ``_MIN_SEED``), for seeds and background levels."""
    sparse = pixels[::2, ::2][selected[::2, ::2]]
    return sparse if sparse.size >= _MIN_SEED else pixels[selected]


def tile_cells(shape: tuple[int, int], cell_size: int) -> list[tuple[slice, slice]]:
    """Cut an array shape into square cells, the last row and column of
    cells absorbing the remainder.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.
    cell_size : `int`
        Nominal side of a cell (pixels).

    Returns
    -------
    cells : `list` [`tuple` [`slice`, `slice`]]
        ``(y, x)`` slices, row by row.
    """
    return [(y, x) for y in _edges(shape[0], cell_size) for x in _edges(shape[1], cell_size)]


def _edges(n: int, cell_size: int) -> Iterator[slice]:
    count = max(n // cell_size, 1)
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield slice(int(start), int(stop))


@dataclasses.dataclass(frozen=True)
class CellResiduals:
    """Background pixels of one cell, after source masking."""

    y: slice
    x: slice
    background: float
    """Median of the cell's background pixels (image units)."""
    residuals: np.ndarray
    """Background-subtracted pixels of the cell, divided by the square root
    of the variance if one was given to `cell_residuals` (2-d, float32), NaN
    where not background."""

    @property
    def values(self) -> np.ndarray:
        """The residuals of the background pixels (1-d)."""
        return self.residuals[np.isfinite(self.residuals)]


def cell_residuals(
    image: np.ndarray,
    good: np.ndarray,
    cell: tuple[slice, slice],
    *,
    variance: np.ndarray | None = None,
    known_sources: np.ndarray | None = None,
    smoothing_sigma: float = 1.0,
    threshold: float = 3.0,
    grow: int = 4,
    min_pixels: int = 100,
    filter_size: int = 0,
) -> CellResiduals | None:
    """Return the source-free, background-subtracted pixels of one cell.

    Parameters
    ----------
    image : `numpy.ndarray`
        Full image (background not subtracted).
    good : `numpy.ndarray` [`bool`]
        Pixels that may be used at all (not masked).
    cell : `tuple` [`slice`, `slice`]
        The cell, as returned by `tile_cells`.
    variance : `numpy.ndarray`, optional
        Predicted variance of the image; if given, residuals are divided by
        its square root (normalised residuals, expected to have unit rms), and
        detection works on them, so that sources are found at a uniform
        significance where the depth varies.
    known_sources : `numpy.ndarray` [`bool`], optional
        Pixels to exclude in addition to those detected (e.g. from a
        catalogue).
    smoothing_sigma : `float`
        Sigma (pixels) of the Gaussian the residuals are smoothed with before
        detection; about the PSF sigma.
    threshold : `float`
        Detection threshold in units of the robust rms of the smoothed
        residuals.
    grow : `int`
        Detections are grown by this many pixels (square) to cover wings.
    min_pixels : `int`
        Minimum number of background pixels for a result.
    filter_size : `int`
        Side of the running median taken as the background; 0 for the
        median of the cell's background pixels, a constant.

    Returns
    -------
    result : `CellResiduals` or `None`
        `None` if fewer than ``min_pixels`` background pixels remain.

    Notes
    -----
    The cell is processed with a margin of ``grow`` plus three smoothing
    sigmas (and half the running median) so that sources just outside it are
    detected and their wings masked inside it.  With a constant background,
    detection runs on residuals from the median of all good pixels (sources
    raise it by a fraction of the noise, which the threshold absorbs) and the
    background returned is the median of the pixels left.  With a running
    median, unusable pixels are first filled with the median of the usable
    ones; detection and residuals both use the running median, and the
    background returned is its median over the background pixels.
    """
    ny, nx = image.shape
    margin = grow + int(np.ceil(3 * smoothing_sigma)) + filter_size // 2
    outer_y = slice(max(cell[0].start - margin, 0), min(cell[0].stop + margin, ny))
    outer_x = slice(max(cell[1].start - margin, 0), min(cell[1].stop + margin, nx))
    inner = (
        slice(cell[0].start - outer_y.start, cell[0].stop - outer_y.start),
        slice(cell[1].start - outer_x.start, cell[1].stop - outer_x.start),
    )
    pixels = image[outer_y, outer_x]
    usable = good[outer_y, outer_x].copy()
    if known_sources is not None:
        usable &= ~known_sources[outer_y, outer_x]
    factor: np.ndarray | None = None
    if variance is not None:
        factor = np.sqrt(variance[outer_y, outer_x], dtype=np.float32)
        np.divide(np.float32(1.0), factor, out=factor, where=usable)
    if np.count_nonzero(usable[inner]) < min_pixels:
        return None
    local: np.ndarray | None = None
    if filter_size > 0:
        filled = np.where(usable, pixels, np.float32(_median(pixels[usable])))
        local = ndimage.median_filter(filled, size=filter_size, mode="reflect")
    reference = local if local is not None else _median(_sparse_sample(pixels, usable))
    residual = _residual(pixels, reference, factor, usable)
    smoothed = ndimage.gaussian_filter(residual, smoothing_sigma, mode="constant")
    detected = smoothed > threshold * _iqr_sigma(_sparse_sample(smoothed, usable))
    if grow > 0:
        detected = ndimage.maximum_filter(detected, size=2 * grow + 1, mode="constant")
    background_pixels = usable & ~detected
    if np.count_nonzero(background_pixels[inner]) < min_pixels:
        return None
    if local is not None:
        background = _median(local[background_pixels])
        residual = _residual(pixels, local, factor, background_pixels)[inner]
    else:
        background = _median(_sparse_sample(pixels, background_pixels))
        residual = _residual(pixels, background, factor, background_pixels)[inner]
    residual[~background_pixels[inner]] = np.nan
    return CellResiduals(y=cell[0], x=cell[1], background=background, residuals=residual)


def _residual(
    pixels: np.ndarray, background: float | np.ndarray, factor: np.ndarray | None, usable: np.ndarray
) -> np.ndarray:
    """Background-subtracted, normalised pixels; zero where not usable so that
    smoothing does not spread masked values."""
    residual = np.subtract(pixels, np.asarray(background, dtype=np.float32), dtype=np.float32)
    if factor is not None:
        residual *= factor
    residual[~usable] = 0.0
    return residual
