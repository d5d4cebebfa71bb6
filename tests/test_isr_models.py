"""Variance models, fallbacks, the noise check, masks and the legacy export of
the assembly core, on small synthetic CASU stacks."""

import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from lsst.images import Box, Image, MaskedImage
from lsst.pex.config import FieldValidationError

from isr_support import read_confidence, read_stack, read_truth, vircam_config
from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.isr import (
    BackgroundVarianceTask,
    MetadataVarianceTask,
    VistaIsrConfig,
    WeightMapVarianceTask,
)
from lsst.obs.vista.isr.casu import catalog_source_mask, describe_casu_image
from lsst.obs.vista.isr.handoff import IsrHandoff
from lsst.obs.vista.isr.legacy_export import legacy_plane_map, write_legacy_exposure
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("sim")
    simulation = SimulationConfig(size=512, detectors=(1,), seed=5, bright_star_density=0.3)
    files = write_pawprint_stack(outdir, 0, simulation)
    return read_stack(files.stack), read_confidence(files.confidence), read_truth(files.truth)


def interior_sky(confidence, truth):
    with np.errstate(invalid="ignore"):
        return (np.abs(confidence.array - 100) <= 5) & (
            truth["model"] - np.nanmedian(truth["model"]) < 0.1 * np.sqrt(truth["variance"])
        )


def with_metadata(image, **cards):
    return Image(image.array.copy(), unit=image.unit, metadata={**image.metadata, **cards})


def test_weight_map_model_is_inverse_weight(stack):
    image, confidence, _ = stack
    weight = np.where(confidence.array > 0, 1.0 / (confidence.array + 1.0), 0.0).astype(np.float32)
    config = vircam_config()
    config.variance.retarget(WeightMapVarianceTask)
    exposure = VistaIsrTask(config=config).run(image, Image(weight)).outputExposure
    positive = weight > 0
    assert exposure.metadata["VARIANCE_MODEL"] == "weight map"
    np.testing.assert_allclose(exposure.variance.array[positive], 1.0 / weight[positive], rtol=1e-6)
    assert np.array_equal(exposure.mask.get("NO_DATA"), ~positive | (image.array == 0.0))


def test_metadata_model_is_skynoise_in_the_interior(stack):
    image, confidence, truth = stack
    config = vircam_config()
    config.variance.retarget(MetadataVarianceTask)
    exposure = VistaIsrTask(config=config).run(image, confidence).outputExposure
    sky = interior_sky(confidence, truth)
    assert exposure.metadata["VARIANCE_MODEL"] == "header metadata"
    assert np.median(exposure.variance.array[sky]) == pytest.approx(image.metadata["SKYNOISE"] ** 2, rel=1e-3)
    # No confidence map was read: no LOW_CONFIDENCE pixels.
    assert not exposure.mask.get("LOW_CONFIDENCE").any()


def test_background_model_matches_truth_in_the_interior(stack):
    image, confidence, truth = stack
    config = vircam_config()
    config.variance.retarget(BackgroundVarianceTask)
    exposure = VistaIsrTask(config=config).run(image, confidence).outputExposure
    sky = interior_sky(confidence, truth)
    ratio = exposure.variance.array / truth["variance"]
    assert exposure.metadata["VARIANCE_MODEL"] == "measured background"
    assert np.median(ratio[sky]) == pytest.approx(1.0, abs=0.05)
    # Away from the coverage edges, which cells do not resolve, it is exact.
    inner = np.zeros_like(sky)
    inner[128:-128, 128:-128] = True
    assert np.median(ratio[sky & inner]) == pytest.approx(1.0, abs=0.02)
    # The measured resampling factor agrees with the one SKYNOISE implies.
    assert exposure.metadata["VARIANCE_RESAMPLING_K"] == pytest.approx(
        VistaIsrTask(config=vircam_config())
        .run(image, confidence)
        .outputExposure.metadata["VARIANCE_RESAMPLING_K"],
        rel=0.1,
    )


def test_missing_confidence_map_falls_back_and_says_so(stack, caplog):
    image, confidence, truth = stack
    with caplog.at_level(logging.INFO, logger="lsst.isr"):
        exposure = VistaIsrTask(config=vircam_config()).run(image, name="stack-without-map").outputExposure
    assert "stack-without-map: no noise map; variance from BackgroundVarianceTask" in caplog.text
    assert exposure.metadata["VARIANCE_MODEL"] == "measured background"
    # CASU's 0 in uncovered pixels is the only record of them without a map.
    assert np.array_equal(exposure.mask.get("NO_DATA"), image.array == 0.0)
    assert (image.array == 0.0).any()
    assert np.isfinite(exposure.variance.array).all()
    sky = interior_sky(confidence, truth)
    assert np.median(exposure.variance.array[sky] / truth["variance"][sky]) == pytest.approx(1.0, abs=0.05)


