"""calibrateImage on full-size synthetic VIRCAM stacks, against their truth.

One detector of 2048 pixels per noise realisation, with a PSF whose FWHM
grows 10% from the centre to the corners, its true sources and a synthetic
Gaia-like catalogue of its stars (positions propagated from epoch 2016 by
their proper motions): isr and calibrateImage run in-process, as pipetask
runs them, and every figure is compared with the simulation's truth.
"""

import math
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.stats import mad_std, sigma_clip
from scipy.spatial import cKDTree

from isr_support import (
    BRIGHTENING,
    fit_brightened_against_twomass,
    process_ccd_config,
    read_confidence,
    read_stack,
)
from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask, ColorTermConfig
from lsst.obs.vista.calibrate.catalog import usable_for_calibration
from lsst.obs.vista.psf_shape import FWHM_PER_SIGMA, psf_fwhm
from lsst.obs.vista.refcat import read_reference_file, shard_rows
from lsst.obs.vista.sim import (
    SimulationConfig,
    read_source_truth,
    write_pawprint_stack,
    write_reference_catalog,
)

SEEDS = (3, 5)
MATCH_RADIUS = 2.0
"""Pixels between a detection and the true source it is taken to be."""


def _calibrate_config(**overrides) -> CalibrateImageConfig:
    config = CalibrateImageConfig()
    Vircam().applyConfigOverrides("calibrateImage", config)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def _make_field(seed: int, outdir: Path) -> dict:
    """isr and calibrateImage on one realisation, with its truth."""
    config = SimulationConfig(size=2048, detectors=(1,), seed=seed, psf_variation=0.1)
    stack = write_pawprint_stack(outdir, 0, config)
    write_reference_catalog(config, outdir / "gaia.fits")
    exposure = (
        VistaIsrTask(config=process_ccd_config())
        .run(read_stack(stack.stack), read_confidence(stack.confidence))
        .outputExposure
    )
    shards = shard_rows(read_reference_file(Path(outdir / "gaia.fits")))
    result = CalibrateImageTask(config=_calibrate_config()).run(
        exposure, reference_shards=shards, reference_name="gaia_dr3", name=f"seed{seed}"
    )
    truth = read_source_truth(stack.truth, 1)
    return {"exposure": exposure, "result": result, "truth": truth, "shards": shards, "config": config}


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    """Both realisations, by seed."""
    return {seed: _make_field(seed, tmp_path_factory.mktemp(f"sim{seed}")) for seed in SEEDS}


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def field(request, fields):
    return fields[request.param]


def _matches(stars, truth):
    """Index of the true source of each detection, and whether it has one."""
    distance, index = cKDTree(np.column_stack([truth["x"], truth["y"]])).query(
        np.column_stack([stars["x"], stars["y"]]), distance_upper_bound=MATCH_RADIUS
    )
    matched = np.isfinite(distance)
    return np.where(matched, index, 0), matched


def _clean_true_stars(stars, truth, *, exclude_psf_candidates: bool):
    """Detections of unsaturated true stars usable for calibration, S/N 10-200."""
    index, matched = _matches(stars, truth)
    is_star = (
        matched & ~np.asarray(truth["is_galaxy"])[index] & (np.asarray(truth["n_saturated"])[index] == 0)
    )
    snr = np.asarray(stars["psfInstFlux"]) / np.asarray(stars["psfInstFluxErr"])
    selected = is_star & usable_for_calibration(stars) & (snr >= 10) & (snr <= 200)
    if exclude_psf_candidates:
        # The PSF model (and the aperture correction) are fitted to these.
        selected &= ~np.asarray(stars["calib_psf_candidate"])
    return np.flatnonzero(selected), index[selected]


