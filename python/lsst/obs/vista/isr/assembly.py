"""Instrument-independent assembly of a `lsst.images.VisitImage` from a
reduced image, its optional noise map and its optional quality mask."""

from __future__ import annotations

__all__ = (
    "ExposureAssemblyConfig",
    "ExposureAssemblyTask",
    "ExposureDescription",
    "nanojansky_per_unit",
    "photometric_scaling_from_zero_point",
    "standard_observation_info",
)

import dataclasses
import math
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astro_metadata_translator import PROPERTIES, ObservationInfo

import lsst.pex.config as pexConfig
from lsst.images import Box, Image, Mask, SkyProjection, VisitImage
from lsst.images.cameras import Detector
from lsst.images.fields import ChebyshevField
from lsst.images.psfs import GaussianPointSpreadFunction
from lsst.pipe.base import Struct, Task

from ..psf_shape import FWHM_PER_SIGMA
from .handoff import IsrHandoff
from .masks import (
    PixelMaskConfig,
    QualityMaskTask,
    make_mask_schema,
    mask_pixels,
    set_plane,
    set_planes,
    unflagged,
)
from .noise_check import NoiseCheckTask
from .parameters import NoiseParameters
from .variance import MetadataVarianceTask, VarianceModelTask


@dataclasses.dataclass(frozen=True)
class ExposureDescription:
    """Everything an instrument's headers say about one reduced image,
    translated into lsst-images and `NoiseParameters` terms.

    Building one is the only instrument-specific step of the assembly; see
    `lsst.obs.vista.isr.casu.describe_casu_image` for VIRCAM.
    """

    name: str
    """What to call the image in log messages (file name or data ID)."""
    obs_info: ObservationInfo
    """As the instrument's translator made it; the exposure gets its standard
    properties only (`standard_observation_info`)."""
    detector: Detector
    """Detector whose bounding box is the image's."""
    band: str
    sky_projection: SkyProjection
    psf_fwhm: float
    """FWHM (pixels) of the Gaussian PSF estimate."""
    zero_point_ab: float | None
    """AB magnitude of one image unit, if the headers give an AB calibration;
    the exposure's photometric scaling is made from it."""
    noise: NoiseParameters | None
    saturation_level: float | None
    """Level (image units) at and above which pixels are saturated."""
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Scalars recorded in the output's metadata (provenance of the above,
    and what the instrument's translator says beyond the standard
    observation info)."""


class ExposureAssemblyConfig(pexConfig.Config):
    """Configuration of the assembly core; instrument tasks inherit it."""

    variance = pexConfig.ConfigurableField(
        target=MetadataVarianceTask,
        doc=(
            "Variance model (retargetable: confidence map, weight map, metadata, measured background).  "
            "By default the header's noise parameters alone, which every instrument's description gives; "
            "instruments that deliver a noise map choose the model that reads it."
        ),
    )
    fallbackVariance = pexConfig.ConfigurableField(
        target=MetadataVarianceTask,
        doc="Variance model used when 'variance' needs a noise map and none was found.",
    )
    qualityMask = pexConfig.ConfigurableField(
        target=QualityMaskTask,
        doc="Decoder of the quality mask delivered with the image, if any.",
    )
    masking = pexConfig.ConfigField[PixelMaskConfig](
        doc="Rules that mask pixels from the image values, depth and saturation.",
    )
    noiseCheck = pexConfig.ConfigurableField(
        target=NoiseCheckTask,
        doc="Empirical check (and optional rescale) of the variance against the background noise.",
    )
    noDataVariance = pexConfig.Field[float](
        doc=(
            "Variance given to NO_DATA pixels.  Finite, so that no inf or NaN reaches downstream code; "
            "large, so that inverse-variance weights vanish (1e-18); and small enough that squares and "
            "sums of squares over a detector stay finite in float32."
        ),
        default=1.0e18,
        check=lambda value: value > 0 and math.isfinite(value) and value**2 < np.finfo(np.float32).max,
    )
    psfStampSize = pexConfig.Field[int](
        doc="Side (pixels, odd) of the Gaussian PSF's kernel images.",
        default=25,
        check=lambda value: value > 0 and value % 2 == 1,
    )

    def validate(self) -> None:
        super().validate()
        if self.fallbackVariance.target.needs_noise_map:
            raise pexConfig.FieldValidationError(
                ExposureAssemblyConfig.fallbackVariance, self, "the fallback model must not need a noise map"
            )


class ExposureAssemblyTask(Task):
    """Assemble a `lsst.images.VisitImage` from a reduced image.

    Instrument tasks (`lsst.obs.vista.VistaIsrTask`) inherit this and call
    `assemble` with an `ExposureDescription` built from their headers.

    Notes
    -----
    The output holds the image as delivered (float32, background not
    subtracted, non-finite values turned to NaN), its mask and variance, and
    the description's WCS, Gaussian PSF, zero point, observation info
    (standard properties only, so that any process reads the exposure back:
    see `standard_observation_info`) and detector.  Invariants:

    - NO_DATA: non-finite pixels, configured magic values, zero relative
      weight, decoded quality-mask NO_DATA, and pixels where the variance
      model could not produce a finite positive value;
    - the variance is finite and positive everywhere, and exactly
      ``noDataVariance`` on NO_DATA pixels;
    - the image is NaN only on NO_DATA pixels.

    The output metadata holds the hand-off to calibrateImage
    (`~lsst.obs.vista.isr.handoff.IsrHandoff`: the noise check's results,
    the NO_DATA variance, the quantization step and the header zero point),
    the variance model's own entries and the description's.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = ExposureAssemblyConfig
    config: ExposureAssemblyConfig
    variance: VarianceModelTask
    fallbackVariance: VarianceModelTask
    qualityMask: QualityMaskTask
    noiseCheck: NoiseCheckTask

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.makeSubtask("variance")
        self.makeSubtask("fallbackVariance")
        self.makeSubtask("qualityMask")
        self.makeSubtask("noiseCheck")

    def assemble(
        self,
        image: Image,
        description: ExposureDescription,
        *,
        noise_map: Image | None = None,
        quality: Image | None = None,
        known_sources: np.ndarray | None = None,
    ) -> Struct:
        """Assemble the exposure.

        Parameters
        ----------
        image : `lsst.images.Image`
            The reduced image, with units.  Its array is shared with the
            output unless it holds infinities, which are replaced by NaN in a
            copy.
        description : `ExposureDescription`
            Header-derived components.
        noise_map : `lsst.images.Image`, optional
            Confidence or weight map, as the variance model expects.
        quality : `lsst.images.Image`, optional
            Quality mask, decoded by the ``qualityMask`` subtask.
        known_sources : `numpy.ndarray` [`bool`], optional
            Pixels of catalogued sources, excluded from the noise check.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``exposure``: `lsst.images.VisitImage`; ``noise_ratio``: `float`
            or `None`.
        """
        if image.unit is None:
            raise ValueError(f"{description.name}: the image has no unit.")
        for other, what in ((noise_map, "noise map"), (quality, "quality mask")):
            if other is not None and other.bbox != image.bbox:
                raise ValueError(f"{description.name}: {what} bbox {other.bbox} differs from {image.bbox}.")
        array = np.asarray(image.array, dtype=np.float32)
        if np.isinf(array).any():
            array = np.where(np.isinf(array), np.float32(np.nan), array)

        model = self._choose_model(noise_map, description.name)
        map_array = noise_map.array if noise_map is not None and model.needs_noise_map else None
        relative_weight = model.relative_weight(map_array) if map_array is not None else None

        mask = Mask(schema=make_mask_schema(self.qualityMask.planes), bbox=image.bbox)
        no_data = mask_pixels(
            mask,
            array,
            self.config.masking,
            relative_weight=relative_weight,
            saturation_level=description.saturation_level,
        )
        if quality is not None:
            decoded = self.qualityMask.decode(quality.array, quality.metadata)
            set_planes(mask, decoded)
            if "NO_DATA" in decoded:
                no_data |= decoded["NO_DATA"]
        usable = ~no_data

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            modelled = model.compute(
                array, usable, noise_map=map_array, noise=description.noise, relative_weight=relative_weight
            )
        del relative_weight
        variance = modelled.variance
        sentinel = np.float32(self.config.noDataVariance)
        np.copyto(variance, sentinel, where=no_data)
        del no_data
        # Two reductions tell whether any usable pixel lacks a valid variance
        # (NaN propagates through min and max); only then find which.
        if not (variance.min() > 0 and np.isfinite(variance.max())):
            failed = usable & ~(np.isfinite(variance) & (variance > 0))
            self.log.warning(
                "%s: %d pixels without a valid variance are NO_DATA.",
                description.name,
                np.count_nonzero(failed),
            )
            set_plane(mask, "NO_DATA", failed)
            usable &= ~failed
            variance[failed] = sentinel
            del failed

        check = self.noiseCheck.run(
            array,
            variance,
            unflagged(mask),
            name=description.name,
            known_sources=known_sources,
        )
        if check.rescale != 1.0:
            np.multiply(variance, np.float32(check.rescale), out=variance, where=usable)

        handoff = IsrHandoff(
            noise_ratio=check.ratio,
            noise_ratio_pixels=check.n_pixels,
            variance_rescale=float(check.rescale),
            no_data_variance=self.config.noDataVariance,
            quantization_step=_quantization_step(image.metadata),
            zero_point_ab=description.zero_point_ab,
        )
        metadata: dict[str, Any] = {**description.metadata, **modelled.metadata, **handoff.to_metadata()}
        scaling = (
            None
            if description.zero_point_ab is None
            else photometric_scaling_from_zero_point(description.zero_point_ab, image.bbox, image.unit)
        )
        exposure = VisitImage(
            Image(array, bbox=image.bbox, unit=image.unit, sky_projection=description.sky_projection),
            mask=mask,
            variance=Image(variance, bbox=image.bbox, unit=image.unit**2),
            psf=GaussianPointSpreadFunction(
                description.psf_fwhm / FWHM_PER_SIGMA,
                bounds=image.bbox,
                stamp_size=self.config.psfStampSize,
            ),
            obs_info=standard_observation_info(description.obs_info),
            detector=description.detector,
            photometric_scaling=scaling,
            band=description.band,
            metadata=metadata,
        )
        return Struct(exposure=exposure, noise_ratio=check.ratio)

    def _choose_model(self, noise_map: Image | None, name: str) -> VarianceModelTask:
        """Return the variance model to use, falling back if the configured
        one needs a noise map that is missing."""
        if noise_map is None and self.variance.needs_noise_map:
            self.log.info(
                "%s: no noise map; variance from %s instead of %s.",
                name,
                type(self.fallbackVariance).__name__,
                type(self.variance).__name__,
            )
            return self.fallbackVariance
        if noise_map is not None and not self.variance.needs_noise_map:
            self.log.info(
                "%s: %s does not read the noise map; it is ignored.", name, type(self.variance).__name__
            )
        return self.variance


