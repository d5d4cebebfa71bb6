"""Detection of sources on a background-subtracted exposure, with
thresholds in units of its variance plane (sep, SExtractor's algorithms)."""

from __future__ import annotations

__all__ = ("SourceDetectionConfig", "SourceDetectionTask")

from typing import ClassVar

import numpy as np
import sep
from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.images import Box
from lsst.pipe.base import Struct, Task


class SourceDetectionConfig(pexConfig.Config):
    """Configuration for `SourceDetectionTask`."""

    threshold = pexConfig.Field[float](
        doc=(
            "Detection threshold in sigma of the filtered image, from the variance plane: a pixel of the "
            "image convolved with the PSF-matched kernel is detected above threshold * its noise."
        ),
        default=5.0,
        check=lambda value: value > 0,
    )
    minArea = pexConfig.Field[int](
        doc="Minimum number of connected pixels above threshold for a detection.",
        default=5,
        check=lambda value: value >= 1,
    )
    deblendThresholds = pexConfig.Field[int](
        doc="Number of thresholds of SExtractor's multi-threshold deblending.",
        default=32,
        check=lambda value: value >= 1,
    )
    deblendContrast = pexConfig.Field[float](
        doc="Minimum flux fraction of a deblended child (SExtractor DEBLEND_MINCONT; 1 disables deblending).",
        default=0.005,
        check=lambda value: 0 < value <= 1,
    )
    kernelHalfWidth = pexConfig.Field[float](
        doc="Half-side of the Gaussian detection kernel, in units of the PSF sigma (rounded up).",
        default=2.5,
        check=lambda value: value > 0,
    )
    doClean = pexConfig.Field[bool](
        doc=(
            "Apply SExtractor's cleaning, which drops detections it attributes to a brighter neighbour's "
            "wings.  Off: with per-pixel errors and the matched filter it also removed isolated stars of "
            "S/N 12-22 more than 15 pixels from any other source."
        ),
        default=False,
    )
    maxSources = pexConfig.Field[int](
        doc="Most detections kept (the brightest by peak); a guard against runaway detection on bad data.",
        default=20000,
        check=lambda value: value > 0,
    )


class SourceDetectionTask(Task):
    """Detect sources above a threshold in sigma of the variance plane.

    Notes
    -----
    The image is convolved with a Gaussian of the PSF's width and sep's
    matched-filter threshold uses the per-pixel noise ``sqrt(variance)``,
    so a threshold of 5 means a 5-sigma excess of the PSF-weighted flux
    wherever the depth of the exposure varies.  Masked pixels are left out;
    detections are deblended by SExtractor's multi-threshold method.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = SourceDetectionConfig
    config: SourceDetectionConfig
    _DefaultName: ClassVar[str] = "detection"

    def run(
        self, image: np.ndarray, variance: np.ndarray, bad: np.ndarray, bbox: Box, psf_sigma: float
    ) -> Struct:
        """Detect sources.

        Parameters
        ----------
        image : `numpy.ndarray`
            Background-subtracted pixels (float32).
        variance : `numpy.ndarray`
            Variance plane (float32).
        bad : `numpy.ndarray` [`bool`]
            Pixels that are not to be detected on.
        bbox : `lsst.images.Box`
            Bounding box of the image; output positions are in its (parent)
            coordinates.
        psf_sigma : `float`
            Gaussian sigma (pixels) of the PSF estimate, for the kernel.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``sources``: `astropy.table.Table` with ``x``, ``y`` (parent
            pixel coordinates of the barycentre), the isophotal moments
            ``x2``, ``y2``, ``xy``, ``a``, ``b``, ``theta``, ``npix``,
            ``peak``, sep ``flag`` bits, ``parent`` (0 if not deblended) and
            ``footprint`` (segmentation label); ``segmentation``: the label
            image (0 for no source).
        """
        data = np.ascontiguousarray(np.where(bad, np.float32(0), image), dtype=np.float32)
        noise = np.sqrt(variance, dtype=np.float32)
        sep.set_extract_pixstack(max(300000, data.size))
        sep.set_sub_object_limit(4096)
        objects, segmentation = sep.extract(
            data,
            self.config.threshold,
            err=noise,
            mask=bad,
            minarea=self.config.minArea,
            filter_kernel=self._kernel(psf_sigma),
            filter_type="matched",
            deblend_nthresh=self.config.deblendThresholds,
            deblend_cont=self.config.deblendContrast,
            clean=self.config.doClean,
            segmentation_map=True,
        )
        keep = np.arange(len(objects))
        if len(objects) > self.config.maxSources:
            self.log.warning("%d detections; keeping the %d brightest.", len(objects), self.config.maxSources)
            keep = np.sort(np.argsort(objects["peak"])[::-1][: self.config.maxSources])
            objects = objects[keep]
        sources = Table()
        # sep labels the segmentation map with the object's index + 1.
        sources["footprint"] = (keep + 1).astype(np.int32)
        sources["x"] = objects["x"] + bbox.x.start
        sources["y"] = objects["y"] + bbox.y.start
        for column in ("x2", "y2", "xy", "a", "b", "theta", "npix", "peak", "flag"):
            sources[column] = objects[column]
        sources["blended"] = (objects["flag"] & sep.OBJ_MERGED) != 0
        return Struct(sources=sources, segmentation=segmentation)

    def _kernel(self, psf_sigma: float) -> np.ndarray:
        """Return the Gaussian detection kernel of a PSF of sigma ``psf_sigma``."""
        half = max(1, int(np.ceil(self.config.kernelHalfWidth * psf_sigma)))
        offsets = np.arange(-half, half + 1)
        profile = np.exp(-0.5 * (offsets / psf_sigma) ** 2)
        return np.outer(profile, profile).astype(np.float32)
