"""What the ``isr`` PipelineTasks of every instrument share: the output
connection and the quantum wrapper around `ExposureAssemblyTask`, which
makes a missing input file an error (required input) or a warning recorded
in the output (optional input), never a silently missing or different
output."""

from __future__ import annotations

__all__ = (
    "AssembledExposureConnections",
    "AssemblyPipelineTask",
    "MissingInputError",
    "data_id_text",
    "missing_file_error",
    "require_registered_inputs",
)

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DataCoordinate, DatasetRef
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConnections,
    QuantumContext,
)

from .assembly import ExposureAssemblyTask

_QUANTUM_DIMENSIONS = ("instrument", "exposure", "detector")


class MissingInputError(FileNotFoundError):
    """Raised when the file of a required input is missing from the
    datastore, so that its quantum fails instead of being skipped."""


_REINGEST_REMEDY = (
    "re-ingest it or remove the dataset (`butler prune-datasets`) to run without this exposure and detector"
)
"""What a user can do when an ingested product lost its file."""


def require_registered_inputs(
    names: Iterable[str],
    inputs: Mapping[str, tuple[cT.BaseInput, Any]],
    label: str,
    data_id: DataCoordinate,
    *,
    remedy: str,
) -> None:
    """Fail a quantum whose registered regular input lost its file.

    Parameters
    ----------
    names : iterable [`str`]
        Connection names of the regular inputs to check.
    inputs : `~collections.abc.Mapping`
        ``adjustQuantum``'s inputs.
    label : `str`
        Task label.
    data_id : `lsst.daf.butler.DataCoordinate`
        Data ID of the quantum.
    remedy : `str`
        What the user can do, ending the message.

    Raises
    ------
    MissingInputError
        Raised if a connection has fewer datasets than its minimum: the
        graph holds the quantum because they were registered, so the
        executor found no file for them, and pipe_base would otherwise skip
        the quantum as having no work and end the run successfully.
    """
    for connection_name in names:
        connection, refs = inputs[connection_name]
        if len(refs) < connection.minimum:
            raise missing_file_error(label, connection.name, data_id, remedy)


def missing_file_error(
    label: str, dataset_type: str, data_id: DataCoordinate, remedy: str, path: object = None
) -> MissingInputError:
    """Return the error that fails a quantum whose registered input has no
    file.

    One message whichever way the run found out: ``pipetask run`` drops the
    input before the quantum starts (`require_registered_inputs`), a
    quantum-backed run (``processCcd.py -j N``, bps) fails reading it and
    also knows the file's path.

    Parameters
    ----------
    label : `str`
        Task label.
    dataset_type : `str`
        Dataset type name of the input.
    data_id : `lsst.daf.butler.DataCoordinate`
        Data ID of the quantum.
    remedy : `str`
        What the user can do, ending the message.
    path : `object`, optional
        The missing file, if known.
    """
    file = f"its file {path}" if path else "its file"
    return MissingInputError(
        f"{label}: {dataset_type}@{data_id_text(data_id)} is registered but {file} is missing from the "
        f"datastore; {remedy}."
    )


def data_id_text(data_id: DataCoordinate) -> str:
    """Return ``key=value,...`` for the required dimensions of a data ID."""
    return ",".join(f"{key}={value}" for key, value in data_id.required.items())


class AssembledExposureConnections(PipelineTaskConnections, dimensions=_QUANTUM_DIMENSIONS):
    """The output of an ``isr`` step, per exposure and detector; instrument
    connections add their inputs."""

    outputExposure = cT.Output(
        doc="Assembled exposure: image, mask, variance, WCS, PSF, zero point, observation info, detector.",
        name="post_isr_image",
        storageClass="VisitImage",
        dimensions=_QUANTUM_DIMENSIONS,
    )

    def adjustQuantum(
        self,
        inputs: dict[str, tuple[cT.BaseInput, Any]],
        outputs: dict[str, tuple[cT.Output, Any]],
        label: str,
        data_id: DataCoordinate,
    ) -> tuple[Mapping[str, tuple[cT.BaseInput, Any]], Mapping[str, tuple[cT.Output, Any]]]:
        # Docstring inherited.
        #
        # The regular inputs of an isr quantum are ingested products, so the
        # graph has a quantum only where they are registered.
        require_registered_inputs(
            self.inputs,
            inputs,
            label,
            data_id,
            remedy=_REINGEST_REMEDY,
        )
        return super().adjustQuantum(inputs, outputs, label, data_id)


