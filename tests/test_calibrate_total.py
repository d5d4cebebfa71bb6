"""calibrateImage is total: on empty, one-row and all-masked inputs every
stage says in one log line and one ``SKIPPED_<STEP>`` metadata key what it
could not do, and the outputs are self-consistent; only an exposure whose
pixels are all NO_DATA has none (`NoWorkFound`).

Exposures are cut from a real DECam CP cutout assembled by isr in-process
(its TPV WCS, Gaussian PSF, zero point, observation and detector), with its
own pixels or a synthetic star field; reference catalogues are Gaia-like
tables sharded by ``shard_rows``.  Hypothesis draws the combinations; a
table of named cases pins the exact key and log line of each degenerate
input, among them the reported crash (reference shards around the
detector, no star on it), also run through ``processCcd.py`` on a real
repository.

The number of generated examples is bounded for CI; set
``VISTA_FUZZ_EXAMPLES`` for more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import lsst.pex.config as pexConfig
import numpy as np
import pyarrow.parquet
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler
from lsst.daf.butler.formatters.parquet import arrow_to_astropy, astropy_to_arrow
from lsst.images import Box, Image, VisitImage
from lsst.pipe.base import NoWorkFound

from lsst.obs.vista import DecamCp
from lsst.obs.vista.calibrate import (
    MIN_NOISE_PIXELS,
    SKIPPED_PREFIX,
    CalibrateImageConfig,
    CalibrateImageTask,
    CasuCatalogComparisonTask,
)
from lsst.obs.vista.calibrate.aperture_correction import PSF_FLUX_ALGORITHM
from lsst.obs.vista.formatters import read_image_hdu
from lsst.obs.vista.ingest import ProductIngester
from lsst.obs.vista.isr import DecamCpIsrConfig, DecamCpIsrTask
from lsst.obs.vista.psf_shape import psf_moments
from lsst.obs.vista.refcat import ingest_refcat, shard_rows
from lsst.obs.vista.refcat.schema import standardize_columns
from lsst.obs.vista.source_id import unpack_source_ids

ROOT = Path(__file__).parent.parent
TESTCASE = ROOT / "tests" / "data" / "decam_cp" / "testcase4"
CP_IMAGE = TESTCASE / "c4d_170316_062107_ooi_z_ls9.N2.fits"
BIN = Path(sys.executable).parent
EXAMPLES = int(os.environ.get("VISTA_FUZZ_EXAMPLES", "30"))
NAME = "cut"
SKY_LEVEL, SKY_SIGMA = 100.0, 5.0
NO_DATA_VARIANCE = 1e18
OFF_DETECTOR = 60.0
"""Pixels beyond the detector's edge (more than the referenceMargin of 50)
of the reference stars that are "around the detector, not on it"."""


def _calibrate_config() -> CalibrateImageConfig:
    config = CalibrateImageConfig()
    DecamCp().applyConfigOverrides("calibrateImage", config)
    # The scenarios' CASU-like catalogues go through the CASU comparison, as a CASU instrument's do.
    config.catalogComparison.retarget(CasuCatalogComparisonTask)
    return config


@pytest.fixture(scope="module")
def base() -> VisitImage:
    """The real CP cutout (251x245, z band, 3 Gaia stars on it), as isr assembles it."""
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    planes = {
        "image": read_image_hdu(CP_IMAGE, 1, unit=u.adu),
        "weight": read_image_hdu(_member(CP_IMAGE, "oow"), 1, unit=u.Unit("adu-2")),
        "quality": read_image_hdu(_member(CP_IMAGE, "ood"), 1, unit=None),
    }
    return DecamCpIsrTask(config=config).run(**planes, name=CP_IMAGE.name).outputExposure


@pytest.fixture(scope="module")
def task() -> CalibrateImageTask:
    return CalibrateImageTask(config=_calibrate_config())


def _member(image: Path, role: str) -> Path:
    return image.with_name(image.name.replace("_ooi_", f"_{role}_"))


@dataclasses.dataclass(frozen=True)
class Star:
    """A synthetic star: position as fractions of the cutout, flux in ADU."""

    fx: float
    fy: float
    flux: float


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One generated input of CalibrateImageTask.run."""

    shape: tuple[int, int] = (64, 64)
    offset: tuple[int, int] = (40, 40)
    pixels: str = "synthetic"  # "synthetic" (stars on a flat sky) or "real" (the CP pixels)
    stars: tuple[Star, ...] = ()
    masking: str = "none"  # none, all_no_data, all_saturated, stars_saturated, mostly_no_data
    zero_point: bool = True
    noise_ratio: bool = True
    quantized: bool = False  # integer pixels with isr's QUANTIZATION_STEP (as CASU stacks)
    reference: str = "none"  # none, off_detector, on_stars, one_star, random
    casu: str = "none"  # none, empty, on_stars


