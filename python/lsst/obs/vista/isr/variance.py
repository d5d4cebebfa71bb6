"""Variance models: retargetable subtasks that turn a reduced image (and
its noise map, if any) into a per-pixel variance.

Every model returns the variance of the image as it is, in the image's units
squared, for the pixels it is given as usable; what it leaves in the other
pixels is overwritten by the caller (see
`lsst.obs.vista.isr.assembly.ExposureAssemblyTask`).

Models that read a noise map also say how it converts to a *relative
weight* (1 for a pixel of nominal depth, 0 where there is no data), which is
what the caller's confidence thresholds and masks are defined on.
"""

from __future__ import annotations

__all__ = (
    "BackgroundVarianceConfig",
    "BackgroundVarianceTask",
    "ConfidenceMapVarianceConfig",
    "ConfidenceMapVarianceTask",
    "MetadataVarianceTask",
    "VarianceModelConfig",
    "VarianceModelError",
    "VarianceModelTask",
    "WeightMapVarianceConfig",
    "WeightMapVarianceTask",
)

from typing import Any, ClassVar

import numpy as np

import lsst.pex.config as pexConfig
from lsst.pipe.base import Struct, Task

from .background import BackgroundStatisticsConfig, robust_sigma, tile_cells
from .edges import edge_factors
from .parameters import NoiseParameters


class VarianceModelError(RuntimeError):
    """Raised when a variance model lacks an input it needs."""


class VarianceModelConfig(pexConfig.Config):
    """Configuration shared by all variance models."""

    doSourceTerm = pexConfig.Field[bool](
        doc=(
            "Add the Poisson variance of the sky-subtracted signal (sources), computed with the effective "
            "gain of the combination at each pixel's depth."
        ),
        default=True,
    )