def test_default_fallback_is_the_metadata_model(stack):
    image, _, _ = stack
    exposure = VistaIsrTask().run(image).outputExposure
    assert exposure.metadata["VARIANCE_MODEL"] == "header metadata"


def test_wrong_skynoise_is_flagged_and_rescaled(stack, caplog):
    image, confidence, truth = stack
    wrong = with_metadata(image, SKYNOISE=0.5 * image.metadata["SKYNOISE"])
    with caplog.at_level(logging.WARNING, logger="lsst.isr"):
        flagged = VistaIsrTask(config=vircam_config()).run(wrong, confidence, name="halved-skynoise")
    assert "halved-skynoise: background noise is" in caplog.text
    assert flagged.outputExposure.metadata["NOISE_RATIO"] == pytest.approx(2.0, rel=0.05)
    assert flagged.outputExposure.metadata["VARIANCE_RESCALE"] == 1.0

    config = vircam_config()
    config.noiseCheck.doRescale = True
    rescaled = VistaIsrTask(config=config).run(wrong, confidence).outputExposure
    sky = interior_sky(confidence, truth)
    assert rescaled.metadata["VARIANCE_RESCALE"] == pytest.approx(rescaled.metadata["NOISE_RATIO"] ** 2)
    assert np.median(rescaled.variance.array[sky] / truth["variance"][sky]) == pytest.approx(1.0, abs=0.02)
    no_data = rescaled.mask.get("NO_DATA")
    assert np.all(rescaled.variance.array[no_data] == config.noDataVariance)


def test_nan_inf_and_magic_values_are_no_data(stack):
    image, confidence, _ = stack
    array = image.array.copy()
    array[100, 100:105] = np.nan
    array[200, 200:203] = np.inf
    array[300, 300] = -np.inf
    array[400, 50:60] = -999.0
    config = vircam_config()
    config.masking.noDataValues = [0.0, -999.0]
    exposure = (
        VistaIsrTask(config=config)
        .run(Image(array, unit=u.adu, metadata=dict(image.metadata)), confidence)
        .outputExposure
    )
    no_data = exposure.mask.get("NO_DATA")
    for y, x in [(100, 102), (200, 201), (300, 300), (400, 55)]:
        assert no_data[y, x]
    assert not np.isinf(exposure.image.array).any()
    assert np.isnan(exposure.image.array[200, 200:203]).all()
    assert not (np.isnan(exposure.image.array) & ~no_data).any()
    assert np.isfinite(exposure.variance.array).all()


def test_quality_mask_bits_become_planes(stack):
    image, confidence, _ = stack
    quality = np.zeros(image.array.shape, dtype=np.int32)
    quality[10:20, 10:20] = 1
    quality[30:40, 30:40] = 4
    quality[50:55, 50:55] = 2
    config = vircam_config()
    config.qualityMask.bitPlanes = {0: "CROSSTALK", 1: "NO_DATA", 2: "STREAK"}
    config.qualityMask.extraPlanes = {"STREAK": "A satellite trail crossed this pixel."}
    task = VistaIsrTask(config=config)
    exposure = task.assemble(
        image,
        _describe(image),
        noise_map=confidence,
        quality=Image(quality),
    ).exposure
    assert np.array_equal(exposure.mask.get("CROSSTALK"), quality == 1)
    assert np.array_equal(exposure.mask.get("STREAK"), quality == 4)
    assert exposure.mask.get("NO_DATA")[quality == 2].all()
    assert np.all(exposure.variance.array[quality == 2] == config.noDataVariance)


def _describe(image):
    return describe_casu_image(
        dict(image.metadata),
        image.bbox,
        camera=Vircam.camera(),
        translator=Vircam.translator_class(),
        name="test",
        vega_to_ab={},
    )


def test_fallback_needing_a_map_is_rejected():
    config = VistaIsrConfig()
    config.fallbackVariance.retarget(WeightMapVarianceTask)
    with pytest.raises(FieldValidationError):
        config.validate()


