"""The ProcessCcd pipelines (isr -> calibrateImage) through processCcd.py and
`pipetask run` in a real SQLite butler repository: synthetic VIRCAM stacks
with a synthetic Gaia-like catalogue, and the bundled real DECam CP trios
with the Legacy Surveys' Gaia chunks, checked against what legacyzpts
measured on the same CCDs."""

import math
import shutil
import subprocess
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler
from lsst.images import BackgroundMap, VisitImage
from lsst.pipe.base import NoWorkFound, Pipeline

import lsst.obs.vista  # noqa: F401  (registers the VIRCAM translator for reading)
from commands import BIN, ROOT, invoke, run, simulate
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask
from lsst.obs.vista.cli.process_ccd import where_from_ids
from lsst.obs.vista.refcat import RefcatSchemaError, read_reference_file, shard_rows
from lsst.obs.vista.sim import read_source_truth

DECAM_DATA = ROOT / "tests" / "data" / "decam_cp"
pytestmark = pytest.mark.slow

STAR_COLUMNS = (
    "id", "coord_ra", "coord_dec", "x", "y", "xErr", "yErr",
    "psfFlux", "psfFluxErr", "psfInstFlux", "psfInstFluxErr", "psfMag", "psfMagErr",
    "ap12Flux", "ap12FluxErr", "ap12InstFlux", "ap12InstFluxErr",
    "ixx", "iyy", "ixy", "extendedness", "sizeExtendedness",
    "calib_psf_candidate", "calib_psf_used", "calib_psf_reserved", "calib_astrometry_used",
    "calib_photometry_used", "pixelFlags_edge", "pixelFlags_saturated", "pixelFlags_nodata",
    "pixelFlags_interpolated", "deblend_blended",
)  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repo with both instruments processed by processCcd.py."""
    root = tmp_path_factory.mktemp("calibrate")
    repo = root / "repo"
    sim = root / "vircam"
    invoke("butler", "create", "--seed-config", ROOT / "config" / "butler" / "seed.yaml", repo)
    simulate(
        sim, "--stacks", "1", "--size", "768",
        "--detectors", "1", "--seed", "7", "--psf-variation", "0.1", "--refcat", root / "gaia.fits",
        "--twomass", root / "twomass.fits",
    )  # fmt: skip
    invoke("butler", "ingest-casu", repo, sim, "--transfer", "symlink")
    invoke("butler", "ingest-refcat", repo, "gaia_dr3", root / "gaia.fits")
    invoke("butler", "ingest-refcat", "--schema", "2mass", repo, "twomass_psc", root / "twomass.fits")
    invoke("butler", "ingest-instcal", repo, DECAM_DATA, "--transfer", "direct")
    invoke("butler", "ingest-refcat", repo, "gaia_dr2", *sorted(DECAM_DATA.glob("*/reference/gaia-*.fits")))
    vircam = run(BIN / "processCcd.py", repo, "--id", "instrument=VIRCAM", "-o", "u/test/vircam")
    decam = run(
        BIN / "processCcd.py", repo, "--id", "instrument=DECam", "-o", "u/test/decam",
        "--input", "DECam/defaults", "--input", "refcats/gaia_dr2",
        "-c", "connections.astrometry_ref_cat=gaia_dr2",
    )  # fmt: skip
    return {
        "path": repo,
        "sim": sim,
        "vircam_stdout": vircam.stdout,
        "decam_stdout": decam.stdout,
        "decam_log": decam.stderr,
    }


@pytest.fixture(scope="module")
def butler(repo):
    with Butler.from_config(str(repo["path"])) as butler:
        yield butler


def _outputs(butler, collection):
    refs = butler.query_datasets("single_visit_star", collections=collection)
    assert refs
    return [
        (
            ref.dataId,
            butler.get(ref),
            butler.get("preliminary_visit_image", ref.dataId, collections=collection),
        )
        for ref in refs
    ]


def test_processccd_prints_the_pipetask_command_first(repo):
    for stdout in (repo["vircam_stdout"], repo["decam_stdout"]):
        assert stdout.startswith("$ pipetask run -b ")
    assert "-p " in repo["decam_stdout"] and "DECam/ProcessCcd.yaml" in repo["decam_stdout"]
    assert "-c calibrateImage:connections.astrometry_ref_cat=gaia_dr2" in repo["decam_stdout"]


def test_every_detector_has_all_three_outputs(butler):
    for collection, instrument in (("u/test/vircam", "VIRCAM"), ("u/test/decam", "DECam")):
        isr = butler.query_datasets("post_isr_image", collections=collection)
        for name in ("preliminary_visit_image", "preliminary_visit_image_background", "single_visit_star"):
            refs = butler.query_datasets(name, collections=collection)
            assert len(refs) == len(isr), (instrument, name)
            assert {ref.dataId["detector"] for ref in refs} == {ref.dataId["detector"] for ref in isr}
        assert butler.get_dataset_type("preliminary_visit_image").storageClass_name == "VisitImage"
        assert (
            butler.get_dataset_type("preliminary_visit_image_background").storageClass_name == "BackgroundMap"
        )
        assert butler.get_dataset_type("single_visit_star").storageClass_name == "ArrowAstropy"


def test_star_catalogue_has_rubin_columns_and_units(butler):
    for _, stars, _ in _outputs(butler, "u/test/vircam"):
        assert set(STAR_COLUMNS) <= set(stars.colnames)
        assert stars["coord_ra"].unit == u.deg and stars["psfFlux"].unit == u.nJy
        assert len(np.unique(stars["id"])) == len(stars)
        good = stars["psfInstFlux"] > 0
        # nJy fluxes are the instrumental ones times one calibration.
        ratio = stars["psfFlux"][good] / stars["psfInstFlux"][good]
        assert np.allclose(ratio, ratio[0])
        assert stars["calib_psf_used"].sum() <= stars["calib_psf_candidate"].sum()


def test_background_map_restores_the_post_isr_image(butler):
    """preliminary_visit_image + its subtracted background == post_isr_image."""
    for collection in ("u/test/vircam", "u/test/decam"):
        for data_id, _, calibrated in _outputs(butler, collection)[:3]:
            backgrounds = butler.get("preliminary_visit_image_background", data_id, collections=collection)
            assert isinstance(backgrounds, BackgroundMap) and backgrounds.subtracted is not None
            post_isr = butler.get(
                "post_isr_image",
                instrument=data_id["instrument"],
                detector=data_id["detector"],
                exposure=data_id["visit"],  # one visit per exposure, the same ID
                collections=collection,
            )
            model = backgrounds.subtracted.field.render(calibrated.bbox).array
            good = ~calibrated.mask.get("NO_DATA")
            restored = calibrated.image.array + model
            assert np.allclose(restored[good], post_isr.image.array[good], rtol=1e-5, atol=1e-3)
            assert calibrated.mask.get("DETECTED").any()


def test_summary_stats_and_metadata(butler):
    for _, stars, calibrated in _outputs(butler, "u/test/vircam"):
        stats = calibrated.summary_stats
        for name in ("psfSigma", "psfArea", "zeroPoint", "skyBg", "skyNoise", "meanVar", "pixelScale"):
            assert math.isfinite(getattr(stats, name)), name
        assert math.isfinite(stats.astromOffsetMean) and stats.astromOffsetMean < 0.1
        metadata = calibrated.metadata
        assert metadata["ASTROM_MODEL"] in ("shift", "affine") and metadata["NSOURCES"] == len(stars)
        assert metadata["CASU_NMATCH"] > 0.8 * len(stars)
        assert metadata["PSF_MODEL"] in ("piff", "header")


def test_file_round_trips_through_lsst_images(butler):
    ref = butler.query_datasets("preliminary_visit_image", collections="u/test/vircam")[0]
    direct = VisitImage.read(butler.getURI(ref).ospath)
    through_butler = butler.get(ref)
    kernel = dict(x=float(direct.bbox.x.center), y=float(direct.bbox.y.center))
    assert np.allclose(
        direct.psf.compute_kernel_image(**kernel).array,
        through_butler.psf.compute_kernel_image(**kernel).array,
    )
    assert direct.summary_stats == through_butler.summary_stats


def _legacy_surveys_ccds():
    rows = [Table.read(path) for path in sorted(DECAM_DATA.glob("*/reference/survey-ccds-1.fits.gz"))]
    return {(int(row["expnum"]), str(row["ccdname"]).strip()): row for table in rows for row in table}


def test_decam_against_the_legacy_surveys(butler, record_property):
    """Zero point no worse than MAGZERO's, astrometric residuals under 50 mas
    where Gaia stars matched, background noise within 10% of sig1."""
    ccds = _legacy_surveys_ccds()
    compared = 0
    for data_id, _, calibrated in _outputs(butler, "u/test/decam"):
        key = (int(data_id["visit"]), calibrated.detector.name)
        if key not in ccds:
            continue
        compared += 1
        row = ccds[key]
        metadata = calibrated.metadata
        exptime = float(row["exptime"])
        # ccdzpt is the AB magnitude of 1 ADU/s; ours is of 1 ADU in the exposure.
        legacy = float(row["ccdzpt"]) + 2.5 * math.log10(exptime)
        applied = calibrated.summary_stats.zeroPoint
        header = metadata.get("PHOTOCAL_ZP_HEADER")
        if header is not None:
            assert abs(applied - legacy) <= abs(header - legacy) + 1e-9
        if metadata.get("ASTROM_NMATCH", 0) >= 3:
            assert metadata["ASTROM_RMS_MAS"] < 50
        # sig1: per-pixel noise in nanomaggies with the survey's calibration.
        sigma_nmgy = metadata["SKY_NOISE"] / exptime * 10 ** (-0.4 * (float(row["ccdzpt"]) - 22.5))
        assert abs(sigma_nmgy / float(row["sig1"]) - 1) < 0.1, (key, sigma_nmgy, float(row["sig1"]))
        record_property(f"decam_{key}", dict(zp=applied, legacy=legacy, header=header, noise=sigma_nmgy))
    assert compared >= 6


def test_vircam_zero_point_fitted_to_twomass(butler, repo):
    """processCcd.py finds refcats/twomass_psc by itself, and the VIRCAM zero
    point fitted to it through config/vircam's colour equation is applied
    and within 0.01 mag of the simulation's truth."""
    assert "refcats/twomass_psc" in repo["vircam_stdout"]
    (truth_file,) = (repo["sim"] / "truth").glob("*_st_truth.fits")
    truth = read_source_truth(truth_file, 1)
    outputs = list(_outputs(butler, "u/test/vircam"))
    assert outputs
    for _, _, calibrated in outputs:
        metadata = calibrated.metadata
        assert metadata["PHOTOCAL_SOURCE"] == "fit"
        assert metadata["PHOTOCAL_REFCAT"] == "twomass_psc"
        assert abs(calibrated.summary_stats.zeroPoint - truth.meta["ZPAB"]) < 0.01
        assert metadata["PHOTOCAL_OFFSET"] == pytest.approx(
            metadata["PHOTOCAL_ZP_FIT"] - metadata["PHOTOCAL_ZP_HEADER"]
        )


