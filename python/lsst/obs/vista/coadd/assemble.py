"""assembleCellCoadd: the cell-based coadd of a patch's direct warps in one
band (Rubin's ``deep_coadd``).

Each cell is the inverse-variance-weighted mean of the warps that cover it
fully, with one weight per warp and cell, so that the coadd's PSF is one
weighted mean of the warps' PSFs over the whole cell.  Where no warp
covers a cell fully (a cutout smaller than a cell, a field edge), the warps
that cover part of it are used with the same weights, renormalised per
pixel, and the cell is listed in the ``PARTIAL_CELLS`` metadata.
"""

from __future__ import annotations

__all__ = ("AssembleCellCoaddConfig", "AssembleCellCoaddConnections", "AssembleCellCoaddTask")

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import astropy.units as u
import numba
import numpy as np
import scipy.ndimage
from astropy.table import Table, vstack

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.images import Box, Image, Interval, Mask, MaskedImage, MaskSchema, get_legacy_deep_coadd_mask_planes
from lsst.images.cells import CellCoadd, CellGridBounds, CellIJ, CellPointSpreadFunction, CoaddProvenance
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

from ..isr.masks import planes_set, set_plane, set_planes
from ..isr.pipeline_task import data_id_text
from .mapping import box_intersection
from .psf import combine_kernels

_log = logging.getLogger(__name__)


class AssembleCellCoaddConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    warps = cT.Input(
        doc="Direct warps of the band's visits onto the patch (makeDirectWarp).",
        name="direct_warp",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
        multiple=True,
        deferLoad=True,
    )
    noise_warps = cT.Input(
        doc="Their warped noise realisations.",
        name="direct_warp_noise0",
        storageClass="MaskedImageV2",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
        multiple=True,
        deferLoad=True,
    )
    coadd = cT.Output(
        doc="The cell-based coadd, with cell PSFs, provenance, mask fractions and a noise realisation.",
        name="deep_coadd",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "band"),
    )
    n_image = cT.Output(
        doc="Number of inputs contributing to each coadd pixel.",
        name="deep_coadd_n_image",
        storageClass="ImageV2",
        dimensions=("skymap", "tract", "patch", "band"),
    )


class AssembleCellCoaddConfig(PipelineTaskConfig, pipelineConnections=AssembleCellCoaddConnections):
    """Configuration for `AssembleCellCoaddTask`."""

    cellRowsPerRead = pexConfig.Field[int](
        doc=(
            "Rows of cells assembled from one read of every input (with a margin for the artefact search): "
            "fewer reads of each warp file against more memory (per input, about 16 bytes per pixel of the "
            "rows read)."
        ),
        default=4,
        check=lambda value: value >= 1,
    )
    badMaskPlanes = pexConfig.ListField[str](
        doc="Warp mask planes whose pixels are left out of the coadd (and counted in its mask fractions).",
        default=["NO_DATA", "BAD", "SATURATED", "COSMIC_RAY"],
    )
    saturatedFraction = pexConfig.Field[float](
        doc=(
            "A coadd pixel is SATURATED when more than this fraction of its cell's inputs were saturated "
            "there (Rubin's rule for its deep coadds)."
        ),
        default=0.1,
        check=lambda value: 0.0 <= value <= 1.0,
    )
    doClip = pexConfig.Field[bool](
        doc="Find and leave out artefacts of one input only (transients, satellite trails, cosmic rays).",
        default=True,
    )
    minInputsForClipping = pexConfig.Field[int](
        doc="Fewest inputs of a cell to look for artefacts in (with two, neither can be told wrong).",
        default=3,
        check=lambda value: value >= 3,
    )
    clipThreshold = pexConfig.Field[float](
        doc=(
            "A PSF-matched input pixel is an artefact when it differs from the inputs' median by more than "
            "this many of its standard deviations ..."
        ),
        default=5.0,
        check=lambda value: value > 0,
    )
    clipFluxFraction = pexConfig.Field[float](
        doc=(
            "... and by more than this fraction of the median, so that what is left of PSF differences on "
            "bright stars after PSF matching is not taken for an artefact."
        ),
        default=0.2,
        check=lambda value: value >= 0,
    )
    clipBinning = pexConfig.Field[int](
        doc=(
            "The artefact search compares the inputs binned by this factor in both axes (the mean of each "
            "block's usable pixels; a block is searched where at least half of its pixels are usable), and "
            "the blocks it finds are grown on the inputs' own pixels.  The artefacts sought are PSF-sized or "
            "larger and the search smooths them by the PSF (2-3 pixels sigma on the patch grid): binning by "
            "less than a PSF sigma keeps them, at a fraction of the cost.  1 searches the pixels themselves."
        ),
        default=2,
        check=lambda value: value >= 1,
    )
    clipGrowSigma = pexConfig.Field[float](
        doc="Artefact pixels are grown by this many PSF sigmas, to take their wings too.",
        default=2.0,
        check=lambda value: value >= 0,
    )