class VarianceModelTask(Task):
    """Base class of the variance models.

    Subclasses implement `compute`; those that read a noise map set
    `needs_noise_map` and implement `relative_weight`.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = VarianceModelConfig
    config: VarianceModelConfig
    _DefaultName: ClassVar[str] = "variance"

    needs_noise_map: ClassVar[bool] = False
    """Whether `compute` requires a noise map."""

    def relative_weight(self, noise_map: np.ndarray) -> np.ndarray:
        """Convert a noise map to relative weights.

        Parameters
        ----------
        noise_map : `numpy.ndarray`
            The map as read.

        Returns
        -------
        weight : `numpy.ndarray` [`numpy.float32`]
            Relative inverse variance of the sky: 1 at nominal depth, 0 where
            there is no data.
        """
        raise NotImplementedError(f"{type(self).__name__} does not read a noise map.")

    def compute(
        self,
        image: np.ndarray,
        usable: np.ndarray,
        *,
        noise_map: np.ndarray | None,
        noise: NoiseParameters | None,
        relative_weight: np.ndarray | None = None,
    ) -> Struct:
        """Compute the variance.

        Parameters
        ----------
        image : `numpy.ndarray` [`numpy.float32`]
            The image, background not subtracted.
        usable : `numpy.ndarray` [`bool`]
            Pixels with data; the variance elsewhere is ignored.
        noise_map : `numpy.ndarray` or `None`
            The noise map, for models with `needs_noise_map`.
        noise : `NoiseParameters` or `None`
            Gain, read noise, sky level and noise of the image.
        relative_weight : `numpy.ndarray`, optional
            ``relative_weight(noise_map)``, if the caller has it already.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``variance``: `numpy.ndarray` [`numpy.float32`], same shape as
            ``image``, valid where ``usable`` (elsewhere it may hold anything,
            infinities included); ``metadata``: `dict` of scalars describing
            the model as applied (written to the output's metadata).
        """
        raise NotImplementedError()

    def _require_noise(self, noise: NoiseParameters | None, *, sky_level: bool) -> NoiseParameters:
        if noise is None:
            raise VarianceModelError(f"{type(self).__name__} needs the gain and read noise of the image.")
        if sky_level and noise.sky_level is None:
            raise VarianceModelError(f"{type(self).__name__} needs the sky level of the image.")
        return noise


def _source_term(image: np.ndarray, sky_level: float, factor: float) -> np.ndarray:
    """Return ``factor * max(image - sky_level, 0)`` as a new float32 array,
    in place after the first operation."""
    signal = np.subtract(image, np.float32(sky_level), dtype=np.float32)
    np.maximum(signal, np.float32(0.0), out=signal)
    signal *= np.float32(factor)
    return signal


def _add_source_term(
    variance: np.ndarray,
    image: np.ndarray,
    sky_level: float | np.ndarray,
    factor: float | np.ndarray,
) -> None:
    """Add ``factor * max(image - sky_level, 0)`` to ``variance`` in place,
    without a float64 temporary."""
    signal = np.subtract(image, sky_level, dtype=np.float32)
    np.maximum(signal, 0.0, out=signal)
    signal *= factor
    variance += signal


class ConfidenceMapVarianceConfig(VarianceModelConfig):
    """Configuration for `ConfidenceMapVarianceTask`."""

    nominalConfidence = pexConfig.Field[float](
        doc=(
            "Confidence of a pixel of nominal depth; if None, the median of the map's positive values.  "
            "Instruments whose maps are normalised to a fixed value set it (config/<instrument>/isr.py)."
        ),
        default=None,
        optional=True,
        check=lambda value: value is None or value > 0,
    )
    doEdgeCalibration = pexConfig.Field[bool](
        doc=(
            "Correct the model along the stack's coverage edges, column by column and row by row, by the "
            "measured background noise (see lsst.obs.vista.isr.edges)."
        ),
        default=True,
    )
    edgeStatistics = pexConfig.ConfigField[BackgroundStatisticsConfig](
        doc="Cells, detection and growing used to measure the noise along the edges.",
    )
    edgeMinPixels = pexConfig.Field[int](
        doc="Minimum number of background pixels for an edge column (row) group to be corrected.",
        default=500,
        check=lambda value: value > 0,
    )
    doEdgePooling = pexConfig.Field[bool](
        doc=(
            "Combine each edge group's factor with that of its complement on the opposite edge (the "
            "group covered by the other exposures), which holds when the exposures are translations "
            "with one footprint, as in a jittered pawprint stack; each factor is then measured on the "
            "pixels of both groups, which halves its variance."
        ),
        default=True,
    )


class ConfidenceMapVarianceTask(VarianceModelTask):
    r"""Variance of a CASU stack from its confidence map and header.

    Notes
    -----
    **Units.**  CASU stack pixels are "gain-normalised ADU per DIT": raw ADU
    multiplied by the detector's GAINCOR, divided by NDIT, and averaged over
    the NICOMB jittered exposures after bilinear resampling.  With nominal
    gain :math:`g` (e-/ADU) and read noise :math:`\sigma_e` (e-) of the
    detector, one input exposure has effective gain and read noise

    .. math::

        g_1 = g\,\mathrm{NDIT} / \mathrm{GAINCOR}, \qquad
        \sigma_1 = (\sigma_e / g)\,\mathrm{GAINCOR} / \sqrt{\mathrm{NDIT}}

    (`NoiseParameters.gain`, `NoiseParameters.read_noise`), so that a pixel of
    signal :math:`S` has variance :math:`S/g_1 + \sigma_1^2`.

    **Confidence.**  The confidence :math:`c` (percent, 100 = nominal) is the
    relative inverse variance of the sky: the stack pixel combines
    :math:`n = \mathrm{NICOMB}\,c/100` exposure-equivalents, so its effective
    gain is :math:`g_1 \mathrm{NICOMB}\,c/100`, and a pixel on a flat-field
    defect or covered by fewer jitter positions is noisier in proportion.

    **Resampling.**  Each exposure was resampled with bilinear weights
    :math:`w`, which multiplies the variance of its independent pixel noise by
    :math:`k = \sum w^2` and correlates neighbours.  CASU records neither the
    jitter offsets nor :math:`k`, but SKYNOISE is the sky rms *measured on
    the stack* at :math:`c \approx 100`, so

    .. math::

        k = \mathrm{SKYNOISE}^2 \Big/
            \frac{\mathrm{SKYLEVEL}/g_1 + \sigma_1^2}{\mathrm{NICOMB}}

    (`NoiseParameters.resampling_factor`).  The same :math:`k` multiplies the
    source term, whose pixel noise was resampled identically.  Along the
    coverage edges of the stack a pixel averages a subset of the exposures,
    whose mean :math:`k` is not the global one (up to ~10% off, tested
    against exact truth); with ``doEdgeCalibration`` the model is corrected
    there by the measured noise, column by column and row by row, and
    with ``doEdgePooling`` each group's correction is combined with that of
    the complementary group on the opposite edge, whose variances must add
    up to the interior's (`lsst.obs.vista.isr.edges`).

    **Model.**  With the image :math:`I` (sky not subtracted)

    .. math::

        V = \left[\mathrm{SKYNOISE}^2
              + k\,\frac{\max(I - \mathrm{SKYLEVEL}, 0)}{g_1\,\mathrm{NICOMB}}
            \right] \frac{100}{c}

    i.e. the measured sky variance scaled to the pixel's depth plus the
    Poisson variance of the sky-subtracted signal with the stack's effective
    gain at that depth.  The sky enters once, through SKYNOISE, although it
    is still in the pixel values.  The source term uses the noisy pixel value,
    which in pure sky adds :math:`\approx 0.4\,\sigma k/(g_1 n)` to the
    variance (a bias of a few tenths of a percent for VIRCAM), accepted so
    that compact sources keep their full Poisson variance.
    """

    ConfigClass = ConfidenceMapVarianceConfig
    config: ConfidenceMapVarianceConfig
    needs_noise_map = True

    def relative_weight(self, noise_map: np.ndarray) -> np.ndarray:
        # Docstring inherited.
        nominal = self.config.nominalConfidence
        if nominal is None:
            positive = noise_map > 0
            if not positive.any():
                return np.zeros(noise_map.shape, dtype=np.float32)
            nominal = float(np.median(noise_map[positive]))
        return np.divide(noise_map, nominal, dtype=np.float32)

    def compute(
        self,
        image: np.ndarray,
        usable: np.ndarray,
        *,
        noise_map: np.ndarray | None,
        noise: NoiseParameters | None,
        relative_weight: np.ndarray | None = None,
    ) -> Struct:
        # Docstring inherited.
        if noise_map is None:
            raise VarianceModelError("ConfidenceMapVarianceTask needs a confidence map.")
        noise = self._require_noise(noise, sky_level=True)
        assert noise.sky_level is not None and noise.sky_variance is not None, "Checked above."
        if noise.sky_noise is None:
            self.log.warning("No measured sky noise; using the unresampled prediction (k = 1).")
        k = noise.resampling_factor
        if relative_weight is None:
            relative_weight = self.relative_weight(noise_map)
        if self.config.doSourceTerm:
            variance = _source_term(image, noise.sky_level, k / noise.stack_gain)
            variance += np.float32(noise.sky_variance)
        else:
            variance = np.full(image.shape, noise.sky_variance, dtype=np.float32)
        # Zero confidence gives infinities, outside ``usable``.
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(variance, relative_weight, out=variance)
        metadata: dict[str, Any] = {
            "VARIANCE_MODEL": "confidence map (CASU)",
            "VARIANCE_SKY_NOMINAL": float(noise.sky_variance),
            "VARIANCE_RESAMPLING_K": float(k),
            "VARIANCE_STACK_GAIN": float(noise.stack_gain),
        }
        if self.config.doEdgeCalibration:
            factors = edge_factors(
                image,
                variance,
                usable,
                relative_weight,
                n_combined=noise.n_combined,
                statistics=self.config.edgeStatistics,
                min_pixels=self.config.edgeMinPixels,
                pool_complements=self.config.doEdgePooling,
            )
            factors.apply(variance)
            metadata["VARIANCE_EDGE_GROUPS"] = factors.n_groups
        return Struct(variance=variance, metadata=metadata)


class WeightMapVarianceConfig(VarianceModelConfig):
    """Configuration for `WeightMapVarianceTask`."""

    def setDefaults(self) -> None:
        super().setDefaults()
        # Weight maps of reduction pipelines usually describe the sky and read
        # noise only; the source term needs a gain that the caller may not
        # have, so it is opt-in here.
        self.doSourceTerm = False


class WeightMapVarianceTask(VarianceModelTask):
    r"""Variance from an inverse-variance weight map: :math:`V = 1/w`.

    Notes
    -----
    The relative weight is :math:`w / \mathrm{median}(w > 0)`.  With
    ``doSourceTerm`` the Poisson variance of the sky-subtracted signal is
    added with the effective gain :math:`g_1 n w/\mathrm{median}(w)`
    (`NoiseParameters`), for weight maps that describe the background noise
    only.
    """

    ConfigClass = WeightMapVarianceConfig
    config: WeightMapVarianceConfig
    needs_noise_map = True

    def relative_weight(self, noise_map: np.ndarray) -> np.ndarray:
        # Docstring inherited.
        weight = np.asarray(noise_map, dtype=np.float32)
        positive = weight > 0
        if not positive.any():
            return np.zeros(weight.shape, dtype=np.float32)
        return np.divide(weight, np.median(weight[positive]), dtype=np.float32)

    def compute(
        self,
        image: np.ndarray,
        usable: np.ndarray,
        *,
        noise_map: np.ndarray | None,
        noise: NoiseParameters | None,
        relative_weight: np.ndarray | None = None,
    ) -> Struct:
        # Docstring inherited.
        if noise_map is None:
            raise VarianceModelError("WeightMapVarianceTask needs a weight map.")
        variance = np.zeros(image.shape, dtype=np.float32)
        np.divide(np.float32(1.0), noise_map, out=variance, where=usable & (noise_map > 0))
        metadata: dict[str, Any] = {"VARIANCE_MODEL": "weight map"}
        if self.config.doSourceTerm:
            noise = self._require_noise(noise, sky_level=True)
            assert noise.sky_level is not None, "Checked above."
            relative = relative_weight if relative_weight is not None else self.relative_weight(noise_map)
            factor = np.zeros(image.shape, dtype=np.float32)
            np.divide(
                np.float32(noise.resampling_factor / noise.stack_gain),
                relative,
                out=factor,
                where=usable & (relative > 0),
            )
            _add_source_term(variance, image, noise.sky_level, factor)
            metadata["VARIANCE_STACK_GAIN"] = float(noise.stack_gain)
        return Struct(variance=variance, metadata=metadata)


class MetadataVarianceTask(VarianceModelTask):
    r"""Variance from header metadata alone, uniform in depth.

    Notes
    -----
    :math:`V = V_\mathrm{sky} + k \max(I - \mathrm{sky}, 0) / (g_1 n)` with
    :math:`V_\mathrm{sky}` the measured sky noise squared if the header
    states it, else :math:`(\mathrm{sky}/g_1 + \sigma_1^2)/n`, and :math:`k`
    as in `ConfidenceMapVarianceTask`.  Without a map the depth is taken to be
    nominal everywhere, which underestimates the variance where fewer inputs
    overlap (the edges of a jittered stack).
    """

    def compute(
        self,
        image: np.ndarray,
        usable: np.ndarray,
        *,
        noise_map: np.ndarray | None,
        noise: NoiseParameters | None,
        relative_weight: np.ndarray | None = None,
    ) -> Struct:
        # Docstring inherited.
        noise = self._require_noise(noise, sky_level=True)
        assert noise.sky_level is not None and noise.sky_variance is not None, "Checked above."
        if self.config.doSourceTerm:
            variance = _source_term(image, noise.sky_level, noise.resampling_factor / noise.stack_gain)
            variance += np.float32(noise.sky_variance)
        else:
            variance = np.full(image.shape, noise.sky_variance, dtype=np.float32)
        metadata: dict[str, Any] = {
            "VARIANCE_MODEL": "header metadata",
            "VARIANCE_SKY_NOMINAL": float(noise.sky_variance),
            "VARIANCE_RESAMPLING_K": float(noise.resampling_factor),
        }
        return Struct(variance=variance, metadata=metadata)


class BackgroundVarianceConfig(VarianceModelConfig):
    """Configuration for `BackgroundVarianceTask`."""

    statistics = pexConfig.ConfigField[BackgroundStatisticsConfig](
        doc="Cells, source detection and growing used to select background pixels.",
    )

    def setDefaults(self) -> None:
        super().setDefaults()
        # Cells of 64 pixels (4096 pixels, a 2-3% variance each) resolve the
        # coverage edges of a jittered stack better than the noise check's 128.
        self.statistics.cellSize = 64


class BackgroundVarianceTask(VarianceModelTask):
    r"""Variance measured from the image's own background.

    Notes
    -----
    In each cell of ``statistics.cellSize`` pixels, sources are detected and
    masked and the robust variance :math:`V_\mathrm{cell}` and median
    :math:`B_\mathrm{cell}` of the remaining pixels are measured; cells with
    too few background pixels take the median over cells.  The sky term is
    the piecewise-constant map of :math:`V_\mathrm{cell}`.  If the gain and
    read noise are known, the source term
    :math:`k_\mathrm{cell} \max(I - B_\mathrm{cell}, 0)/(g_1 n)` is added, with
    :math:`k_\mathrm{cell} = V_\mathrm{cell} / ((B_\mathrm{cell}/g_1 +
    \sigma_1^2)/n)` the measured-to-predicted ratio of the cell (the
    resampling factor of `ConfidenceMapVarianceTask`, measured); otherwise
    the source term is omitted and a warning logged.  Depth variations
    smaller than a cell are not resolved.
    """

    ConfigClass = BackgroundVarianceConfig
    config: BackgroundVarianceConfig

    def compute(
        self,
        image: np.ndarray,
        usable: np.ndarray,
        *,
        noise_map: np.ndarray | None,
        noise: NoiseParameters | None,
        relative_weight: np.ndarray | None = None,
    ) -> Struct:
        # Docstring inherited.
        cells = tile_cells(image.shape, self.config.statistics.cellSize)
        measured = [self.config.statistics.measure(image, usable, cell) for cell in cells]
        found = [m for m in measured if m is not None]
        if not found:
            raise VarianceModelError("No cell has enough background pixels to measure the noise.")
        sky_variances = np.array([robust_sigma(m.values) ** 2 for m in found])
        fill_variance = float(np.median(sky_variances))
        fill_background = float(np.median([m.background for m in found]))
        variance = np.empty(image.shape, dtype=np.float32)
        background = np.empty(image.shape, dtype=np.float32)
        by_cell = {(m.y.start, m.x.start): (m, v) for m, v in zip(found, sky_variances, strict=True)}
        for cell_y, cell_x in cells:
            entry = by_cell.get((cell_y.start, cell_x.start))
            variance[cell_y, cell_x] = entry[1] if entry is not None else fill_variance
            background[cell_y, cell_x] = entry[0].background if entry is not None else fill_background
        metadata: dict[str, Any] = {
            "VARIANCE_MODEL": "measured background",
            "VARIANCE_SKY_NOMINAL": fill_variance,
            "VARIANCE_CELLS_MEASURED": len(found),
        }
        if self.config.doSourceTerm:
            if noise is None:
                self.log.warning("No gain for this image: the source Poisson term is omitted.")
            else:
                predicted = np.maximum(background, 0.0)
                predicted /= noise.gain
                predicted += noise.read_noise**2
                predicted /= noise.n_combined
                k = variance / predicted
                metadata["VARIANCE_RESAMPLING_K"] = float(np.median(k))
                k /= noise.stack_gain
                _add_source_term(variance, image, background, k)
        return Struct(variance=variance, metadata=metadata)