def test_decam_without_reference_stars_keeps_the_header(butler, repo):
    """The fpack CCD has no Gaia chunk: the step runs and says it kept the header."""
    for data_id, _, calibrated in _outputs(butler, "u/test/decam"):
        if data_id["visit"] == 165553:
            assert calibrated.metadata["ASTROM_MODEL"] == "header"
            assert calibrated.metadata["PHOTOCAL_SOURCE"] == "header"
            break
    else:
        pytest.fail("no output for the fpack CCD")
    assert "no reference catalogue; keeping the header WCS." in repo["decam_log"]
    assert "no reference catalogue; keeping the header zero point." in repo["decam_log"]


def test_rubin_pipelines_parse_and_read_post_isr_image():
    for instrument in ("VIRCAM", "DECam"):
        pipeline = Pipeline.from_uri(str(ROOT / "pipelines" / instrument / "DRP-rubin.yaml"))
        assert set(pipeline.task_labels) == {"isr", "calibrateImage"}
        calibrate = pipeline._pipelineIR.tasks["calibrateImage"]
        assert calibrate.klass == "lsst.pipe.tasks.calibrateImage.CalibrateImageTask"
        overrides = {k: v for block in calibrate.config for k, v in block.rest.items()}
        assert overrides["connections.exposures"] == "post_isr_image"
        ours = Pipeline.from_uri(str(ROOT / "pipelines" / instrument / "ProcessCcd.yaml")).to_graph()
        assert ours.tasks["isr"].outputs["outputExposure"].dataset_type_name == "post_isr_image"


