"""measureObjectsRef: each object measured in its reference band (Rubin's
``object_ref_measurement``): centroid, shape, Kron ellipse, extendedness,
sky position and ``detect_isPrimary``.

The centroid is the mean of the bands' adaptive-moment centroids weighted
by their PSF signal-to-noise squared (each band's position error goes as
its inverse): forced photometry at a position taken from one band alone
loses a fraction ``1 / (S/N)**2`` of a star's PSF flux to that band's
position noise, which in a band of much higher S/N is a bias of several
tenths of its error.  Shape, Kron ellipse and extendedness are measured in
the reference band at that centroid.

The reference band of an object is, as Rubin chooses it, the first band of
the priority list in which it was detected with a peak significance of at
least ``refMinSignificance`` (else the band it is most significant in).
``detect_isPrimary`` marks the one row per object a tract's table counts:
centroid in the patch's inner box and in the tract's own part of the sky,
and not the parent of a blend.
"""

from __future__ import annotations

__all__ = ("MeasureObjectsRefConfig", "MeasureObjectsRefConnections", "MeasureObjectsRefTask", "own_labels")

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
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
from ..skymap import make_skymap
from ..skymap.geometry import SkyMap
from .detection import coadd_planes
from .measurement import ObjectMeasurementConfig, measure_objects
from .merge import DEFAULT_PRIORITY, band_priority
from .noise import CoaddNoise
from .object_id import unpack_object_ids
from .tables import read_with_metadata


def own_labels(merged: Table) -> list[list[int]]:
    """Return, per object of a merged catalogue, the ownership labels of its
    pixels: its own row, or for a parent its children's rows."""
    rows = unpack_object_ids(merged["objectId"])[2]
    children: dict[int, list[int]] = {}
    for row, parent in zip(rows, merged["parentObjectId"], strict=True):
        if parent:
            children.setdefault(int(parent), []).append(int(row))
    return [
        children.get(int(object_id), [int(row)])
        for object_id, row in zip(merged["objectId"], rows, strict=True)
    ]


class MeasureObjectsRefConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    sky_map = cT.Input(
        doc="The skymap's definition (register-skymap).",
        name="skyMap",
        storageClass="Config",
        dimensions=("skymap",),
    )
    coadds = cT.Input(
        doc="The patch's coadds, every band.",
        name="deep_coadd",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
        deferLoad=True,
    )
    merged = cT.Input(
        doc="The patch's merged detections.",
        name="object_detection_merged",
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
        doc="Each band's detections, whose metadata records the band's coadd's real noise.",
        name="object_detection",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
        deferLoad=True,
    )
    measurement = cT.Output(
        doc="Each object measured in its reference band.",
        name="object_ref_measurement",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )


class MeasureObjectsRefConfig(PipelineTaskConfig, pipelineConnections=MeasureObjectsRefConnections):
    """Configuration for `MeasureObjectsRefTask`."""

    priorityList = pexConfig.ListField[str](
        doc="Bands in order of priority for the reference band (bands not listed follow, alphabetically).",
        default=DEFAULT_PRIORITY,
    )
    refMinSignificance = pexConfig.Field[float](
        doc="Peak significance an object needs in a band for it to be its reference band.",
        default=10.0,
        check=lambda value: value > 0,
    )
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


