"""mergeCoaddDetections: the bands' peaks of a patch merged into one list of
objects with footprints (Rubin's ``object_detection_merged``).

Merged footprints are the connected pixels of the union of the bands'
footprints.  Peaks are taken band by band in priority order: a peak within
``matchRadius`` of one already taken is the same object (its band is
recorded); otherwise it is a new object.  Every footprint pixel goes to the
object whose peak's child owned it in the highest-priority band that
detected something there (sep's deblending, band by band).  A footprint
with more than one object gets a parent row too, as Rubin's deblended
catalogues have: the parent is never primary.
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_PRIORITY",
    "MergeCoaddDetectionsConfig",
    "MergeCoaddDetectionsConnections",
    "MergeCoaddDetectionsTask",
    "band_priority",
)

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.ndimage
import scipy.spatial
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Image
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
from .detection import bounding_box
from .object_id import pack_object_ids

DEFAULT_PRIORITY = ["Ks", "K", "H", "J", "y", "z", "i", "r", "g", "u"]
"""Default band priority (this package's band names: VIRCAM's, WFCAM's and
DECam's share z and y; WFCAM's K ranks as VIRCAM's Ks): the reddest first,
where VISTA is deepest for the red objects its surveys select."""


def band_priority(bands: Sequence[str], priority: Sequence[str]) -> list[str]:
    """Return bands in priority order: those in ``priority`` first, in its
    order, then the others alphabetically."""
    ranked = [band for band in priority if band in bands]
    return ranked + sorted(set(bands) - set(ranked))


class MergeCoaddDetectionsConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    detections = cT.Input(
        doc="Each band's peaks (detectCoaddPeaks).",
        name="object_detection",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    footprints = cT.Input(
        doc="Each band's peak footprints (detectCoaddPeaks).",
        name="object_detection_footprints",
        storageClass="ImageV2",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    merged = cT.Output(
        doc="The patch's objects: deblended children, isolated objects and the parents of blends.",
        name="object_detection_merged",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )
    merged_footprints = cT.Output(
        doc="Which object each coadd pixel belongs to: its object_detection_merged row number, 0 for none.",
        name="object_detection_merged_footprints",
        storageClass="ImageV2",
        dimensions=("skymap", "tract", "patch"),
    )


class MergeCoaddDetectionsConfig(PipelineTaskConfig, pipelineConnections=MergeCoaddDetectionsConnections):
    """Configuration for `MergeCoaddDetectionsTask`."""

    priorityList = pexConfig.ListField[str](
        doc=(
            "Bands in order of priority: peak positions, pixel ownership and the reference band come from "
            "the first band in this list that has the object (bands not listed follow, alphabetically)."
        ),
        default=DEFAULT_PRIORITY,
    )
    matchRadius = pexConfig.Field[float](
        doc="Peaks of two bands closer than this (tract pixels) are the same object.",
        default=4.0,
        check=lambda value: value > 0,
    )


class MergeCoaddDetectionsTask(PipelineTask):
    """Merge the bands' peaks and footprints of a patch."""

    ConfigClass: ClassVar = MergeCoaddDetectionsConfig
    _DefaultName: ClassVar[str] = "mergeCoaddDetections"
    config: MergeCoaddDetectionsConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        data_id = butlerQC.quantum.dataId
        detections = {str(ref.dataId["band"]): butlerQC.get(ref) for ref in inputRefs.detections}
        footprints = {str(ref.dataId["band"]): butlerQC.get(ref) for ref in inputRefs.footprints}
        result = self.run(
            detections,
            footprints,
            tract=int(data_id["tract"]),
            patch=int(data_id["patch"]),
            name=data_id_text(data_id),
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        detections: Mapping[str, Table],
        footprints: Mapping[str, Image],
        *,
        tract: int,
        patch: int,
        name: str = "",
    ) -> Struct:
        """Merge the bands' detections of a patch.

        Parameters
        ----------
        detections : `~collections.abc.Mapping` [`str`, `astropy.table.Table`]
            Each band's ``object_detection``.
        footprints : `~collections.abc.Mapping` [`str`, `lsst.images.Image`]
            Each band's ``object_detection_footprints``, on one pixel grid
            (their boxes may differ: the merged footprints cover their union).
        tract, patch : `int`
            The patch, for the object IDs.
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``merged`` (`astropy.table.Table`: ``objectId``,
            ``parentObjectId`` (0 unless deblended from a parent),
            ``x``, ``y`` (tract pixels of the peak), ``footprint``,
            ``footprintArea`` (pixels of the object, or of the whole
            footprint for a parent), ``deblend_nChild``, ``merge_peak_{band}``
            (detected in the band) and ``significance_{band}`` (peak
            filtered signal-to-noise there, 0 if not detected), parents last)
            and ``merged_footprints`` (`lsst.images.Image` of int32 row
            numbers from 1, 0 outside every footprint).
        """
        bands = band_priority(list(detections), self.config.priorityList)
        if not bands:
            raise NoWorkFound(f"{name}: no band has detections; no merged catalogue written.")
        bbox = bounding_box([footprints[band].bbox for band in bands])
        x: list[float] = []
        y: list[float] = []
        significance: dict[str, list[float]] = {band: [] for band in bands}
        ownership = np.zeros(bbox.shape, dtype=np.int32)
        for band in bands:
            table = detections[band]
            labels = np.zeros(bbox.shape, dtype=np.int32)
            labels[footprints[band].bbox.slice_within(bbox)] = footprints[band].array
            band_to_object = np.zeros(len(table) + 1, dtype=np.int32)
            # Peaks of one band are distinct children: match against earlier bands only.
            earlier = len(x)
            tree = scipy.spatial.cKDTree(np.column_stack([x, y])) if earlier else None
            for row in table:
                match = None
                if tree is not None:
                    distance, nearest = tree.query([float(row["x"]), float(row["y"])])
                    if distance <= self.config.matchRadius:
                        match = int(nearest)
                if match is None:
                    x.append(float(row["x"]))
                    y.append(float(row["y"]))
                    for values in significance.values():
                        values.append(0.0)
                    match = len(x) - 1
                significance[band][match] = max(significance[band][match], float(row["significance"]))
                band_to_object[int(row["id"])] = match + 1
            free = (ownership == 0) & (labels > 0)
            ownership[free] = band_to_object[labels[free]]
        n = len(x)
        merged_labels, _ = scipy.ndimage.label(ownership > 0, structure=np.ones((3, 3)))
        area = np.bincount(ownership.ravel(), minlength=n + 1)[1:]
        footprint = np.zeros(n, dtype=np.int32)
        # Each object's footprint: the merged footprint its pixels are in.
        owners = ownership.ravel()
        footprint[owners[owners > 0] - 1] = merged_labels.ravel()[owners > 0]
        children_per_footprint = np.bincount(footprint, minlength=merged_labels.max() + 1)
        blended = children_per_footprint[footprint] > 1
        parents = np.unique(footprint[blended])
        rows = np.arange(1, n + len(parents) + 1)
        ids = pack_object_ids(tract, patch, rows)
        parent_of_footprint = dict(zip(parents.tolist(), ids[n:].tolist(), strict=True))
        merged = Table()
        merged["objectId"] = ids
        merged["parentObjectId"] = np.array(
            [parent_of_footprint.get(int(f), 0) if b else 0 for f, b in zip(footprint, blended, strict=True)]
            + [0] * len(parents),
            dtype=np.int64,
        )
        footprint_area = np.bincount(merged_labels.ravel(), minlength=merged_labels.max() + 1)
        # A parent's position: its brightest child's peak.
        brightest = [self._brightest(footprint, significance, bands, f) for f in parents]
        merged["x"] = np.array(x + [x[k] for k in brightest])
        merged["y"] = np.array(y + [y[k] for k in brightest])
        merged["footprint"] = np.concatenate([footprint, parents]).astype(np.int32)
        merged["footprintArea"] = np.concatenate([area, footprint_area[parents]]).astype(np.int32)
        merged["deblend_nChild"] = np.concatenate(
            [np.zeros(n, dtype=np.int32), children_per_footprint[parents].astype(np.int32)]
        )
        for band in bands:
            values = np.array(significance[band] + [significance[band][k] for k in brightest])
            merged[f"merge_peak_{band}"] = values > 0
            merged[f"significance_{band}"] = values
        merged.meta["BANDS"] = ",".join(bands)
        self.log.info(
            "%s: %d object(s) from %d band(s); %d deblended from %d parent(s).",
            name,
            n,
            len(bands),
            int(np.count_nonzero(blended)),
            len(parents),
        )
        return Struct(merged=merged, merged_footprints=Image(ownership, bbox=bbox))

    @staticmethod
    def _brightest(footprint: np.ndarray, significance: dict[str, Any], bands: list[str], label: int) -> int:
        """Return the index of the most significant object of a footprint."""
        members = np.nonzero(footprint == label)[0]
        best = np.max([np.asarray(significance[band])[members] for band in bands], axis=0)
        return int(members[np.argmax(best)])
