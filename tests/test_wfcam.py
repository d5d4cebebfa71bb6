"""UKIRT/WFCAM as the third instrument: the translator on the real CASU header
(a WFCAM Science Archive cutout of a UKIDSS GCS K stack), the camera, ingest
of CASU's multi-extension files and of a single-HDU cutout into a real
repository, and a real ``pipetask run`` of pipelines/WFCAM/ProcessCcd.yaml#isr."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astro_metadata_translator import ObservationInfo
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from lsst.daf.butler import Butler

from commands import invoke
from lsst.obs.vista import Wfcam
from lsst.obs.vista.formatters import flat_metadata
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from lsst.obs.vista.sim._files import scaled_image_hdu
from lsst.obs.vista.sim.wfcam import read_wfcam_headers, write_wfcam_cutout, write_wfcam_stack
from lsst.obs.vista.translators.wfcam import WfcamTranslator

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
OUTPUT = "u/test/wfcam"
CONFIG = SimulationConfig(instrument="WFCAM", size=64, detectors=(1, 2), seed=7, jitter=2.0, filter_name="J")
REAL_STEM = "w20071011_01818_sf_st"
"""The real stack's CASU name (PROV0000 of its header)."""


def _real_cutout(path: Path) -> Path:
    """The real WSA cutout's two headers with synthetic sky pixels: SKYLEVEL
    and Gaussian noise of SKYNOISE, stored as int32 with the real BSCALE."""
    primary, image = read_wfcam_headers()
    rng = np.random.default_rng(21)
    values = image["SKYLEVEL"] + image["SKYNOISE"] * rng.standard_normal((image["NAXIS2"], image["NAXIS1"]))
    raw = np.round(values / image["BSCALE"]).astype(np.int32)
    fits.HDUList([fits.PrimaryHDU(header=primary), scaled_image_hdu(raw, image)]).writeto(path)
    return path


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """A synthetic CASU WFCAM stack of two cameras with its confidence map
    and catalogue, a synthetic VIRCAM stack beside it, a synthetic WSA
    cutout of another stack (one camera) and the real cutout's headers."""
    data = tmp_path_factory.mktemp("wfcam_data")
    cutouts = tmp_path_factory.mktemp("wfcam_cutouts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        stack = write_wfcam_stack(data, 0, CONFIG)
        vircam = write_pawprint_stack(data, 0, SimulationConfig(size=64, detectors=(1,), seed=7, jitter=2.0))
        other = write_wfcam_stack(tmp_path_factory.mktemp("wfcam_other"), 3, CONFIG)
    synthetic_cutout = write_wfcam_cutout(other.stack, 2, cutouts / f"{other.stem}.fit", size=40)
    real_cutout = _real_cutout(cutouts / f"{REAL_STEM}.fit")
    return {"stack": stack, "vircam": vircam, "cutouts": (synthetic_cutout, real_cutout), "data": data}


@pytest.fixture(scope="module")
def repo(products, tmp_path_factory):
    """Products ingested (ingestImages.py for the mixed directory, butler
    ingest-wfcam for the cutouts) and run through isr by pipetask."""
    root = tmp_path_factory.mktemp("wfcam_repo")

    def run(*command):
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    invoke("butler", "create", root)
    run(BIN / "ingestImages.py", root, products["data"])
    ingest = run(BIN / "butler", "ingest-wfcam", root, *products["cutouts"])
    invoke(
        "pipetask", "run", "-b", root, "-i", "WFCAM/defaults", "-o", OUTPUT, "--register-dataset-types",
        "-p", f"{ROOT / 'pipelines' / 'WFCAM' / 'ProcessCcd.yaml'}#isr",
    )  # fmt: skip
    return root, ingest.stderr


def test_translator_reads_the_real_cutout_header():
    primary, image = read_wfcam_headers()
    info = ObservationInfo(flat_metadata([primary, image]), translator_class=WfcamTranslator, pedantic=True)
    assert (info.instrument, info.telescope) == ("WFCAM", "UKIRT")
    assert info.physical_filter == "WFCAM-K"
    assert (info.detector_num, info.detector_name, info.detector_serial) == (4, "CAM4", "RSC:H2:41")
    assert info.ext_product == "pawprint_stack"
    # Two interleaved frames (PROV0001-2) of four 10 s microsteps.
    assert info.ext_ncombine == 2
    assert info.ext_flux_exposure_time == 10.0
    assert info.exposure_time.to_value(u.s) == 80.0
    assert info.exposure_id == 20071011_47525_1  # 13:12:05 UT is second 47525
    assert info.observation_id == "w20071011_01818_st"
    assert info.boresight_airmass == pytest.approx(1.067)
    # Alt/az from HABASE agrees with the header's airmass.
    assert float(info.altaz_begin.secz) == pytest.approx(1.067, abs=0.002)
    # RABASE/DECBASE: the base position, within the cutout's field.
    assert info.tracking_radec.ra.deg == pytest.approx(5.5935528 * 15, abs=1e-3)
    assert info.science_program == "U/UKIDSS/GCS21"
    # NUSTEP = 4: a 2x2 interleave, pixels of half the detector's pitch.
    assert info.ext_subsampling == 2


def test_camera_agrees_with_the_real_header():
    camera = Wfcam.camera()
    assert sorted(camera.detectors) == [1, 2, 3, 4]
    assert camera.detector_shape == (2048, 2048)
    assert camera.plate_scale == pytest.approx(0.4)
    assert set(camera.filters_by_header_name) == {"Z", "Y", "J", "H", "K", "H2", "Br"}
    _, image = read_wfcam_headers()
    # An interleaved stack: CD at half the native pixel.
    assert math.hypot(image["CD1_1"], image["CD2_1"]) * 3600 == pytest.approx(
        camera.plate_scale / 2, rel=0.01
    )
    # Camera 4 is North-West (-x, +y) of the optical axis, which its CRPIX
    # places at larger x and smaller y than the array.
    camera4 = camera.detectors[4]
    assert camera4.focal_plane_x < 0 < camera4.focal_plane_y
    assert image["CRPIX1"] / 2 > 1024 and image["CRPIX2"] / 2 < 1024
    for detector in camera.detectors.values():
        assert 4.0 < detector.gain < 6.0 and detector.saturation > 20000


def test_ingest_finds_each_camera_by_camnum(repo, products):
    root, _ = repo
    with Butler.from_config(str(root)) as butler:
        stacks = butler.query_datasets("casu_stack", collections="WFCAM/defaults")
        by_exposure = {}
        for ref in stacks:
            by_exposure.setdefault(ref.dataId["exposure"], set()).add(ref.dataId["detector"])
        # The two-camera stack, the synthetic cutout (camera 2) and the real one (camera 4).
        assert sorted(by_exposure.values(), key=sorted) == [{1, 2}, {2}, {4}]
        for kind in ("casu_confidence", "casu_catalog"):
            assert len(butler.query_datasets(kind, collections="WFCAM/defaults")) == 2
        # ingestImages.py gave the VIRCAM stack next to it to VIRCAM.
        assert len(butler.query_datasets("casu_stack", collections="VIRCAM/defaults")) == 1
        (real,) = butler.query_datasets(
            "casu_stack", collections="WFCAM/defaults", where="instrument = 'WFCAM' AND detector = 4"
        )
        image = butler.get(real)
        with fits.open(products["cutouts"][1]) as hdus:
            np.testing.assert_allclose(image.array, hdus[1].data, rtol=1e-6)
        (record,) = butler.query_dimension_records(
            "exposure", instrument="WFCAM", exposure=real.dataId["exposure"]
        )
        assert record.physical_filter == "WFCAM-K"
        assert record.obs_id == "w20071011_01818_st"


def test_cutout_without_its_confidence_map_is_named(repo):
    _, log = repo
    assert f"{REAL_STEM}_conf.fit" in log


def test_isr_variance_noise_and_zero_point(repo):
    root, _ = repo
    primary, image = read_wfcam_headers()
    with Butler.from_config(str(root), collections=OUTPUT) as butler:
        config = butler.get("isr_config")
        assert config.fallbackVariance.target.__name__ == "MetadataVarianceTask"
        assert config.vegaToAb["K"] == pytest.approx(1.900)
        with_map = {
            ref.dataId["exposure"] for ref in butler.query_datasets("casu_confidence", "WFCAM/defaults")
        }
        refs = butler.query_datasets("post_isr_image")
        assert len(refs) == 4
        for ref in refs:
            exposure = butler.get(ref)
            metadata = exposure.metadata
            assert exposure.obs_info.instrument == "WFCAM"
            assert exposure.detector.name == f"CAM{ref.dataId['detector']}"
            if ref.dataId["exposure"] in with_map:
                assert metadata["VARIANCE_MODEL"] == "confidence map (CASU)"
            else:
                assert metadata["VARIANCE_MODEL"] == "header metadata"
            # The synthetic stack's noise (correlated by the resampling, as
            # CASU's) against the confidence-map model, and the real cutout's
            # SKYNOISE against the header model; the 40-pixel synthetic
            # cutout is too small for the check.
            if ref.dataId["exposure"] in with_map or ref.dataId["detector"] == 4:
                assert abs(metadata["NOISE_RATIO"] - 1) < 0.1, (ref.dataId, metadata["NOISE_RATIO"])
        real = butler.get(next(ref for ref in refs if ref.dataId["detector"] == 4))
    airmass = 0.5 * (primary["AMSTART"] + primary["AMEND"])
    expected = image["MAGZPT"] + 2.5 * math.log10(primary["EXP_TIME"]) - image["EXTINCT"] * (airmass - 1)
    assert real.metadata["ZERO_POINT_VEGA"] == pytest.approx(expected, abs=1e-6)
    assert real.metadata["ZERO_POINT_AB"] == pytest.approx(expected + 1.900, abs=1e-6)
    # Its detector has pixels of half the pitch (a 2x2 interleave).
    centre = real.detector.to_focal_plane.apply_forward(x=150.0, y=150.0)
    step = real.detector.to_focal_plane.apply_forward(x=151.0, y=150.0)
    assert step.x - centre.x == pytest.approx(Wfcam.camera().pixel_size / 2)
    # The real ZPN WCS (0.2"/px) is the exposure's.
    ra, dec = WCS(image).pixel_to_world_values(149.0, 149.0)
    sky = real.sky_projection.pixel_to_sky(x=np.array([149.0]), y=np.array([149.0]))
    assert sky.ra.deg[0] == pytest.approx(ra, abs=1e-6)
    assert sky.dec.deg[0] == pytest.approx(dec, abs=1e-6)