def test_where_from_ids():
    assert where_from_ids(["instrument=DECam", "visit=1^2", "detector=S4"]) == (
        "instrument='DECam' AND visit IN (1, 2) AND detector='S4'",
        "DECam",
    )


# Bad and degenerate inputs: one clear line; no outputs only where every pixel is NO_DATA
# (pipe_base writes nothing for NoWorkFound).


@pytest.fixture(scope="module")
def post_isr(butler):
    ref = butler.query_datasets(
        "post_isr_image", collections="u/test/decam", where="instrument='DECam' AND detector=33"
    )[0]
    return butler.get(ref)


def test_all_no_data_has_no_outputs(post_isr, caplog):
    exposure = post_isr.copy()
    exposure.mask.set("NO_DATA", np.ones(exposure.mask.array.shape[:2], dtype=bool))
    with pytest.raises(NoWorkFound, match="every pixel is NO_DATA"):
        CalibrateImageTask(config=CalibrateImageConfig()).run(exposure, name="blank")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "blank: every pixel is NO_DATA; nothing to calibrate."
    ]


def test_no_detections_keep_the_background_and_the_header_calibration(post_isr, caplog):
    exposure = post_isr.copy()
    exposure.image.array[...] = np.random.default_rng(1).normal(0, 1, exposure.image.array.shape)
    exposure.variance.array[...] = 1.0
    result = CalibrateImageTask(config=CalibrateImageConfig()).run(exposure, name="empty")
    assert len(result.stars) == 0 and result.exposure.metadata["NSOURCES"] == 0
    text = "no sources detected; the star catalogue is empty"
    assert result.exposure.metadata["SKIPPED_MEASUREMENT"] == text
    assert result.exposure.metadata["PSF_MODEL"] == "header"
    assert f"empty: {text}." in [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_reference_shard_with_other_columns(post_isr):
    shards = shard_rows(read_reference_file(DECAM_DATA / "testcase4" / "reference" / "gaia-chunk-03586.fits"))
    trixel, table = next(iter(shards.items()))
    table.remove_column("pmra")
    with pytest.raises(RefcatSchemaError, match=rf"^gaia_dr2 shard htm7={trixel}: missing column 'pmra'$"):
        CalibrateImageTask(config=CalibrateImageConfig()).run(
            post_isr, reference_shards={trixel: table}, reference_name="gaia_dr2", name="bad shard"
        )


# Files gone from the datastore after ingest or isr (a copy of the repository).


@pytest.fixture
def damaged_repo(repo, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repo["path"], copy, symlinks=True)
    return copy


def _calibrate_vircam(repo_path: Path, output: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "pipetask"), "run", "-b", str(repo_path), "-i", "u/test/vircam,refcats/gaia_dr3",
            "-o", output, "-p", f"{ROOT / 'pipelines' / 'VIRCAM' / 'ProcessCcd.yaml'}#calibrateImage",
            "--register-dataset-types",
        ],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip


