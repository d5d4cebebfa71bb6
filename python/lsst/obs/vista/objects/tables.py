"""writeObjectTable and consolidateObjectTable: Rubin's ``object_patch``
(per patch) and ``object`` (per tract) tables, with Rubin's Object column
names: the reference measurement and ``{band}_`` columns of every band's
forced measurement.

A configured band without a forced measurement (no coadd of the patch in
that band) gets NaN values, True failure flags and
``{band}_pixelFlags_nodata`` True, so that every patch's table has the same
columns.  ``ArrowAstropy`` is the storage class: afw's ``SourceCatalog`` is
not available without the full Rubin stack.
"""

from __future__ import annotations

__all__ = (
    "ConsolidateObjectTableConfig",
    "ConsolidateObjectTableConnections",
    "ConsolidateObjectTableTask",
    "WriteObjectTableConfig",
    "WriteObjectTableConnections",
    "WriteObjectTableTask",
    "band_column_description",
    "band_no_data",
    "read_with_metadata",
)

from collections.abc import Mapping
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DeferredDatasetHandle
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
from .object_id import unpack_object_ids

_INTERNAL = ("kron_a", "kron_b", "kron_theta", "kron_radius")
"""Reference columns that only forced measurement needs."""

_DESCRIPTIONS = {
    "objectId": "Unique object ID: tract, patch and running number (lsst.obs.vista.objects.object_id).",
    "parentObjectId": "objectId of the blend this object was deblended from; 0 if not deblended.",
    "tract": "Skymap tract ID.",
    "patch": "Skymap patch ID.",
    "refBand": "Reference band: the one the centroid, shape and Kron ellipse were measured in.",
    "x": "Column of the centroid (tract pixels): HSM adaptive-moment centroid in the reference band.",
    "y": "Row of the centroid (tract pixels), as x.",
    "xy_flag": "True if the centroid failed or moved more than 3 pixels; x and y are the peak then.",
    "coord_ra": "ICRS right ascension of the centroid through the tract WCS.",
    "coord_dec": "ICRS declination of the centroid through the tract WCS.",
    "shape_xx": "Adaptive second moment xx (GalSim HSM, PSF included), reference band.",
    "shape_yy": "Adaptive second moment yy, as shape_xx.",
    "shape_xy": "Adaptive second moment xy, as shape_xx.",
    "shape_flag": "True if the adaptive moments failed in the reference band.",
    "refExtendedness": (
        "0 if point-like, 1 if extended: the reference band's PSF flux below its Kron flux corrected to "
        "total by more than a fraction and a number of errors; NaN if undefined."
    ),
    "footprintArea": "Pixels of the object's share of its detection footprint (all of it for a parent).",
    "deblend_nChild": "Number of objects deblended from this one (0 unless it is a parent).",
    "detect_fromBlend": "True if the object was deblended from a parent with more than one child.",
    "detect_isIsolated": "True if the object is alone in its footprint.",
    "detect_isPatchInner": "True if the centroid lies in the patch's inner box.",
    "detect_isTractInner": "True if the centroid lies in the tract's own part of the sky.",
    "detect_isPrimary": (
        "True for the one row of each object a tract counts: patch inner, tract inner, not a parent."
    ),
}
"""Descriptions of the reference columns."""

_UNITS = {
    "x": u.pix,
    "y": u.pix,
    "coord_ra": u.deg,
    "coord_dec": u.deg,
    "shape_xx": u.pix**2,
    "shape_yy": u.pix**2,
    "shape_xy": u.pix**2,
    "footprintArea": u.pix,
}


def read_with_metadata(handle: DeferredDatasetHandle) -> Table:
    """Read an ``ArrowAstropy`` dataset with its table metadata.

    The butler strips an astropy table's ``meta`` on read unless told
    otherwise; the object tasks keep there what later tasks need (the
    coadd noise detection measured, a patch table's ``BANDS``).
    """
    return handle.get(parameters={"strip_astropy_meta_yaml": False})


