"""The VIRCAM instrument: camera description, registration in a real SQLite repo,
config overrides."""

from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.images import Box

from commands import invoke
from lsst.obs.vista import Vircam
from lsst.obs.vista._resources import CONFIG_DIR

EXPECTED_BANDS = {
    "VIRCAM-Z": "z",
    "VIRCAM-Y": "y",
    "VIRCAM-J": "J",
    "VIRCAM-H": "H",
    "VIRCAM-Ks": "Ks",
    "VIRCAM-NB118": "NB118",
    "VIRCAM-NB980": "NB980",
    "VIRCAM-NB990": "NB990",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    invoke("butler", "create", root)
    for _ in range(2):  # registering twice must be harmless
        invoke("butler", "register-instrument", root, "lsst.obs.vista.Vircam")
    return root


def test_registry_holds_16_detectors_and_8_filters(repo):
    butler = Butler.from_config(str(repo))
    detectors = list(butler.registry.queryDimensionRecords("detector", instrument="VIRCAM"))
    assert sorted(d.id for d in detectors) == list(range(1, 17))
    assert {d.id: d.full_name for d in detectors} == {n: f"DET1.CHIP{n}" for n in range(1, 17)}
    filters = butler.registry.queryDimensionRecords("physical_filter", instrument="VIRCAM")
    assert {f.name: f.band for f in filters} == EXPECTED_BANDS
    (instrument,) = butler.registry.queryDimensionRecords("instrument", instrument="VIRCAM")
    assert instrument.class_name == "lsst.obs.vista.instrument.Vircam"
    assert instrument.detector_max == 17


def test_camera_geometry_matches_headers():
    camera = Vircam.camera()
    assert camera.plate_scale == pytest.approx(0.339)
    assert camera.detector_shape == (2048, 2048)
    assert len(camera.detectors) == 16
    # In real stacks chip 1 (4_cell8) and chip 3 (2_cell91) share CRPIX2 and
    # their CRPIX1 differ by two detector pitches (5417.1 vs -430.1 px).
    chip1, chip3 = camera.detectors[1], camera.detectors[3]
    assert chip1.focal_plane_y == chip3.focal_plane_y
    pitch_pixels = (chip3.focal_plane_x - chip1.focal_plane_x) / camera.pixel_size
    assert pitch_pixels == pytest.approx(5417.118 - (-430.0924), rel=0.01)
    assert chip1.serial == "ESO-Virgo35"
    assert chip3.serial == "ESO-Virgo23"
    for detector in camera.detectors.values():
        assert 3.0 < detector.gain < 6.0
        assert 10.0 < detector.read_noise < 40.0
        assert detector.saturation > 10000


def test_detector_from_camera_has_real_geometry():
    camera = Vircam.camera()
    bbox = Box.factory[0:2155, 0:2091]  # a jittered stack is larger than the chip
    detector = camera.make_detector(5, bbox=bbox)
    assert detector.id == 5
    assert detector.name == "DET1.CHIP5"
    assert detector.bbox == bbox
    (amplifier,) = detector.amplifiers
    assert amplifier.nominal_calibrations.gain == camera.detectors[5].gain
    # The stack's centre pixel lands on the detector's focal-plane centre,
    # and one pixel is one pixel pitch away.
    to_focal_plane = detector.to_focal_plane
    centre = to_focal_plane.apply_forward(x=1045.0, y=1077.0)
    step = to_focal_plane.apply_forward(x=1046.0, y=1077.0)
    assert centre.x == pytest.approx(camera.detectors[5].focal_plane_x)
    assert centre.y == pytest.approx(camera.detectors[5].focal_plane_y)
    assert step.x - centre.x == pytest.approx(camera.pixel_size)


def test_config_overrides_found_without_eups():
    paths = Vircam().configPaths
    assert paths[0] == str(CONFIG_DIR)
    assert Path(paths[0]).is_dir()


def test_decam_camera_agrees_with_cp_headers():
    from astropy.io import fits

    from lsst.obs.vista import DecamCp

    camera = DecamCp.camera()
    assert sorted(camera.detectors) == list(range(1, 63))
    data = Path(__file__).parent / "data" / "decam_cp"
    images = sorted(data.glob("*/*_ooi_*"))
    assert len(images) == 8
    for path in images:
        header = fits.getheader(path, 1)
        detector = camera.detectors[header["CCDNUM"]]
        assert detector.name == header["DETPOS"].strip()
        assert 3.0 < detector.gain < 5.0
        # The nominal gain is close to the CP per-amplifier values.
        assert detector.gain == pytest.approx(0.5 * (header["GAINA"] + header["GAINB"]), rel=0.1)
        physical_filter = fits.getheader(path, 0)["FILTER"].strip()
        assert physical_filter in camera.filters


def test_decam_registers_62_ccds(tmp_path):
    invoke("butler", "create", tmp_path)
    invoke("butler", "register-instrument", tmp_path, "lsst.obs.vista.DecamCp")
    butler = Butler.from_config(str(tmp_path))
    detectors = {
        d.id: d.full_name for d in butler.registry.queryDimensionRecords("detector", instrument="DECam")
    }
    assert len(detectors) == 62
    assert detectors[1] == "S29" and detectors[46] == "N15" and detectors[62] == "N31"
    bands = {
        f.name: f.band for f in butler.registry.queryDimensionRecords("physical_filter", instrument="DECam")
    }
    assert bands["z DECam SDSS c0004 9260.0 1520.0"] == "z"
    assert bands["Y DECam c0005 10095.0 1130.0"] == "y"
