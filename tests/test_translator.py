"""VircamTranslator on the real CASU headers: values checked against the cards."""

import re
import subprocess
import sys

import astropy.units as u
import pytest
from astro_metadata_translator import ObservationInfo
from astropy.io import fits
from astropy.time import Time

import lsst.obs.vista  # noqa: F401 - registers the translator
from lsst.obs.vista.casu_headers import HEADER_DIR, read_header_dump

ALL_DUMPS = sorted(path.name.removesuffix(".hdr.txt") for path in HEADER_DIR.glob("*.hdr.txt"))


def merged(primary: str, extension: str) -> fits.Header:
    """Primary header updated by an extension header, as ingest reads a file."""
    header = read_header_dump(primary)
    header.update(read_header_dump(extension))
    return header


def test_every_dump_is_present():
    assert len(ALL_DUMPS) == 9


@pytest.mark.parametrize("name", ALL_DUMPS)
def test_every_header_translates_to_its_cards(name):
    header = read_header_dump(name)
    info = ObservationInfo(header, filename=f"{name}.fit")
    assert info.instrument == "VIRCAM"
    assert info.telescope == "VISTA"
    assert info.datetime_begin == Time(header["DATE-OBS"], scale="utc")
    assert abs((info.datetime_begin - Time(header["MJD-OBS"], format="mjd", scale="utc")).to_value(u.s)) < 1
    dit_ndit = header["ESO DET DIT"] * header["ESO DET NDIT"]
    n_pawprints = sum(1 for key in header if re.fullmatch(r"PROV0*[1-9]\d*", key))
    combined = {
        "exposure": 1,
        "pawprint_stack": header.get("NICOMB", 1),
        "tile": header.get("NJITTER", 1) * n_pawprints,
    }[info.ext_product]
    assert info.exposure_time.to_value(u.s) == pytest.approx(dit_ndit * combined)
    assert info.ext_flux_exposure_time == header["EXPTIME"]
    assert info.datetime_end == info.datetime_begin + dit_ndit * combined * u.s
    if "ESO INS FILT1 NAME" in header:
        assert info.physical_filter == "VIRCAM-" + header["ESO INS FILT1 NAME"].strip()
    if "ESO DET CHIP NO" in header:
        assert info.detector_num == header["ESO DET CHIP NO"]
        assert info.detector_unique_name == f"DET1.CHIP{header['ESO DET CHIP NO']}"
        assert info.detector_serial == header["ESO DET CHIP ID"]
        assert info.detector_exposure_id == info.exposure_id * 100 + info.detector_num
    if "RA" in header:
        # A tile's pointing is its centre, the WCS reference point.
        is_tile_image = info.ext_product == "tile" and "CRVAL1" in header
        ra, dec = ("CRVAL1", "CRVAL2") if is_tile_image else ("RA", "DEC")
        assert info.tracking_radec.ra.deg == pytest.approx(header[ra], abs=1e-9)
        assert info.tracking_radec.dec.deg == pytest.approx(header[dec], abs=1e-9)
        assert info.boresight_rotation_angle.deg == pytest.approx(header["ESO TEL POSANG"] % 360)
        assert info.boresight_airmass == pytest.approx(
            0.5 * (header["ESO TEL AIRM START"] + header["ESO TEL AIRM END"])
        )
        # ESO azimuth runs from the South; ObservationInfo's from the North.
        assert info.altaz_begin.az.deg == pytest.approx((header["ESO TEL AZ"] + 180) % 360)
        assert info.altaz_begin.alt.deg == pytest.approx(header["ESO TEL ALT"])
        assert info.science_program == header["ESO OBS PROG ID"].strip()
        assert info.observation_type == "science"


