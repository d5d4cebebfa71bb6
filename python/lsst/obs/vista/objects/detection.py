"""detectCoaddPeaks: detection of one band's ``deep_coadd`` (Rubin's
``object_detection``), with footprints deblended into peaks.

The coadd is background-subtracted, filtered with its own PSF (the matched
filter of a point source), and divided by the real noise of the filtered
image: the variance plane filtered with the squared PSF, times the factor
its noise realisation shows for the same filter (the resampling covariance).
Footprints are the connected pixels above ``threshold``; SExtractor's
multi-threshold deblending (sep) splits them into children, one per peak.
sep is used because it is already this package's detection library, is
SExtractor's algorithm in C (the peer the objects are compared with), and
gives every footprint pixel to one child, which the merge and the
neighbour replacement of the measurement need.
"""

from __future__ import annotations

__all__ = (
    "DetectCoaddPeaksConfig",
    "DetectCoaddPeaksConnections",
    "DetectCoaddPeaksTask",
    "bounding_box",
    "coadd_planes",
    "covered_box",
    "filtered_snr",
    "mean_psf_kernel",
    "read_covered_coadd",
)

from typing import ClassVar

import numpy as np
import scipy.ndimage
import sep
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box, Image
from lsst.images.cells import CellCoadd, CellIJ, CellPointSpreadFunction
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..isr.masks import planes_set
from ..isr.pipeline_task import data_id_text
from .noise import CoaddNoise

_SOURCE_MASK_SMOOTHING = 2.0
"""Gaussian sigma (pixels) of the smoothing that finds the sources to leave
out of the background estimate."""

_SOURCE_MASK_THRESHOLD = 5.0
"""Sources left out of the background estimate: the smoothed image above
this many of its robust sigmas (high enough that masking leaves the noise's
own upward fluctuations in, which would bias the estimate low)."""

_SOURCE_MASK_GROWTH = 6
"""Pixels the sources left out of the background estimate are grown by."""


class DetectCoaddPeaksConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    coadd = cT.Input(
        doc="The band's cell-based coadd (assembleCellCoadd).",
        name="deep_coadd",
        storageClass="CellCoadd",
        dimensions=("skymap", "tract", "patch", "band"),
        deferLoad=True,
    )
    detections = cT.Output(
        doc="Peaks detected on the coadd: one row per deblended child, with its footprint's number.",
        name="object_detection",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch", "band"),
    )
    footprints = cT.Output(
        doc="Which peak's footprint each coadd pixel is in: its object_detection row number, 0 for none.",
        name="object_detection_footprints",
        storageClass="ImageV2",
        dimensions=("skymap", "tract", "patch", "band"),
    )


class DetectCoaddPeaksConfig(PipelineTaskConfig, pipelineConnections=DetectCoaddPeaksConnections):
    """Configuration for `DetectCoaddPeaksTask`."""

    threshold = pexConfig.Field[float](
        doc="Detection threshold: signal-to-noise of the PSF-filtered coadd with correlated noise.",
        default=5.0,
        check=lambda value: value > 0,
    )
    minArea = pexConfig.Field[int](
        doc="Fewest connected pixels above threshold of a footprint.",
        default=5,
        check=lambda value: value >= 1,
    )
    deblendThresholds = pexConfig.Field[int](
        doc="Number of thresholds of SExtractor's multi-threshold deblending (DEBLEND_NTHRESH).",
        default=32,
        check=lambda value: value >= 1,
    )
    deblendContrast = pexConfig.Field[float](
        doc="Smallest share of its footprint's flux a child must have (DEBLEND_MINCONT; 1: no deblending).",
        default=0.005,
        check=lambda value: 0 < value <= 1,
    )
    backgroundCellSize = pexConfig.Field[int](
        doc=(
            "Side (pixels) of the background mesh: the coadd is already sky-subtracted per visit; this "
            "removes what is left on scales larger than galaxies."
        ),
        default=128,
        check=lambda value: value >= 16,
    )
    badMaskPlanes = pexConfig.ListField[str](
        doc="Coadd mask planes whose pixels are not detected on.",
        default=["NO_DATA"],
    )
    maxLag = pexConfig.Field[int](
        doc="Largest pixel lag of the noise correlation measured on the noise realisation.",
        default=6,
        check=lambda value: value >= 1,
    )


def covered_box(psf: CellPointSpreadFunction) -> Box:
    """Return the smallest box holding every cell of a coadd that has inputs
    (a PSF).

    A patch is much larger than a small survey field: the objects tasks
    work on this box only (and on one box for all bands, the union of
    theirs, so that the bands' footprints stay aligned).
    """
    bounds = psf.bounds
    boxes = [bounds.grid.bbox_of(cell) for cell in bounds.cell_indices()]
    return bounding_box(boxes).intersection(bounds.bbox) if boxes else bounds.bbox


