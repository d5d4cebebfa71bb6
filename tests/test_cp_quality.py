"""DECam CP data-quality masks decoded into planes, on the real ood files."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import binary_dilation

from lsst.obs.vista.cp_quality import CpQualityPolicy, parse_cp_version

DATA = Path(__file__).parent / "data" / "decam_cp"
POLICY = CpQualityPolicy.read()


def read_dq(pattern):
    (path,) = DATA.glob(pattern)
    with fits.open(path) as hdus:
        return hdus[1].data.astype(np.int64), hdus[0].header["PLVER"]


@pytest.mark.parametrize(
    "plver, expected",
    [("V3.9", (3, 9)), ("V4.8.2a", (4, 8, 2)), ("DES 5.0beta", (5, 0)), ("5.2.2LS", (5, 2, 2))],
)
def test_cp_versions(plver, expected):
    assert parse_cp_version(plver) == expected


def test_unparseable_version_is_an_error():
    with pytest.raises(ValueError, match="PLVER"):
        parse_cp_version("unknown")


def test_cosmic_rays_from_codes():
    dq, plver = read_dq("testcase4/*_ood_*")
    assert plver.strip() == "V4.8.2"
    planes = POLICY.decode(dq, plver)
    assert set(planes) == {"COSMIC_RAY"}
    assert planes["COSMIC_RAY"].sum() == 177 == (dq == 5).sum()
    # The same mask under a CP version that predates trustworthy CR codes.
    assert POLICY.decode(dq, "V4.1") == {}


def test_saturated_star_with_ring_and_bleed():
    dq, plver = read_dq("testcase6/c4d_150110_053718_ood_*")
    planes = POLICY.decode(dq, plver)
    codes = set(np.unique(dq)) - {0}
    assert codes <= {1, 3, 4}
    ring = (dq == 1) & binary_dilation(dq == 3)
    np.testing.assert_array_equal(planes.get("BAD", np.zeros_like(ring)), (dq == 1) & ~ring)
    np.testing.assert_array_equal(planes["SATURATED"], (dq == 3) | (dq == 4) | ring)


def test_every_testcase6_pixel_lands_in_exactly_the_planes_of_its_code():
    for path in sorted(DATA.glob("testcase6/*_ood_*")):
        with fits.open(path) as hdus:
            dq = hdus[1].data.astype(np.int64)
            planes = POLICY.decode(dq, hdus[0].header["PLVER"])
        flagged = np.zeros(dq.shape, dtype=bool)
        for selected in planes.values():
            flagged |= selected
        np.testing.assert_array_equal(flagged, dq != 0, err_msg=path.name)


def test_old_cp_all_zero_mask_sets_nothing():
    dq, plver = read_dq("fz_testcase8/*_ood_*")
    assert plver.strip() == "V3.9"
    assert not dq.any()
    assert POLICY.decode(dq, plver) == {}


def test_bit_flags_before_codes():
    dq = np.array([[0, 1, 2, 3], [16, 64, 128, 4]])
    planes = POLICY.decode(dq, "V3.4")
    assert planes["BAD"].tolist() == [[False, True, False, True], [False] * 4]
    assert planes["SATURATED"].tolist() == [[False, False, True, True], [False, True, False, False]]
    assert planes["COSMIC_RAY"].tolist() == [[False] * 4, [True, False, False, False]]
    assert planes["TRANSIENT"].tolist() == [[False] * 4, [False, False, True, False]]
    assert planes["INTERPOLATED"].tolist() == [[False] * 4, [False, False, False, True]]
    # The same numbers read as codes mean something else entirely.
    coded = POLICY.decode(dq, "V3.5.0")
    assert coded["NO_DATA"].tolist() == [[False, False, True, False], [False] * 4]
    assert "INTERPOLATED" not in coded