@dataclasses.dataclass
class _WarpBox:
    """A warp's planes over a box, with its PSF and provenance over the
    whole patch."""

    image: Image
    mask: Mask
    variance: Image
    psf: CellPointSpreadFunction
    provenance: CoaddProvenance


@dataclasses.dataclass
class _Input:
    """One warp's planes over the patch and what the assembly needs of it."""

    warp: _WarpBox
    noise: np.ndarray
    usable: np.ndarray
    """Pixels with data and none of the bad mask planes."""

    has_data: np.ndarray
    """Pixels that are not NO_DATA."""

    flags: dict[str, np.ndarray]
    """Pixels of each of its bad mask planes and SATURATED (those in its
    schema), decoded once for all the cells."""

    sigma: float
    """Gaussian sigma (tract pixels) of its PSF, median over cells."""

    cell_rows: dict[tuple[int, int], list[dict[str, Any]]]
    """Its provenance contribution rows by cell (i, j)."""


class _Source:
    """One input warp and its noise realisation, in memory or behind
    deferred-load butler handles, read a box at a time.

    The PSF and the provenance, small, are read once; the pixel planes, a
    box at a time, without them (the ``masked_image`` component): reading
    a box of the whole `~lsst.images.cells.CellCoadd` would read its whole
    PSF array again each time.
    """

    def __init__(self, warp: Any, noise: Any) -> None:
        self._warp = warp
        self._noise = noise
        self.provenance: CoaddProvenance = self._component("provenance")
        self.psf: CellPointSpreadFunction = self._component("psf")
        self.bbox: Box = self.psf.bounds.bbox
        """The cells the warp is stored over (those its visit reaches)."""
        self._cell_rows = np.unique(np.asarray(self.provenance.contributions["cell_i"], dtype=int))

    def _component(self, name: str) -> Any:
        if isinstance(self._warp, CellCoadd):
            return getattr(self._warp, name)
        return self._warp.get(component=name)

    def covers(self, rows: range) -> bool:
        """Return whether the warp has data in any of the given rows of cells."""
        return bool(np.any((self._cell_rows >= rows.start) & (self._cell_rows < rows.stop)))

    def description(self) -> CellCoadd:
        """Return the warp over one of its cells, for what describes the
        whole warp (sky projection, band, patch)."""
        table = self.provenance.contributions
        box = self.psf.grid.bbox_of(CellIJ(i=int(table["cell_i"][0]), j=int(table["cell_j"][0])))
        if isinstance(self._warp, CellCoadd):
            return self._warp[box]
        return self._warp.get(parameters={"bbox": box})

    def read(self, box: Box) -> tuple[_WarpBox, np.ndarray]:
        """Return the warp and its noise realisation's pixels over ``box``
        (which must hold some of its cells: `covers`), NO_DATA where the
        warp is not stored."""
        inside = box_intersection(box, self.bbox)
        if isinstance(self._warp, CellCoadd):
            pixels = self._warp[inside]
        else:
            pixels = self._warp.get(component="masked_image", parameters={"bbox": inside})
        if isinstance(self._noise, MaskedImage | Image):
            noise = self._noise[inside]
        else:
            # Its image only: the mask and variance are the warp's.
            noise = self._noise.get(component="image", parameters={"bbox": inside})
        if isinstance(noise, MaskedImage):
            noise = noise.image
        if inside.shape == box.shape:
            warp = _WarpBox(pixels.image, pixels.mask, pixels.variance, self.psf, self.provenance)
            return warp, noise.array
        sl = inside.slice_within(box)
        image, variance, noise_array = (np.full(box.shape, np.nan, dtype=np.float32) for _ in range(3))
        image[sl], variance[sl], noise_array[sl] = pixels.image.array, pixels.variance.array, noise.array
        mask = Mask(schema=pixels.mask.schema, bbox=box)
        mask.array[sl] = pixels.mask.array
        stored = np.zeros(box.shape, dtype=bool)
        stored[sl] = True
        set_plane(mask, "NO_DATA", ~stored)
        warp = _WarpBox(
            Image(image, bbox=box, unit=pixels.image.unit),
            mask,
            Image(variance, bbox=box, unit=pixels.variance.unit),
            self.psf,
            self.provenance,
        )
        return warp, noise_array


def _psf_sigma(provenance: CoaddProvenance) -> float:
    """Gaussian sigma (pixels) of a warp's PSF: the median over its cells of
    the second-moment size recorded in its provenance."""
    shapes = provenance.contributions
    good = ~np.asarray(shapes["psf_shape_flag"], dtype=bool)
    trace = 0.5 * (np.asarray(shapes["psf_shape_xx"])[good] + np.asarray(shapes["psf_shape_yy"])[good])
    return float(np.sqrt(np.median(trace))) if trace.size else 0.0