def test_psf_fwhm_at_corners_and_centre(field):
    """Piff's FWHM within 1% of the true stack PSF at the centre and 2.5% at
    the four corners of the region every exposure covers.

    About 45 stars fit the quadratic variation; which fifth of the
    candidates is reserved (drawn with the data ID's seed) moves the worst
    corner's FWHM between 0.7% and 2.2% from the truth (8 draws on seed 3).
    """
    truth, psf = field["truth"], field["result"].exposure.psf
    meta = truth.meta
    assert field["result"].exposure.metadata["PSF_MODEL"] == "piff"
    x0, x1, y0, y1 = meta["FULLX0"], meta["FULLX1"], meta["FULLY0"], meta["FULLY1"]
    positions = {
        "PSFFWCEN": (0.5 * (x0 + x1), 0.5 * (y0 + y1)),
        "PSFFW00": (x0, y0),
        "PSFFW01": (x1, y0),
        "PSFFW10": (x0, y1),
        "PSFFW11": (x1, y1),
    }
    errors = {key: psf_fwhm(psf, x=float(x), y=float(y)) / meta[key] - 1 for key, (x, y) in positions.items()}
    assert abs(errors.pop("PSFFWCEN")) < 0.01, errors
    assert max(abs(error) for error in errors.values()) < 0.025, errors
    # The model follows the variation, not just its mean.
    assert meta["PSFFW00"] / meta["PSFFWCEN"] > 1.05


def test_psf_flux_errors_are_right(field):
    """Per realisation: no flux bias beyond 0.3 sigma, pulls of unit width within 15%."""
    stars, truth = field["result"].stars, field["truth"]
    rows, true_index = _clean_true_stars(stars, truth, exclude_psf_candidates=True)
    assert len(rows) > 30
    pulls = (np.asarray(stars["psfInstFlux"])[rows] - np.asarray(truth["flux"])[true_index]) / np.asarray(
        stars["psfInstFluxErr"]
    )[rows]
    assert abs(np.median(pulls)) < 0.3
    assert abs(mad_std(pulls) - 1) < 0.15


def test_psf_flux_errors_pooled(fields):
    """(measured - true PSF flux) / error of clean stars not used for the PSF,
    both realisations pooled: median within 0.1, robust std within 10% of 1."""
    pulls = []
    for field in fields.values():
        stars, truth = field["result"].stars, field["truth"]
        rows, true_index = _clean_true_stars(stars, truth, exclude_psf_candidates=True)
        pulls.append(
            (np.asarray(stars["psfInstFlux"])[rows] - np.asarray(truth["flux"])[true_index])
            / np.asarray(stars["psfInstFluxErr"])[rows]
        )
    pulls = np.concatenate(pulls)
    assert abs(np.median(pulls)) < 0.1, np.median(pulls)
    assert abs(mad_std(pulls) - 1) < 0.1, mad_std(pulls)


def test_completeness_and_false_detections(field):
    """At least 95% of the true, unsaturated stars of S/N >= 10 are detected;
    detections with no true source within 2 pixels are fewer than 5%."""
    stars, truth, exposure = field["result"].stars, field["truth"], field["exposure"]
    x, y = np.asarray(truth["x"]), np.asarray(truth["y"])
    sigma = np.asarray(truth["psf_fwhm"]) / FWHM_PER_SIGMA
    variance = exposure.variance.array
    rows = np.clip(np.round(y).astype(int), 0, variance.shape[0] - 1)
    columns = np.clip(np.round(x).astype(int), 0, variance.shape[1] - 1)
    # Background-limited S/N of an optimal (PSF) flux: F / sqrt(4 pi sigma^2 V).
    expected_snr = np.asarray(truth["flux"]) / np.sqrt(4 * math.pi * sigma**2 * variance[rows, columns])
    margin = 10
    inside = (
        (x > margin)
        & (x < exposure.bbox.x.stop - margin)
        & (y > margin)
        & (y < exposure.bbox.y.stop - margin)
    )
    eligible = (
        ~np.asarray(truth["is_galaxy"])
        & (np.asarray(truth["n_saturated"]) == 0)
        & (np.asarray(truth["confidence"]) > 50)
        & inside
        & (expected_snr >= 10)
    )
    distance, _ = cKDTree(np.column_stack([stars["x"], stars["y"]])).query(
        np.column_stack([x[eligible], y[eligible]]), distance_upper_bound=MATCH_RADIUS
    )
    assert eligible.sum() > 100
    assert np.isfinite(distance).mean() >= 0.95
    _, matched = _matches(stars, truth)
    assert (~matched).sum() < 0.05 * len(stars)