def _star_xy(scenario: Scenario, box: Box) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([box.x.start + s.fx * (box.x.size - 1) for s in scenario.stars])
    y = np.array([box.y.start + s.fy * (box.y.size - 1) for s in scenario.stars])
    return x, y


def make_exposure(base: VisitImage, scenario: Scenario) -> VisitImage:
    """The cutout of the scenario, with its pixels, masks and calibration."""
    height, width = scenario.shape
    box = Box.from_shape(
        (height, width),
        start=(base.bbox.y.start + scenario.offset[0], base.bbox.x.start + scenario.offset[1]),
    )
    cut = base[box].copy()
    mask = cut.mask
    if scenario.pixels == "real":
        image = np.array(cut.image.array, dtype=np.float32)
        variance = np.array(cut.variance.array, dtype=np.float32)
    else:
        rng = np.random.default_rng(zlib.crc32(repr(scenario).encode()))
        image = SKY_LEVEL + rng.normal(0.0, SKY_SIGMA, (height, width))
        ixx, iyy, _ = psf_moments(base.psf, x=base.bbox.x.center, y=base.bbox.y.center)
        sigma = math.sqrt(0.5 * (ixx + iyy))
        yy, xx = np.indices((height, width))
        xs, ys = _star_xy(scenario, box)
        for star, x, y in zip(scenario.stars, xs, ys, strict=True):
            r2 = (xx + box.x.start - x) ** 2 + (yy + box.y.start - y) ** 2
            image += star.flux * np.exp(-0.5 * r2 / sigma**2) / (2 * math.pi * sigma**2)
        image = image.astype(np.float32)
        variance = np.full((height, width), SKY_SIGMA**2, dtype=np.float32)
        for plane in mask.schema.names:
            mask.set(plane, np.zeros((height, width), dtype=bool))
    no_data = mask.get("NO_DATA")
    if scenario.masking == "all_no_data":
        no_data = np.ones_like(no_data)
    elif scenario.masking == "mostly_no_data":
        no_data = np.ones_like(no_data)
        no_data[: max(1, height // 4), : max(1, width // 4)] = False
    elif scenario.masking == "all_saturated":
        mask.set("SATURATED", np.ones((height, width), dtype=bool))
    elif scenario.masking == "stars_saturated":
        saturated = np.zeros((height, width), dtype=bool)
        xs, ys = _star_xy(scenario, box)
        for x, y in zip(xs, ys, strict=True):
            row, column = int(round(y)) - box.y.start, int(round(x)) - box.x.start
            saturated[max(row - 1, 0) : row + 2, max(column - 1, 0) : column + 2] = True
        mask.set("SATURATED", saturated)
    mask.set("NO_DATA", no_data)
    if scenario.quantized:
        image = np.round(image)
    image[no_data] = np.nan
    variance[no_data] = NO_DATA_VARIANCE
    metadata = dict(base.metadata)
    if not scenario.noise_ratio:
        del metadata["NOISE_RATIO"]
    if not scenario.zero_point:
        metadata.pop("ZERO_POINT_AB", None)
    if scenario.quantized:
        metadata["QUANTIZATION_STEP"] = 1.0
    return VisitImage(
        Image(image, bbox=box, unit=base.unit, sky_projection=base.sky_projection),
        mask=mask,
        variance=Image(variance, bbox=box, unit=base.unit**2),
        psf=base.psf,
        obs_info=base.obs_info,
        detector=base.detector,
        photometric_scaling=base.photometric_scaling if scenario.zero_point else None,
        band=base.band,
        metadata=metadata,
    )


def gaia_table(sky: SkyCoord, magnitude: np.ndarray) -> Table:
    """A Gaia-like reference table (DR3 columns, epoch 2016, no proper motion)."""
    n = len(magnitude)
    table = Table()
    table["source_id"] = np.arange(1, n + 1, dtype=np.int64) + 4_000_000_000
    table["ra"] = sky.ra.to(u.deg)
    table["dec"] = sky.dec.to(u.deg)
    table["ra_error"] = np.full(n, 0.1, np.float32) * u.mas
    table["dec_error"] = np.full(n, 0.1, np.float32) * u.mas
    for band, offset in (("g", 0.0), ("bp", 0.5), ("rp", -0.5)):
        table[f"phot_{band}_mean_mag"] = (np.asarray(magnitude, np.float32) + offset) * u.mag
        table[f"phot_{band}_mean_flux_over_error"] = np.full(n, 500.0, np.float32)
    table["ref_epoch"] = np.full(n, 2016.0) * u.yr
    for column in ("pmra", "pmdec"):
        table[column] = np.zeros(n, np.float32) * u.mas / u.yr
        table[f"{column}_error"] = np.full(n, 0.1, np.float32) * u.mas / u.yr
    return standardize_columns(table, "synthetic reference")


def make_reference(base: VisitImage, exposure: VisitImage, scenario: Scenario) -> dict[int, Table] | None:
    """Reference shards of the scenario (`None`: no catalogue)."""
    if scenario.reference == "none":
        return None
    box = exposure.bbox
    xs, ys = _star_xy(scenario, box)
    fluxes = np.array([s.flux for s in scenario.stars])
    if scenario.reference == "off_detector":
        # Beyond every edge by more than the margin: the shards overlap the detector, no star is on it.
        xs = np.array([box.x.start - OFF_DETECTOR, box.x.stop + OFF_DETECTOR, box.x.center, box.x.center])
        ys = np.array([box.y.center, box.y.center, box.y.start - OFF_DETECTOR, box.y.stop + OFF_DETECTOR])
        fluxes = np.full(4, 1e4)
    elif scenario.reference == "one_star":
        xs, ys = (xs[:1], ys[:1]) if len(xs) else (np.array([box.x.center]), np.array([box.y.center]))
        fluxes = fluxes[:1] if len(fluxes) else np.array([1e4])
    elif scenario.reference == "random":
        rng = np.random.default_rng(len(scenario.stars))
        xs = rng.uniform(box.x.start - 100, box.x.stop + 100, 8)
        ys = rng.uniform(box.y.start - 100, box.y.stop + 100, 8)
        fluxes = rng.uniform(1e2, 1e5, 8)
    if len(xs) == 0:
        # A catalogue whose shards hold only stars off the detector.
        return make_reference(base, exposure, dataclasses.replace(scenario, reference="off_detector"))
    sky = base.sky_projection.pixel_to_sky(x=np.asarray(xs, float), y=np.asarray(ys, float))
    zero_point = 30.0
    return shard_rows(gaia_table(sky, zero_point - 2.5 * np.log10(np.maximum(fluxes, 1.0))))


def make_casu(exposure: VisitImage, scenario: Scenario) -> Table | None:
    """A CASU-like catalogue: none, empty, or one entry per synthetic star (1-based pixels)."""
    if scenario.casu == "none":
        return None
    xs, ys = _star_xy(scenario, exposure.bbox) if scenario.casu == "on_stars" else (np.zeros(0), np.zeros(0))
    return Table(
        {
            "X_coordinate": xs + 1.0,
            "Y_coordinate": ys + 1.0,
            "Kron_flux": np.array([s.flux for s in scenario.stars][: len(xs)], dtype=float),
            "Classification": np.full(len(xs), -1.0),
        }
    )


@contextlib.contextmanager
def captured_log() -> Iterator[list[logging.LogRecord]]:
    """The records of calibrateImage and its subtasks, from INFO."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("lsst.calibrateImage")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def calibrate(task: CalibrateImageTask, base: VisitImage, scenario: Scenario):
    """Run the task on a scenario; its result (or the NoWorkFound), log lines and input."""
    exposure = make_exposure(base, scenario)
    shards = make_reference(base, exposure, scenario)
    with captured_log() as records:
        try:
            result = task.run(
                exposure,
                reference_shards=shards,
                reference_name="gaia_dr3",
                comparison_catalog=make_casu(exposure, scenario),
                name=NAME,
            )
        except NoWorkFound as error:
            result = error
    return result, [r.getMessage() for r in records], exposure


def check_outputs(result, lines: list[str], exposure: VisitImage, scenario: Scenario) -> None:
    """Every output agrees with the others and with the recorded "could not" keys."""
    metadata = result.exposure.metadata
    stars = result.stars
    skipped = {key: text for key, text in metadata.items() if key.startswith(SKIPPED_PREFIX)}
    # One log line per key, with its text.
    for text in skipped.values():
        assert lines.count(f"{NAME}: {text}.") == 1, (text, lines)
    assert {k: stars.meta[k] for k in skipped} == skipped

    # The catalogue and its flags.
    n = len(stars)
    assert metadata["NSOURCES"] == n
    visit_keys, detectors, rows = unpack_source_ids(stars["id"])
    assert list(rows) == list(range(1, n + 1))
    assert set(detectors) <= {exposure.obs_info.detector_num} and set(stars["visit"]) <= {stars.meta["VISIT"]}
    assert metadata["NSTARS"] == int(np.sum(stars["extendedness"] == 0))
    assert not (stars["calib_psf_used"] & ~stars["calib_psf_candidate"]).any()
    assert int(stars["calib_psf_used"].sum()) == metadata["PSF_NSTARS"]
    assert int(stars["calib_astrometry_used"].sum()) == metadata["ASTROM_NMATCH"]
    assert int(stars["calib_photometry_used"].sum()) == metadata["PHOTOCAL_NSTARS"]
    assert ("SKIPPED_MEASUREMENT" in skipped) == (n == 0)

    # Each fallback is named, and only a fallback.
    assert (metadata["PSF_MODEL"] == "header") == ("SKIPPED_PSF" in skipped)
    assert (not metadata["APCORR_MEASURED"]) == ("SKIPPED_APCORR" in skipped)
    assert (metadata["ASTROM_MODEL"] == "header") == ("SKIPPED_ASTROMETRY" in skipped)
    assert ("PHOTOCAL_ZP" in metadata) == (
        "calibrated fluxes are NaN" not in skipped.get("SKIPPED_PHOTOMETRY", "")
    )
    # A missing zero point is a visible status, not only NaN fluxes.
    assert (metadata["PHOTOCAL_SOURCE"] == "none") == ("PHOTOCAL_ZP" not in metadata)
    if scenario.reference == "none":
        assert skipped["SKIPPED_ASTROMETRY"] == "no reference catalogue; keeping the header WCS"
        assert skipped["SKIPPED_PHOTOMETRY"].startswith("no reference catalogue; ")
    if scenario.reference == "off_detector" or (scenario.reference == "on_stars" and not scenario.stars):
        assert skipped["SKIPPED_ASTROMETRY"] == "no reference stars on the detector; keeping the header WCS"
    if not scenario.zero_point and "PHOTOCAL_ZP" not in metadata:
        assert skipped["SKIPPED_PHOTOMETRY"].endswith(
            "no zero point in the header either: calibrated fluxes are NaN"
        )
    if exposure.bbox.area < MIN_NOISE_PIXELS:
        assert "SKIPPED_NOISE_CORR" in skipped

    # Summary statistics: finite, or NaN exactly where a key says why.
    stats = result.exposure.summary_stats
    for field in (
        "psfSigma",
        "psfArea",
        "psfIxx",
        "psfIyy",
        "ra",
        "dec",
        "pixelScale",
        "expTime",
        "skyBg",
        "meanVar",
    ):
        assert math.isfinite(getattr(stats, field)), field
    assert all(math.isfinite(v) for v in (*stats.raCorners, *stats.decCorners))
    assert math.isfinite(stats.zeroPoint) == ("PHOTOCAL_ZP" in metadata)
    assert math.isfinite(stats.skyNoise) == ("SKIPPED_SKY_NOISE" not in skipped)
    assert math.isfinite(stats.astromOffsetMean) == (metadata["ASTROM_NMATCH"] > 0)
    assert stats.nPsfStar == metadata["PSF_NSTARS"]
    assert math.isnan(stats.refCatSourceDensity) == (scenario.reference == "none")
    instrumental = np.isfinite(np.asarray(stars["psfInstFlux"], float))
    calibrated = np.isfinite(np.asarray(stars["psfFlux"], float))
    assert np.array_equal(calibrated, instrumental & math.isfinite(stats.zeroPoint))

    # The background is finite where there are data, and restores the input.
    data = ~exposure.mask.get("NO_DATA")
    model = result.background.subtracted.field.render(exposure.bbox).array
    assert np.isfinite(model[data]).all()
    restored = result.exposure.image.array + model
    # The subtraction is in float32: good to its precision at the larger of image and background.
    scale = np.maximum(np.abs(model), np.abs(exposure.image.array))[data].astype(np.float32)
    assert (np.abs(restored[data] - exposure.image.array[data]) <= 4 * np.spacing(scale) + 1e-3).all()
    assert ("SKIPPED_BACKGROUND" in skipped) == (
        scenario.masking == "all_saturated" or not _has_mesh(exposure)
    )

    # The PSF and the aperture correction evaluate.
    x, y = exposure.bbox.x.center, exposure.bbox.y.center
    kernel = result.exposure.psf.compute_kernel_image(x=x, y=y).array
    assert np.isfinite(kernel).all() and kernel.sum() == pytest.approx(1.0, abs=1e-3)
    apcorr = result.exposure.aperture_corrections[PSF_FLUX_ALGORITHM]
    assert math.isfinite(float(apcorr(x=x, y=y)))


def _has_mesh(exposure: VisitImage) -> bool:
    """Whether some background cell is at most half unusable (else the background is a constant)."""
    size = min(_calibrate_config().background.meshSize, *exposure.bbox.shape)
    unusable = np.zeros(exposure.bbox.shape, dtype=bool)
    for plane in ("NO_DATA", "SATURATED", "BAD", "COSMIC_RAY"):
        unusable |= exposure.mask.get(plane)
    height, width = unusable.shape
    return any(
        unusable[j : j + size, i : i + size].mean() <= 0.5
        for j in range(0, height, size)
        for i in range(0, width, size)
    )


FLUXES = st.sampled_from([300.0, 3e3, 3e4, 3e5])
SCATTERED = st.lists(
    st.builds(Star, fx=st.floats(0.0, 1.0), fy=st.floats(0.0, 1.0), flux=FLUXES), max_size=12
).map(tuple)
GRID = st.builds(
    lambda side, flux: tuple(
        Star((i + 1) / (side + 1), (j + 1) / (side + 1), flux) for i in range(side) for j in range(side)
    ),
    side=st.integers(2, 5),
    flux=FLUXES,
)
"""Isolated stars in a grid, so that the PSF, astrometric and photometric fits are reached too."""
STARS = st.one_of(SCATTERED, GRID)


@st.composite
def scenarios(draw) -> Scenario:
    shape = draw(st.sampled_from([(20, 20), (20, 57), (48, 48), (96, 80), (128, 128)]))
    offset = (draw(st.integers(0, 251 - shape[0])), draw(st.integers(0, 245 - shape[1])))
    return Scenario(
        shape=shape,
        offset=offset,
        pixels=draw(st.sampled_from(["synthetic", "synthetic", "real"])),
        stars=draw(STARS),
        masking=draw(
            st.sampled_from(
                ["none", "none", "all_no_data", "all_saturated", "stars_saturated", "mostly_no_data"]
            )
        ),
        zero_point=draw(st.booleans()),
        noise_ratio=draw(st.booleans()),
        quantized=draw(st.booleans()),
        reference=draw(st.sampled_from(["none", "off_detector", "on_stars", "one_star", "random"])),
        casu=draw(st.sampled_from(["none", "empty", "on_stars"])),
    )


FIELD = tuple(Star((i + 1) / 5, (j + 1) / 5, 3e4) for i in range(4) for j in range(4))
FITTED = (
    Scenario(shape=(128, 128), stars=FIELD, reference="on_stars"),
    Scenario(shape=(128, 128), stars=FIELD, reference="on_stars", zero_point=False, casu="on_stars"),
)
"""Sixteen isolated bright stars on 128x128: enough for a Piff PSF, a shift
of the WCS and a fitted zero point.  Random draws seldom reach the fits; these
examples do, so that the properties also hold where nothing is skipped."""


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
@example(scenario=FITTED[0])
@example(scenario=FITTED[1])
def test_calibrate_image_is_total(base, task, scenario):
    result, lines, exposure = calibrate(task, base, scenario)
    if isinstance(result, NoWorkFound):
        assert exposure.mask.get("NO_DATA").all()
        assert str(result) == f"{NAME}: every pixel is NO_DATA."
        assert lines == [f"{NAME}: every pixel is NO_DATA; nothing to calibrate."]
        return
    assert not exposure.mask.get("NO_DATA").all()
    check_outputs(result, lines, exposure, scenario)
    if scenario in FITTED:
        metadata = result.exposure.metadata
        assert (metadata["PSF_MODEL"], metadata["ASTROM_MODEL"], metadata["PHOTOCAL_SOURCE"]) == (
            "piff",
            "shift",
            "fit",
        )


BRIGHT = tuple(Star(fx, fy, 3e4) for fx, fy in ((0.2, 0.3), (0.5, 0.5), (0.8, 0.7), (0.3, 0.8), (0.7, 0.2)))
FULL = dict(shape=(251, 245), offset=(0, 0), pixels="real")

CASES = [
    # (id, scenario, key, text: exact, or a pattern if it starts with ^)
    (
        "reference stars around the detector, none on it (the reported crash)",
        Scenario(**FULL, reference="off_detector"),
        "SKIPPED_ASTROMETRY",
        "no reference stars on the detector; keeping the header WCS",
    ),
    (
        "no reference catalogue",
        Scenario(**FULL),
        "SKIPPED_ASTROMETRY",
        "no reference catalogue; keeping the header WCS",
    ),
    (
        "one reference star, on a star",
        Scenario(stars=BRIGHT, reference="one_star"),
        "SKIPPED_ASTROMETRY",
        "1 reference matches (< 3); keeping the header WCS",
    ),
    (
        "every reference star on a saturated star",
        Scenario(stars=BRIGHT, reference="on_stars", masking="stars_saturated"),
        "SKIPPED_ASTROMETRY",
        "0 reference matches (< 3); keeping the header WCS",
    ),
    (
        "no sources",
        Scenario(),
        "SKIPPED_MEASUREMENT",
        "no sources detected; the star catalogue is empty",
    ),
    (
        "no PSF stars",
        Scenario(),
        "SKIPPED_PSF",
        "0 PSF stars (< minStars=5); keeping the header PSF",
    ),
    (
        "no stars for the aperture correction",
        Scenario(),
        "SKIPPED_APCORR",
        "0 stars for the aperture correction (< 1); it is 1",
    ),
    (
        "one source",
        Scenario(stars=BRIGHT[1:2]),
        "SKIPPED_PSF",
        "1 PSF stars (< minStars=5); keeping the header PSF",
    ),
    (
        "no zero point, no reference catalogue",
        Scenario(stars=BRIGHT, zero_point=False),
        "SKIPPED_PHOTOMETRY",
        "no reference catalogue; no zero point in the header either: calibrated fluxes are NaN",
    ),
    (
        "too few photometric reference stars",
        Scenario(stars=BRIGHT[:2], reference="on_stars"),
        "SKIPPED_PHOTOMETRY",
        "2 usable photometric reference stars (< 3); keeping the header zero point",
    ),
    (
        "every pixel saturated",
        Scenario(stars=BRIGHT, masking="all_saturated"),
        "SKIPPED_BACKGROUND",
        "no usable pixel (all NO_DATA, SATURATED, BAD or COSMIC_RAY); no background subtracted",
    ),
    (
        "every pixel saturated: no sky noise",
        Scenario(stars=BRIGHT, masking="all_saturated"),
        "SKIPPED_SKY_NOISE",
        "no usable pixel (all NO_DATA, SATURATED, BAD or COSMIC_RAY); the sky noise is NaN",
    ),
    (
        "all NO_DATA but a corner",
        Scenario(stars=BRIGHT, masking="mostly_no_data"),
        "SKIPPED_BACKGROUND",
        "every 64-pixel background cell is more than half masked; subtracting the clipped median of the "
        "256 usable pixels",
    ),
    (
        "tiny 20x20 image",
        Scenario(shape=(20, 20), stars=BRIGHT[1:2]),
        "SKIPPED_NOISE_CORR",
        r"^\d+ sky pixels \(< 1000\); errors are not scaled for correlated noise$",
    ),
    (
        "tiny 20x20 image without NOISE_RATIO",
        Scenario(shape=(20, 20), stars=BRIGHT[1:2], noise_ratio=False),
        "SKIPPED_SKY_NOISE",
        r"^\d+ sky pixels \(< 1000\) and no NOISE_RATIO from isr; the sky noise is NaN$",
    ),
    (
        "empty CASU catalogue",
        Scenario(stars=BRIGHT, casu="empty"),
        "SKIPPED_CASU_COMPARISON",
        "0 of 5 sources match the CASU catalogue (0 entries), none of them stellar with S/N >= 20; "
        "no flux comparison",
    ),
]


@pytest.mark.parametrize(("scenario", "key", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_degenerate_input_says_what_it_skipped(base, task, scenario, key, text):
    result, lines, exposure = calibrate(task, base, scenario)
    assert not isinstance(result, NoWorkFound), result
    found = result.exposure.metadata.get(key)
    if text.startswith("^"):
        assert found is not None and re.match(text, found), found
    else:
        assert found == text
    assert f"{NAME}: {found}." in lines
    check_outputs(result, lines, exposure, scenario)


def test_all_no_data_is_no_work(base, task):
    result, lines, _ = calibrate(task, base, Scenario(stars=BRIGHT, masking="all_no_data"))
    assert isinstance(result, NoWorkFound)
    assert lines == [f"{NAME}: every pixel is NO_DATA; nothing to calibrate."]


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(
            shape=(20, 20), stars=BRIGHT[1:2], noise_ratio=False, zero_point=False, reference="off_detector"
        ),
        Scenario(shape=(20, 20)),
    ],
    ids=["no zero point, sky noise or match", "no sources"],
)
def test_outputs_of_a_degenerate_input_round_trip(base, task, tmp_path, scenario):
    """NaN statistics, an empty catalogue and the SKIPPED_ keys survive a
    write: the image as lsst-images writes it, the catalogue as Parquet
    through daf_butler's conversion (ArrowAstropy)."""
    result, _, _ = calibrate(task, base, scenario)
    skipped = {k: v for k, v in result.exposure.metadata.items() if k.startswith(SKIPPED_PREFIX)}
    path = tmp_path / "calibrated.fits"
    result.exposure.write(str(path))
    read = VisitImage.read(str(path))
    assert {k: v for k, v in read.metadata.items() if k.startswith(SKIPPED_PREFIX)} == skipped
    assert math.isnan(read.summary_stats.zeroPoint) == math.isnan(result.exposure.summary_stats.zeroPoint)
    assert math.isnan(read.summary_stats.skyNoise) == math.isnan(result.exposure.summary_stats.skyNoise)
    pyarrow.parquet.write_table(astropy_to_arrow(result.stars), tmp_path / "stars.parq")
    stars = arrow_to_astropy(pyarrow.parquet.read_table(tmp_path / "stars.parq"))
    assert stars.colnames == result.stars.colnames and len(stars) == len(result.stars)
    assert {k: stars.meta[k] for k in skipped} == skipped


# The reported case end to end: a real CP cutout whose reference shards hold stars around the
# detector, none on it, through processCcd.py (pipetask) on a real repository.


def _run(*command) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_processccd_with_reference_stars_around_the_detector(base, tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    for role in ("ooi", "oow", "ood"):
        (batch / _member(CP_IMAGE, role).name).symlink_to(_member(CP_IMAGE, role))
    # The Legacy Surveys' Gaia chunks of this field without the stars on the cutout (or within
    # the reference margin of it).
    refcat = tmp_path / "gaia-around.fits"
    rows = vstack(
        [Table.read(chunk, hdu=1) for chunk in sorted(TESTCASE.glob("reference/gaia-chunk-*.fits"))]
    )
    pixels = base.sky_projection.sky_to_pixel(
        SkyCoord(np.asarray(rows["ra"], float) * u.deg, np.asarray(rows["dec"], float) * u.deg)
    )
    box = base.bbox
    near = (
        (pixels.x > box.x.start - OFF_DETECTOR)
        & (pixels.x < box.x.stop + OFF_DETECTOR)
        & (pixels.y > box.y.start - OFF_DETECTOR)
        & (pixels.y < box.y.stop + OFF_DETECTOR)
    )
    assert 0 < near.sum() < len(rows)
    rows[~near].write(refcat)
    repo = tmp_path / "repo"
    Butler.makeRepo(str(repo), config=str(ROOT / "config" / "butler" / "seed.yaml"))
    with Butler.from_config(str(repo), writeable=True) as butler:
        assert ProductIngester(butler, instrument="DECam", transfer="direct").run([batch]).ok
        assert ingest_refcat(butler, "gaia_dr2", [refcat]).ok
    run = _run(
        BIN / "processCcd.py", repo, "--id", "instrument=DECam", "-o", "u/test/around",
        "--input", "DECam/defaults", "--input", "refcats/gaia_dr2",
        "-c", "connections.astrometry_ref_cat=gaia_dr2",
    )  # fmt: skip
    assert "no reference stars on the detector; keeping the header WCS." in run.stderr
    with Butler.from_config(str(repo)) as butler:
        calibrated = butler.get(
            butler.query_datasets("preliminary_visit_image", collections="u/test/around")[0]
        )
        stars = butler.get(butler.query_datasets("single_visit_star", collections="u/test/around")[0])
    assert (
        calibrated.metadata["SKIPPED_ASTROMETRY"]
        == "no reference stars on the detector; keeping the header WCS"
    )
    assert calibrated.metadata["ASTROM_MODEL"] == "header" and calibrated.metadata["NSOURCES"] == len(stars)
    assert not any(key.startswith("MISSING_") for key in calibrated.metadata)


def test_catalog_comparison_needs_a_retargeted_task():
    """The core's comparison compares nothing: turning it on without a task
    that knows the catalogue's columns is a configuration error."""
    config = CalibrateImageConfig()
    config.doCompareCatalog = True
    with pytest.raises(pexConfig.FieldValidationError, match="catalogComparison must be retargeted"):
        config.validate()
    config.catalogComparison.retarget(CasuCatalogComparisonTask)
    config.validate()
