"""Empirical check of a variance plane against the image's own noise."""

from __future__ import annotations

__all__ = ("NoiseCheckConfig", "NoiseCheckTask")

import math
from typing import ClassVar

import numpy as np

import lsst.pex.config as pexConfig
from lsst.pipe.base import Struct, Task

from .background import BackgroundStatisticsConfig, robust_sigma, tile_cells


class NoiseCheckConfig(pexConfig.Config):
    """Configuration for `NoiseCheckTask`."""

    statistics = pexConfig.ConfigField[BackgroundStatisticsConfig](
        doc="Cells, source detection and growing used to select background pixels.",
    )
    maxCells = pexConfig.Field[int](
        doc=(
            "Number of cells, spread evenly over the image, the ratio is measured in (0: all).  16 cells of "
            "128 pixels hold ~2.5e5 pixels, a 0.3% estimate, at an eighth of the cost of a whole detector."
        ),
        default=16,
        check=lambda value: value >= 0,
    )
    minPixels = pexConfig.Field[int](
        doc="Minimum number of background pixels for a ratio; fewer and no ratio is reported.",
        default=2000,
        check=lambda value: value > 0,
    )
    tolerance = pexConfig.Field[float](
        doc="A ratio further than this from 1 is logged as a warning naming the image.",
        default=0.1,
        check=lambda value: value > 0,
    )
    doRescale = pexConfig.Field[bool](
        doc="Multiply the variance by the squared ratio, so that it matches the measured noise.",
        default=False,
    )


class NoiseCheckTask(Task):
    r"""Compare the background noise of an image with its variance plane.

    Notes
    -----
    The ratio is the robust rms of the normalised residuals
    :math:`(I - B)/\sqrt{V}` over background pixels: the pixels not masked,
    not in a detected (grown) source nor a known one, with :math:`B` the
    median background of their cell.  Where the variance is uniform this is
    exactly the robust rms of the background pixels divided by the median
    :math:`\sqrt{V}`; where the depth varies (the edges of a jittered stack)
    normalising pixel by pixel keeps deep and shallow pixels from being
    compared with one typical variance.  A ratio of 1 means the variance
    plane describes the pixel-to-pixel noise of the background.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = NoiseCheckConfig
    config: NoiseCheckConfig
    _DefaultName: ClassVar[str] = "noiseCheck"

    def run(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        good: np.ndarray,
        *,
        name: str,
        known_sources: np.ndarray | None = None,
    ) -> Struct:
        """Measure the noise ratio, warn if it is off, and give the factor
        the variance should be multiplied by.

        Parameters
        ----------
        image : `numpy.ndarray`
            The image (background not subtracted).
        variance : `numpy.ndarray`
            Its predicted variance.
        good : `numpy.ndarray` [`bool`]
            Pixels that may be used (not masked).
        name : `str`
            What to call the image in log messages (file or data ID).
        known_sources : `numpy.ndarray` [`bool`], optional
            Pixels of catalogued sources, excluded in addition to detections.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``ratio``: `float` or `None` if too few background pixels;
            ``n_pixels``: `int`, background pixels used;
            ``rescale``: `float`, the factor to apply to the variance (the
            squared ratio if ``doRescale`` and a ratio was measured, else 1).
        """
        cells = tile_cells(image.shape, self.config.statistics.cellSize)
        if 0 < self.config.maxCells < len(cells):
            picks = np.unique(np.linspace(0, len(cells) - 1, self.config.maxCells).round().astype(int))
            cells = [cells[i] for i in picks]
        samples = [
            found.values
            for cell in cells
            if (
                found := self.config.statistics.measure(
                    image, good, cell, variance=variance, known_sources=known_sources
                )
            )
            is not None
        ]
        n_pixels = sum(sample.size for sample in samples)
        if n_pixels < self.config.minPixels:
            self.log.warning(
                "%s: only %d background pixels, too few to check the variance against the image noise.",
                name,
                n_pixels,
            )
            return Struct(ratio=None, n_pixels=n_pixels, rescale=1.0)
        ratio = robust_sigma(np.concatenate(samples))
        rescale = ratio**2 if self.config.doRescale else 1.0
        if not math.isclose(ratio, 1.0, abs_tol=self.config.tolerance):
            self.log.warning(
                "%s: background noise is %.3f times the square root of the predicted variance "
                "(tolerance %.3f); %s",
                name,
                ratio,
                self.config.tolerance,
                f"variance rescaled by {rescale:.4f}."
                if self.config.doRescale
                else "the variance model or its inputs (gain, read noise, weights) are suspect.",
            )
        else:
            self.log.info("%s: background noise / predicted = %.4f from %d pixels.", name, ratio, n_pixels)
        return Struct(ratio=ratio, n_pixels=n_pixels, rescale=rescale)