def band_column_description(name: str) -> tuple[str, u.UnitBase | None]:
    """Return the description and unit of a per-band column (without the
    band prefix)."""
    if name.startswith("pixelFlags_"):
        plane = name.removeprefix("pixelFlags_")
        where = "in the 3x3 pixels at the centroid" if plane.endswith("Center") else "in the PSF core"
        if plane.startswith("nodata"):
            return f"True if a NO_DATA pixel lies {where}, or the band has no coadd of the patch.", None
        return f"True if a {plane.removesuffix('Center').upper()} pixel lies {where}.", None
    if name.startswith("ap") and name.endswith(("Flux", "FluxErr", "Flux_flag")):
        radius = name[2:].split("Flux")[0].replace("p", ".")
        if name.endswith("Flux_flag"):
            return (
                f"True if the {float(radius):g}-pixel aperture leaves the stamp or holds masked pixels.",
                None,
            )
        what = "1-sigma uncertainty (real noise) of the" if name.endswith("Err") else ""
        return f"{what} Flux within a {float(radius):g}-pixel circular aperture, forced.".strip(), u.nJy
    table = {
        "psfFlux": ("Least-squares amplitude of the cell PSF at the reference centroid, forced.", u.nJy),
        "psfFluxErr": ("1-sigma uncertainty of psfFlux, with the coadd's pixel covariance.", u.nJy),
        "psfFlux_flag": ("True if the PSF flux failed (no usable pixel, no coadd in the band).", None),
        "psfFlux_flag_edge": ("True if the PSF model's stamp leaves the coadd or the stamp.", None),
        "kronFlux": ("Flux in 2.5 Kron radii of the reference Kron ellipse, forced.", u.nJy),
        "kronFluxErr": ("1-sigma uncertainty of kronFlux, with the coadd's pixel covariance.", u.nJy),
        "kronRad": ("Kron radius (sqrt(a b) of the Kron ellipse) of the reference band.", u.pix),
        "kronFlux_flag": ("True if the Kron flux failed or its aperture is truncated or masked.", None),
        "ixx": ("Adaptive second moment xx in this band (GalSim HSM, PSF included).", u.pix**2),
        "iyy": ("Adaptive second moment yy in this band.", u.pix**2),
        "ixy": ("Adaptive second moment xy in this band.", u.pix**2),
        "i_flag": ("True if the adaptive moments failed in this band.", None),
        "ixxPSF": ("Second moment xx of the PSF model at the object.", u.pix**2),
        "iyyPSF": ("Second moment yy of the PSF model at the object.", u.pix**2),
        "ixyPSF": ("Second moment xy of the PSF model at the object.", u.pix**2),
        "extendedness": ("As refExtendedness, from this band's forced PSF and Kron fluxes.", None),
        "extendedness_flag": ("True if extendedness is undefined.", None),
    }
    return table[name]


def band_no_data(column: str, dtype: np.dtype, n: int) -> np.ndarray:
    """Return the values of a per-band column (without the band prefix)
    for a band with no coadd: NaN, and every failure flag set."""
    if dtype.kind != "b":
        return np.full(n, np.nan, dtype=dtype if dtype.kind == "f" else np.float64)
    failed = column.endswith("flag") or "_flag_" in column or column == "pixelFlags_nodata"
    return np.full(n, failed, dtype=bool)


class WriteObjectTableConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    reference = cT.Input(
        doc="The objects' reference measurements.",
        name="object_ref_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )
    forced = cT.Input(
        doc="The objects' forced measurements, every band with a coadd.",
        name="object_forced_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    table = cT.Output(
        doc="The patch's objects in Rubin's Object columns.",
        name="object_patch",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )


class WriteObjectTableConfig(PipelineTaskConfig, pipelineConnections=WriteObjectTableConnections):
    """Configuration for `WriteObjectTableTask`."""

    bands = pexConfig.ListField[str](
        doc=(
            "Bands every object table has columns for (a band without a coadd of the patch gets NaN and "
            "flags); empty: the bands with forced measurements."
        ),
        default=[],
    )


class WriteObjectTableTask(PipelineTask):
    """Join a patch's reference and forced measurements into ``object_patch``."""

    ConfigClass: ClassVar = WriteObjectTableConfig
    _DefaultName: ClassVar[str] = "writeObjectTable"
    config: WriteObjectTableConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        forced = {str(ref.dataId["band"]): butlerQC.get(ref) for ref in inputRefs.forced}
        result = self.run(
            butlerQC.get(inputRefs.reference), forced, name=data_id_text(butlerQC.quantum.dataId)
        )
        butlerQC.put(result, outputRefs)

    def run(self, reference: Table, forced: Mapping[str, Table], *, name: str = "") -> Struct:
        """Build the patch's object table.

        Parameters
        ----------
        reference : `astropy.table.Table`
            ``object_ref_measurement``.
        forced : `~collections.abc.Mapping` [`str`, `astropy.table.Table`]
            ``object_forced_measurement`` by band.
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``table`` (`astropy.table.Table`), every column described.
        """
        bands = list(self.config.bands) or sorted(forced)
        missing = [band for band in bands if band not in forced]
        if not forced:
            raise NoWorkFound(f"{name}: no forced measurement in any band; no object table written.")
        template = next(iter(forced.values()))
        table = Table()
        tracts, patches, _ = unpack_object_ids(reference["objectId"])
        for column in reference.colnames:
            if column in _INTERNAL:
                continue
            table[column] = reference[column]
            if column == "parentObjectId":
                table["tract"], table["patch"] = tracts, patches
        for column in table.colnames:
            table[column].description = _DESCRIPTIONS[column]
            table[column].unit = _UNITS.get(column)
        n = len(reference)
        for band in bands:
            measured = forced.get(band)
            if measured is not None and not np.array_equal(measured["objectId"], reference["objectId"]):
                raise ValueError(f"{name}: object_forced_measurement of band {band} has other objects.")
            for column in template.colnames:
                if column == "objectId":
                    continue
                if measured is not None:
                    values = np.asarray(measured[column])
                else:
                    values = band_no_data(column, template[column].dtype, n)
                description, unit = band_column_description(column)
                table[f"{band}_{column}"] = values
                table[f"{band}_{column}"].description = f"{band} band: {description}"
                table[f"{band}_{column}"].unit = unit
        if missing:
            self.log.warning("%s: no coadd in band(s) %s; their columns are NaN and flagged.", name, missing)
        table.meta["BANDS"] = ",".join(bands)
        return Struct(table=table)


class ConsolidateObjectTableConnections(PipelineTaskConnections, dimensions=("skymap", "tract")):
    patches = cT.Input(
        doc="The tract's per-patch object tables.",
        name="object_patch",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
        multiple=True,
        deferLoad=True,
    )
    table = cT.Output(
        doc="The tract's objects in Rubin's Object columns (select detect_isPrimary to count each once).",
        name="object",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract"),
    )


class ConsolidateObjectTableConfig(PipelineTaskConfig, pipelineConnections=ConsolidateObjectTableConnections):
    """Configuration for `ConsolidateObjectTableTask`."""


class ConsolidateObjectTableTask(PipelineTask):
    """Concatenate a tract's ``object_patch`` tables into ``object``."""

    ConfigClass: ClassVar = ConsolidateObjectTableConfig
    _DefaultName: ClassVar[str] = "consolidateObjectTable"
    config: ConsolidateObjectTableConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        # Each patch's BANDS (its table metadata) says which bands it has data in.
        patches = [read_with_metadata(handle) for handle in butlerQC.get(inputRefs.patches)]
        butlerQC.put(self.run(patches), outputRefs)

    def run(self, patches: list[Table]) -> Struct:
        """Concatenate patch tables (in patch order).

        A band some patches have no coadd in (and no ``writeObjectTable``
        ``bands`` configured) is added to the others' tables as a band
        without data: NaN and failure flags.

        Parameters
        ----------
        patches : `list` [`astropy.table.Table`]
            ``object_patch`` of each patch.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``table`` (`astropy.table.Table`).
        """
        bands: list[str] = []
        for table in patches:
            bands += [band for band in table.meta.get("BANDS", "").split(",") if band and band not in bands]
        complete = []
        for table in patches:
            table = table.copy(copy_data=False)
            have = table.meta.get("BANDS", "").split(",")
            for band in bands:
                if band in have:
                    continue
                like = next(t for t in patches if band in t.meta.get("BANDS", "").split(","))
                for name in like.colnames:
                    if name.startswith(f"{band}_"):
                        column = name.removeprefix(f"{band}_")
                        table[name] = band_no_data(column, like[name].dtype, len(table))
                        table[name].description = like[name].description
                        table[name].unit = like[name].unit
            table.meta["BANDS"] = ",".join(bands)
            complete.append(
                table[[*patches[0].colnames, *sorted(set(table.colnames) - set(patches[0].colnames))]]
            )
        ordered = sorted(complete, key=lambda table: int(table["patch"][0]) if len(table) else -1)
        return Struct(table=vstack(ordered, join_type="exact", metadata_conflicts="silent"))