def test_astrometry_against_truth(field):
    """The refined WCS puts clean stars on their true positions: the clipped rms
    of the offsets over their expected centroid errors is at most 1.2 per axis,
    and the mean offset is below 5 mas."""
    result, truth = field["result"], field["truth"]
    stars = result.stars
    assert result.exposure.metadata["ASTROM_MODEL"] == "affine"
    rows, true_index = _clean_true_stars(stars, truth, exclude_psf_candidates=False)
    measured = SkyCoord(stars["coord_ra"][rows], stars["coord_dec"][rows])
    true = SkyCoord(np.asarray(truth["ra"])[true_index] * u.deg, np.asarray(truth["dec"])[true_index] * u.deg)
    d_ra, d_dec = measured.spherical_offsets_to(true)
    scale = result.exposure.summary_stats.pixelScale
    for offset, error in ((d_ra, stars["xErr"][rows]), (d_dec, stars["yErr"][rows])):
        pulls = sigma_clip(offset.to_value(u.arcsec) / scale / np.asarray(error), sigma=4, masked=True)
        assert np.sqrt(np.mean(pulls.compressed() ** 2)) <= 1.2
        assert abs(np.mean(offset.to_value(u.mas))) < 5


def test_header_zero_point_against_truth(field):
    """The applied (header) zero point is the AB magnitude of one ADU per DIT
    to 0.01 mag (the simulation renders no extinction; CASU's MAGZPT carries
    EXTINCT (X - 1) = 3-4 mmag for these stacks)."""
    result, truth = field["result"], field["truth"]
    assert result.exposure.metadata["PHOTOCAL_SOURCE"] == "header"
    assert abs(result.exposure.summary_stats.zeroPoint - truth.meta["ZPAB"]) < 0.01
    # isr's photometric scaling is kept as it is, not rebuilt from a magnitude.
    assert result.exposure.photometric_scaling is field["exposure"].photometric_scaling
    # Calibrated fluxes use it.
    stars = result.stars
    rows, true_index = _clean_true_stars(stars, truth, exclude_psf_candidates=False)
    ratio = stars["psfFlux"].quantity.to_value(u.nJy)[rows] / np.asarray(truth["flux_njy"])[true_index]
    assert abs(np.median(ratio) - 1) < 0.01


def test_fitted_zero_point_against_truth(field):
    """With a colour term for the band (the synthetic catalogue's G holds the
    band's AB magnitude, BP - RP = 0), the zero point fitted to the matched
    reference stars is applied and within 0.01 mag of the truth."""
    config = _calibrate_config()
    # Photometry against the Gaia-like catalogue, not 2MASS.
    config.connections.photometry_ref_cat = config.connections.astrometry_ref_cat
    config.photometry.colorTerms["z"] = ColorTermConfig(primary="phot_g_mean_mag")
    result = CalibrateImageTask(config=config).run(
        field["exposure"], reference_shards=field["shards"], reference_name="gaia_dr3", name="fit"
    )
    metadata = result.exposure.metadata
    assert metadata["PHOTOCAL_SOURCE"] == "fit"
    assert metadata["PHOTOCAL_NSTARS"] >= 10
    assert abs(metadata["PHOTOCAL_ZP"] - field["truth"].meta["ZPAB"]) < 0.01
    assert result.exposure.summary_stats.zeroPoint == pytest.approx(metadata["PHOTOCAL_ZP"])


def test_twomass_zero_point_against_truth(fields, tmp_path):
    """Against a 2MASS-like catalogue (J, H, Ks giving each star's z through
    config/vircam's colour equation) as the separate photometric catalogue,
    the zero point of an exposure made 10% brighter after isr is fitted,
    applied and within 0.01 mag of the truth, and PHOTOCAL_OFFSET is
    fitted minus header (0.10 mag more than the header's own offset).  One
    realisation: the fit is the same machinery as Gaia's, tested on both."""
    field = fields[SEEDS[0]]
    exposure, result = fit_brightened_against_twomass(field["config"], field, _calibrate_config(), tmp_path)
    metadata = result.exposure.metadata
    assert result.exposure.summary_stats.zeroPoint == pytest.approx(metadata["PHOTOCAL_ZP"])
    header_offset = metadata["PHOTOCAL_ZP_HEADER"] - field["truth"].meta["ZPAB"]
    assert abs(metadata["PHOTOCAL_OFFSET"] + header_offset - 2.5 * math.log10(BRIGHTENING)) < 0.01
    # Without 2MASS shards the header's is kept, and said.
    kept = CalibrateImageTask(config=_calibrate_config()).run(exposure, photometry_shards={}, name="no2mass")
    assert kept.exposure.metadata["PHOTOCAL_SOURCE"] == "header"
    assert kept.exposure.metadata["SKIPPED_PHOTOMETRY"].startswith("no reference catalogue")