def _quantization_step(metadata: Any) -> float | None:
    """Return the step of pixel values stored as integers times BSCALE, or
    `None` for floating-point pixels (`IsrHandoff.quantization_step`)."""
    bitpix = metadata.get("BITPIX")
    if not isinstance(bitpix, int) or bitpix <= 0:
        return None
    return float(metadata.get("BSCALE", 1.0))


def standard_observation_info(obs_info: ObservationInfo) -> ObservationInfo:
    """Return the standard properties of an observation info, without the
    extension properties of the translator that made it.

    Parameters
    ----------
    obs_info : `~astro_metadata_translator.ObservationInfo`
        Observation info, possibly with extension properties (``ext_*``).

    Returns
    -------
    standard : `~astro_metadata_translator.ObservationInfo`
        The same standard property values, no extension properties and no
        translator name.

    Notes
    -----
    An exposure stores its observation info, and astro_metadata_translator
    reads extension properties back only where the translator defining them
    is registered (imported): a ``Butler.get`` in a process that has not
    imported this package would fail on them.  Instrument-specific values go
    in the exposure's metadata instead (`ExposureDescription.metadata`).
    """
    return ObservationInfo.makeObservationInfo(**{name: getattr(obs_info, name) for name in PROPERTIES})


def nanojansky_per_unit(zero_point_ab: float) -> float:
    """Return the flux in nJy of one image unit of an exposure.

    Parameters
    ----------
    zero_point_ab : `float`
        AB magnitude of a source of one image unit.

    Returns
    -------
    scale : `float`
        ``10**(-0.4 * (zero_point_ab - 31.4))``: the AB magnitude as a flux
        density, by `astropy.units`.
    """
    return float((zero_point_ab * u.ABmag).to_value(u.nJy))


def photometric_scaling_from_zero_point(zero_point_ab: float, bbox: Box, unit: u.UnitBase) -> ChebyshevField:
    """Return the constant field converting image units to nJy.

    Parameters
    ----------
    zero_point_ab : `float`
        AB magnitude of a source of one image unit.
    bbox : `lsst.images.Box`
        Bounds of the field.
    unit : `astropy.units.UnitBase`
        The image unit.

    Returns
    -------
    scaling : `lsst.images.fields.ChebyshevField`
        `nanojansky_per_unit` nJy per image unit.
    """
    return ChebyshevField(bbox, np.array([[nanojansky_per_unit(zero_point_ab)]]), unit=u.nJy / unit)