def test_legacy_export_reads_back_with_lsst_images(stack, tmp_path):
    image, confidence, _ = stack
    exposure = VistaIsrTask(config=vircam_config()).run(image, confidence).outputExposure
    assert exposure.mask.get("LOW_CONFIDENCE").any() and exposure.mask.get("SATURATED").any()
    cutout = exposure[Box.factory[100:300, 50:260]]
    for visit_image, name in ((exposure, "full.fits"), (cutout, "cutout.fits")):
        path = tmp_path / name
        write_legacy_exposure(visit_image, path)
        plane_map = legacy_plane_map(visit_image.mask.schema)
        legacy = MaskedImage.read_legacy(path, plane_map=plane_map)
        assert legacy.bbox == visit_image.bbox
        assert legacy.unit == u.adu
        assert np.array_equal(legacy.image.array, visit_image.image.array, equal_nan=True)
        assert np.array_equal(legacy.variance.array, visit_image.variance.array)
        assert legacy.mask.compare(visit_image.mask) == {}
        assert legacy.metadata["NOISE_RATIO"] == exposure.metadata["NOISE_RATIO"]
        with fits.open(path) as hdus:
            assert [hdu.header.get("EXTTYPE") for hdu in hdus[1:]] == ["IMAGE", "MASK", "VARIANCE"]
            assert hdus["MASK"].header["MP_SAT"] == list(plane_map).index("SAT")
            assert hdus["MASK"].header["MP_LOW_CONFIDENCE"] == list(plane_map).index("LOW_CONFIDENCE")
            header = hdus["IMAGE"].header
            assert (header["LTV1"], header["LTV2"]) == (-visit_image.bbox.x.start, -visit_image.bbox.y.start)
            # FITS pixel (1, 1) of the file is the first pixel of the bbox.
            first = WCS(header).pixel_to_world(0, 0)
            expected = exposure.sky_projection.pixel_to_sky(
                x=visit_image.bbox.x.start, y=visit_image.bbox.y.start
            )
            assert first.separation(expected).to_value(u.mas) < 1.0


def test_catalogue_sources_are_excluded_from_the_noise_check(stack):
    image, confidence, _ = stack
    table = Table(
        {
            "X_coordinate": [11.0, 300.0],
            "Y_coordinate": [21.0, 200.0],
            "Areal_1_profile": [np.pi * 4.0, 0.0],
        }
    )
    mask = catalog_source_mask(table, (64, 64), radius_scale=2.0, min_radius=3.0)
    yy, xx = np.mgrid[:64, :64]
    # FITS (11, 21) is array (20, 10); radius 2 x sqrt(area / pi) = 4; the
    # second source is off the image.
    assert np.array_equal(mask, (xx - 10) ** 2 + (yy - 20) ** 2 <= 16)

    ny, nx = image.array.shape
    everywhere = Table(
        {
            "X_coordinate": np.repeat(np.arange(1.0, nx, 20.0), len(np.arange(1.0, ny, 20.0))),
            "Y_coordinate": np.tile(np.arange(1.0, ny, 20.0), len(np.arange(1.0, nx, 20.0))),
            "Areal_1_profile": np.full(len(np.arange(1.0, nx, 20.0)) * len(np.arange(1.0, ny, 20.0)), 30.0),
        }
    )
    task = VistaIsrTask(config=vircam_config())
    without = task.run(image, confidence).outputExposure.metadata["NOISE_RATIO_NPIX"]
    with_catalogue = task.run(image, confidence, everywhere).outputExposure.metadata["NOISE_RATIO_NPIX"]
    assert with_catalogue < 0.8 * without


def test_weight_map_with_source_term_equals_the_confidence_model(stack):
    """A weight map built from the confidence map and SKYNOISE, plus the
    source term, is the CASU confidence model (without edge calibration)."""
    image, confidence, _ = stack
    c = confidence.array
    assert np.median(c[c > 0]) == 100
    weight = np.where(c > 0, c / (100.0 * image.metadata["SKYNOISE"] ** 2), 0.0).astype(np.float32)
    config = vircam_config()
    config.variance.retarget(WeightMapVarianceTask)
    config.variance.doSourceTerm = True
    from_weights = VistaIsrTask(config=config).run(image, Image(weight)).outputExposure
    config = vircam_config()
    config.variance.doEdgeCalibration = False
    from_confidence = VistaIsrTask(config=config).run(image, confidence).outputExposure
    usable = ~from_confidence.mask.get("NO_DATA")
    np.testing.assert_allclose(
        from_weights.variance.array[usable], from_confidence.variance.array[usable], rtol=1e-5
    )


def test_handoff_reads_back_what_isr_wrote(stack):
    """The isr output's metadata holds the hand-off under its keys, and
    reads back to the same values; absent entries read as not measured."""
    image, confidence, _ = stack
    metadata = VistaIsrTask(config=vircam_config()).run(image, confidence).outputExposure.metadata
    handoff = IsrHandoff.from_metadata(metadata)
    assert handoff.to_metadata() == {key: metadata[key] for key in handoff.to_metadata()}
    assert set(handoff.to_metadata()) == set(IsrHandoff.KEYS.values())
    assert handoff.residual_noise_ratio == pytest.approx(handoff.noise_ratio / handoff.variance_rescale**0.5)
    empty = IsrHandoff.from_metadata({})
    assert (empty.noise_ratio, empty.variance_rescale, empty.zero_point_ab) == (None, 1.0, None)
    assert "ZERO_POINT_AB" not in empty.to_metadata()