def read_covered_coadd(handle: DeferredDatasetHandle) -> CellCoadd:
    """Read the part of a coadd its cells with inputs cover.

    Reading and decompressing a whole patch's planes (and its PSF, one
    kernel per cell) costs many times the detection on a small field, so
    the box is found from small reads first: the cells the coadd's
    provenance has contributions in (those with a PSF), on the cell grid of
    the PSF of one pixel; then only that box's planes are read.  A coadd
    without provenance has its whole PSF read for `covered_box`.
    """
    outer = handle.get(component="bbox")
    corner = Box.factory[outer.y.start : outer.y.start + 1, outer.x.start : outer.x.start + 1]
    grid = handle.get(component="psf", parameters={"bbox": corner}).bounds.grid
    provenance = handle.get(component="provenance")
    if provenance is None or len(provenance.contributions) == 0:
        return handle.get(parameters={"bbox": covered_box(handle.get(component="psf"))})
    contributions = provenance.contributions
    cells = set(zip(contributions["cell_i"].tolist(), contributions["cell_j"].tolist(), strict=True))
    box = bounding_box([grid.bbox_of(CellIJ(i=i, j=j)) for i, j in cells]).intersection(outer)
    return handle.get(parameters={"bbox": box})


def bounding_box(boxes: list[Box]) -> Box:
    """Return the smallest box holding every one of ``boxes`` (not empty)."""
    return Box.factory[
        min(box.y.start for box in boxes) : max(box.y.stop for box in boxes),
        min(box.x.start for box in boxes) : max(box.x.stop for box in boxes),
    ]


def coadd_planes(
    coadd: CellCoadd, bad_planes: list[str], cell_size: int, footprints: np.ndarray | None = None
) -> Struct:
    """Return a coadd's background-subtracted pixels and what goes with them.

    Parameters
    ----------
    coadd : `lsst.images.cells.CellCoadd`
        The coadd.
    bad_planes : `list` [`str`]
        Mask planes of pixels without usable data.
    cell_size : `int`
        Background mesh size (pixels).
    footprints : `numpy.ndarray` [`bool`], optional
        Pixels of known sources (the detection footprints), left out of
        the background estimate with those the image itself shows.

    Returns
    -------
    planes : `lsst.pipe.base.Struct`
        ``image`` (background-subtracted, 0 where unusable), ``variance``
        (0 where unusable), ``noise`` (noise realisation, 0 where
        unusable) and ``usable`` (`bool`): arrays of the coadd's outer box.
    """
    image = coadd.image.array.astype(np.float64)
    variance = coadd.variance.array.astype(np.float64)
    noise = coadd.noise_realizations[0].array.astype(np.float64)
    planes = [p for p in bad_planes if p in coadd.mask.schema.names]
    usable = (
        ~planes_set(coadd.mask.array, coadd.mask.schema, planes) if planes else np.ones(image.shape, bool)
    )
    usable &= np.isfinite(image) & np.isfinite(variance) & (variance > 0) & np.isfinite(noise)
    data = np.ascontiguousarray(np.where(usable, image, 0.0), dtype=np.float32)
    background = sep.Background(data, mask=~usable, bw=cell_size, bh=cell_size, fw=3, fh=3)
    # Again without the sources: their wings bias a clipped mesh estimate high.
    residual = np.where(usable, image - background.back(dtype=np.float64), 0.0)
    smoothed = scipy.ndimage.gaussian_filter(residual, _SOURCE_MASK_SMOOTHING)
    scatter = 1.4826 * np.median(np.abs(smoothed[usable])) if usable.any() else 0.0
    sources = smoothed > _SOURCE_MASK_THRESHOLD * scatter
    if footprints is not None:
        sources |= footprints
    sources = scipy.ndimage.binary_dilation(sources, iterations=_SOURCE_MASK_GROWTH)
    background = sep.Background(data, mask=~usable | sources, bw=cell_size, bh=cell_size, fw=3, fh=3)
    image = np.where(usable, image - background.back(dtype=np.float64), 0.0)
    return Struct(
        image=image,
        variance=np.where(usable, variance, 0.0),
        noise=np.where(usable, noise, 0.0),
        usable=usable,
    )


def mean_psf_kernel(coadd: CellCoadd) -> np.ndarray:
    """Return the mean of a coadd's cell PSF kernels, normalised to unit sum."""
    kernels = [coadd.psf[cell].array for cell in coadd.psf.bounds.cell_indices()]
    kernel = np.mean(kernels, axis=0)
    return kernel / kernel.sum()


