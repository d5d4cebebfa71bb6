"""DECam Community Pipeline instcal trios: ``butler ingest-instcal`` into real
SQLite repositories and `DecamCpIsrTask`, on the real CP files of tests/data."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from lsst.daf.butler import Butler
from lsst.images import VisitImage
from lsst.sphgeom import LonLat, UnitVector3d
from scipy.ndimage import binary_dilation

from lsst.obs.vista import DecamCp
from lsst.obs.vista.cli.script import ingest_instruments
from lsst.obs.vista.ingest import IngestReport, ProductIngester
from lsst.obs.vista.isr import DecamCpIsrConfig, DecamCpIsrTask, NoiseCheckTask

DATA = Path(__file__).parent / "data" / "decam_cp"
REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHAIN = "DECam/defaults"
ROLES = {"ooi": "cp_image", "oow": "cp_weight", "ood": "cp_mask"}
IMAGES = sorted(DATA.glob("*/*_ooi_*"))


def header_of(path: Path) -> fits.Header:
    """Primary header updated by the CCD's extension header."""
    with fits.open(path) as hdus:
        header = hdus[0].header.copy()
        header.update(hdus[1].header)
    return header


def data_id_of(image: Path) -> dict:
    header = header_of(image)
    return {"instrument": "DECam", "exposure": header["EXPNUM"], "detector": header["CCDNUM"]}


