"""forcedPhotExternal: a coadd measured at the positions of an external
catalogue (HSC, Rubin or Legacy Surveys objects), keeping the external ID.

The catalogue is ingested as htm7 shards with the reference-catalogue
machinery (`lsst.obs.vista.refcat.ingest_refcat` with
`~lsst.obs.vista.refcat.EXTERNAL_COLUMNS`: ``source_id``, ``ra``,
``dec``, whatever the file calls them), so that the quantum graph gives
each patch the shards that overlap it.  Each position in the patch's inner
box and the tract's own sky is measured once per band with the coadd
objects' measurement (`measure_objects`): the PSF flux and aperture fluxes
at the fixed position, with the pixels of every coadd object but the one
the position falls on replaced by the noise realisation, and errors with
the coadd's resampling covariance.
"""

from __future__ import annotations

__all__ = (
    "ConsolidateExternalTableConfig",
    "ConsolidateExternalTableConnections",
    "ConsolidateExternalTableTask",
    "ForcedPhotExternalConfig",
    "ForcedPhotExternalConnections",
    "ForcedPhotExternalTask",
)

from collections.abc import Sequence
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack

import lsst.pipe.base.connectionTypes as cT
from lsst.images import Image
from lsst.images.cells import CellCoadd
from lsst.pipe.base import (
    InputQuantizedConnection,
    NoWorkFound,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..isr.pipeline_task import data_id_text
from ..skymap import SkyMap, make_skymap
from .detection import coadd_planes
from .forced import ForcedPhotObjectsConfig
from .measurement import measure_objects
from .noise import CoaddNoise
from .tables import band_column_description, band_no_data, read_with_metadata

_POSITION_DESCRIPTIONS = {
    "externalId": ("ID of the position in the external catalogue.", None),
    "coord_ra": ("ICRS right ascension of the external position.", u.deg),
    "coord_dec": ("ICRS declination of the external position.", u.deg),
    "x": ("Column of the external position (tract pixels).", u.pix),
    "y": ("Row of the external position (tract pixels).", u.pix),
}
"""Descriptions and units of the position columns; the measurements are
described as the object tables' per-band columns."""

_POSITION_COLUMNS = tuple(_POSITION_DESCRIPTIONS)


class ForcedPhotExternalConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    sky_map = cT.Input(
        doc="The skymap's definition (register-skymap).",
        name="skyMap",
        storageClass="Config",
        dimensions=("skymap",),
    )
    coadd = cT.Input(
        doc="The band's coadd (only the merged footprints' box of it is read).",
        name="deep_coadd",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "band"),
        deferLoad=True,
    )
    merged_footprints = cT.Input(
        doc="Which coadd object owns each pixel (the neighbours replaced by noise).",
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
    external = cT.Input(
        doc=(
            "Shards of the external catalogue (ingest_refcat with EXTERNAL_COLUMNS); set the dataset "
            "type name with connections.external."
        ),
        name="external_catalog",
        storageClass="ArrowAstropy",
        dimensions=("htm7",),
        deferLoad=True,
        multiple=True,
    )
    measurement = cT.Output(
        doc="The band measured at the external positions in the patch, with their IDs.",
        name="external_forced_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
    )


class ForcedPhotExternalConfig(ForcedPhotObjectsConfig, pipelineConnections=ForcedPhotExternalConnections):
    """Configuration for `ForcedPhotExternalTask`: what is measured, as
    forcedPhotObjects."""


class ForcedPhotExternalTask(PipelineTask):
    """Measure a patch's coadd in one band at an external catalogue's
    positions."""

    ConfigClass: ClassVar = ForcedPhotExternalConfig
    _DefaultName: ClassVar[str] = "forcedPhotExternal"
    config: ForcedPhotExternalConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        data_id = butlerQC.quantum.dataId
        merged_footprints = butlerQC.get(inputRefs.merged_footprints)
        # Only the merged footprints' box of the coadd: run measures nothing outside it.
        coadd = butlerQC.get(inputRefs.coadd).get(parameters={"bbox": merged_footprints.bbox})
        result = self.run(
            coadd,
            [handle.get() for handle in butlerQC.get(inputRefs.external)],
            merged_footprints,
            skymap=make_skymap(butlerQC.get(inputRefs.sky_map)),
            tract=int(data_id["tract"]),
            patch=int(data_id["patch"]),
            detections=read_with_metadata(butlerQC.get(inputRefs.detections)),
            name=data_id_text(data_id),
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        coadd: CellCoadd,
        shards: Sequence[Table],
        merged_footprints: Image,
        *,
        skymap: SkyMap,
        tract: int,
        patch: int,
        detections: Table | None = None,
        name: str = "",
    ) -> Struct:
        """Measure the coadd at the external positions in the patch.

        Parameters
        ----------
        coadd : `lsst.images.cells.CellCoadd`
            The band's coadd.
        shards : `~collections.abc.Sequence` [`astropy.table.Table`]
            The external catalogue's shards that overlap the patch
            (``source_id``, ``ra``, ``dec``).
        merged_footprints : `lsst.images.Image`
            ``object_detection_merged_footprints``.
        skymap : `lsst.obs.vista.skymap.geometry.SkyMap`
            The skymap.
        tract, patch : `int`
            The patch.
        detections : `astropy.table.Table`, optional
            The band's ``object_detection``: the coadd's real noise is
            taken from its metadata (measured again without it).
        name : `str`, optional
            The quantum's data ID, for messages.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``measurement`` (`astropy.table.Table`): ``externalId``,
            ``coord_ra``, ``coord_dec``, ``x``, ``y`` (tract pixels) and the
            band's measurements under Rubin's per-band names without the
            band prefix, fluxes in nJy.

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if no external position lies in the patch's inner box.
        """
        external = _inside(shards, skymap, tract, patch)
        if len(external) == 0:
            raise NoWorkFound(f"{name}: no external position in the patch; nothing measured.")
        x, y = np.asarray(external["x"]), np.asarray(external["y"])
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
        ownership = merged_footprints.array
        bbox = coadd.bbox
        rows = np.clip(np.round(y).astype(int) - bbox.y.start, 0, bbox.y.size - 1)
        columns = np.clip(np.round(x).astype(int) - bbox.x.start, 0, bbox.x.size - 1)
        # A position keeps the pixels of the coadd object it falls on; the others are noise.
        own = [[int(label)] if label > 0 else [] for label in ownership[rows, columns]]
        measured = measure_objects(
            coadd, planes, noise, ownership, x, y, own, self.config.measurement, fixed_centroid=True
        )
        measured.remove_columns(["x", "y", "centroid_flag", "kron_a", "kron_b", "kron_theta", "kron_radius"])
        for index, column in enumerate(("externalId", "coord_ra", "coord_dec", "x", "y")):
            measured.add_column(external[column], index=index)
        for column in measured.colnames:
            description, unit = _POSITION_DESCRIPTIONS.get(column) or band_column_description(column)
            measured[column].description = description
            if unit is not None:
                measured[column].unit = unit
        self.log.info("%s: %d external position(s) measured.", name, len(measured))
        return Struct(measurement=measured)


def _inside(shards: Sequence[Table], skymap: SkyMap, tract: int, patch: int) -> Table:
    """Return the external rows in the patch's inner box and the tract's
    own sky, with their tract pixel positions."""
    columns = ("source_id", "ra", "dec")
    pieces = [Table({c: np.asarray(shard[c]) for c in columns}) for shard in shards if len(shard)]
    if not pieces:
        return Table(names=("externalId", "coord_ra", "coord_dec", "x", "y"))
    rows = vstack(pieces)
    tract_info = skymap[tract]
    x, y = tract_info.wcs.wcs_world2pix(np.asarray(rows["ra"]), np.asarray(rows["dec"]), 0)
    inner = tract_info.patch(patch).inner_bbox
    with np.errstate(invalid="ignore"):
        in_patch = (
            (x >= inner.x.start - 0.5)
            & (x < inner.x.stop - 0.5)
            & (y >= inner.y.start - 0.5)
            & (y < inner.y.stop - 0.5)
        )
    candidates = np.nonzero(in_patch)[0]
    in_tract = [skymap.find_tract_id(rows["ra"][k], rows["dec"][k]) == tract for k in candidates]
    keep = candidates[np.asarray(in_tract, dtype=bool)] if candidates.size else candidates
    # In ID order, so that every band of a patch has the same rows.
    keep = keep[np.argsort(np.asarray(rows["source_id"])[keep], kind="stable")]
    result = Table()
    result["externalId"] = np.asarray(rows["source_id"])[keep]
    result["coord_ra"] = np.asarray(rows["ra"])[keep]
    result["coord_dec"] = np.asarray(rows["dec"])[keep]
    result["x"], result["y"] = x[keep], y[keep]
    return result


class ConsolidateExternalTableConnections(PipelineTaskConnections, dimensions=("skymap", "tract")):
    measurements = cT.Input(
        doc="The tract's forced measurements at the external positions, per patch and band.",
        name="external_forced_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    table = cT.Output(
        doc="The external positions of the tract, one row each, with {band}_ columns of every band.",
        name="external_object",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract"),
    )


class ConsolidateExternalTableConfig(
    PipelineTaskConfig, pipelineConnections=ConsolidateExternalTableConnections
):
    """Configuration for `ConsolidateExternalTableTask`."""


class ConsolidateExternalTableTask(PipelineTask):
    """Join a tract's external forced measurements over bands and patches:
    the fusion table, one row per external position, Rubin's ``{band}_``
    column names."""

    ConfigClass: ClassVar = ConsolidateExternalTableConfig
    _DefaultName: ClassVar[str] = "consolidateExternalTable"
    config: ConsolidateExternalTableConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        by_patch: dict[int, dict[str, Table]] = {}
        for ref in inputRefs.measurements:
            patch, band = int(ref.dataId["patch"]), str(ref.dataId["band"])
            by_patch.setdefault(patch, {})[band] = butlerQC.get(ref)
        butlerQC.put(self.run(by_patch), outputRefs)

    def run(self, measurements: dict[int, dict[str, Table]]) -> Struct:
        """Join the measurements.

        Parameters
        ----------
        measurements : `dict` [`int`, `dict` [`str`, `astropy.table.Table`]]
            ``external_forced_measurement`` by patch and band.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``table`` (`astropy.table.Table`): the position columns and
            ``{band}_<measurement>`` of every band; a band a patch has no
            coadd in is NaN there with its failure flags set.
        """
        bands = sorted({band for by_band in measurements.values() for band in by_band})
        templates = {band: next(t[band] for t in measurements.values() if band in t) for band in bands}
        pieces = []
        for patch in sorted(measurements):
            by_band = measurements[patch]
            first = by_band[min(by_band)]
            table = Table()
            for column in _POSITION_COLUMNS:
                table[column] = first[column]
            table["patch"] = np.full(len(first), patch, dtype=np.int64)
            table["patch"].description = "Skymap patch the position was measured in."
            for band in bands:
                measured = by_band.get(band)
                if measured is not None and not np.array_equal(measured["externalId"], first["externalId"]):
                    raise ValueError(f"patch {patch}: the {band} measurement has other external positions.")
                template = templates[band]
                for column in template.colnames:
                    if column in _POSITION_COLUMNS:
                        continue
                    values = (
                        np.asarray(measured[column])
                        if measured is not None
                        else band_no_data(column, template[column].dtype, len(first))
                    )
                    description, unit = band_column_description(column)
                    table[f"{band}_{column}"] = values
                    table[f"{band}_{column}"].description = f"{band} band: {description}"
                    table[f"{band}_{column}"].unit = unit
            pieces.append(table)
        table = vstack(pieces, join_type="exact", metadata_conflicts="silent")
        table.meta["BANDS"] = ",".join(bands)
        return Struct(table=table)
