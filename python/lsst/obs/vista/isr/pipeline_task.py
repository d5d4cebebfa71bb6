"""What the ``isr`` PipelineTasks of every instrument share: the output
connection and the quantum wrapper around `ExposureAssemblyTask`."""

from __future__ import annotations

__all__ = ("AssembledExposureConnections", "AssemblyPipelineTask")

from collections.abc import Mapping
from typing import Any, ClassVar

import lsst.pipe.base.connectionTypes as cT
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConnections,
    QuantumContext,
)

from .assembly import ExposureAssemblyTask

_QUANTUM_DIMENSIONS = ("instrument", "exposure", "detector")


class AssembledExposureConnections(PipelineTaskConnections, dimensions=_QUANTUM_DIMENSIONS):
    """The output of an ``isr`` step, per exposure and detector; instrument
    connections add their inputs."""

    outputExposure = cT.Output(
        doc="Assembled exposure: image, mask, variance, WCS, PSF, zero point, observation info, detector.",
        name="post_isr_image",
        storageClass="VisitImage",
        dimensions=_QUANTUM_DIMENSIONS,
    )


class AssemblyPipelineTask(ExposureAssemblyTask, PipelineTask):
    """Base of the instruments' ``isr`` tasks.

    Subclasses name the connection of the reduced image and the header cards
    that hold its archive file name, and implement ``run(**inputs, name=)``.
    """

    reduced_image_connection: ClassVar[str]
    """Connection (and `run` argument) of the reduced image."""

    archive_name_cards: ClassVar[tuple[str, ...]]
    """Cards holding the product's archive file name, most specific first."""

    _DefaultName: ClassVar[str] = "isr"

    def source_name(self, metadata: Mapping[str, Any]) -> str:
        """Return the archive file name and extension of a reduced image.

        Parameters
        ----------
        metadata : `~collections.abc.Mapping`
            Its merged header.

        Returns
        -------
        name : `str`
            E.g. ``c4d_181214_050844_ooi_g_ls9.fits.fz[S9]``: the first of
            `archive_name_cards` present (cutouts keep the name of the file
            they were cut from), else the connection name, and EXTNAME.
        """
        present = (metadata[key] for key in self.archive_name_cards if key in metadata)
        archive_name = next(present, self.reduced_image_connection)
        return f"{archive_name}[{metadata.get('EXTNAME', '')}]"

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        inputs = butlerQC.get(inputRefs)
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "Quanta of this task always have data IDs."
        connection = self.reduced_image_connection
        data_id_text = ",".join(f"{key}={value}" for key, value in data_id.required.items())
        dataset_type = getattr(inputRefs, connection).datasetType.name
        name = f"{dataset_type}@{data_id_text} ({self.source_name(inputs[connection].metadata)})"
        butlerQC.put(self.run(**inputs, name=name), outputRefs)
