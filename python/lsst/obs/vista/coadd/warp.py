"""makeDirectWarp: a visit's calibrated detector images resampled onto a
patch of a skymap.

``direct_warp`` (dimensions skymap, tract, patch, instrument, visit) is a
`lsst.images.cells.CellCoadd` of one visit: the image in nJy on the patch's
pixel grid, the mask, the per-pixel variance, the visit's PSF carried onto
the tract grid at every cell centre (`~lsst.images.cells.CellPointSpreadFunction`)
and which detector covers which cell (`~lsst.images.cells.CoaddProvenance`).
That type holds everything a warp is, and daf_butler converts it to the afw
``ExposureF`` of Rubin's ``direct_warp`` on read.  ``direct_warp_noise0``
(``MaskedImageV2``, as Rubin's ``MaskedImageF``) is a noise realisation of
the input warped with the same weights: it records the covariance between
neighbouring warp pixels that the variance plane cannot.
"""

from __future__ import annotations

__all__ = ("MakeDirectWarpConfig", "MakeDirectWarpConnections", "MakeDirectWarpTask", "WarpedDetector")

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Box, Image, Interval, Mask, MaskedImage, Polygon, VisitImage
from lsst.images.cells import (
    CellCoadd,
    CellGrid,
    CellGridBounds,
    CellIJ,
    CellPointSpreadFunction,
    CoaddProvenance,
)
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

from ..calibrate.noise_correlation import measure_noise_correlation
from ..isr.masks import planes_set, set_plane
from ..isr.pipeline_task import data_id_text
from ..psf_shape import kernel_moments
from ..skymap import SkyMap, TractInfo, make_skymap
from .mapping import box_intersection, local_jacobian, map_pixels, overlap_box
from .noise import colouring_kernel, noise_realization
from .psf import warp_psf_kernel
from .resampling import resample_planes

_log = logging.getLogger(__name__)


class MakeDirectWarpConnections(
    PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "instrument", "visit")
):
    sky_map = cT.Input(
        doc="The skymap's definition (butler register-skymap).",
        name="skyMap",
        storageClass="Config",
        dimensions=("skymap",),
    )
    visit_images = cT.Input(
        doc="Calibrated detector images of the visit (calibrateImage).",
        name="preliminary_visit_image",
        storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        deferLoad=True,
    )
    warp = cT.Output(
        doc="The visit on the patch grid, in nJy, with its cell PSFs and provenance.",
        name="direct_warp",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
    )
    noise_warp = cT.Output(
        doc="A noise realisation of the visit, warped with the same weights.",
        name="direct_warp_noise0",
        storageClass="MaskedImageV2",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
    )


class MakeDirectWarpConfig(PipelineTaskConfig, pipelineConnections=MakeDirectWarpConnections):
    """Configuration for `MakeDirectWarpTask`."""

    interpolationLength = pexConfig.Field[int](
        doc=(
            "Spacing (pixels) of the points where the exact pixel mapping is computed; it is interpolated "
            "linearly in between (Rubin's warper uses 10)."
        ),
        default=10,
        check=lambda value: value >= 1,
    )
    psfSize = pexConfig.Field[int](
        doc="Side (tract pixels, odd) of the PSF kernel images stored per cell.",
        default=41,
        check=lambda value: value >= 5 and value % 2 == 1,
    )
    legacyCellSize = pexConfig.Field[int](
        doc=(
            "Side (pixels) of the cells a patch is divided into on a skymap whose tract builder has no cells "
            "(the legacy builder, e.g. hsc_rings_v1); a cells skymap's own cells are used otherwise."
        ),
        default=150,
        check=lambda value: value >= 16,
    )
    doCorrelatedNoise = pexConfig.Field[bool](
        doc=(
            "Colour the noise realisation with the pixel correlation measured on the input's sky, so that "
            "the realisation of a resampled stack (a CASU pawprint) is as correlated as its pixels are.  "
            "Off, the realisation is white, as Rubin's."
        ),
        default=True,
    )
    noiseCorrelationMaxLag = pexConfig.Field[int](
        doc="Largest pixel lag per axis at which the input's noise correlation is measured.",
        default=2,
        check=lambda value: value >= 1,
    )
    minSkyPixels = pexConfig.Field[int](
        doc="Fewest sky pixels to measure the noise correlation on; below, the realisation is white.",
        default=2000,
        check=lambda value: value > 0,
    )
    skyMaskPlanes = pexConfig.ListField[str](
        doc="Input mask planes whose pixels are not sky when the noise correlation is measured.",
        default=["DETECTED", "BAD", "SATURATED", "NO_DATA", "COSMIC_RAY", "SUSPECT"],
    )
    seed = pexConfig.Field[int](
        doc=(
            "Base of the noise realisations' random seeds; each detector's seed is derived from it, the "
            "visit and the detector, so reruns give the same realisation."
        ),
        default=0,
        check=lambda value: value >= 0,
    )


