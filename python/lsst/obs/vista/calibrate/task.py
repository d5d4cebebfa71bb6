"""`CalibrateImageTask`: single-frame processing after isr, on sep, Piff,
astropy and scipy, with the dataset names and storage classes of Rubin's
pipe_tasks ``calibrateImage``."""

from __future__ import annotations

__all__ = ("CalibrateImageConfig", "CalibrateImageConnections", "CalibrateImageTask")

import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

import lsst.pex.config as pexConfig
import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DataCoordinate
from lsst.images import BackgroundMap, Box, Image, VisitImage
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

from ..isr.assembly import photometric_scaling_from_zero_point
from ..isr.handoff import IsrHandoff
from ..isr.pipeline_task import data_id_text, missing_file_error, require_registered_inputs
from ..provenance import DISTRIBUTION, package_version
from ..psf_shape import psf_moments
from ..refcat import load_reference_stars
from ..source_id import SourceIdGenerator
from .aperture_correction import PSF_FLUX_ALGORITHM, ApertureCorrectionTask
from .astrometry import AstrometryTask
from .background import MeshBackgroundTask
from .catalog import add_calibrated_fluxes, add_sky_coordinates, classify_extendedness, usable_for_calibration
from .catalog_comparison import CatalogComparisonTask
from .columns import column_definitions, describe_columns
from .detection import SourceDetectionTask
from .measurement import SourceMeasurementTask, aperture_column
from .noise_correlation import correlation_error_factor, measure_noise_correlation
from .photometry import PhotometryTask, match_by_position
from .psf import PiffPsfDeterminerTask
from .skipped import say_skipped
from .summary import (
    MIN_NOISE_PIXELS,
    background_noise,
    make_summary_stats,
    pixel_scale_at_centre,
    zenith_distance,
)

_BACKGROUND_NAME = "mesh"
"""Name of the subtracted background in the output's `BackgroundMap`."""

_SKY_VARIANCE_PERCENTILE = 10.0
"""Percentile of the variance plane taken as the sky's where too few pixels
are free of sources to measure the sky noise."""

_UNUSABLE_PLANES = ("NO_DATA", "SATURATED", "BAD", "COSMIC_RAY")
"""Mask planes whose pixels enter neither the background nor the PSF fit."""

_RERUN_ISR_REMEDY = "run isr again for it or remove the dataset"
"""What a user can do when a ``post_isr_image`` lost its file."""


