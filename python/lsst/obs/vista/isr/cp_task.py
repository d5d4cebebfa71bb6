"""`DecamCpIsrTask`: the null ISR of DECam Community Pipeline instcal
products, assembling ``post_isr_image`` through the same core as
`VistaIsrTask`."""

from __future__ import annotations

__all__ = ("DecamCpIsrConfig", "DecamCpIsrConnections", "DecamCpIsrTask")

from typing import Any, ClassVar

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Box, Image
from lsst.pipe.base import PipelineTaskConfig, Struct

from ..instrument import header_instrument
from .assembly import ExposureAssemblyConfig
from .cp import CpQualityMaskTask, cp_pixel_origin, describe_cp_image
from .pipeline_task import AssembledExposureConnections, AssemblyPipelineTask
from .variance import WeightMapVarianceTask


class DecamCpIsrConnections(AssembledExposureConnections):
    """Inputs and output of `DecamCpIsrTask`, per exposure and CCD."""

    image = cT.Input(
        doc="CP instcal image (ooi: ADU, sky not subtracted); its metadata is the merged header.",
        name="cp_image",
        storageClass="ImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )
    weight = cT.PrerequisiteInput(
        doc="CP weight map (oow: inverse variance).  Optional: without it the fallback model applies.",
        name="cp_weight",
        storageClass="ImageV2",
        dimensions=("instrument", "exposure", "detector"),
        minimum=0,
    )
    quality = cT.PrerequisiteInput(
        doc="CP data-quality mask (ood).  Optional.",
        name="cp_mask",
        storageClass="ImageV2",
        dimensions=("instrument", "exposure", "detector"),
        minimum=0,
    )


class DecamCpIsrConfig(ExposureAssemblyConfig, PipelineTaskConfig, pipelineConnections=DecamCpIsrConnections):
    """Configuration for `DecamCpIsrTask`."""

    def setDefaults(self) -> None:
        super().setDefaults()
        # The CP weight map is the inverse variance, source Poisson term
        # included, and its mask holds CP codes.
        self.variance.retarget(WeightMapVarianceTask)
        self.qualityMask.retarget(CpQualityMaskTask)


class DecamCpIsrTask(AssemblyPipelineTask):
    """Assemble ``post_isr_image`` from DECam CP instcal trios.

    The CP has removed the instrument signature, so this "ISR" reads the
    image (``ooi``), weight (``oow``) and quality mask (``ood``) and builds a
    complete exposure: the image as delivered on the CCD's pixel grid (xy0
    from LTV1/LTV2), the variance ``1/weight`` (weight <= 0 is NO_DATA with
    the finite sentinel variance), the DQ codes decoded by PLVER, the TPV
    WCS, a Gaussian PSF from FWHM, the zero point from MAGZERO, observation
    info and the detector.  The noise check measures background noise over
    sqrt(variance) and, with ``noiseCheck.doRescale``, rescales.  Details
    are in `ExposureAssemblyTask` and `lsst.obs.vista.isr.cp.describe_cp_image`.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = DecamCpIsrConfig
    config: DecamCpIsrConfig
    reduced_image_connection = "image"
    noise_map_connection = "weight"
    optional_input_substitutes = {"quality": "masks from the pixel values only, without CP quality codes"}
    archive_name_cards = ("DTNSANAM", "FILENAME")

    def run(
        self,
        image: Image,
        weight: Image | None = None,
        quality: Image | None = None,
        *,
        name: str | None = None,
    ) -> Struct:
        """Assemble one CCD's exposure.

        Parameters
        ----------
        image : `lsst.images.Image`
            The CP image, in ADU, with the merged header as metadata.
        weight : `lsst.images.Image`, optional
            Its weight map (inverse variance, ADU**-2).
        quality : `lsst.images.Image`, optional
            Its data-quality mask, with its header (PLVER) as metadata.
        name : `str`, optional
            What to call the image in log messages; defaults to its archive
            file name and CCD.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputExposure``: `lsst.images.VisitImage`.
        """
        metadata: dict[str, Any] = dict(image.metadata)
        if name is None:
            name = self.source_name(metadata)
        x0, y0 = cp_pixel_origin(metadata)
        bbox = Box.from_shape(image.array.shape, start=(y0, x0))
        image, weight, quality = (_on_ccd(plane, bbox) for plane in (image, weight, quality))
        assert image is not None
        instrument = header_instrument(metadata, name=name)
        description = describe_cp_image(
            metadata, bbox, camera=instrument.camera(), translator=instrument.translator_class(), name=name
        )
        if description.zero_point_ab is None:
            self.log.warning("%s: no photometric zero point (no MAGZERO or MAGZPT card).", name)
        result = self.assemble(image, description, noise_map=weight, quality=quality)
        return Struct(outputExposure=result.exposure)


def _on_ccd(plane: Image | None, bbox: Box) -> Image | None:
    """Return ``plane`` (read with its first pixel at 0, 0) placed on the
    CCD's pixel grid, sharing its pixels."""
    if plane is None:
        return None
    return Image(plane.array, bbox=bbox, unit=plane.unit, metadata=plane.metadata)