class AssembleCellCoaddTask(PipelineTask):
    """Coadd a patch's direct warps cell by cell.

    Artefacts are found, when a cell has at least ``minInputsForClipping``
    inputs, by comparing the inputs after matching them to the broadest
    PSF with a Gaussian: a pixel far from the inputs' median (in noise and
    in flux) is left out of the coadd, grown by the PSF, and marked
    CLIPPED, REJECTED and INEXACT_PSF.
    """

    ConfigClass: ClassVar = AssembleCellCoaddConfig
    _DefaultName: ClassVar[str] = "assembleCellCoadd"
    config: AssembleCellCoaddConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        name = data_id_text(butlerQC.quantum.dataId)

        def key(handle: Any) -> tuple[str, int]:
            return (str(handle.dataId["instrument"]), int(handle.dataId["visit"]))

        noise_by_visit = {key(h): h for h in butlerQC.get(inputRefs.noise_warps)}
        warps = sorted(butlerQC.get(inputRefs.warps), key=key)
        for handle in warps:
            if key(handle) not in noise_by_visit:
                raise FileNotFoundError(f"{name}: direct_warp_noise0 of visit {key(handle)[1]} is missing.")
        butlerQC.put(self.run(warps, [noise_by_visit[key(h)] for h in warps], name=name), outputRefs)

    def run(self, warps: Sequence[Any], noises: Sequence[Any], *, name: str = "") -> Struct:
        """Coadd warps of one patch and band.

        The patch is assembled ``cellRowsPerRead`` rows of cells at a time,
        reading only that strip (with a margin for the artefact search) of
        every input: the memory needed does not grow with the patch's size.

        Parameters
        ----------
        warps : `~collections.abc.Sequence`
            The direct warps: `lsst.images.cells.CellCoadd` objects or
            deferred-load butler handles to them.
        noises : `~collections.abc.Sequence`
            Their warped noise realisations: `lsst.images.MaskedImage`
            objects or handles to them.
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``coadd`` (`lsst.images.cells.CellCoadd`) and ``n_image``
            (`lsst.images.Image`).
        """
        if not warps:
            raise NoWorkFound(f"{name}: no direct_warp covers the patch; no coadd written.")
        sources = [_Source(warp, noise) for warp, noise in zip(warps, noises, strict=True)]
        first_psf = sources[0].psf
        grid = first_psf.grid
        outer = grid.bbox
        planes = _CoaddPlanes.empty(outer, [*self.config.badMaskPlanes, "CLIPPED"])
        kernels = np.full((grid.grid_size.i, grid.grid_size.j) + first_psf.kernel_bbox.shape, np.nan)
        missing: set[CellIJ] = set()
        partial: list[str] = []
        contributions: list[dict[str, Any]] = []
        input_tables: list[Table] = []
        n_clipped = 0
        # The artefact search smooths (_TRUNCATE sigma) and grows (clipGrowSigma
        # sigma) by up to the broadest PSF, and a block of its binned grid
        # reaches up to two blocks further: a strip is read with that margin.
        broadest = max(_psf_sigma(source.provenance) for source in sources)
        margin = (
            int(np.ceil((_TRUNCATE + self.config.clipGrowSigma) * broadest)) + 2 * self.config.clipBinning
        )
        first = None
        step = self.config.cellRowsPerRead
        for first_row in range(0, grid.grid_size.i, step):
            group = range(first_row, min(first_row + step, grid.grid_size.i))
            rows_y = Interval(
                grid.bbox_of(CellIJ(i=group.start, j=0)).y.start,
                grid.bbox_of(CellIJ(i=group.stop - 1, j=0)).y.stop,
            )
            read_y = Interval(
                max(rows_y.start - margin, outer.y.start), min(rows_y.stop + margin, outer.y.stop)
            )
            rows = range(
                grid.index_of(y=read_y.start, x=outer.x.start).i,
                grid.index_of(y=read_y.stop - 1, x=outer.x.start).i + 1,
            )
            covering = [source for source in sources if source.covers(rows)]
            if not covering:
                missing.update(CellIJ(i=i, j=j) for i in group for j in range(grid.grid_size.j))
                continue
            # Only the columns of cells the inputs are stored over can have
            # data: the strip is read over those (with the margin, so that the
            # artefact search sees what it would over the patch's width).
            stored = Interval(
                min(source.bbox.x.start for source in covering),
                max(source.bbox.x.stop for source in covering),
            )
            read_box = Box(
                y=read_y,
                x=Interval(
                    max(stored.start - margin, outer.x.start), min(stored.stop + margin, outer.x.stop)
                ),
            )
            strip = Box(y=rows_y, x=read_box.x)
            columns = range(
                grid.index_of(y=outer.y.start, x=stored.start).j,
                grid.index_of(y=outer.y.start, x=stored.stop - 1).j + 1,
            )
            inputs = [self._input(*source.read(read_box)) for source in covering]
            if first is None:
                first = covering[0].description()
            input_tables.extend(item.warp.provenance.inputs for item in inputs if item.has_data.any())
            if self.config.doClip and len(inputs) >= self.config.minInputsForClipping:
                # The binned grid of the search lies on the patch's, whatever the strip.
                phase = (
                    (read_box.y.start - outer.y.start) % self.config.clipBinning,
                    (read_box.x.start - outer.x.start) % self.config.clipBinning,
                )
                clipped = self._find_artefacts(inputs, phase)
            else:
                clipped = [np.zeros(read_box.shape, dtype=bool) for _ in inputs]
            n_clipped += int(sum(np.count_nonzero(c[strip.slice_within(read_box)]) for c in clipped))
            for i in group:
                for j in range(grid.grid_size.j):
                    cell = CellIJ(i=i, j=j)
                    if j not in columns:
                        missing.add(cell)
                        continue
                    cell_box = grid.bbox_of(cell)
                    sl = cell_box.slice_within(read_box)
                    full = [k for k, item in enumerate(inputs) if item.has_data[sl].all()]
                    chosen = full or [k for k, item in enumerate(inputs) if item.has_data[sl].any()]
                    weights = [self._weight(inputs[k], sl) for k in chosen]
                    chosen = [k for k, w in zip(chosen, weights, strict=True) if w > 0]
                    weights = [w for w in weights if w > 0]
                    if not chosen:
                        missing.add(cell)
                        continue
                    if not full:
                        partial.append(f"{i},{j}")
                    used = self._combine_cell(
                        inputs, clipped, chosen, weights, sl, cell_box.slice_within(outer), planes
                    )
                    kernels[i, j] = combine_kernels([inputs[k].warp.psf[cell].array for k in chosen], weights)
                    contributions.extend(self._cell_contributions(inputs, chosen, weights, used, cell, sl))
        inexact_or_saturated = planes.inexact_psf | planes.too_saturated
        set_planes(
            planes.mask,
            {
                "NO_DATA": planes.n_image == 0,
                "INEXACT_PSF": planes.inexact_psf,
                "CLIPPED": planes.clipped,
                "SATURATED": planes.too_saturated,
                "REJECTED": inexact_or_saturated,
            },
        )
        if len(missing) == grid.grid_size.i * grid.grid_size.j:
            raise NoWorkFound(f"{name}: no warp has usable pixels on the patch; no coadd written.")
        psf = CellPointSpreadFunction(
            kernels, CellGridBounds(grid=grid, bbox=grid.bbox, missing=frozenset(missing)), "lanczos3"
        )
        provenance = CoaddProvenance(_unique_rows(vstack(input_tables)), _contribution_table(contributions))
        projection = first.sky_projection
        coadd = CellCoadd(
            Image(planes.image, bbox=outer, unit=u.nJy, sky_projection=projection),
            mask=planes.mask,
            variance=Image(planes.variance, bbox=outer, unit=u.nJy**2),
            mask_fractions={p: Image(v, bbox=outer) for p, v in planes.fractions.items()},
            noise_realizations=[Image(planes.noise, bbox=outer, unit=u.nJy)],
            band=first.band,
            psf=psf,
            patch=first.patch,
            provenance=provenance,
        )
        coadd.metadata.update(
            {
                "N_INPUTS": len(sources),
                "N_CLIPPED_PIXELS": n_clipped,
                "PARTIAL_CELLS": ";".join(partial),
                "MISSING_CELLS": len(missing),
            }
        )
        _log.info(
            "%s: %d input(s); %d cell(s) partly covered, %d empty; %d input pixel(s) clipped as artefacts.",
            name,
            len(sources),
            len(partial),
            len(missing),
            n_clipped,
        )
        n_image = Image(planes.n_image, bbox=outer, sky_projection=projection)
        return Struct(coadd=coadd, n_image=n_image)

    def _input(self, warp: CellCoadd, noise: np.ndarray) -> _Input:
        """Return what the assembly needs of one warp."""
        names = warp.mask.schema.names
        flags = {
            plane: planes_set(warp.mask.array, warp.mask.schema, [plane])
            for plane in dict.fromkeys([*self.config.badMaskPlanes, "SATURATED"])
            if plane in names
        }
        bad = np.zeros(warp.mask.array.shape[:-1], dtype=bool)
        for plane in self.config.badMaskPlanes:
            bad |= flags.get(plane, False)
        has_data = ~warp.mask.get("NO_DATA") & np.isfinite(warp.image.array)
        usable = has_data & ~bad & np.isfinite(warp.variance.array) & (warp.variance.array > 0)
        # A strip the warp has no cell in carries no provenance (and no data).
        sigma = _psf_sigma(warp.provenance) if has_data.any() else 0.0
        cell_rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        if has_data.any():
            table = warp.provenance.contributions
            columns = {name: table[name].tolist() for name in table.colnames}
            for index in range(len(table)):
                row = {name: values[index] for name, values in columns.items()}
                cell_rows.setdefault((int(row["cell_i"]), int(row["cell_j"])), []).append(row)
        return _Input(warp, noise, usable, has_data, flags, sigma, cell_rows)

    @staticmethod
    def _weight(item: _Input, sl: tuple[slice, slice]) -> float:
        """Inverse of the warp's mean variance over its usable pixels of a cell."""
        usable = item.usable[sl]
        if not usable.any():
            return 0.0
        return 1.0 / float(np.mean(item.warp.variance.array[sl][usable], dtype=np.float64))

    def _combine_cell(
        self,
        inputs: Sequence[_Input],
        clipped: Sequence[np.ndarray],
        chosen: Sequence[int],
        weights: Sequence[float],
        sl: tuple[slice, slice],
        out: tuple[slice, slice],
        planes: _CoaddPlanes,
    ) -> list[np.ndarray]:
        """Fill one cell of the coadd planes (``out`` in them, ``sl`` in the
        inputs' arrays); return each input's used pixels."""
        shape = planes.image[out].shape
        total_weight = np.zeros(shape)
        image = np.zeros(shape)
        variance = np.zeros(shape)
        noise = np.zeros(shape)
        n_image = np.zeros(shape, dtype=np.int32)
        saturated = np.zeros(shape)
        used_pixels = []
        # Each input adds to the pixels it is used (or flagged) in only: the
        # same sums as adding zeros elsewhere.
        for k, weight in zip(chosen, weights, strict=True):
            item = inputs[k]
            used = item.usable[sl] & ~clipped[k][sl]
            used_pixels.append(used)
            _add_input(
                used,
                weight,
                (item.warp.image.array[sl], item.warp.variance.array[sl], item.noise[sl]),
                (total_weight, image, variance, noise),
                n_image,
            )
            for plane, fraction in planes.fractions.items():
                if plane == "CLIPPED":
                    flagged = clipped[k][sl]
                elif plane in item.flags:
                    flagged = item.flags[plane][sl]
                else:
                    continue
                if flagged.any():
                    np.add(fraction[out], weight, out=fraction[out], where=flagged, dtype=np.float64)
            if "SATURATED" in item.flags:
                saturated += item.flags["SATURATED"][sl]
        weight_sum = float(np.sum(weights))
        for fraction in planes.fractions.values():
            fraction[out] /= weight_sum
        with np.errstate(invalid="ignore", divide="ignore"):
            planes.image[out] = image / total_weight
            planes.variance[out] = variance / total_weight**2
            planes.noise[out] = noise / total_weight
        planes.n_image[out] = n_image
        planes.inexact_psf[out] = (n_image < len(chosen)) & (total_weight != 0)
        planes.clipped[out] = np.any([clipped[k][sl] for k in chosen], axis=0)
        planes.too_saturated[out] = saturated > self.config.saturatedFraction * len(chosen)
        return used_pixels

    @staticmethod
    def _cell_contributions(
        inputs: Sequence[_Input],
        chosen: Sequence[int],
        weights: Sequence[float],
        used: Sequence[np.ndarray],
        cell: CellIJ,
        sl: tuple[slice, slice],
    ) -> list[dict[str, Any]]:
        """Return the provenance rows of one cell: its inputs' rows in their
        warps, with the coadd's weights and unmasked fractions."""
        rows = []
        for k, weight, used_pixels in zip(chosen, weights, used, strict=True):
            # The share of the input's data pixels in the cell that reached
            # the coadd, split over its detectors by their overlap.
            data_pixels = max(int(np.count_nonzero(inputs[k].has_data[sl])), 1)
            reached = np.count_nonzero(used_pixels) / data_pixels
            for row in inputs[k].cell_rows.get((cell.i, cell.j), ()):
                rows.append({**row, "weight": weight, "unmasked_fraction": row["overlap_fraction"] * reached})
        return rows

    def _find_artefacts(self, inputs: Sequence[_Input], phase: tuple[int, int]) -> list[np.ndarray]:
        """Return, per input, the pixels that are artefacts of that input alone.

        The search runs on the inputs binned by ``clipBinning`` (`_binned`:
        the mean of each block's usable pixels; a block is usable where at
        least half of its pixels are), with their PSF sigmas on the binned
        grid (binning convolves each PSF with the block, which adds
        ``(clipBinning**2 - 1) / 12`` to its variance in pixels squared), by
        `_search_binned`.  The blocks it finds are mapped back to the
        input's usable pixels in them and grown there by ``clipGrowSigma``
        sigmas of the broadest PSF less ``(clipBinning - 1) / 2`` pixels:
        a block's pixels stand for a position known to a block, and reach
        that much beyond its centre already.

        Parameters
        ----------
        inputs : `~collections.abc.Sequence` [`_Input`]
            The inputs over one strip.
        phase : `tuple` [`int`, `int`]
            Row and column of the strip's first pixel within its block of
            the binned grid: the grid lies on the patch's, so that a pixel
            falls in the same block whichever strip it is searched in.
        """
        factor = self.config.clipBinning
        binned = [_binned(item.warp.image.array, item.usable, factor, phase) for item in inputs]
        found = self._search_binned(
            [values for values, _ in binned],
            [usable for _, usable in binned],
            [float(np.sqrt(item.sigma**2 + (factor**2 - 1) / 12)) / factor for item in inputs],
        )
        target = max(item.sigma for item in inputs)
        radius = int(np.ceil(self.config.clipGrowSigma * target))
        structure = _disc(max(radius - (factor - 1) / 2, 0.0))
        result = []
        for item, blocks in zip(inputs, found, strict=True):
            if blocks.any():
                ys, xs = _pixels_of_blocks(blocks, factor, phase, item.usable)
                result.append(_dilated(ys, xs, item.usable.shape, structure) & item.usable)
            else:
                result.append(np.zeros(item.usable.shape, dtype=bool))
        return result

    def _search_binned(
        self, images: Sequence[np.ndarray], usables: Sequence[np.ndarray], sigmas: Sequence[float]
    ) -> list[np.ndarray]:
        """Return, per input, the pixels of a (binned) grid that are artefacts
        of that input alone, before growth.

        Each input is matched to the broadest PSF with a Gaussian and
        compared with the inputs' median.  The difference is filtered with
        that PSF (a matched filter for point-like and trail-like artefacts)
        and divided by its own robust scatter (1.4826 times the median
        absolute deviation: artefacts are too rare to move it, and it takes
        in the correlation between warp pixels that the variance plane does
        not).  An artefact is where that exceeds ``clipThreshold`` and the
        difference exceeds ``clipFluxFraction`` of the median.

        Only pixels where at least ``minInputsForClipping`` inputs are usable
        can be artefacts, so the search runs on their bounding box grown by
        the reach of the filters, and each input on the part of it where
        that input is usable too: every filtered value it uses sees the same
        pixels as over the whole grid, and the result is the same.

        Parameters
        ----------
        images : `~collections.abc.Sequence` [`numpy.ndarray`]
            The inputs' pixel values on the grid.
        usables : `~collections.abc.Sequence` [`numpy.ndarray`]
            Their usable pixels.
        sigmas : `~collections.abc.Sequence` [`float`]
            Gaussian sigmas of their PSFs, in pixels of the grid.
        """
        shape = usables[0].shape
        result = [np.zeros(shape, dtype=bool) for _ in usables]
        comparable_anywhere = np.sum(usables, axis=0) >= self.config.minInputsForClipping
        target = max(sigmas)
        reach = _filter_radius(target)
        crop = _grown_bbox(comparable_anywhere, reach)
        if crop is None:
            return result
        crop_shape = (crop[0].stop - crop[0].start, crop[1].stop - crop[1].start)
        # Each input's own part of the crop: where it can be compared, grown alike.
        own_boxes = [_grown_bbox(usable & comparable_anywhere, reach) for usable in usables]
        matched = []
        for image, usable_all, sigma, own in zip(images, usables, sigmas, own_boxes, strict=True):
            values = np.full(crop_shape, np.nan, dtype=np.float32)
            if own is not None:
                kernel_sigma = float(np.sqrt(max(target**2 - sigma**2, 0.0)))
                usable = usable_all[own]
                smoothed = _smoothed(image[own], usable, kernel_sigma)
                values[_within(own, crop)] = np.where(usable, smoothed, np.nan)
            matched.append(values)
        stack = np.asarray(matched)
        n_valid = np.sum(np.isfinite(stack), axis=0)
        median = _nanmedian_over_inputs(stack)
        comparable = n_valid >= self.config.minInputsForClipping
        for values_in_crop, own, artefact_full in zip(matched, own_boxes, result, strict=True):
            if own is None:
                continue
            inside = _within(own, crop)
            values, own_median = values_in_crop[inside], median[inside]
            usable = np.isfinite(values) & comparable[inside]
            difference = np.where(usable, values - own_median, 0.0)
            filtered = _smoothed(difference, usable, target) if target > 0 else difference
            # A regular subsample of the values gives their scatter as well as all of them.
            scatter = filtered[usable]
            scatter = scatter[:: max(scatter.size // _SCATTER_SAMPLE, 1)]
            if scatter.size:
                mad = 1.4826 * float(np.median(np.abs(scatter - np.median(scatter))))
                with np.errstate(invalid="ignore"):
                    artefact_full[own] = (
                        usable
                        & (np.abs(filtered) > self.config.clipThreshold * mad)
                        & (np.abs(difference) > self.config.clipFluxFraction * np.abs(own_median))
                    )
        return result


def _grown_bbox(pixels: np.ndarray, reach: int) -> tuple[slice, slice] | None:
    """Return the bounding box of the set pixels grown by ``reach`` (within
    the array), as slices, or `None` if none is set."""
    rows, columns = (np.nonzero(np.any(pixels, axis=axis))[0] for axis in (1, 0))
    if rows.size == 0:
        return None
    return (
        slice(max(rows[0] - reach, 0), min(rows[-1] + reach + 1, pixels.shape[0])),
        slice(max(columns[0] - reach, 0), min(columns[-1] + reach + 1, pixels.shape[1])),
    )


def _within(inner: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """Return the slices of ``inner`` relative to ``outer`` (which holds it)."""
    return tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer, strict=True))


@numba.njit(cache=True, nogil=True)
def _add_input(
    used: np.ndarray,
    weight: float,
    planes: tuple[np.ndarray, np.ndarray, np.ndarray],
    sums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_image: np.ndarray,
) -> None:
    """Add one input's used pixels of a cell to the cell's float64 sums.

    Parameters
    ----------
    used : `numpy.ndarray` [`bool`]
        The input's pixels that enter the coadd.
    weight : `float`
        The input's weight in the cell.
    planes : `tuple` [`numpy.ndarray`, ...]
        Its image, variance and noise realisation over the cell.
    sums : `tuple` [`numpy.ndarray`, ...]
        Sums of the weights, of the weighted images, of the variances times
        the squared weights and of the weighted noise realisations, updated
        in place.
    n_image : `numpy.ndarray`
        Number of inputs used per pixel, updated in place.
    """
    image, variance, noise = planes
    total_weight, image_sum, variance_sum, noise_sum = sums
    square = weight * weight
    for y in range(used.shape[0]):
        for x in range(used.shape[1]):
            if used[y, x]:
                total_weight[y, x] += weight
                image_sum[y, x] += weight * np.float64(image[y, x])
                variance_sum[y, x] += square * np.float64(variance[y, x])
                noise_sum[y, x] += weight * np.float64(noise[y, x])
                n_image[y, x] += 1


@numba.njit(cache=True, nogil=True)
def _nanmedian_over_inputs(stack: np.ndarray) -> np.ndarray:
    """Median over the first axis ignoring NaN, NaN where every value is.

    The same as `numpy.nanmedian` with ``axis=0``, which, for the few
    inputs of a coadd, falls back to a Python loop over the pixels: each
    pixel's finite values are sorted in place of the whole stack.

    Parameters
    ----------
    stack : `numpy.ndarray`
        Values, inputs along the first axis.
    """
    n_inputs, height, width = stack.shape
    median = np.empty((height, width), dtype=stack.dtype)
    values = np.empty(n_inputs, dtype=stack.dtype)
    for y in range(height):
        for x in range(width):
            n = 0
            for k in range(n_inputs):
                value = stack[k, y, x]
                if np.isfinite(value):
                    # Insertion into the sorted values so far.
                    position = n
                    while position > 0 and values[position - 1] > value:
                        values[position] = values[position - 1]
                        position -= 1
                    values[position] = value
                    n += 1
            if n == 0:
                median[y, x] = np.nan
            else:
                median[y, x] = 0.5 * (values[(n - 1) // 2] + values[n // 2])
    return median


@numba.njit(cache=True, nogil=True)
def _binned(
    image: np.ndarray, usable: np.ndarray, factor: int, phase: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Bin an image by ``factor`` in both axes: the mean of each block's
    usable pixels, and the blocks where at least half of their pixels are
    usable (0 elsewhere).  The blocks at the image's edges hold what of
    them is in the image.

    Parameters
    ----------
    image : `numpy.ndarray`
        Pixel values.
    usable : `numpy.ndarray` [`bool`]
        The pixels to use.
    factor : `int`
        Side of a block, in pixels.
    phase : `tuple` [`int`, `int`]
        Row and column of the image's first pixel within its block (so
        that the blocks can lie on a grid wider than the image).

    Returns
    -------
    values : `numpy.ndarray` [`numpy.float32`]
        The binned image.
    binned_usable : `numpy.ndarray` [`bool`]
        Its usable pixels.
    """
    height, width = image.shape
    phase_y, phase_x = phase
    binned_height = (height + phase_y + factor - 1) // factor
    binned_width = (width + phase_x + factor - 1) // factor
    sums = np.zeros((binned_height, binned_width), dtype=np.float64)
    counts = np.zeros((binned_height, binned_width), dtype=np.int64)
    for y in range(height):
        row = (y + phase_y) // factor
        for x in range(width):
            if usable[y, x]:
                column = (x + phase_x) // factor
                sums[row, column] += image[y, x]
                counts[row, column] += 1
    values = np.zeros((binned_height, binned_width), dtype=np.float32)
    binned_usable = np.zeros((binned_height, binned_width), dtype=np.bool_)
    for row in range(binned_height):
        rows = min((row + 1) * factor - phase_y, height) - max(row * factor - phase_y, 0)
        for column in range(binned_width):
            pixels = rows * (min((column + 1) * factor - phase_x, width) - max(column * factor - phase_x, 0))
            if 2 * counts[row, column] >= pixels:
                values[row, column] = sums[row, column] / counts[row, column]
                binned_usable[row, column] = True
    return values, binned_usable


def _pixels_of_blocks(
    blocks: np.ndarray, factor: int, phase: tuple[int, int], usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows and columns of the usable pixels that lie in the set
    blocks of their grid binned by ``factor`` with ``phase`` (as `_binned`
    bins it)."""
    rows, columns = np.nonzero(blocks)
    dy, dx = (offsets.ravel() for offsets in np.mgrid[:factor, :factor])
    ys = (rows[:, np.newaxis] * factor - phase[0] + dy).ravel()
    xs = (columns[:, np.newaxis] * factor - phase[1] + dx).ravel()
    inside = (ys >= 0) & (ys < usable.shape[0]) & (xs >= 0) & (xs < usable.shape[1])
    ys, xs = ys[inside], xs[inside]
    keep = usable[ys, xs]
    return ys[keep], xs[keep]


def _dilated(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int], structure: np.ndarray) -> np.ndarray:
    """`scipy.ndimage.binary_dilation` by a symmetric ``structure`` of odd
    side of the pixels at rows ``ys`` and columns ``xs`` of an image of the
    given shape, at a cost that grows with the number of those pixels
    instead of the image's size (artefacts are few): each sets the
    structure's pixels around it."""
    dy, dx = (offsets - structure.shape[0] // 2 for offsets in np.nonzero(structure))
    result = np.zeros(shape, dtype=bool)
    if ys.size * dy.size > result.size:
        result[ys, xs] = True
        return scipy.ndimage.binary_dilation(result, structure)
    ys, xs = (ys[:, np.newaxis] + dy).ravel(), (xs[:, np.newaxis] + dx).ravel()
    inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    result[ys[inside], xs[inside]] = True
    return result


_TRUNCATE = 4.0
"""Gaussian kernels of the artefact search reach this many sigmas."""

_SCATTER_SAMPLE = 2**18
"""Fewest values the artefact search's robust scatter is taken from (a
regular subsample of the usable pixels when there are at least twice as
many): its median absolute deviation is then that of all of them to about
0.2%."""


def _filter_radius(sigma: float) -> int:
    """Return how far (pixels) `_smoothed` reaches with ``sigma``."""
    return int(_TRUNCATE * sigma + 0.5)


def _smoothed(values: np.ndarray, usable: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth the usable pixels of an image (normalised
    convolution, in float32: it only decides which pixels are artefacts)."""
    filled = np.where(usable, values, 0.0).astype(np.float32)
    if sigma <= 0.1:
        return filled
    weight = scipy.ndimage.gaussian_filter(usable.astype(np.float32), sigma, truncate=_TRUNCATE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return scipy.ndimage.gaussian_filter(filled, sigma, truncate=_TRUNCATE) / weight


@dataclasses.dataclass
class _CoaddPlanes:
    """The coadd's planes while it is assembled."""

    image: np.ndarray
    variance: np.ndarray
    noise: np.ndarray
    n_image: np.ndarray
    mask: Mask
    fractions: dict[str, np.ndarray]
    inexact_psf: np.ndarray
    """Pixels that some of their cell's inputs do not reach (INEXACT_PSF,
    REJECTED), set in `mask` once the cells are assembled (one pass over
    whole mask words instead of one per cell and plane)."""

    clipped: np.ndarray
    """Pixels where an input was clipped as an artefact (CLIPPED)."""

    too_saturated: np.ndarray
    """Pixels saturated in too many of their cell's inputs (SATURATED,
    REJECTED)."""

    @classmethod
    def empty(cls, outer: Box, fraction_names: Sequence[str]) -> _CoaddPlanes:
        schema = MaskSchema(list(get_legacy_deep_coadd_mask_planes().values()))
        return cls(
            image=np.full(outer.shape, np.nan, dtype=np.float32),
            variance=np.full(outer.shape, np.nan, dtype=np.float32),
            noise=np.full(outer.shape, np.nan, dtype=np.float32),
            n_image=np.zeros(outer.shape, dtype=np.int32),
            mask=Mask(schema=schema, bbox=outer),
            fractions={plane: np.zeros(outer.shape, dtype=np.float32) for plane in fraction_names},
            inexact_psf=np.zeros(outer.shape, dtype=bool),
            clipped=np.zeros(outer.shape, dtype=bool),
            too_saturated=np.zeros(outer.shape, dtype=bool),
        )


def _disc(radius: float) -> np.ndarray:
    """A disc of pixels of the given radius (a structuring element of odd side)."""
    reach = int(radius)
    y, x = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    return x * x + y * y <= radius * radius


def _contribution_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Return the provenance contribution table of the given rows."""
    table = CoaddProvenance.make_empty_contribution_table(len(rows))
    for name in table.colnames:
        # In place, keeping each column's type, unit and description.
        table[name][:] = [row[name] for row in rows]
    return table


def _unique_rows(table: Table) -> Table:
    """Return the inputs table with each (instrument, visit, detector) once."""
    keys = [(str(r["instrument"]), int(r["visit"]), int(r["detector"])) for r in table]
    first = sorted({key: index for index, key in reversed(list(enumerate(keys)))}.values())
    return table[first]