def test_pawprint_stack_cards():
    info = ObservationInfo(merged("4_cell7", "4_cell8"), pedantic=True)
    assert info.ext_product == "pawprint_stack"
    assert info.ext_ncombine == 9
    # 9 jittered exposures of DIT=50 s, NDIT=1; EXPTIME (50 s) is per DIT.
    assert info.exposure_time == 450 * u.s
    assert info.ext_flux_exposure_time == 50.0
    assert info.physical_filter == "VIRCAM-Z"
    assert info.detector_num == 1
    assert info.exposure_id == 20120925_29126_1
    assert info.detector_exposure_id == 20120925_29126_1_01
    assert info.visit_id == info.exposure_id
    assert info.observation_id == "VCAM.2012-09-25T08:05:26.567_st"
    # 08:05 UT belongs to the night that started on the 24th (v20120924_...).
    assert info.observing_day == 20120924
    assert info.exposure_group == "20120924_OB570190_519"
    assert info.object == "No name"
    assert info.temperature.to_value(u.deg_C) == pytest.approx(13.11)
    assert info.location.lat.deg == pytest.approx(-24.6157)
    assert info.location.lon.deg == pytest.approx(-70.3976)
    assert not info.has_simulated_content


def test_single_exposure_differs_from_its_stack_only_in_product_digit():
    stack = ObservationInfo(merged("4_cell7", "4_cell8"))
    exposure = ObservationInfo(merged("4_cell10", "4_cell11"))
    assert exposure.ext_product == "exposure"
    assert exposure.ext_ncombine == 1
    assert exposure.exposure_time == 50 * u.s
    assert exposure.datetime_begin == stack.datetime_begin
    assert exposure.exposure_id == stack.exposure_id - 1
    assert exposure.observation_id == "VCAM.2012-09-25T08:05:26.567"


def test_ndit_is_part_of_exposure_time():
    # Ks pawprint: DIT=10 s, NDIT=6, EXPTIME=10 "corrected to ndit = 1".
    info = ObservationInfo(read_header_dump("2_cell18"))
    assert info.physical_filter == "VIRCAM-Ks"
    assert info.exposure_time == 60 * u.s
    assert info.ext_flux_exposure_time == 10.0


def test_tile_is_not_a_detector_and_counts_its_pawprints():
    tile = ObservationInfo(read_header_dump("4_cell19"), filename="v20171027_00133_st_tl.fit")
    assert tile.ext_product == "tile"
    assert tile.ext_ncombine == 6
    assert tile.detector_num is None
    # 6 pawprints x 8 jitters x DIT 30 s x NDIT 2.
    assert tile.exposure_time == 2880 * u.s
    stack = ObservationInfo(read_header_dump("2_cell91"))
    assert stack.ext_product == "pawprint_stack"
    assert stack.ext_ncombine == 8
    assert stack.exposure_time == 480 * u.s
    # Same DATE-OBS, different products, different IDs.
    assert tile.datetime_begin == stack.datetime_begin
    assert tile.exposure_id == stack.exposure_id + 1
    catalogue = ObservationInfo(read_header_dump("2_cell111"))
    assert catalogue.ext_product == "tile"
    assert catalogue.exposure_id == tile.exposure_id


def test_product_from_file_name_when_header_is_silent():
    primary = read_header_dump("4_cell7")
    assert ObservationInfo(primary, filename="v20120924_00582_st.fit").ext_product == "pawprint_stack"
    assert ObservationInfo(primary, filename="v20120924_00582_st_tl.fit").ext_product == "tile"
    assert ObservationInfo(primary, filename="v20120924_00582.fit").ext_product == "exposure"


def test_astrometadata_command_uses_the_plugin(tmp_path):
    path = tmp_path / "v20120924_00582_st.fit"
    fits.HDUList(
        [
            fits.PrimaryHDU(header=read_header_dump("4_cell7")),
            fits.ImageHDU(header=read_header_dump("4_cell8")),
        ]
    ).writeto(path, output_verify="silentfix")
    bindir = __import__("pathlib").Path(sys.executable).parent
    result = subprocess.run(
        [bindir / "astrometadata", "-p", "obs_vista", "translate", "-m", "verbose", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    output = result.stdout + result.stderr
    assert "VIRCAM-Z" in output
    assert "20120925291261" in output