class CalibrateImageConnections(PipelineTaskConnections, dimensions=("instrument", "visit", "detector")):
    """Inputs and outputs of `CalibrateImageTask`, per visit and detector."""

    exposures = cT.Input(
        doc="The exposure of the visit, from isr (one per visit: every ingested exposure is its own visit).",
        name="post_isr_image",
        storageClass="VisitImage",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    astrometry_ref_cat = cT.PrerequisiteInput(
        doc=(
            "Reference catalogue shards overlapping the detector (``butler ingest-refcat``); optional: "
            "without them the header WCS and zero point are kept."
        ),
        name="gaia_dr3",
        storageClass="ArrowAstropy",
        dimensions=("htm7",),
        deferLoad=True,
        multiple=True,
        minimum=0,
    )
    photometry_ref_cat = cT.PrerequisiteInput(
        doc=(
            "Photometric reference catalogue shards overlapping the detector, where it is not the "
            "astrometric one (e.g. 2MASS for the CASU instruments, as CASU calibrates them); removed "
            "when its name is astrometry_ref_cat's.  Optional: without them the header zero point is kept."
        ),
        name="gaia_dr3",
        storageClass="ArrowAstropy",
        dimensions=("htm7",),
        deferLoad=True,
        multiple=True,
        minimum=0,
    )
    comparison_catalog = cT.PrerequisiteInput(
        doc=(
            "Catalogue delivered with the image (CASU's, for the CASU instruments), compared with our "
            "measurements by ``catalogComparison`` (reported, not used as reference); read only with "
            "``doCompareCatalog``."
        ),
        name="comparison_catalog",
        storageClass="AstropyTable",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        minimum=0,
    )
    exposure = cT.Output(
        doc="Background-subtracted exposure with the fitted PSF, refined WCS and photometric calibration.",
        name="preliminary_visit_image",
        storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
    )
    background = cT.Output(
        doc="Background model subtracted from preliminary_visit_image.",
        name="preliminary_visit_image_background",
        storageClass="BackgroundMap",
        dimensions=("instrument", "visit", "detector"),
    )
    stars = cT.Output(
        doc="Every detected source, measured and calibrated (select point sources with extendedness == 0).",
        name="single_visit_star",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )

    def __init__(self, *, config: CalibrateImageConfig) -> None:
        super().__init__(config=config)
        if not config.doCompareCatalog:
            del self.comparison_catalog
        if not _separate_photometry_catalog(config):
            del self.photometry_ref_cat

    def adjustQuantum(
        self,
        inputs: dict[str, tuple[cT.BaseInput, Any]],
        outputs: dict[str, tuple[cT.Output, Any]],
        label: str,
        data_id: DataCoordinate,
    ) -> tuple[Mapping[str, tuple[cT.BaseInput, Any]], Mapping[str, tuple[cT.Output, Any]]]:
        # Docstring inherited.
        require_registered_inputs(self.inputs, inputs, label, data_id, remedy=_RERUN_ISR_REMEDY)
        return super().adjustQuantum(inputs, outputs, label, data_id)


class CalibrateImageConfig(PipelineTaskConfig, pipelineConnections=CalibrateImageConnections):
    """Configuration for `CalibrateImageTask`."""

    background = pexConfig.ConfigurableField(target=MeshBackgroundTask, doc="Background estimate.")
    detection = pexConfig.ConfigurableField(target=SourceDetectionTask, doc="Source detection.")
    measurement = pexConfig.ConfigurableField(target=SourceMeasurementTask, doc="Source measurement.")
    psf = pexConfig.ConfigurableField(target=PiffPsfDeterminerTask, doc="PSF star selection and model.")
    apertureCorrection = pexConfig.ConfigurableField(
        target=ApertureCorrectionTask, doc="Aperture correction of the PSF fluxes."
    )
    astrometry = pexConfig.ConfigurableField(target=AstrometryTask, doc="Astrometric calibration.")
    photometry = pexConfig.ConfigurableField(target=PhotometryTask, doc="Photometric calibration.")
    catalogComparison = pexConfig.ConfigurableField(
        target=CatalogComparisonTask,
        doc="Comparison with the catalogue delivered with the image (instruments with one retarget it).",
    )
    doCompareCatalog = pexConfig.Field[bool](
        doc=(
            "Read the catalogue delivered with the image (connection comparison_catalog), if ingested, "
            "and report how our measurements compare (catalogComparison)."
        ),
        default=False,
    )
    extendednessFluxRatio = pexConfig.Field[float](
        doc="psfFlux / aperture flux below which (by 2 sigma) a source is extended (Rubin uses 0.985).",
        default=0.95,
        check=lambda value: 0 < value <= 1,
    )
    extendednessSizeRatio = pexConfig.Field[float](
        doc="Ratio of a source's second-moment trace to the PSF's above which it is extended by size.",
        default=1.1,
        check=lambda value: value >= 1,
    )
    doCorrelatedNoise = pexConfig.Field[bool](
        doc=(
            "Scale flux and centroid errors for the pixel-to-pixel noise correlation measured on the "
            "background (resampled stacks); per-pixel variances alone understate the error of a sum."
        ),
        default=True,
    )
    noiseCorrelationMaxLag = pexConfig.Field[int](
        doc="Largest lag (pixels) of the measured noise correlation; resampling kernels are 1-2 pixels wide.",
        default=2,
        check=lambda value: value >= 1,
    )
    referenceMargin = pexConfig.Field[float](
        doc="Reference stars are loaded out to this many pixels beyond the detector (header WCS errors).",
        default=50.0,
        check=lambda value: value >= 0,
    )

    def validate(self) -> None:
        super().validate()
        if self.doCompareCatalog and not self.catalogComparison.target.compares:
            raise pexConfig.FieldValidationError(
                CalibrateImageConfig.doCompareCatalog,
                self,
                "catalogComparison must be retargeted to a task that knows the catalogue's columns",
            )


class CalibrateImageTask(PipelineTask):
    """Characterize and calibrate one detector of one visit.

    Notes
    -----
    Steps, each a retargetable subtask:

    1. ``background``: a mesh background with sources masked iteratively,
       subtracted and kept as a `SplineField` in a `BackgroundMap`;
    2. ``detection``: sep detection at a threshold in sigma of the variance
       plane, with the header PSF;
    3. ``measurement`` with the header PSF, then ``psf``: star selection and
       a Piff model (or the header PSF, said once in the log and recorded
       in the metadata, when too few stars), then measurement again with
       the final PSF;
    4. errors scaled for the noise correlation measured on the background
       (``doCorrelatedNoise``), then ``apertureCorrection`` of PSF fluxes on the PSF star candidates
       (fitted, reserved, or too few for a model), then ``extendedness``;
    5. ``astrometry`` against the reference catalogue, if any;
    6. ``photometry``: the header zero point, or one fitted to reference
       stars with colour terms, from the astrometric catalogue or from a
       separate ``photometry_ref_cat`` (2MASS for VIRCAM and WFCAM)
       matched by position; ``PHOTOCAL_REFCAT`` names it, ``PHOTOCAL_OFFSET``
       is fitted minus header; calibrated fluxes in nJy.

    Every step takes empty, one-row and all-masked inputs: where it cannot
    do its work (no sources, too few PSF stars, no reference catalogue or
    none of its stars on the detector, no zero point, no sky pixels) it
    says so in one log line and a ``SKIPPED_<STEP>`` key of the outputs'
    metadata, with the same text, and the outputs carry what it had
    instead (the header PSF, WCS or zero point, an empty catalogue, NaN
    statistics).  Only an exposure whose pixels are all NO_DATA has no
    outputs (`NoWorkFound`, one warning line).

    Source IDs and the seed of every random draw come from the data ID
    (`~lsst.obs.vista.source_id.SourceIdGenerator`), so that IDs are unique
    in a repository and a rerun writes the same outputs bit for bit.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = CalibrateImageConfig
    config: CalibrateImageConfig
    _DefaultName: ClassVar[str] = "calibrateImage"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in (
            "background",
            "detection",
            "measurement",
            "psf",
            "apertureCorrection",
            "astrometry",
            "photometry",
            "catalogComparison",
        ):
            self.makeSubtask(name)

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        # Docstring inherited.
        exposure_refs = inputRefs.exposures
        if len(exposure_refs) != 1:
            raise RuntimeError(
                f"calibrateImage takes one exposure per visit; visit {butlerQC.quantum.dataId} has "
                f"{len(exposure_refs)}."
            )
        try:
            exposure = butlerQC.get(exposure_refs[0])
        except FileNotFoundError as err:
            raise missing_file_error(
                self.getName(), exposure_refs[0].datasetType.name, butlerQC.quantum.dataId,
                _RERUN_ISR_REMEDY, err.filename or err,
            ) from err  # fmt: skip
        name = data_id_text(exposure_refs[0].dataId)
        missing: dict[str, str] = {}
        shards = _read_shards(butlerQC, inputRefs.astrometry_ref_cat, missing)
        photometry_shards = None
        if _separate_photometry_catalog(self.config):
            photometry_shards = _read_shards(butlerQC, inputRefs.photometry_ref_cat, missing)
        comparison_catalog = None
        if self.config.doCompareCatalog:
            catalog_name = self.config.connections.comparison_catalog
            if not inputRefs.comparison_catalog:
                missing[catalog_name] = (
                    "none in the input collections (or its file is missing); no comparison"
                )
            else:
                try:
                    comparison_catalog = butlerQC.get(inputRefs.comparison_catalog[0])
                except FileNotFoundError as err:
                    missing[catalog_name] = f"its file {err.filename or err} is missing; no comparison"
        for what, text in missing.items():
            self.log.warning("%s: no %s: %s.", name, what, text)
        reference_name = inputRefs.astrometry_ref_cat[0].datasetType.name if shards else None
        data_id = butlerQC.quantum.dataId
        result = self.run(
            exposure,
            reference_shards=shards,
            reference_name=reference_name,
            photometry_shards=photometry_shards,
            comparison_catalog=comparison_catalog,
            name=name,
            id_generator=SourceIdGenerator(
                instrument=str(data_id["instrument"]),
                visit=int(data_id["visit"]),
                detector=int(data_id["detector"]),
            ),
        )
        for what, text in missing.items():
            result.exposure.metadata[f"MISSING_{what.split('@')[0].upper()}"] = text
        butlerQC.put(result, outputRefs)

    def run(
        self,
        exposure: VisitImage,
        *,
        reference_shards: dict[int, Table] | None = None,
        reference_name: str | None = None,
        photometry_shards: dict[int, Table] | None = None,
        comparison_catalog: Table | None = None,
        name: str = "exposure",
        id_generator: SourceIdGenerator | None = None,
    ) -> Struct:
        """Calibrate one exposure.

        Parameters
        ----------
        exposure : `lsst.images.VisitImage`
            ``post_isr_image``.
        reference_shards : `dict` [`int`, `astropy.table.Table`], optional
            Reference catalogue shards by htm7 trixel.
        reference_name : `str`, optional
            Name of the reference catalogue, for messages.
        photometry_shards : `dict` [`int`, `astropy.table.Table`], optional
            Shards of the photometric reference catalogue
            (``connections.photometry_ref_cat``) where it is not the
            astrometric one; none (the header zero point is kept) if not
            given.  Ignored when the photometry uses the astrometric
            catalogue.
        comparison_catalog : `astropy.table.Table`, optional
            Catalogue delivered with the image, for ``catalogComparison``.
        name : `str`, optional
            What to call the exposure in log messages.
        id_generator : `lsst.obs.vista.source_id.SourceIdGenerator`, optional
            Source IDs and the seed of every random draw, from the data ID;
            by default from the exposure's observation info (instrument,
            visit ID, detector number).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``exposure`` (`VisitImage`), ``background`` (`BackgroundMap`),
            ``stars`` (`astropy.table.Table`, every column described, see
            `column_definitions`).

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if every pixel is NO_DATA.
        """
        if id_generator is None:
            obs_info = exposure.obs_info
            id_generator = SourceIdGenerator(
                instrument=obs_info.instrument, visit=obs_info.visit_id, detector=obs_info.detector_num
            )
        handoff = IsrHandoff.from_metadata(exposure.metadata)
        characterized = self._characterize(exposure, handoff, seed=id_generator.seed, name=name)
        references = _References(
            astrometry_shards=reference_shards,
            astrometry_name=reference_name,
            photometry_shards=(photometry_shards or {})
            if _separate_photometry_catalog(self.config)
            else None,
            photometry_name=self.config.connections.photometry_ref_cat,
        )
        calibration = self._calibrate(
            exposure, characterized.sources, references, comparison_catalog, handoff.zero_point_ab, name=name
        )
        return self._make_outputs(exposure, characterized, calibration, id_generator)

    def _characterize(self, exposure: VisitImage, handoff: IsrHandoff, *, seed: int, name: str) -> Struct:
        """Subtract the background, detect, fit the PSF and measure; the
        steps that need no reference catalogue."""
        bbox = exposure.bbox
        mask = exposure.mask
        no_data = mask.get("NO_DATA")
        if no_data.all():
            self.log.warning("%s: every pixel is NO_DATA; nothing to calibrate.", name)
            raise NoWorkFound(f"{name}: every pixel is NO_DATA.")
        unusable = np.zeros(no_data.shape, dtype=bool)
        for plane in _UNUSABLE_PLANES:
            if plane in mask.schema.names:
                unusable |= mask.get(plane)
        variance = np.asarray(exposure.variance.array, dtype=np.float32)
        raw = np.asarray(exposure.image.array, dtype=np.float32)

        background = self.background.run(
            raw,
            variance,
            unusable,
            bbox,
            exposure.unit,
            quantization_step=handoff.quantization_step,
            name=name,
            seed=seed,
        )
        image = raw - background.image
        image[no_data] = np.nan

        header_psf = exposure.psf
        x_centre, y_centre = bbox.x.center, bbox.y.center
        ixx, iyy, _ = psf_moments(header_psf, x=x_centre, y=y_centre)
        detection = self.detection.run(image, variance, no_data, bbox, math.sqrt(0.5 * (ixx + iyy)))
        skipped = {}
        if len(detection.sources) == 0:
            skipped = say_skipped(
                self.log,
                name,
                "MEASUREMENT",
                "no sources detected; the star catalogue is empty",
                level=logging.WARNING,
            )

        first = self.measurement.run(image, variance, mask, bbox, detection.sources, header_psf).sources
        first["flag"] = ~usable_for_calibration(first)
        # The star selector's S/N: the header-PSF flux is close to optimal, where a large aperture's
        # S/N is a fraction of it for the stars that matter.
        first["instFlux"] = first["psfInstFlux"]
        first["instFluxErr"] = first["psfInstFluxErr"]
        psf_result = self.psf.run(image, variance, unusable, bbox, first, header_psf, name, seed=seed)
        sources = self.measurement.run(image, variance, mask, bbox, detection.sources, psf_result.psf).sources
        detected = detection.segmentation > 0
        background_pixels = ~(unusable | detected)
        noise_factors = self._correct_for_noise_correlation(
            sources, image, variance, background_pixels, psf_result.psf, bbox, name=name
        )
        sources["calib_psf_candidate"] = psf_result.candidate
        sources["calib_psf_used"] = psf_result.used
        sources["calib_psf_reserved"] = psf_result.reserved

        apcorr = self.apertureCorrection.run(sources, psf_result.candidate, bbox, name=name)
        classify_extendedness(
            sources,
            reference_prefix=aperture_column(self.config.apertureCorrection.referenceRadius),
            flux_ratio=self.config.extendednessFluxRatio,
            size_ratio=self.config.extendednessSizeRatio,
        )
        sky = self._sky_noise(
            image, variance, background_pixels, unusable, handoff.residual_noise_ratio, name=name
        )
        return Struct(
            image=image,
            variance=variance,
            no_data=no_data,
            detected=detected,
            background=background,
            psf=psf_result,
            sources=sources,
            apcorr=apcorr,
            sky=sky,
            metadata={
                **background.metadata,
                **skipped,
                **psf_result.metadata,
                **apcorr.metadata,
                **noise_factors,
                **sky.metadata,
            },
        )

    def _calibrate(
        self,
        exposure: VisitImage,
        sources: Table,
        references: _References,
        comparison_catalog: Table | None,
        header_zero_point: float | None,
        *,
        name: str,
    ) -> Struct:
        """Fit the WCS and zero point to the reference stars (if any) and
        add calibrated columns to ``sources``; ``header_zero_point`` is the
        AB zero point isr took from the headers.

        With a separate photometric catalogue, its stars are matched to the
        sources by position through the fitted WCS (within the photometry's
        ``matchRadius``); otherwise the photometry takes the astrometric
        matches.
        """
        sources["usable"] = usable_for_calibration(sources) & (sources["extendedness"] == 0)
        sky_projection = exposure.sky_projection
        pixel_scale = pixel_scale_at_centre(exposure.sky_projection, exposure.bbox)
        reference = self._load_reference(
            exposure, references.astrometry_shards, references.astrometry_name, pixel_scale, name=name
        )
        sources["calib_astrometry_used"] = np.zeros(len(sources), dtype=bool)
        sources["calib_photometry_used"] = np.zeros(len(sources), dtype=bool)
        astrometry = self.astrometry.run(sources, reference, sky_projection, pixel_scale, name=name)
        sky_projection = astrometry.sky_projection
        sources["calib_astrometry_used"][astrometry.source_index] = True
        metadata: dict[str, Any] = dict(astrometry.metadata)
        photometric_reference = reference
        photometric_name = references.astrometry_name
        source_index, reference_index = astrometry.source_index, astrometry.reference_index
        if references.photometry_shards is not None:
            photometric_name = references.photometry_name
            photometric_reference = self._load_reference(
                exposure, references.photometry_shards, photometric_name, pixel_scale, name=name
            )
            source_index, reference_index = match_by_position(
                sources, photometric_reference, sky_projection, self.config.photometry.matchRadius
            )
        photometry = self.photometry.run(
            sources,
            photometric_reference,
            source_index,
            reference_index,
            band=exposure.band,
            header_zero_point=header_zero_point,
            name=name,
        )
        sources["calib_photometry_used"][photometry.source_index] = True
        metadata.update(photometry.metadata)
        if photometric_reference is not None:
            metadata["PHOTOCAL_REFCAT"] = photometric_name

        add_sky_coordinates(sources, sky_projection)
        prefixes = ["psf", *(aperture_column(r) for r in self.config.measurement.apertureRadii)]
        add_calibrated_fluxes(sources, photometry.zero_point, prefixes)
        del sources["usable"]
        if comparison_catalog is not None:
            comparison = self.catalogComparison.run(sources, comparison_catalog, pixel_scale, name=name)
            metadata.update(comparison.metadata)
        return Struct(
            sky_projection=sky_projection,
            astrometry=astrometry,
            photometry=photometry,
            reference=reference,
            pixel_scale=pixel_scale,
            metadata=metadata,
        )

    def _make_outputs(
        self,
        exposure: VisitImage,
        characterized: Struct,
        calibration: Struct,
        id_generator: SourceIdGenerator,
    ) -> Struct:
        """Return the outputs: the calibrated exposure with its summary
        statistics, its background and the star catalogue."""
        bbox = exposure.bbox
        sources, sky, photometry = characterized.sources, characterized.sky, calibration.photometry
        astrometry, usable_pixels = calibration.astrometry, ~characterized.no_data
        stats = make_summary_stats(
            psf=characterized.psf.psf,
            sky_projection=calibration.sky_projection,
            bbox=bbox,
            exposure_time=float(exposure.obs_info.exposure_time.to_value(u.s)),
            zenith_distance=zenith_distance(exposure.obs_info),
            zero_point=photometry.zero_point,
            sky_level=float(np.median(characterized.background.image[usable_pixels])),
            sky_noise=sky.noise,
            mean_variance=float(np.mean(characterized.variance[usable_pixels])),
            astrometric_offset_mas=astrometry.offset_mas,
            astrometric_rms_mas=astrometry.rms_mas,
            n_psf_stars=characterized.psf.n_used,
            reference_density=_density(
                calibration.reference, stats_area_deg2=_area_deg2(bbox, calibration.pixel_scale)
            ),
        )
        metadata = {
            **calibration.metadata,
            **characterized.metadata,
            "NSOURCES": len(sources),
            "NSTARS": int(np.sum(sources["extendedness"] == 0)),
            "SKY_NOISE": sky.noise,
            "SKY_NOISE_SOURCE": sky.source,
            "SKY_NOISE_DIRECT": sky.direct,
        }
        metadata = {key: value for key, value in metadata.items() if value is not None}
        stars = self._make_catalog(sources, exposure, id_generator)
        stars.meta.update(metadata)

        output_mask = exposure.mask.copy()
        if "DETECTED" in output_mask.schema.names:
            output_mask.set("DETECTED", characterized.detected)
        backgrounds = BackgroundMap()
        backgrounds.add(
            _BACKGROUND_NAME,
            characterized.background.field,
            "sep mesh background (sources masked iteratively), Akima spline through the mesh",
            is_subtracted=True,
        )
        # The header zero point keeps isr's photometric scaling as it is.
        scaling = (
            photometric_scaling_from_zero_point(photometry.zero_point, bbox, exposure.unit)
            if photometry.source == "fit"
            else exposure.photometric_scaling
        )
        calibrated = VisitImage(
            Image(
                characterized.image, bbox=bbox, unit=exposure.unit, sky_projection=calibration.sky_projection
            ),
            mask=output_mask,
            variance=exposure.variance,
            psf=characterized.psf.psf,
            obs_info=exposure.obs_info,
            detector=exposure.detector,
            photometric_scaling=scaling,
            aperture_corrections={PSF_FLUX_ALGORITHM: characterized.apcorr.field},
            backgrounds=backgrounds,
            summary_stats=stats,
            band=exposure.band,
            metadata={**dict(exposure.metadata), **metadata},
        )
        return Struct(exposure=calibrated, background=backgrounds, stars=stars)

    def _make_catalog(self, sources: Table, exposure: VisitImage, id_generator: SourceIdGenerator) -> Table:
        """Return ``single_visit_star``: the sources with their IDs, where
        they were measured, every column described, and the package version
        and data ID in the table metadata."""
        n = len(sources)
        band = exposure.band or ""
        sources["id"] = id_generator.make_ids(n)
        sources["visit"] = np.full(n, id_generator.visit, dtype=np.int64)
        sources["detector"] = np.full(n, id_generator.detector, dtype=np.int32)
        sources["band"] = np.full(n, band, dtype=f"U{max(len(band), 1)}")
        stars = describe_columns(
            sources,
            column_definitions(
                exposure.unit,
                self.config.measurement.apertureRadii,
                self.config.apertureCorrection.referenceRadius,
            ),
        )
        stars.meta.update(
            {
                "PACKAGE": DISTRIBUTION,
                "PACKAGE_VERSION": package_version(),
                "INSTRUMENT": id_generator.instrument,
                "VISIT": id_generator.visit,
                "DETECTOR": id_generator.detector,
                "BAND": band,
            }
        )
        return stars

    def _sky_noise(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        background_pixels: np.ndarray,
        unusable: np.ndarray,
        noise_ratio: float | None,
        *,
        name: str,
    ) -> Struct:
        """Return the sky noise (image units) and how it was obtained.

        The sky's sqrt(variance) times the ratio of background noise to it
        that isr measured (against a running-median background that follows
        source wings, so it holds on cutouts that bright sources fill), else
        the clipped rms
        of the undetected pixels; ``direct`` is that rms in either case
        (NaN with fewer than `MIN_NOISE_PIXELS` such pixels).  Without
        either (no ratio from isr and too few sky pixels, or no usable pixel
        at all) the noise is NaN and ``metadata`` holds
        ``SKIPPED_SKY_NOISE``.
        """
        direct = background_noise(image, background_pixels)
        n_sky = int(np.count_nonzero(background_pixels))
        if noise_ratio is None or not (~unusable).any():
            if math.isfinite(direct):
                return Struct(noise=direct, source="measured", direct=direct, metadata={})
            why = (
                f"{n_sky} sky pixels (< {MIN_NOISE_PIXELS}) and no NOISE_RATIO from isr"
                if noise_ratio is None
                else "no usable pixel (all NO_DATA, SATURATED, BAD or COSMIC_RAY)"
            )
            skipped = say_skipped(self.log, name, "SKY_NOISE", f"{why}; the sky noise is NaN")
            return Struct(noise=math.nan, source="none", direct=direct, metadata=skipped)
        sky_pixels = background_pixels if n_sky >= MIN_NOISE_PIXELS else ~unusable
        # Where sources fill the image, the low end of the variance plane is the sky's.
        percentile = 50.0 if sky_pixels is background_pixels else _SKY_VARIANCE_PERCENTILE
        sky_variance = float(np.percentile(variance[sky_pixels], percentile))
        return Struct(
            noise=float(noise_ratio) * math.sqrt(sky_variance),
            source="variance x NOISE_RATIO",
            direct=direct,
            metadata={},
        )

    def _correct_for_noise_correlation(
        self,
        sources: Table,
        image: np.ndarray,
        variance: np.ndarray,
        background_pixels: np.ndarray,
        psf: Any,
        bbox: Box,
        *,
        name: str,
    ) -> dict[str, float | str]:
        """Scale the error columns for correlated noise; return the factors
        (``NOISE_CORR_PSF``, ``NOISE_CORR_<aperture>``) for the metadata, or
        ``SKIPPED_NOISE_CORR`` with fewer than `MIN_NOISE_PIXELS` sky
        pixels to measure the correlation on."""
        if not self.config.doCorrelatedNoise:
            return {}
        n_sky = int(np.count_nonzero(background_pixels))
        if n_sky < MIN_NOISE_PIXELS:
            return say_skipped(
                self.log,
                name,
                "NOISE_CORR",
                f"{n_sky} sky pixels (< {MIN_NOISE_PIXELS}); errors are not scaled for correlated noise",
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = np.where(background_pixels, image / np.sqrt(variance), 0.0)
        correlation = measure_noise_correlation(
            residual, background_pixels, self.config.noiseCorrelationMaxLag
        )
        x_centre, y_centre = bbox.x.center, bbox.y.center
        factors = {
            "psf": correlation_error_factor(
                correlation, psf.compute_kernel_image(x=x_centre, y=y_centre).array
            )
        }
        for radius in self.config.measurement.apertureRadii:
            half = int(math.ceil(radius))
            offsets = np.arange(-half, half + 1)
            disc = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(float)
            factors[aperture_column(radius)] = correlation_error_factor(correlation, disc)
        for prefix, factor in factors.items():
            sources[f"{prefix}InstFluxErr"] = np.asarray(sources[f"{prefix}InstFluxErr"]) * factor
        sources["xErr"] = np.asarray(sources["xErr"]) * factors["psf"]
        sources["yErr"] = np.asarray(sources["yErr"]) * factors["psf"]
        return {f"NOISE_CORR_{prefix.upper()}": factor for prefix, factor in factors.items()}

    def _load_reference(
        self,
        exposure: VisitImage,
        shards: dict[int, Table] | None,
        reference_name: str | None,
        pixel_scale: float,
        *,
        name: str,
    ) -> Table | None:
        """Return the reference stars on the detector at the exposure's epoch,
        or `None` without shards."""
        if not shards:
            return None
        obs_info = exposure.obs_info
        begin = Time(obs_info.datetime_begin)
        epoch = begin + 0.5 * obs_info.exposure_time
        stars = load_reference_stars(shards, epoch=epoch, name=reference_name or "reference catalogue")
        if len(stars) == 0:
            return stars
        pixels = exposure.sky_projection.sky_to_pixel(_sky_coord(stars["coord_ra"], stars["coord_dec"]))
        x, y = np.atleast_1d(pixels.x), np.atleast_1d(pixels.y)
        margin = self.config.referenceMargin
        bbox = exposure.bbox
        with np.errstate(invalid="ignore"):
            inside = (
                (x >= bbox.x.start - margin)
                & (x <= bbox.x.stop - 1 + margin)
                & (y >= bbox.y.start - margin)
                & (y <= bbox.y.stop - 1 + margin)
            )
        self.log.info("%s: %d reference stars on the detector.", name, int(np.sum(inside)))
        return stars[inside]


def _separate_photometry_catalog(config: CalibrateImageConfig) -> bool:
    """Whether the photometry has its own reference catalogue."""
    return config.connections.photometry_ref_cat != config.connections.astrometry_ref_cat


@dataclasses.dataclass(frozen=True)
class _References:
    """The reference catalogue shards of one exposure, with their names."""

    astrometry_shards: dict[int, Table] | None
    astrometry_name: str | None
    photometry_shards: dict[int, Table] | None
    """`None` when the photometry uses the astrometric catalogue."""
    photometry_name: str | None


def _read_shards(butlerQC: QuantumContext, refs: list[Any], missing: dict[str, str]) -> dict[int, Table]:
    """Read reference catalogue shards by htm7 trixel; one whose file is
    missing is left out and said in ``missing``."""
    shards: dict[int, Table] = {}
    for ref in refs:
        try:
            shards[int(ref.dataId["htm7"])] = butlerQC.get(ref).get()
        except FileNotFoundError as err:
            missing[f"{ref.datasetType.name}@htm7={ref.dataId['htm7']}"] = (
                f"its file {err.filename or err} is missing from the datastore; "
                "used instead: the other shards"
            )
    return shards


def _sky_coord(ra: Any, dec: Any) -> SkyCoord:
    return SkyCoord(u.Quantity(ra, u.deg), u.Quantity(dec, u.deg))


def _area_deg2(bbox: Box, pixel_scale: float) -> float:
    return bbox.x.size * bbox.y.size * (pixel_scale / 3600.0) ** 2


def _density(reference: Table | None, *, stats_area_deg2: float) -> float:
    if reference is None or stats_area_deg2 <= 0:
        return math.nan
    return len(reference) / stats_area_deg2