@dataclasses.dataclass
class WarpedDetector:
    """One detector of a visit on the patch grid."""

    detector: int
    """Detector ID."""

    box: Box
    """Tract pixels the detector's resampled pixels occupy."""

    planes_box: Box
    """Tract pixels the planes are over: the cells holding `box` (those of
    a warp of this detector alone), or `box` if it misses the cells."""

    image: np.ndarray
    variance: np.ndarray
    noise: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    """Planes over `planes_box`
    (`lsst.obs.vista.coadd.resampling.ResampledPlanes`): no data and no
    mask bits outside `box`."""

    visit_image: VisitImage
    """The input (for its PSF, WCS and observation)."""


class MakeDirectWarpTask(PipelineTask):
    """Resample a visit's ``preliminary_visit_image`` detectors onto a patch.

    Each detector is calibrated to nJy with its photometric scaling and
    warped with the Lanczos-3 kernel (`lsst.obs.vista.coadd.resampling`);
    detectors that miss the patch's outer box are left out, and a visit of
    which none reaches it raises `NoWorkFound` (no empty warp is written).
    The PSF of every cell is the PSF of the detector covering the cell
    centre (or, if none does, the most of the cell), evaluated there and
    carried onto the tract grid.
    """

    ConfigClass: ClassVar = MakeDirectWarpConfig
    _DefaultName: ClassVar[str] = "makeDirectWarp"
    config: MakeDirectWarpConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        data_id = butlerQC.quantum.dataId
        skymap = make_skymap(butlerQC.get(inputRefs.sky_map))
        handles = sorted(butlerQC.get(inputRefs.visit_images), key=lambda h: h.dataId["detector"])
        result = self.run(
            {int(h.dataId["detector"]): h for h in handles},
            skymap=skymap,
            skymap_name=str(data_id["skymap"]),
            tract_id=int(data_id["tract"]),
            patch_id=int(data_id["patch"]),
            visit=int(data_id["visit"]),
            name=data_id_text(data_id),
        )
        butlerQC.put(result, outputRefs)

    def run(
        self,
        visit_images: Mapping[int, Any],
        *,
        skymap: SkyMap,
        skymap_name: str,
        tract_id: int,
        patch_id: int,
        visit: int,
        name: str = "",
    ) -> Struct:
        """Warp a visit's detectors onto a patch.

        Parameters
        ----------
        visit_images : `~collections.abc.Mapping` [`int`, `lsst.images.VisitImage` or handle]
            The visit's calibrated detector images by detector ID (or
            deferred-load handles to them).
        skymap : `lsst.obs.vista.skymap.SkyMap`
            The skymap.
        skymap_name : `str`
            Its registered name.
        tract_id, patch_id : `int`
            The patch.
        visit : `int`
            The visit ID (seeds the noise realisation).
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``warp`` (`lsst.images.cells.CellCoadd`) and ``noise_warp``
            (`lsst.images.MaskedImage`).

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if no detector reaches the patch.
        """
        tract = skymap[tract_id]
        patch = tract.patch_definition(patch_id, self.config.legacyCellSize)
        warped: list[WarpedDetector] = []
        for detector, item in sorted(visit_images.items()):
            visit_image = item if isinstance(item, VisitImage) else item.get()
            piece = self._warp_detector(visit_image, detector, tract, patch, visit, name)
            if piece is not None:
                warped.append(piece)
        if not warped:
            raise NoWorkFound(
                f"{name}: no detector of the visit with a photometric calibration overlaps the patch; "
                "no warp written."
            )
        return self._assemble(warped, tract, patch, skymap_name, visit, name)

    def _warp_detector(
        self, visit_image: VisitImage, detector: int, tract: TractInfo, patch: Any, visit: int, name: str
    ) -> WarpedDetector | None:
        """Return one detector on the patch grid, or `None` if it misses it.

        Its planes are made over the cells it reaches: the warp of a visit
        of one detector takes them as they are.
        """
        if visit_image.photometric_scaling is None:
            _log.warning("%s detector %d: no photometric calibration; left out of the warp.", name, detector)
            return None
        box = overlap_box(tract.wcs, visit_image.sky_projection, visit_image.bbox, patch.outer_bbox)
        if box is None:
            return None
        planes_box = _cells_box(patch.cells, [box]) or box
        mapping = map_pixels(tract.wcs, visit_image.sky_projection, box, self.config.interpolationLength)
        bbox = visit_image.bbox
        scaling = _nanojansky_scaling(visit_image)
        # In float64, rounded to the float32 the resampler reads (no float64 copy).
        image = np.multiply(
            visit_image.image.array, scaling, out=np.empty(bbox.shape, np.float32), casting="same_kind"
        )
        # In float64: the noise realisation's sigma is its square root.
        variance = visit_image.variance.array * scaling**2
        noise = self._noise(visit_image, variance, visit, detector)
        planes = resample_planes(
            image,
            variance,
            noise,
            visit_image.mask.array,
            visit_image.mask.schema.bitmask("NO_DATA"),
            mapping,
            (bbox.x.start, bbox.y.start),
            planes_box,
        )
        if not planes.valid.any():
            return None
        return WarpedDetector(
            detector,
            box,
            planes_box,
            planes.image,
            planes.variance,
            planes.noise,
            planes.mask,
            planes.valid,
            visit_image,
        )

    def make_noise_realization(self, visit_image: VisitImage, *, visit: int, detector: int) -> np.ndarray:
        """Return the noise realisation that the warp of one detector
        carries into ``direct_warp_noise0``, before resampling.

        Parameters
        ----------
        visit_image : `lsst.images.VisitImage`
            The detector's calibrated image (with a photometric calibration).
        visit, detector : `int`
            Its visit and detector IDs (with ``seed``, they seed the draws).

        Returns
        -------
        noise : `numpy.ndarray`
            float32 noise in nJy on the input's pixels, of its calibrated
            variance and (with ``doCorrelatedNoise``) its pixel correlation.
        """
        variance = visit_image.variance.array * _nanojansky_scaling(visit_image) ** 2
        return self._noise(visit_image, variance, visit, detector)

    def _noise(self, visit_image: VisitImage, variance: np.ndarray, visit: int, detector: int) -> np.ndarray:
        """Return `make_noise_realization` given the calibrated variance."""
        rng = np.random.default_rng([self.config.seed, visit, detector])
        return noise_realization(variance, rng, self._colouring(visit_image))

    def _colouring(self, visit_image: VisitImage) -> np.ndarray | None:
        """Return the colouring kernel of the input's noise, or `None` for white."""
        if not self.config.doCorrelatedNoise:
            return None
        planes = [p for p in self.config.skyMaskPlanes if p in visit_image.mask.schema.names]
        sky = ~planes_set(visit_image.mask.array, visit_image.mask.schema, planes)
        variance = visit_image.variance.array
        sky &= np.isfinite(visit_image.image.array) & np.isfinite(variance) & (variance > 0)
        if np.count_nonzero(sky) < self.config.minSkyPixels:
            return None
        residual = np.where(sky, visit_image.image.array, 0.0) / np.sqrt(np.where(sky, variance, 1.0))
        correlation = measure_noise_correlation(residual, sky, self.config.noiseCorrelationMaxLag)
        return colouring_kernel(correlation)

    def _assemble(
        self,
        warped: Sequence[WarpedDetector],
        tract: TractInfo,
        patch: Any,
        skymap_name: str,
        visit: int,
        name: str,
    ) -> Struct:
        """Combine the detectors into the warp and its noise realisation,
        over the cells they reach."""
        outer = patch.outer_bbox
        box = _cells_box(patch.cells, [piece.box for piece in warped])
        if box is None:
            raise NoWorkFound(
                f"{name}: no detector of the visit reaches a cell of the patch; no warp written."
            )
        schema = warped[0].visit_image.mask.schema
        first_piece = warped[0]
        if first_piece.planes_box == box:
            # The first detector's planes are over the warp's cells: they
            # are the warp's, the others' pixels are added to them.
            image, variance, noise = first_piece.image, first_piece.variance, first_piece.noise
            mask = Mask(first_piece.mask, schema=schema, bbox=box)
            owner = np.where(first_piece.valid, 0, -1).astype(np.int32)
            others = list(enumerate(warped))[1:]
        else:
            image = np.full(box.shape, np.nan, dtype=np.float32)
            variance = np.full(box.shape, np.nan, dtype=np.float32)
            noise = np.full(box.shape, np.nan, dtype=np.float32)
            mask = Mask(schema=schema, bbox=box)
            owner = np.full(box.shape, -1, dtype=np.int32)
            others = list(enumerate(warped))
        for index, piece in others:
            inside = box_intersection(piece.planes_box, box)
            if inside is None:
                continue
            # Detectors of one visit do not overlap; where their kernels
            # would both reach, the first one's pixels are kept.
            sl, piece_sl = inside.slice_within(box), inside.slice_within(piece.planes_box)
            take = piece.valid[piece_sl] & (owner[sl] < 0)
            # Masked copies: faster than boolean indexing, which gathers and scatters.
            np.copyto(owner[sl], index, where=take)
            np.copyto(image[sl], piece.image[piece_sl], where=take)
            np.copyto(variance[sl], piece.variance[piece_sl], where=take)
            np.copyto(noise[sl], piece.noise[piece_sl], where=take)
            # Broadcast over the mask bytes: faster than indexing whole pixels.
            np.copyto(mask.array[sl], piece.mask[piece_sl], where=take[..., np.newaxis])
        set_plane(mask, "NO_DATA", owner < 0)
        psf, provenance = self._cell_psfs_and_provenance(warped, owner, box, tract, patch, visit)
        projection = tract.sky_projection(skymap_name)
        first = warped[0].visit_image
        warp = CellCoadd(
            Image(image, bbox=box, unit=u.nJy, sky_projection=projection),
            mask=mask,
            variance=Image(variance, bbox=box, unit=u.nJy**2),
            band=first.band,
            psf=psf,
            patch=patch,
            provenance=provenance,
        )
        covered = np.count_nonzero(owner >= 0)
        warp.metadata.update({"N_DETECTORS": len(warped), "COVERED_PIXELS": int(covered)})
        noise_warp = MaskedImage(
            Image(noise, bbox=box, unit=u.nJy, sky_projection=projection),
            mask=mask.copy(),
            variance=Image(variance.copy(), bbox=box, unit=u.nJy**2),
        )
        _log.info(
            "%s: %d detector(s), %.1f%% of the patch covered.",
            name,
            len(warped),
            100.0 * covered / outer.area,
        )
        return Struct(warp=warp, noise_warp=noise_warp)

    def _cell_psfs_and_provenance(
        self,
        warped: Sequence[WarpedDetector],
        owner: np.ndarray,
        box: Box,
        tract: TractInfo,
        patch: Any,
        visit: int,
    ) -> tuple[CellPointSpreadFunction, CoaddProvenance]:
        """Return the cell PSFs of the warp's cells (those in ``box``, which
        ``owner`` covers) and which detector covers which cell."""
        grid = patch.cells
        size = self.config.psfSize
        first = grid.index_of(y=box.y.start, x=box.x.start)
        last = grid.index_of(y=box.y.stop - 1, x=box.x.stop - 1)
        kernels = np.full((last.i - first.i + 1, last.j - first.j + 1, size, size), np.nan)
        missing: set[CellIJ] = set()
        covered: list[tuple[CellIJ, np.ndarray, int, int, float, float]] = []
        for i in range(first.i, last.i + 1):
            for j in range(first.j, last.j + 1):
                cell = CellIJ(i=i, j=j)
                cell_box = grid.bbox_of(cell)
                cell_owner = owner[cell_box.slice_within(box)]
                counts = np.bincount(cell_owner[cell_owner >= 0], minlength=len(warped))
                if not counts.any():
                    missing.add(cell)
                    continue
                centre = int(cell_owner[cell_owner.shape[0] // 2, cell_owner.shape[1] // 2])
                chosen = centre if centre >= 0 else int(np.argmax(counts))
                # The PSF at the cell centre, or at the centre of the covered
                # part when the centre is not covered.
                if centre >= 0:
                    cx, cy = float(cell_box.x.center), float(cell_box.y.center)
                else:
                    ys, xs = np.nonzero(cell_owner == chosen)
                    cx, cy = float(xs.mean() + cell_box.x.start), float(ys.mean() + cell_box.y.start)
                covered.append((cell, counts / cell_owner.size, centre, chosen, cx, cy))
        # Each detector's WCS is evaluated once, for all the cells it gives the PSF of.
        detectors = np.array([item[3] for item in covered], dtype=int)
        centres = np.array([item[4:] for item in covered], dtype=float).reshape(-1, 2)
        source_x, source_y = np.empty(len(covered)), np.empty(len(covered))
        jacobians = np.empty((len(covered), 2, 2))
        for index in np.unique(detectors):
            members = detectors == index
            source_x[members], source_y[members], jacobians[members] = local_jacobian(
                tract.wcs, warped[index].visit_image.sky_projection, centres[members, 0], centres[members, 1]
            )
        rows: list[dict[str, Any]] = []
        for k, (cell, fractions, centre, chosen, _, _) in enumerate(covered):
            psf_model = warped[chosen].visit_image.psf
            kernel = warp_psf_kernel(psf_model, float(source_x[k]), float(source_y[k]), jacobians[k], size)
            kernels[cell.i - first.i, cell.j - first.j] = kernel
            ixx, iyy, ixy = kernel_moments(kernel)
            shape_flag = not (np.isfinite(ixx) and np.isfinite(iyy) and ixx > 0 and iyy > 0)
            for index in np.nonzero(fractions)[0]:
                rows.append(
                    {
                        "cell_i": cell.i,
                        "cell_j": cell.j,
                        "detector": warped[int(index)].detector,
                        "overlaps_center": bool(centre == index),
                        "overlap_fraction": float(fractions[index]),
                        "unmasked_fraction": float(fractions[index]),
                        "weight": 1.0,
                        "psf_shape_xx": ixx,
                        "psf_shape_yy": iyy,
                        "psf_shape_xy": ixy,
                        "psf_shape_flag": shape_flag,
                    }
                )
        bounds = CellGridBounds(grid=grid, bbox=box, missing=frozenset(missing))
        psf = CellPointSpreadFunction(kernels, bounds, resampling_kernel="lanczos3")
        return psf, self._provenance(warped, rows, visit)

    def _provenance(
        self, warped: Sequence[WarpedDetector], rows: list[dict[str, Any]], visit: int
    ) -> CoaddProvenance:
        """Return the provenance tables of a warp."""
        inputs = CoaddProvenance.make_empty_input_table(len(warped))
        for row, piece in zip(inputs, warped, strict=True):
            obs = piece.visit_image.obs_info
            row["instrument"] = obs.instrument
            row["visit"] = visit
            row["detector"] = piece.detector
            row["physical_filter"] = obs.physical_filter
            row["day_obs"] = int(obs.observing_day or 0)
            row["polygon"] = Polygon.from_box(piece.box)
        contributions = CoaddProvenance.make_empty_contribution_table(len(rows))
        for row, values in zip(contributions, rows, strict=True):
            for key, value in values.items():
                row[key] = value
            row["instrument"] = inputs["instrument"][0]
            row["visit"] = visit
        return CoaddProvenance(Table(inputs), Table(contributions))


def _nanojansky_scaling(visit_image: VisitImage) -> np.ndarray:
    """Return the factor from the image's units to nJy on its pixels."""
    scaling = visit_image.photometric_scaling.render(visit_image.bbox)
    return scaling.quantity.to_value(u.nJy / visit_image.unit)


def _cells_box(grid: CellGrid, boxes: Sequence[Box]) -> Box | None:
    """Return the smallest box of whole cells of ``grid`` that holds the
    given boxes' pixels on the grid, or `None` if they are all off it.

    A warp is stored over that box only: a detector smaller than the patch
    (or a cutout) does not cost a whole patch of pixels to write and read.
    """
    on_grid = [inside for inside in (box_intersection(b, grid.bbox) for b in boxes) if inside is not None]
    if not on_grid:
        return None
    first = grid.index_of(y=min(b.y.start for b in on_grid), x=min(b.x.start for b in on_grid))
    last = grid.index_of(y=max(b.y.stop for b in on_grid) - 1, x=max(b.x.stop for b in on_grid) - 1)
    low, high = grid.bbox_of(first), grid.bbox_of(last)
    return Box(y=Interval(low.y.start, high.y.stop), x=Interval(low.x.start, high.x.stop))