def stage(directory: Path, images: list[Path], roles: tuple[str, ...] = tuple(ROLES)) -> Path:
    """Copy trios (or some of their members) into a fresh batch directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for image in images:
        for role in roles:
            member = image.with_name(image.name.replace("_ooi_", f"_{role}_"))
            shutil.copy(member, directory / member.name)
    return directory


def ingest_here(root: Path, *paths: Path, caplog: pytest.LogCaptureFixture) -> tuple[IngestReport, str]:
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="lsst.obs.vista.ingest"),
        Butler.from_config(str(root), writeable=True) as butler,
    ):
        report = ProductIngester(butler, instrument="DECam", transfer="direct").run(paths)
    lines = [f"{r.levelname}: {r.getMessage()}" for r in caplog.records if r.name == "lsst.obs.vista.ingest"]
    return report, "\n".join(lines)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every trio of tests/data, ingested with the command line."""
    root = tmp_path_factory.mktemp("decam") / "repo"
    Butler.makeRepo(str(root))
    result = subprocess.run(
        [BIN / "butler", "ingest-instcal", root, DATA, "--transfer", "direct"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Ingested 24 files (24 datasets of 8 exposures)" in result.stderr
    return root


def test_every_trio_ingests_with_its_data_id_filter_and_pairing(repo):
    assert len(IMAGES) == 8
    with Butler.from_config(str(repo), collections=CHAIN) as butler:
        for image in IMAGES:
            header = header_of(image)
            data_id = data_id_of(image)
            for role, dataset_type in ROLES.items():
                (ref,) = butler.query_datasets(dataset_type, data_id=data_id)
                assert Path(butler.getURI(ref).ospath).name == image.name.replace("_ooi_", f"_{role}_")
            (record,) = butler.query_dimension_records("exposure", data_id=data_id)
            assert record.physical_filter == header["FILTER"]
            assert record.exposure_time == header["EXPTIME"]
            (detector,) = butler.query_dimension_records("detector", data_id=data_id)
            assert detector.full_name == header["DETPOS"].strip()
            (band,) = {r.band for r in butler.query_dimension_records("physical_filter", data_id=data_id)}
            assert band == header["FILTER"][0]


def test_visit_detector_region_contains_the_ccd_centre(repo):
    with Butler.from_config(str(repo)) as butler:
        for image in IMAGES:
            data_id = data_id_of(image)
            (region,) = butler.query_dimension_records(
                "visit_detector_region",
                instrument="DECam",
                visit=data_id["exposure"],
                detector=data_id["detector"],
            )
            header = header_of(image)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                centre = WCS(header).pixel_to_world((header["NAXIS1"] - 1) / 2, (header["NAXIS2"] - 1) / 2)
            point = UnitVector3d(LonLat.fromDegrees(centre.ra.deg, centre.dec.deg))
            assert region.region.contains(point), image.name


def test_fpack_trio_reads_back_decompressed(repo):
    (image,) = DATA.glob("fz_testcase8/*_ooi_*.fits.fz")
    with Butler.from_config(str(repo), collections=CHAIN) as butler:
        for role, dataset_type in ROLES.items():
            read = butler.get(dataset_type, data_id_of(image))
            with fits.open(image.with_name(image.name.replace("_ooi_", f"_{role}_"))) as hdus:
                np.testing.assert_array_equal(read.array, hdus[1].data)
        assert butler.get("cp_weight", data_id_of(image)).unit == u.adu**-2
        assert butler.get("cp_image", data_id_of(image)).unit == u.adu


def test_reingest_is_a_noop_that_says_so(repo, tmp_path, caplog):
    root = tmp_path / "repo"
    shutil.copytree(repo, root)
    report, log = ingest_here(root, DATA, caplog=caplog)
    assert report.ok and not report.ingested and len(report.skipped) == 24
    assert "Skipped 24 files already ingested" in log


def test_missing_member_is_named_and_orphans_are_reported(tmp_path, caplog):
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    without_mask, orphan = IMAGES[0], IMAGES[1]
    batch = stage(tmp_path / "batch", [without_mask], roles=("ooi", "oow"))
    stage(batch, [orphan], roles=("oow",))
    report, log = ingest_here(root, batch, caplog=caplog)
    image = batch / without_mask.name
    mask_name = without_mask.name.replace("_ooi_", "_ood_")
    (line,) = [line for line in log.splitlines() if line.startswith(f"WARNING: {image}: ")]
    assert "no cp_mask (looked for " in line and mask_name in line and line.endswith("ingested without it")
    weight = batch / orphan.name.replace("_ooi_", "_oow_")
    cause = f"not ingested: no cp_image in this batch to pair it with (looked for {orphan.name} and variants)"
    assert report.failed == {weight: cause}
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        assert len(butler.query_datasets("cp_image")) == 1
        assert len(butler.query_datasets("cp_weight")) == 1
        assert not butler.query_datasets("cp_mask", explain=False)


def test_member_of_another_exposure_is_rejected_and_the_rest_goes_in(tmp_path, caplog):
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    batch = stage(tmp_path / "batch", [IMAGES[0]])
    weight = batch / IMAGES[0].name.replace("_ooi_", "_oow_")
    with fits.open(weight, mode="update") as hdus:
        hdus[0].header["EXPNUM"] = 1
    report, log = ingest_here(root, batch, caplog=caplog)
    expnum = header_of(IMAGES[0])["EXPNUM"]
    assert report.failed == {
        weight: f"EXPNUM = 1 but {IMAGES[0].name} has EXPNUM = {expnum}: not the same exposure"
    }
    assert len(report.ingested) == 2


def test_ccd_whose_ccdnum_contradicts_its_extname_is_rejected(tmp_path, caplog):
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    batch = stage(tmp_path / "batch", [IMAGES[-1]])
    image = batch / IMAGES[-1].name
    with fits.open(image, mode="update") as hdus:
        hdus[1].header["CCDNUM"] = 1
    report, _ = ingest_here(root, batch, caplog=caplog)
    extname = header_of(IMAGES[-1])["EXTNAME"].strip()
    ccdnum = header_of(IMAGES[-1])["CCDNUM"]
    assert report.failed[image] == f"extension {extname} has CCDNUM = 1, not {ccdnum}"
    with Butler.from_config(str(root)) as butler:
        assert not butler.query_dimension_records("exposure", instrument="DECam", explain=False)


@pytest.fixture(scope="module")
def assembled(repo) -> dict[Path, tuple[VisitImage, dict]]:
    """Every trio assembled by DecamCpIsrTask with the instrument's config."""
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    task = DecamCpIsrTask(config=config)
    results = {}
    with Butler.from_config(str(repo), collections=CHAIN) as butler:
        for image in IMAGES:
            data_id = data_id_of(image)
            inputs = {
                "image": butler.get("cp_image", data_id),
                "weight": butler.get("cp_weight", data_id),
                "quality": butler.get("cp_mask", data_id),
            }
            results[image] = (task.run(**inputs).outputExposure, inputs)
    return results


def test_variance_is_the_inverse_weight_and_no_data_where_weight_is_zero(assembled):
    for image, (exposure, inputs) in assembled.items():
        weight = inputs["weight"].array
        positive = weight > 0
        np.testing.assert_allclose(exposure.variance.array[positive], 1.0 / weight[positive], rtol=1e-6)
        no_data = exposure.mask.get("NO_DATA")
        assert np.array_equal(no_data, ~positive), image.name
        assert np.all(exposure.variance.array[~positive] == exposure.metadata["NO_DATA_VARIANCE"])
        assert np.isfinite(exposure.variance.array).all()


def test_mask_planes_match_the_dq_codes_pixel_for_pixel(assembled):
    """Codes (CP >= 3.5) to planes, written out here independently of the policy."""
    seen_codes = set()
    for image, (exposure, inputs) in assembled.items():
        dq = inputs["quality"].array
        seen_codes |= set(np.unique(dq)) - {0}
        ring = (dq == 1) & binary_dilation(dq == 3)
        expected = {
            "BAD": ((dq == 1) & ~ring) | (dq == 6),
            "COSMIC_RAY": dq == 5,  # every file here is CP 4.8 or later, or has no code 5
            "TRANSIENT": dq == 7,
            "STREAK": dq == 8,
        }
        for plane, pixels in expected.items():
            assert np.array_equal(exposure.mask.get(plane), pixels), (image.name, plane)
        saturated = exposure.mask.get("SATURATED")
        assert saturated[(dq == 3) | (dq == 4) | ring].all(), image.name
        # Beyond the DQ codes, SATURATED only where the level rule applies.
        level = exposure.image.array >= min(inputs["image"].metadata[k] for k in ("SATURATA", "SATURATB"))
        assert not (saturated & ~((dq == 3) | (dq == 4) | ring | level)).any(), image.name
        assert np.array_equal(exposure.mask.get("NO_DATA")[dq == 2], np.ones(np.sum(dq == 2), dtype=bool))
    assert seen_codes == {1, 3, 4, 5}


def test_noise_ratio_is_within_seven_percent_for_every_trio(assembled):
    for image, (exposure, _) in assembled.items():
        metadata = exposure.metadata
        assert metadata["NOISE_RATIO"] == pytest.approx(1.0, abs=0.07), image.name
        # From background pixels only: the cutouts hold a saturated star and a galaxy.
        assert 1000 <= metadata["NOISE_RATIO_NPIX"] < np.count_nonzero(~exposure.mask.get("NO_DATA"))
        assert metadata["VARIANCE_RESCALE"] == 1.0


def test_too_few_background_pixels_give_no_ratio(repo, caplog):
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    config.noiseCheck.minPixels = 10**6
    image = next(p for p in IMAGES if "testcase6" in str(p))
    with Butler.from_config(str(repo), collections=CHAIN) as butler:
        inputs = {
            role: butler.get(name, data_id_of(image))
            for role, name in zip(("image", "weight"), ROLES.values(), strict=False)
        }
    with caplog.at_level(logging.WARNING):
        exposure = DecamCpIsrTask(config=config).run(**inputs, name=image.name).outputExposure
    assert exposure.metadata["NOISE_RATIO"] is None
    assert f"{image.name}: only" in caplog.text and "too few to check the variance" in caplog.text


@pytest.mark.parametrize("rescale", [False, True])
def test_halved_weight_map_is_flagged_and_rescale_repairs_it(repo, rescale, caplog):
    image = DATA / "testcase4" / "c4d_170316_062107_ooi_z_ls9.N2.fits"
    config = DecamCpIsrConfig()
    DecamCp().applyConfigOverrides("isr", config)
    config.noiseCheck.doRescale = rescale
    task = DecamCpIsrTask(config=config)
    with Butler.from_config(str(repo), collections=CHAIN) as butler:
        inputs = {
            role: butler.get(name, data_id_of(image))
            for role, name in zip(("image", "weight", "quality"), ROLES.values(), strict=True)
        }
    delivered = inputs["weight"].array.copy()
    inputs["weight"].array[...] *= np.float32(0.5)
    with caplog.at_level(logging.WARNING):
        exposure = task.run(**inputs, name=image.name).outputExposure
    ratio = exposure.metadata["NOISE_RATIO"]
    assert ratio == pytest.approx(np.sqrt(0.5), rel=0.05)
    assert f"{image.name}: background noise is {ratio:.3f} times" in caplog.text
    good = exposure.mask.array.sum(axis=-1) == 0
    remeasured = NoiseCheckTask(config=config.noiseCheck).run(
        exposure.image.array, exposure.variance.array, good, name="check"
    )
    positive = delivered > 0
    against_delivered = np.median(exposure.variance.array[positive] * delivered[positive])
    if rescale:
        assert exposure.metadata["VARIANCE_RESCALE"] == pytest.approx(ratio**2)
        assert remeasured.ratio == pytest.approx(1.0, abs=0.05)
        # The rescale undoes the damage: back to 1/weight of the delivered map.
        assert against_delivered == pytest.approx(1.0, abs=0.05)
    else:
        assert exposure.metadata["VARIANCE_RESCALE"] == 1.0
        assert remeasured.ratio == pytest.approx(ratio, rel=1e-6)
        assert against_delivered == pytest.approx(2.0, rel=1e-6)


def test_wcs_agrees_with_astropy_on_the_tpv_header_to_a_milliarcsecond(assembled):
    for image, (exposure, _) in assembled.items():
        header = header_of(image)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header)
        bbox = exposure.bbox
        assert (bbox.x.start, bbox.y.start) == (-int(header["LTV1"]), -int(header["LTV2"]))
        ny, nx = exposure.image.array.shape
        xs, ys = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
        ra, dec = wcs.all_pix2world(xs.ravel(), ys.ravel(), 0)
        ours = exposure.sky_projection.pixel_to_sky(x=xs.ravel() + bbox.x.start, y=ys.ravel() + bbox.y.start)
        # The same coordinate values: lsst-images calls its sky frame ICRS, the CP's
        # headers say FK5 J2000 for solutions made against ICRS catalogues (see
        # lsst.obs.vista.isr.wcs).
        truth = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
        separation = truth.separation(SkyCoord(ours).icrs).to_value(u.mas)
        assert separation.max() < 1.0, image.name


def test_observation_info_detector_psf_and_zero_point(assembled):
    for image, (exposure, _) in assembled.items():
        header = header_of(image)
        assert exposure.obs_info.exposure_id == header["EXPNUM"]
        assert exposure.obs_info.physical_filter == header["FILTER"]
        assert exposure.detector.id == header["CCDNUM"]
        assert exposure.band == header["FILTER"][0]
        assert exposure.psf.sigma * 2.3548 == pytest.approx(header["FWHM"], rel=1e-3)
        if "MAGZERO" in header:
            assert exposure.metadata["ZERO_POINT_AB"] == header["MAGZERO"]
            njy_per_adu = exposure.photometric_scaling(x=10.0, y=10.0)
            assert njy_per_adu == pytest.approx(10 ** (-0.4 * (header["MAGZERO"] - 31.4)))
        else:
            assert exposure.photometric_scaling is None


@pytest.mark.slow
def test_pipetask_runs_the_decam_pipeline_over_every_trio(repo, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(repo, root)
    result = subprocess.run(
        [
            BIN / "pipetask",
            "run",
            "-b",
            root,
            "-i",
            CHAIN,
            "-o",
            "u/test/decam",
            "--register-dataset-types",
            "-p",
            f"{REPO_ROOT / 'pipelines' / 'DECam' / 'ProcessCcd.yaml'}#isr",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Butler.from_config(str(root), collections="u/test/decam") as butler:
        refs = butler.query_datasets("post_isr_image")
        assert len(refs) == 8
        for ref in refs:
            exposure = butler.get(ref)
            assert isinstance(exposure, VisitImage)
            assert exposure.metadata["VARIANCE_MODEL"] == "weight map"
            assert exposure.metadata["NOISE_RATIO"] == pytest.approx(1.0, abs=0.07)


def test_ingest_images_script_sends_each_file_to_its_instrument(tmp_path):
    from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack

    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    batch = stage(tmp_path / "batch", IMAGES[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        write_pawprint_stack(batch, 0, SimulationConfig(size=64, detectors=(1,), seed=3, jitter=2.0))
    stray = batch.parent / "notes.fits"
    stray.write_text("not a product")
    result = subprocess.run(
        [BIN / "ingestImages.py", root, batch, stray, "--transfer", "direct"], capture_output=True, text=True
    )
    assert result.returncode == 1, "the stray file is an error"
    every_instrument = " or ".join(ingest_instruments())
    assert f"{stray}: file name matches no product of {every_instrument}" in result.stderr
    with Butler.from_config(str(root)) as butler:
        assert len(butler.query_datasets("cp_image", collections="DECam/defaults")) == 2
        assert len(butler.query_datasets("casu_stack", collections="VIRCAM/defaults")) == 1


def test_full_multi_ccd_trio_ingests_one_dataset_per_ccd(tmp_path, caplog):
    """A full CP product holds every CCD, fpack-compressed: built here from a
    real cutout trio by repeating its CCD under each of the 62 DETPOS/CCDNUM
    pairs."""
    names = {detector: d.name for detector, d in DecamCp.camera().detectors.items()}
    batch = tmp_path / "batch"
    batch.mkdir()
    source = DATA / "testcase4" / "c4d_170316_062107_ooi_z_ls9.N2.fits"
    for role in ROLES:
        member = source.with_name(source.name.replace("_ooi_", f"_{role}_"))
        with fits.open(member) as hdus:
            extensions = []
            for detector, name in names.items():
                hdu = fits.CompImageHDU(hdus[1].data, header=hdus[1].header.copy())
                hdu.header["EXTNAME"] = hdu.header["DETPOS"] = name
                hdu.header["CCDNUM"] = detector
                extensions.append(hdu)
            full = member.name.replace("_ls9.N2.fits", "_ls9.fits.fz")
            fits.HDUList([fits.PrimaryHDU(header=hdus[0].header), *extensions]).writeto(batch / full)
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    report, _ = ingest_here(root, batch, caplog=caplog)
    assert report.ok and report.n_datasets == 3 * 62
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        for dataset_type in ROLES.values():
            refs = butler.query_datasets(dataset_type)
            assert sorted(ref.dataId["detector"] for ref in refs) == sorted(names)
        regions = butler.query_dimension_records("visit_detector_region", instrument="DECam")
        assert len(regions) == 62
        written = batch / source.name.replace("_ls9.N2.fits", "_ls9.fits.fz")
        with fits.open(written) as hdus:
            read = butler.get("cp_image", detector=62, exposure=630780)
            np.testing.assert_array_equal(read.array, hdus[names[62]].data)


def test_butler_lists_ingest_instcal_with_its_options():
    result = subprocess.run(
        [BIN / "butler", "ingest-instcal", "--help"], capture_output=True, text=True, check=True
    )
    for text in ("--transfer", "--processes", "REPO", "PATH...", "ooi", "oow", "ood", "PRODTYPE"):
        assert text in result.stdout


@pytest.mark.parametrize("transfer", ["symlink", "relsymlink", "hardlink", "copy"])
def test_transfer_modes_put_the_trio_in_the_datastore(tmp_path, transfer):
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    batch = stage(tmp_path / "batch", [IMAGES[1]])
    with Butler.from_config(str(root), writeable=True) as butler:
        assert ProductIngester(butler, instrument="DECam", transfer=transfer).run([batch]).ok
    with Butler.from_config(str(root), collections=CHAIN) as butler:
        for role, dataset_type in ROLES.items():
            stored = Path(butler.getURI(dataset_type, data_id_of(IMAGES[1])).ospath)
            original = batch / IMAGES[1].name.replace("_ooi_", f"_{role}_")
            assert stored.is_relative_to(root)
            assert stored.is_symlink() == transfer.endswith("symlink")
            assert stored.samefile(original) == (transfer != "copy")
            np.testing.assert_array_equal(
                butler.get(dataset_type, data_id_of(IMAGES[1])).array, fits.getdata(original, 1)
            )


def test_another_file_with_ingested_data_ids_is_an_error_not_a_skip(tmp_path, caplog):
    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    first = stage(tmp_path / "first", [IMAGES[1]])
    assert ingest_here(root, first, caplog=caplog)[0].ok
    second = stage(tmp_path / "second", [IMAGES[1]])
    image = second / IMAGES[1].name
    with fits.open(image, mode="append") as hdus:
        hdus.append(fits.ImageHDU(np.zeros((4, 4), dtype=np.float32), name="REPROCESSED"))
    report, log = ingest_here(root, second, caplog=caplog)
    exposure = data_id_of(IMAGES[1])["exposure"]
    earlier = first / IMAGES[1].name
    sizes = f"{earlier.stat().st_size} bytes, this file {image.stat().st_size}"
    assert report.failed[image] == (
        f"cp_image of exposure {exposure} was ingested from {earlier}, whose content differs ({sizes}); "
        "--replace replaces what was ingested"
    )
    assert list(report.failed) == [image] and len(report.skipped) == 2, "the weight and mask are unchanged"
    again, log = ingest_here(root, first, caplog=caplog)
    assert again.ok and len(again.skipped) == 3