def filtered_snr(image: np.ndarray, variance: np.ndarray, kernel: np.ndarray, factor: float) -> np.ndarray:
    """Return the signal-to-noise of an image filtered with a kernel.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        Pixels and their variances (0 where unusable).
    kernel : `numpy.ndarray`
        The filter (the PSF, for point sources).
    factor : `float`
        Real noise of the filtered image over the one the variance plane
        predicts (`CoaddNoise.factor` of the kernel).

    Returns
    -------
    snr : `numpy.ndarray`
        ``(image * kernel) / (factor * sqrt(variance * kernel**2))``, 0
        where nothing usable is under the kernel.
    """
    # Imported here: scipy.signal takes a third of a CPU-second to import,
    # and every process that loads a pipeline holding this task imports
    # this module (pipetask qgraph, butler transfer-from-graph ...).
    import scipy.signal

    filtered = scipy.signal.fftconvolve(image, kernel, mode="same")
    filtered_variance = scipy.signal.fftconvolve(variance, kernel * kernel, mode="same")
    positive = filtered_variance > 1e-12 * np.max(filtered_variance, initial=0.0)
    return np.where(positive, filtered / (factor * np.sqrt(np.where(positive, filtered_variance, 1.0))), 0.0)


class DetectCoaddPeaksTask(PipelineTask):
    """Detect and deblend the peaks of one band's coadd of a patch."""

    ConfigClass: ClassVar = DetectCoaddPeaksConfig
    _DefaultName: ClassVar[str] = "detectCoaddPeaks"
    config: DetectCoaddPeaksConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        coadd = read_covered_coadd(butlerQC.get(inputRefs.coadd))
        butlerQC.put(self.run(coadd, name=data_id_text(butlerQC.quantum.dataId)), outputRefs)

    def run(self, coadd: CellCoadd, *, name: str = "") -> Struct:
        """Detect the peaks of a coadd.

        Parameters
        ----------
        coadd : `lsst.images.cells.CellCoadd`
            The coadd.
        name : `str`, optional
            The quantum's data ID, for log lines.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``detections`` (`astropy.table.Table`: ``id`` (row number from
            1), ``x``, ``y`` (tract pixels of the peak's barycentre on the
            filtered image), ``significance`` (its highest filtered
            signal-to-noise), ``footprint`` (number of the connected
            footprint holding it, from 1), ``npix`` (its pixels),
            ``deblended`` (whether its footprint has other peaks)) and
            ``footprints`` (`lsst.images.Image` of int32 ``id``, 0 outside
            every footprint), on the box of the coadd's cells with inputs
            (`covered_box`).  The table's metadata records the coadd's
            real noise (`CoaddNoise.metadata`) for the later tasks.
        """
        coadd = coadd[covered_box(coadd.psf)]
        planes = coadd_planes(coadd, list(self.config.badMaskPlanes), self.config.backgroundCellSize)
        real_noise = CoaddNoise(planes.noise, planes.variance, planes.usable, self.config.maxLag)
        kernel = mean_psf_kernel(coadd)
        factor = real_noise.factor(kernel)
        snr = filtered_snr(planes.image, planes.variance, kernel, factor)
        snr = np.ascontiguousarray(np.where(planes.usable, snr, 0.0), dtype=np.float32)
        sep.set_extract_pixstack(max(300000, snr.size))
        sep.set_sub_object_limit(4096)
        objects, segmentation = sep.extract(
            snr,
            self.config.threshold,
            mask=~planes.usable,
            minarea=self.config.minArea,
            filter_kernel=None,
            deblend_nthresh=self.config.deblendThresholds,
            deblend_cont=self.config.deblendContrast,
            clean=False,
            segmentation_map=True,
        )
        footprint_labels, _ = scipy.ndimage.label(segmentation > 0, structure=np.ones((3, 3)))
        bbox = coadd.bbox
        detections = Table()
        # sep labels the segmentation map with the object's index + 1.
        detections["id"] = np.arange(1, len(objects) + 1, dtype=np.int32)
        detections["x"] = objects["x"] + bbox.x.start
        detections["y"] = objects["y"] + bbox.y.start
        detections["significance"] = objects["peak"].astype(np.float64)
        # The child's peak pixel is above threshold: in its footprint.
        detections["footprint"] = footprint_labels[objects["ycpeak"], objects["xcpeak"]].astype(np.int32)
        detections["npix"] = objects["npix"].astype(np.int32)
        counts = np.bincount(detections["footprint"], minlength=footprint_labels.max() + 1)
        detections["deblended"] = counts[detections["footprint"]] > 1
        detections.meta.update(real_noise.metadata)
        detections.meta["NOISE_FILTER_FACTOR"] = factor
        self.log.info(
            "%s: %d peak(s) in %d footprint(s) above %g sigma (filtered noise %.3f times the variance "
            "plane's).",
            name,
            len(detections),
            int(np.count_nonzero(counts)),
            self.config.threshold,
            factor,
        )
        footprints = Image(segmentation.astype(np.int32), bbox=bbox)
        return Struct(detections=detections, footprints=footprints)
