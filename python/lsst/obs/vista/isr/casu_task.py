"""`VistaIsrTask`: the null ISR of CASU products (VIRCAM's isr, and that of
every CASU instrument), assembling ``post_isr_image``."""

from __future__ import annotations

__all__ = ("VistaIsrConfig", "VistaIsrConnections", "VistaIsrTask")

from typing import Any, ClassVar

from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Image
from lsst.pipe.base import PipelineTaskConfig, Struct

from ..instrument import header_instrument
from .assembly import ExposureAssemblyConfig
from .casu import catalog_source_mask, describe_casu_image
from .pipeline_task import AssembledExposureConnections, AssemblyPipelineTask


class VistaIsrConnections(AssembledExposureConnections):
    """Inputs and output of `VistaIsrTask`, per exposure and detector."""

    stack = cT.Input(
        doc="CASU pawprint stack (ADU per DIT, sky not subtracted); its metadata is the merged header.",
        name="casu_stack",
        storageClass="ImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )
    confidence = cT.PrerequisiteInput(
        doc="CASU confidence map of the stack.  Optional: without it the fallback variance model is used.",
        name="casu_confidence",
        storageClass="ImageV2",
        dimensions=("instrument", "exposure", "detector"),
        minimum=0,
    )
    catalog = cT.PrerequisiteInput(
        doc="CASU source catalogue of the stack, whose sources are excluded from the noise check.  Optional.",
        name="casu_catalog",
        storageClass="AstropyTable",
        dimensions=("instrument", "exposure", "detector"),
        minimum=0,
    )

    def __init__(self, *, config: VistaIsrConfig) -> None:
        super().__init__(config=config)
        if not config.useCatalog:
            del self.catalog


class VistaIsrConfig(ExposureAssemblyConfig, PipelineTaskConfig, pipelineConnections=VistaIsrConnections):
    """Configuration for `VistaIsrTask`."""

    useCatalog = pexConfig.Field[bool](
        doc="Read the CASU catalogue (if ingested) to mask its sources in the noise check.",
        default=True,
    )
    catalogRadiusScale = pexConfig.Field[float](
        doc="Radius of a catalogue source's mask, in units of its isophotal radius sqrt(area / pi).",
        default=2.0,
        check=lambda value: value > 0,
    )
    vegaToAb = pexConfig.DictField[str, float](
        doc=(
            "m_AB - m_Vega by band, to turn CASU's Vega zero points into the nJy photometric scaling; "
            "each instrument's photometric system has its own (config/<instrument>/isr.py).  Bands "
            "absent here get no photometric scaling; their Vega zero point is still recorded in the "
            "metadata."
        ),
        default={},
    )


class VistaIsrTask(AssemblyPipelineTask):
    """Assemble ``post_isr_image`` from CASU-reduced products.

    The instrument (camera description and header translator) is the
    registered one whose translator reads the stack's header.

    CASU products are already instrument-corrected, so this "ISR" only
    reads them and builds a complete exposure: the image as delivered, the
    variance from the configured model (the CASU instruments' configs choose
    the confidence model; see `lsst.obs.vista.isr.variance`), masks from the
    confidence map, NaNs,
    magic values and saturation, the ZPN WCS, a Gaussian PSF from SEEING, the
    zero point from MAGZPT, observation info and the detector.  Details are
    in `ExposureAssemblyTask` and `lsst.obs.vista.isr.casu.describe_casu_image`.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = VistaIsrConfig
    config: VistaIsrConfig
    reduced_image_connection = "stack"
    noise_map_connection = "confidence"
    optional_input_substitutes = {"catalog": "the noise check excludes only the sources it detects itself"}
    archive_name_cards = ("ARCFILE", "ORIGFILE")

    def run(
        self,
        stack: Image,
        confidence: Image | None = None,
        catalog: Table | None = None,
        *,
        name: str | None = None,
    ) -> Struct:
        """Assemble one detector's exposure.

        Parameters
        ----------
        stack : `lsst.images.Image`
            The stack, in ADU, with the merged header as metadata.
        confidence : `lsst.images.Image`, optional
            Its confidence map.
        catalog : `astropy.table.Table`, optional
            Its CASU catalogue.
        name : `str`, optional
            What to call the stack in log messages; defaults to its archive
            file name and extension.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputExposure``: `lsst.images.VisitImage`.
        """
        metadata: dict[str, Any] = dict(stack.metadata)
        if name is None:
            name = self.source_name(metadata)
        instrument = header_instrument(metadata, name=name)
        description = describe_casu_image(
            metadata,
            stack.bbox,
            camera=instrument.camera(),
            translator=instrument.translator_class(),
            name=name,
            vega_to_ab=self.config.vegaToAb,
        )
        if description.zero_point_ab is None:
            self.log.warning("%s: no AB zero point (band %r or MAGZPT missing).", name, description.band)
        known_sources = None
        if catalog is not None:
            known_sources = catalog_source_mask(
                catalog, stack.array.shape, radius_scale=self.config.catalogRadiusScale
            )
        result = self.assemble(stack, description, noise_map=confidence, known_sources=known_sources)
        return Struct(outputExposure=result.exposure)
