"""Sky background of a calibrated exposure: a mesh estimate with sources
masked iteratively, kept as an lsst-images `SplineField`."""

from __future__ import annotations

__all__ = ("MeshBackgroundConfig", "MeshBackgroundTask", "find_quantization_step", "spline_nodes")

import math
from typing import ClassVar

import astropy.units as u
import numpy as np
import scipy.ndimage
import sep
from astropy.stats import sigma_clipped_stats

import lsst.pex.config as pexConfig
from lsst.images import Box
from lsst.images.fields import SplineField
from lsst.pipe.base import Struct, Task

from .skipped import say_skipped


class MeshBackgroundConfig(pexConfig.Config):
    """Configuration for `MeshBackgroundTask`."""

    meshSize = pexConfig.Field[int](
        doc=(
            "Side (pixels) of the cells whose clipped mode (SExtractor's estimator, through sep) samples "
            "the background.  Large enough to hold many sky pixels between sources, small enough to follow "
            "the sky's real variation across a detector."
        ),
        default=128,
        check=lambda value: value >= 8,
    )
    filterSize = pexConfig.Field[int](
        doc="Side (cells) of the median filter of the mesh, which removes cells biased by a bright source.",
        default=3,
        check=lambda value: value >= 1 and value % 2 == 1,
    )
    iterations = pexConfig.Field[int](
        doc=(
            "Estimates of the background; before each one after the first, the sources detected above the "
            "previous estimate are masked (so their wings do not raise the sky)."
        ),
        default=2,
        check=lambda value: value >= 1,
    )
    maskThreshold = pexConfig.Field[float](
        doc="Threshold (sigma of the variance plane) of the detections masked between iterations.",
        default=3.0,
        check=lambda value: value > 0,
    )
    maskMinArea = pexConfig.Field[int](
        doc="Minimum area (pixels) of a detection masked between iterations.",
        default=5,
        check=lambda value: value >= 1,
    )
    minFreeFraction = pexConfig.Field[float](
        doc=(
            "Sources are not masked (the previous estimate is kept) when masking them would leave fewer "
            "than this fraction of the usable pixels, or no cell with enough unmasked pixels: on a cutout "
            "filled by a bright star's wings no sky would be measured at all."
        ),
        default=0.2,
        check=lambda value: 0 < value < 1,
    )
    doDequantize = pexConfig.Field[bool](
        doc=(
            "Add uniform noise of one quantisation step to the pixels the background is estimated from, "
            "when they are quantised (CASU stacks are integers times BSCALE): the clipped mode of "
            "quantised values sticks to a step, biasing the sky by up to half a step, which a large "
            "aperture sums over hundreds of pixels.  The subtracted image itself is not changed."
        ),
        default=True,
    )
    maskGrow = pexConfig.Field[int](
        doc="Pixels by which masked detections are grown, to cover wings below the threshold.",
        default=3,
        check=lambda value: value >= 0,
    )


_QUANTIZATION_SAMPLE = 100_000
"""Pixels (a regular subsample) the quantisation step is looked for in."""