class AssemblyPipelineTask(ExposureAssemblyTask, PipelineTask):
    """Base of the instruments' ``isr`` tasks.

    Subclasses name the connection of the reduced image, the connection of
    its noise map, what replaces each other optional input when it is
    missing, and the header cards that hold the archive file name, and
    implement ``run(**inputs, name=)``.

    Notes
    -----
    In `runQuantum`, a required input whose file is missing raises
    `MissingInputError` naming the dataset and the file.  An optional input
    that is not in the input collections, or whose file is missing, is
    logged as a warning naming what is used instead, and recorded in the
    output's metadata as ``MISSING_<DATASET TYPE>`` (e.g.
    ``MISSING_CASU_CONFIDENCE``): why it is missing and what replaced it.
    """

    reduced_image_connection: ClassVar[str]
    """Connection (and `run` argument) of the reduced image."""

    noise_map_connection: ClassVar[str]
    """Connection (and `run` argument) of the noise map the variance model
    may read."""

    optional_input_substitutes: ClassVar[Mapping[str, str]]
    """What is used instead of each optional input other than the noise
    map, by connection name."""

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

    def substitute(self, connection_name: str) -> str:
        """Say what is used instead of a missing optional input.

        Parameters
        ----------
        connection_name : `str`
            Name of the optional input connection.

        Returns
        -------
        substitute : `str`
            E.g. ``variance from BackgroundVarianceTask instead of
            ConfidenceMapVarianceTask``.
        """
        if connection_name == self.noise_map_connection:
            if not self.variance.needs_noise_map:
                return f"nothing: {type(self.variance).__name__} does not read it"
            return (
                f"variance from {type(self.fallbackVariance).__name__} instead of "
                f"{type(self.variance).__name__}"
            )
        return self.optional_input_substitutes[connection_name]

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "Quanta of this task always have data IDs."
        connections = self.config.connections.ConnectionsClass(config=self.config)
        ref: DatasetRef = getattr(inputRefs, self.reduced_image_connection)
        try:
            reduced = butlerQC.get(ref)
        except FileNotFoundError as err:
            raise missing_file_error(
                self.getName(), ref.datasetType.name, data_id, _REINGEST_REMEDY, err.filename or err
            ) from err
        name = f"{ref.datasetType.name}@{data_id_text(data_id)} ({self.source_name(reduced.metadata)})"
        inputs: dict[str, Any] = {self.reduced_image_connection: reduced}
        missing: dict[str, str] = {}
        for connection_name in sorted(connections.prerequisiteInputs):
            dataset_type = getattr(connections, connection_name).name
            optional_ref: DatasetRef | None = getattr(inputRefs, connection_name, None)
            if optional_ref is None:
                missing[dataset_type] = "none in the input collections (or its file is missing)"
            else:
                try:
                    inputs[connection_name] = butlerQC.get(optional_ref)
                except FileNotFoundError as err:
                    missing[dataset_type] = f"its file {err.filename or err} is missing from the datastore"
            if dataset_type in missing:
                missing[dataset_type] += f"; used instead: {self.substitute(connection_name)}"
                self.log.warning("%s: no %s: %s.", name, dataset_type, missing[dataset_type])
        result = self.run(**inputs, name=name)
        for dataset_type, text in missing.items():
            result.outputExposure.metadata[f"MISSING_{dataset_type.upper()}"] = text
        butlerQC.put(result, outputRefs)