class MeasureObjectsRefTask(PipelineTask):
    """Measure a patch's objects in their reference bands."""

    ConfigClass: ClassVar = MeasureObjectsRefConfig
    _DefaultName: ClassVar[str] = "measureObjectsRef"
    config: MeasureObjectsRefConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        data_id = butlerQC.quantum.dataId
        coadds = {str(handle.dataId["band"]): handle for handle in butlerQC.get(inputRefs.coadds)}
        result = self.run(
            coadds,
            butlerQC.get(inputRefs.merged),
            butlerQC.get(inputRefs.merged_footprints),
            detections={
                str(handle.dataId["band"]): read_with_metadata(handle)
                for handle in butlerQC.get(inputRefs.detections)
            },
            skymap=make_skymap(butlerQC.get(inputRefs.sky_map)),
            tract=int(data_id["tract"]),
            patch=int(data_id["patch"]),
            name=data_id_text(data_id),
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        coadds: Mapping[str, Any],
        merged: Table,
        merged_footprints: Image,
        *,
        detections: Mapping[str, Table] | None = None,
        skymap: SkyMap,
        tract: int,
        patch: int,
        name: str = "",
    ) -> Struct:
        """Measure the objects in their reference bands.

        Parameters
        ----------
        coadds : `~collections.abc.Mapping` [`str`, `lsst.images.cells.CellCoadd` or handle]
            The patch's coadds by band.
        merged : `astropy.table.Table`
            ``object_detection_merged``.
        merged_footprints : `lsst.images.Image`
            ``object_detection_merged_footprints``.
        detections : `~collections.abc.Mapping` [`str`, `astropy.table.Table`], optional
            Each band's ``object_detection``: a coadd's real noise is taken
            from its metadata (measured again for a band without it).
        skymap : `lsst.obs.vista.skymap.geometry.SkyMap`
            The skymap.
        tract, patch : `int`
            The patch.
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``measurement`` (`astropy.table.Table`).
        """
        bands = band_priority(list(coadds), self.config.priorityList)
        if not bands:
            raise NoWorkFound(f"{name}: no coadd; no reference measurement written.")
        ref_band = self._reference_bands(merged, bands)
        own = own_labels(merged)
        n = len(merged)
        recorded = detections or {}
        prepared = {
            band: self._prepare(coadds[band], merged_footprints, getattr(recorded.get(band), "meta", None))
            for band in bands
        }
        # Pass 1: every band's centroids and PSF signal-to-noise.
        sum_weight, sum_x, sum_y = np.zeros(n), np.zeros(n), np.zeros(n)
        for band in bands:
            free = measure_objects(
                *prepared[band],
                merged_footprints.array,
                np.asarray(merged["x"], dtype=float),
                np.asarray(merged["y"], dtype=float),
                own,
                self.config.measurement,
                centroid_only=True,
            )
            snr = np.asarray(free["psfFlux"]) / np.asarray(free["psfFluxErr"])
            good = np.isfinite(snr) & ~np.asarray(free["centroid_flag"]) & ~np.asarray(free["psfFlux_flag"])
            weight = np.where(good, np.clip(snr, 0.0, None), 0.0) ** 2
            sum_weight += weight
            sum_x += weight * np.where(good, free["x"], 0.0)
            sum_y += weight * np.where(good, free["y"], 0.0)
        found = sum_weight > 0
        x = np.where(found, sum_x / np.where(found, sum_weight, 1.0), merged["x"])
        y = np.where(found, sum_y / np.where(found, sum_weight, 1.0), merged["y"])
        # Pass 2: shape, Kron ellipse and extendedness in the reference band.
        result: Table | None = None
        for band in bands:
            members = np.nonzero(ref_band == band)[0]
            # A patch without objects still gets a table of every column (from the last band).
            if not members.size and (result is not None or band != bands[-1]):
                continue
            measured = measure_objects(
                *prepared[band],
                merged_footprints.array,
                x[members],
                y[members],
                [own[k] for k in members],
                self.config.measurement,
                fixed_centroid=True,
            )
            if result is None:
                result = Table({name: np.zeros(n, dtype=measured[name].dtype) for name in measured.colnames})
            for column in measured.colnames:
                result[column][members] = measured[column]
        result["centroid_flag"] = ~found
        assert result is not None  # every object has a reference band
        table = Table()
        table["objectId"] = merged["objectId"]
        table["parentObjectId"] = merged["parentObjectId"]
        table["refBand"] = ref_band.astype(str)
        table["x"], table["y"] = result["x"], result["y"]
        table["xy_flag"] = result["centroid_flag"]
        tract_info = skymap[tract]
        ra, dec = tract_info.wcs.wcs_pix2world(np.asarray(table["x"]), np.asarray(table["y"]), 0)
        table["coord_ra"], table["coord_dec"] = ra, dec
        table["shape_xx"], table["shape_yy"], table["shape_xy"] = result["ixx"], result["iyy"], result["ixy"]
        table["shape_flag"] = result["i_flag"]
        table["refExtendedness"] = result["extendedness"]
        table["footprintArea"] = merged["footprintArea"]
        table["deblend_nChild"] = merged["deblend_nChild"]
        table["detect_fromBlend"] = np.asarray(merged["parentObjectId"]) != 0
        table["detect_isIsolated"] = (np.asarray(merged["parentObjectId"]) == 0) & (
            np.asarray(merged["deblend_nChild"]) == 0
        )
        inner = tract_info.patch(patch).inner_bbox
        x, y = np.asarray(table["x"]), np.asarray(table["y"])
        in_patch = (
            (x >= inner.x.start - 0.5)
            & (x < inner.x.stop - 0.5)
            & (y >= inner.y.start - 0.5)
            & (y < inner.y.stop - 0.5)
        )
        in_tract = np.array([skymap.find_tract_id(r, d) == tract for r, d in zip(ra, dec, strict=True)], bool)
        table["detect_isPatchInner"] = in_patch
        table["detect_isTractInner"] = in_tract
        table["detect_isPrimary"] = in_patch & in_tract & (np.asarray(merged["deblend_nChild"]) == 0)
        for column in ("kron_a", "kron_b", "kron_theta", "kron_radius"):
            table[column] = result[column]
        table.meta["BANDS"] = ",".join(bands)
        self.log.info(
            "%s: %d object(s) measured (%s); %d primary.",
            name,
            n,
            ", ".join(f"{band}: {int(np.sum(ref_band == band))}" for band in bands),
            int(np.count_nonzero(table["detect_isPrimary"])),
        )
        return Struct(measurement=table)

    def _prepare(
        self, item: Any, merged_footprints: Image, recorded: Mapping[str, Any] | None
    ) -> tuple[CellCoadd, Any, CoaddNoise]:
        """Return a coadd on the box of the merged footprints (of a handle,
        only that box is read), its planes and its real noise (as
        ``recorded`` by detection, if given)."""
        box = merged_footprints.bbox
        coadd: CellCoadd = item[box] if isinstance(item, CellCoadd) else item.get(parameters={"bbox": box})
        planes = coadd_planes(
            coadd,
            list(self.config.badMaskPlanes),
            self.config.backgroundCellSize,
            merged_footprints.array > 0,
        )
        return coadd, planes, CoaddNoise.of_planes(planes, self.config.maxLag, recorded)

    def _reference_bands(self, merged: Table, bands: list[str]) -> np.ndarray:
        """Return each object's reference band."""
        significance = np.array(
            [
                np.asarray(merged[f"significance_{band}"])
                if f"significance_{band}" in merged.colnames
                else np.zeros(len(merged))
                for band in bands
            ]
        ).reshape(len(bands), len(merged))
        significant = significance >= self.config.refMinSignificance
        first = np.argmax(significant, axis=0)
        fallback = np.argmax(significance, axis=0)
        chosen = np.where(significant.any(axis=0), first, fallback)
        return np.array(bands, dtype=object)[chosen]
