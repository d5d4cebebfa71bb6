"""forcedPhotObjects: every object measured in one band at its reference
centroid and Kron ellipse (Rubin's ``object_forced_measurement``), with the
band's own cell PSF and noise."""

from __future__ import annotations

__all__ = ("ForcedPhotObjectsConfig", "ForcedPhotObjectsConnections", "ForcedPhotObjectsTask")

from typing import ClassVar

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Image
from lsst.images.cells import CellCoadd
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..isr.pipeline_task import data_id_text
from .detection import coadd_planes
from .measurement import ObjectMeasurementConfig, measure_objects
from .noise import CoaddNoise
from .ref_measurement import own_labels
from .tables import read_with_metadata


class ForcedPhotObjectsConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    coadd = cT.Input(
        doc="The band's coadd (only the merged footprints' box of it is read).",
        name="deep_coadd",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "band"),
        deferLoad=True,
    )
    reference = cT.Input(
        doc="The objects' reference measurements.",
        name="object_ref_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )
    merged_footprints = cT.Input(
        doc="Which object owns each pixel.",
        name="object_detection_merged_footprints",
        storageClass="ImageV2",
        dimensions=("skymap", "tract", "patch"),
    )
    detections = cT.Input(
        doc="The band's detections, whose metadata records the coadd's real noise.",
        name="object_detection",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
        deferLoad=True,
    )
    measurement = cT.Output(
        doc="Every object measured in the band at its reference position and Kron ellipse.",
        name="object_forced_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
    )


class ForcedPhotObjectsConfig(PipelineTaskConfig, pipelineConnections=ForcedPhotObjectsConnections):
    """Configuration for `ForcedPhotObjectsTask`."""

    measurement = pexConfig.ConfigField[ObjectMeasurementConfig](doc="What is measured.")
    badMaskPlanes = pexConfig.ListField[str](
        doc="Coadd mask planes whose pixels are left out of the measurements.",
        default=["NO_DATA"],
    )
    backgroundCellSize = pexConfig.Field[int](
        doc="Background mesh size (pixels), as detectCoaddPeaks's.",
        default=128,
        check=lambda value: value >= 16,
    )
    maxLag = pexConfig.Field[int](
        doc="Largest pixel lag of the noise correlation measured on the noise realisation.",
        default=6,
        check=lambda value: value >= 1,
    )


class ForcedPhotObjectsTask(PipelineTask):
    """Measure a patch's objects in one band at their reference positions."""

    ConfigClass: ClassVar = ForcedPhotObjectsConfig
    _DefaultName: ClassVar[str] = "forcedPhotObjects"
    config: ForcedPhotObjectsConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        inputs = butlerQC.get(inputRefs)
        # Only the merged footprints' box of the coadd: run measures nothing outside it.
        inputs["coadd"] = inputs["coadd"].get(parameters={"bbox": inputs["merged_footprints"].bbox})
        inputs["detections"] = read_with_metadata(inputs["detections"])
        result = self.run(**inputs, name=data_id_text(butlerQC.quantum.dataId))
        butlerQC.put(result, outputRefs)

    def run(
        self,
        coadd: CellCoadd,
        reference: Table,
        merged_footprints: Image,
        *,
        detections: Table | None = None,
        name: str = "",
    ) -> Struct:
        """Measure the objects on one band's coadd.

        Parameters
        ----------
        coadd : `lsst.images.cells.CellCoadd`
            The band's coadd.
        reference : `astropy.table.Table`
            ``object_ref_measurement``.
        merged_footprints : `lsst.images.Image`
            ``object_detection_merged_footprints``.
        detections : `astropy.table.Table`, optional
            The band's ``object_detection``: the coadd's real noise is
            taken from its metadata (measured again without it).
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``measurement`` (`astropy.table.Table`): ``objectId`` and the
            band's measurements under Rubin's per-band names without the
            band prefix, fluxes in nJy.
        """
        # The merged footprints' box: the bands' cells with inputs.
        coadd = coadd[merged_footprints.bbox]
        planes = coadd_planes(
            coadd,
            list(self.config.badMaskPlanes),
            self.config.backgroundCellSize,
            merged_footprints.array > 0,
        )
        noise = CoaddNoise.of_planes(
            planes, self.config.maxLag, None if detections is None else detections.meta
        )
        measured = measure_objects(
            coadd,
            planes,
            noise,
            merged_footprints.array,
            np.asarray(reference["x"]),
            np.asarray(reference["y"]),
            own_labels(reference),
            self.config.measurement,
            kron=reference,
        )
        measured.remove_columns(["x", "y", "centroid_flag", "kron_a", "kron_b", "kron_theta", "kron_radius"])
        measured.add_column(reference["objectId"], index=0)
        self.log.info("%s: %d object(s) measured at their reference positions.", name, len(measured))
        return Struct(measurement=measured)