def test_missing_optional_casu_catalog_is_a_warning_recorded_in_metadata(damaged_repo):
    with Butler.from_config(str(damaged_repo)) as butler:
        ref = butler.query_datasets("casu_catalog", collections="VIRCAM/defaults")[0]
        Path(butler.getURI(ref).ospath).unlink()
    result = _calibrate_vircam(damaged_repo, "u/test/nocat")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING" in result.stderr and "no casu_catalog" in result.stderr
    with Butler.from_config(str(damaged_repo)) as butler:
        calibrated = butler.get(
            butler.query_datasets("preliminary_visit_image", collections="u/test/nocat")[0]
        )
    assert "no comparison" in calibrated.metadata["MISSING_CASU_CATALOG"]
    assert "CASU_NMATCH" not in calibrated.metadata


def test_missing_post_isr_image_fails_the_quantum(damaged_repo):
    with Butler.from_config(str(damaged_repo)) as butler:
        ref = butler.query_datasets("post_isr_image", collections="u/test/vircam")[0]
        Path(butler.getURI(ref).ospath).unlink()
    result = _calibrate_vircam(damaged_repo, "u/test/noexp")
    assert result.returncode != 0
    assert "post_isr_image@" in result.stderr and "its file is missing from the datastore" in result.stderr