def find_quantization_step(values: np.ndarray) -> float:
    """Return the quantisation step of pixel values, if they are quantised.

    Parameters
    ----------
    values : `numpy.ndarray`
        Usable pixel values.

    Returns
    -------
    step : `float`
        The smallest difference between distinct values of a subsample when
        every difference shorter than four of it is a multiple of it (integers times BSCALE, to
        float32 precision), else 0 (also for steps of a few float32 units
        in the last place: continuous values).
    """
    finite = values[np.isfinite(values)]
    if finite.size < 100:
        return 0.0
    sample = np.unique(finite[:: max(1, finite.size // _QUANTIZATION_SAMPLE)].astype(np.float64))
    gaps = np.diff(sample)
    if gaps.size == 0:
        return 0.0
    step = float(gaps.min())
    resolution = float(np.spacing(np.float32(np.max(np.abs(sample)))))
    if step <= 64 * resolution:
        # Distinct values one float32 ulp apart: continuous data.
        return 0.0
    tolerance = 1e-3 * step + 4 * resolution
    # Only short gaps are tested: far apart, a BSCALE that is not exactly
    # representable (0.33333333) drifts from a multiple of the step.
    multiples = gaps[gaps < 4 * step] / step
    if np.all(np.abs(multiples - np.round(multiples)) * step <= tolerance):
        return step
    return 0.0


def spline_nodes(length: int, mesh_size: int) -> np.ndarray:
    """Return the node coordinates of a background spline along one axis.

    Parameters
    ----------
    length : `int`
        Number of pixels along the axis.
    mesh_size : `int`
        Side of a background cell.

    Returns
    -------
    nodes : `numpy.ndarray`
        Centres of ``ceil(length / mesh_size)`` equal cells (0-based array
        coordinates) with the first and last pixels added, so that the spline
        interpolates, never extrapolates,
        over the whole image.
    """
    count = max(1, math.ceil(length / mesh_size))
    centres = (np.arange(count) + 0.5) * (length / count) - 0.5
    return np.unique(np.concatenate([[0.0], np.clip(centres, 0.0, length - 1.0), [length - 1.0]]))


class MeshBackgroundTask(Task):
    """Estimate and model the sky background.

    Notes
    -----
    sep (SExtractor's background algorithm as a library) measures the
    clipped mode of every cell (of dequantised pixels, see ``doDequantize``)
    of ``meshSize`` pixels, median-filters the
    mesh and interpolates it; pixels that are masked (NO_DATA, saturated,
    bad) and, after the first pass, pixels of detected sources grown by
    ``maskGrow`` are left out.  The final estimate is sampled at the cell
    centres (and image edges) and kept as a `SplineField`, which is exactly
    what is rendered and subtracted, so the stored model reproduces the
    subtracted background.

    Where no cell is at most half unmasked (sep would return 0), the
    background is a constant, the clipped median of the usable pixels, or 0
    without any; one log line and ``SKIPPED_BACKGROUND`` say so.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = MeshBackgroundConfig
    config: MeshBackgroundConfig
    _DefaultName: ClassVar[str] = "background"

    def run(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        bad: np.ndarray,
        bbox: Box,
        unit: u.UnitBase,
        *,
        quantization_step: float | None = None,
        name: str = "image",
        seed: int = 0,
    ) -> Struct:
        """Estimate the background of an image.

        Parameters
        ----------
        image : `numpy.ndarray`
            Pixels (float32), background not subtracted; may be NaN where
            ``bad``.
        variance : `numpy.ndarray`
            Variance plane (float32).
        bad : `numpy.ndarray` [`bool`]
            Pixels not to use.
        bbox : `lsst.images.Box`
            Bounding box of the image (the field's bounds).
        unit : `astropy.units.UnitBase`
            Unit of the image (the field's unit).
        quantization_step : `float`, optional
            Step of the pixel values as delivered (isr's
            ``QUANTIZATION_STEP``), if known: found from the pixels
            otherwise, which fails once a lossy write recipe has re-quantised
            them (their distribution still clusters on the old grid).
        name : `str`, optional
            What to call the image in log messages.
        seed : `int`, optional
            Seed of the dequantising noise; ``calibrateImage`` derives it
            from the data ID, so that a rerun gives the same background.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``field``: `lsst.images.fields.SplineField`; ``image``: the
            rendered background (float32); ``sources``: `numpy.ndarray`
            [`bool`], the grown source pixels masked in the last pass;
            ``quantization_step``: the step removed by dithering (0 if none);
            ``metadata``: ``SKIPPED_BACKGROUND`` where no mesh was fitted.
        """
        data = np.ascontiguousarray(np.where(bad, np.float32(0), image), dtype=np.float32)
        step = 0.0
        if self.config.doDequantize:
            step = quantization_step if quantization_step else find_quantization_step(image[~bad])
        if step > 0:
            rng = np.random.default_rng(seed)
            data += rng.uniform(-0.5 * step, 0.5 * step, data.shape).astype(np.float32)
        sigma = np.sqrt(variance, dtype=np.float32)
        sources = np.zeros(bad.shape, dtype=bool)
        usable = np.count_nonzero(~bad)
        if not self._has_free_cell(bad):
            return self._constant(data, bad, bbox, unit, step, name)
        estimate = self._estimate(data, bad)
        for _ in range(self.config.iterations - 1):
            found = self._source_pixels(data - estimate.back(), sigma, bad)
            if np.count_nonzero(~(bad | found)) < self.config.minFreeFraction * usable:
                self._keep_unmasked(found, bad, usable, name)
                break
            if not self._has_free_cell(bad | found):
                self._keep_unmasked(found, bad, usable, name)
                break
            estimate, sources = self._estimate(data, bad | found), found
        field = self._field(estimate.back(), bbox, unit)
        rendered = field.render(bbox, dtype=np.float32).array
        return Struct(field=field, image=rendered, sources=sources, quantization_step=step, metadata={})

    def _constant(
        self, data: np.ndarray, bad: np.ndarray, bbox: Box, unit: u.UnitBase, step: float, name: str
    ) -> Struct:
        """Return a constant background, for an image with no cell at most
        half unmasked."""
        usable = np.count_nonzero(~bad)
        size = min(self.config.meshSize, *data.shape)
        if usable:
            _, level, _ = sigma_clipped_stats(data[~bad], sigma=3.0, maxiters=5)
            text = (
                f"every {size}-pixel background cell is more than half masked; subtracting the clipped "
                f"median of the {usable} usable pixels"
            )
        else:
            level = 0.0
            text = "no usable pixel (all NO_DATA, SATURATED, BAD or COSMIC_RAY); no background subtracted"
        skipped = say_skipped(self.log, name, "BACKGROUND", text)
        field = self._field(np.full(data.shape, level, dtype=np.float64), bbox, unit)
        rendered = field.render(bbox, dtype=np.float32).array
        return Struct(
            field=field,
            image=rendered,
            sources=np.zeros(bad.shape, dtype=bool),
            quantization_step=step,
            metadata=skipped,
        )

    def _keep_unmasked(self, found: np.ndarray, bad: np.ndarray, usable: int, name: str) -> None:
        self.log.info(
            "%s: sources cover %.0f%% of the usable pixels, too many to mask; keeping the previous "
            "background estimate.",
            name,
            100.0 * np.count_nonzero(found & ~bad) / max(usable, 1),
        )

    def _has_free_cell(self, masked: np.ndarray) -> bool:
        """Return whether some background cell is at most half masked: sep
        leaves out cells that are more, and with none left it returns a
        background of 0."""
        size = min(self.config.meshSize, *masked.shape)
        starts = [np.arange(0, length, size) for length in masked.shape]
        counts = np.add.reduceat(
            np.add.reduceat(masked.astype(np.int64), starts[0], axis=0), starts[1], axis=1
        )
        areas = np.outer(np.diff([*starts[0], masked.shape[0]]), np.diff([*starts[1], masked.shape[1]]))
        return bool(np.any(counts <= 0.5 * areas))

    def _estimate(self, data: np.ndarray, masked: np.ndarray) -> sep.Background:
        size = min(self.config.meshSize, *data.shape)
        return sep.Background(
            data, mask=masked, bw=size, bh=size, fw=self.config.filterSize, fh=self.config.filterSize
        )

    def _source_pixels(self, residual: np.ndarray, sigma: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Return the grown pixels of sources detected in ``residual``."""
        _, segmentation = sep.extract(
            np.ascontiguousarray(residual, dtype=np.float32),
            self.config.maskThreshold,
            err=sigma,
            mask=bad,
            minarea=self.config.maskMinArea,
            deblend_cont=1.0,
            segmentation_map=True,
        )
        detected = segmentation > 0
        if self.config.maskGrow > 0:
            structure = scipy.ndimage.generate_binary_structure(2, 1)
            detected = scipy.ndimage.binary_dilation(detected, structure, iterations=self.config.maskGrow)
        return detected

    def _field(self, back: np.ndarray, bbox: Box, unit: u.UnitBase) -> SplineField:
        """Sample the rendered background estimate at the spline nodes."""
        height, width = back.shape
        y_nodes = spline_nodes(height, self.config.meshSize)
        x_nodes = spline_nodes(width, self.config.meshSize)
        samples = scipy.ndimage.map_coordinates(
            back, np.meshgrid(y_nodes, x_nodes, indexing="ij"), order=1, mode="nearest"
        )
        return SplineField(
            bbox,
            samples.astype(np.float64),
            y=y_nodes + bbox.y.start,
            x=x_nodes + bbox.x.start,
            unit=unit,
        )
