"""Skymaps: the rings geometry of the shipped lsst_cells_v1 and hsc_rings_v1
(tract IDs, tract WCS, pixel boxes, patch grids, hash) checked against the
rules of issue 19 for positions all over the sky, and ``butler
register-skymap`` into a plain ``butler create`` repository with a
test-scale rings skymap."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler
from lsst.images import XY
from lsst.sphgeom import LonLat, UnitVector3d

from lsst.obs.vista.skymap import (
    SKYMAP_DATASET_TYPE,
    SKYMAP_RUN,
    RingsSkyMap,
    SkyMapRegistrationError,
    load_register_config,
    load_skymap,
    make_skymap,
    register_skymap,
)

ROOT = Path(__file__).parent.parent
CONFIGS = ROOT / "config" / "skymap"
SMALL = Path(__file__).parent / "data" / "skymap" / "small_rings.py"
BIN = Path(sys.executable).parent


def skymap_of(path: Path, **overrides: str) -> RingsSkyMap:
    return make_skymap(load_register_config(path, overrides).skyMap.active)


LSST = skymap_of(CONFIGS / "lsst_cells_v1.py")
HSC = skymap_of(CONFIGS / "hsc_rings_v1.py")
SKYMAPS = {"lsst_cells_v1": LSST, "hsc_rings_v1": HSC}

RING = math.degrees(math.pi / 121)
"""Ring height of both shipped skymaps, degrees."""

positions = st.tuples(
    st.floats(0.0, 360.0, exclude_max=True),
    # Uniform on the sphere, and the poles themselves.
    st.floats(-1.0, 1.0).map(lambda z: math.degrees(math.asin(z))),
)


def ring_edge(i: int) -> float:
    """Southern edge of ring i, degrees (the issue's -π/2 + (i + 0.5) r)."""
    return math.degrees(-math.pi / 2 + (i + 0.5) * math.pi / 121)


# --- tract IDs ----------------------------------------------------------------


def test_tract_numbering() -> None:
    """Caps first and last; each ring's count from its edge nearest the
    equator; each ring tract centred at raStart + 360 j/n on the ring's
    middle declination."""
    for skymap in SKYMAPS.values():
        assert len(skymap) == 18938
        assert skymap.tract_center(0)[1] == -90.0
        assert skymap.tract_center(len(skymap) - 1)[1] == 90.0
        tract_id = 1
        for i, count in enumerate(skymap.ring_tract_counts):
            edges = (ring_edge(i), ring_edge(i + 1))
            nearest = math.radians(min(abs(e) for e in edges))
            assert count == int(2 * math.pi * math.cos(nearest) / (math.pi / 121)) + 1
            for j in (0, count // 2, count - 1):
                ra, dec = skymap.tract_center(tract_id + j)
                assert ra == pytest.approx((360.0 * j / count) % 360.0, abs=1e-9)
                assert dec == pytest.approx(-90.0 + (i + 1) * RING, abs=1e-9)
            tract_id += count
        assert tract_id == len(skymap) - 1


def test_known_tracts() -> None:
    """COSMOS is hsc_rings_v1 tract 9813 (HSC SSP), 9x9 patches of 4000
    pixels; lsst_cells_v1 has 10x10 patches of 3000 pixels, 3300 with the
    border."""
    tract = HSC.find_tract(150.1, 2.2)
    assert tract.id == 9813
    assert tract.num_patches == (9, 9)
    assert tract.bbox.x.size == tract.bbox.y.size == 36000
    tract = LSST[9813]
    assert tract.num_patches == (10, 10)
    # Cells outer boxes are not clipped: the first one starts a cell before the tract.
    assert tract.patch(0).outer_bbox.x.start == -150
    assert tract.patch(0).outer_bbox.shape.x == tract.patch(0).outer_bbox.shape.y == 3300


@settings(max_examples=150, deadline=None)
@given(position=positions, name=st.sampled_from(sorted(SKYMAPS)))
@example(position=(0.0, -90.0), name="lsst_cells_v1")
@example(position=(123.0, 90.0), name="hsc_rings_v1")
@example(position=(359.99999999, 0.3), name="lsst_cells_v1")
@example(position=(0.0, 0.0), name="hsc_rings_v1")
@example(position=(180.0, -90.0 + 0.5 * RING - 1e-9), name="lsst_cells_v1")
@example(position=(180.0, -90.0 + 0.5 * RING + 1e-9), name="lsst_cells_v1")
@example(position=(45.0, 90.0 - 0.5 * RING + 1e-9), name="hsc_rings_v1")
@example(position=(359.9, -89.0), name="hsc_rings_v1")
def test_position_lies_in_its_tract_and_patch(position: tuple[float, float], name: str) -> None:
    """A position's tract's WCS maps it into the tract's pixel box and into
    the inner box of the patch found for it."""
    ra, dec = position
    skymap = SKYMAPS[name]
    tract = skymap.find_tract(ra, dec)
    assert tract.contains(ra, dec), (tract, ra, dec)
    x, y = tract.sky_to_pixel(ra, dec)
    patch = tract.find_patch(ra, dec)
    pixel_x, pixel_y = math.floor(x[0] + 0.5), math.floor(y[0] + 0.5)
    assert patch.inner_bbox.contains(x=pixel_x, y=pixel_y)


@settings(max_examples=100, deadline=None)
@given(position=positions, name=st.sampled_from(sorted(SKYMAPS)))
def test_ring_and_tract_rules(position: tuple[float, float], name: str) -> None:
    """The ring is ⌊(dec - (r/2 - 90°))/r⌋ (caps outside), the tract within
    the ring the nearest centre in RA, and RA wraps at 0."""
    ra, dec = position
    skymap = SKYMAPS[name]
    tract_id = skymap.find_tract_id(ra, dec)
    ring = math.floor((dec - (RING / 2 - 90.0)) / RING)
    if ring < 0:
        assert tract_id == 0
        return
    if ring >= 120:
        assert tract_id == len(skymap) - 1
        return
    assert skymap.ring_of_tract(tract_id)[0] == ring
    count = skymap.ring_tract_counts[ring]
    centre_ra, _ = skymap.tract_center(tract_id)
    offset = (ra - centre_ra + 180.0) % 360.0 - 180.0
    assert abs(offset) <= 180.0 / count + 1e-9
    assert skymap.find_tract_id(ra + 360.0, dec) == tract_id
    assert skymap.find_tract_id(ra - 360.0, dec) == tract_id


@pytest.mark.parametrize("ring", [0, 1, 59, 60, 61, 119])
def test_ring_edges(ring: int) -> None:
    """Just below a ring's southern edge is the ring below (or the south
    cap), just above it the ring itself."""
    edge = ring_edge(ring)
    below = LSST.find_tract_id(33.0, edge - 1e-7)
    above = LSST.find_tract_id(33.0, edge + 1e-7)
    assert LSST.ring_of_tract(above)[0] == ring
    assert below == 0 if ring == 0 else LSST.ring_of_tract(below)[0] == ring - 1
    top = ring_edge(120)
    assert LSST.find_tract_id(33.0, top + 1e-7) == len(LSST) - 1
    assert LSST.ring_of_tract(LSST.find_tract_id(33.0, top - 1e-7))[0] == 119


def test_ra_wrap_is_tract_zero_of_the_ring() -> None:
    """Just west of RA 0 is still the ring's first tract (centred on 0)."""
    for dec in (-60.0, 0.3, 45.0):
        first = LSST.find_tract_id(0.0, dec)
        assert LSST.find_tract_id(359.999999, dec) == first
        assert LSST.tract_center(first)[0] == 0.0


# --- tract WCS and pixel boxes --------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(tract_id=st.integers(0, 18937), name=st.sampled_from(sorted(SKYMAPS)))
@example(tract_id=0, name="lsst_cells_v1")
@example(tract_id=18937, name="hsc_rings_v1")
def test_tract_wcs_and_box(tract_id: int, name: str) -> None:
    """The WCS is TAN on the tract centre with CD = [[-s, 0], [0, s]]; the
    centre maps to the box centre within a pixel; the box holds the N, E,
    S and W points r/2 + overlap away, in whole patches, with less than a
    patch of growth; the patches tile it."""
    skymap = SKYMAPS[name]
    config = skymap.config
    tract = skymap[tract_id]
    wcs = tract.wcs
    scale = config.pixelScale / 3600.0
    assert list(wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    np.testing.assert_array_equal(wcs.wcs.cd, [[-scale, 0.0], [0.0, scale]])
    ra, dec = skymap.tract_center(tract_id)
    x, y = tract.sky_to_pixel(ra, dec)
    width, height = tract.bbox.x.size, tract.bbox.y.size
    assert abs(x[0] - (width - 1) / 2) <= 1.0 and abs(y[0] - (height - 1) / 2) <= 1.0
    half = math.degrees(math.tan(math.radians(RING / 2 + config.tractOverlap))) / scale
    # Box without growth: whole pixels holding x ± half.
    ungrown = math.floor(half + 0.5) - math.floor(-half + 0.5) + 1
    inner_x, inner_y = config.tractBuilder.active.patch_inner_dimensions()
    assert width % inner_x == 0 and 0 <= width - ungrown < inner_x
    assert height % inner_y == 0 and 0 <= height - ungrown < inner_y
    # The odd pixel of the growth on the high side.
    growth = width - ungrown
    assert x[0] == pytest.approx(growth // 2 + math.floor(half + 0.5), abs=1e-6)
    # Inner boxes tile the tract: the areas add up and none overlap.
    patches = list(tract.patches())
    covered = np.zeros((height // inner_y, width // inner_x), dtype=int)
    for patch in patches:
        assert patch.inner_bbox.shape.x == inner_x and patch.inner_bbox.shape.y == inner_y
        covered[patch.inner_bbox.y.start // inner_y, patch.inner_bbox.x.start // inner_x] += 1
        assert patch.inner_bbox.x.start % inner_x == 0 and patch.inner_bbox.y.start % inner_y == 0
    assert (covered == 1).all()


def test_sky_projection_is_the_tract_wcs() -> None:
    """The lsst.images view of a tract WCS agrees with the astropy one."""
    tract = LSST[123]
    projection = tract.sky_projection("lsst_cells_v1")
    assert projection.pixel_frame.tract == 123 and projection.pixel_frame.bbox == tract.bbox
    x, y = 1234.0, 25000.0
    sky = projection.pixel_to_sky(XY(x=x, y=y))
    ra, dec = tract.wcs.wcs_pix2world([x], [y], 0)
    assert sky.ra.deg == pytest.approx(ra[0], abs=1e-9) and sky.dec.deg == pytest.approx(dec[0], abs=1e-9)


@pytest.mark.parametrize("name", sorted(SKYMAPS))
def test_patch_ids_and_outer_boxes(name: str) -> None:
    """Sequential ID y * nx + x round-trips; outer = inner + border (legacy:
    clipped to the tract); inner boxes start at the lower left."""
    tract = SKYMAPS[name][5000]
    nx, ny = tract.num_patches
    border = tract.patch_border
    for patch_id in range(nx * ny):
        x, y = tract.patch_index_of_id(patch_id)
        assert patch_id == y * nx + x == tract.patch_id_of_index(x, y)
        patch = tract.patch(patch_id)
        grown = patch.inner_bbox.padded(border)
        expected = grown.intersection(tract.bbox) if name == "hsc_rings_v1" else grown
        assert patch.outer_bbox == expected
    assert tract.patch(0).inner_bbox.x.start == tract.patch(0).inner_bbox.y.start == 0
    with pytest.raises(LookupError):
        tract.patch(nx * ny)
    if name == "lsst_cells_v1":
        definition = tract.patch_definition(nx + 1)
        assert definition.outer_bbox == tract.patch(nx + 1).outer_bbox
        assert definition.cells.grid_size.i == definition.cells.grid_size.j == 22


# --- hash -------------------------------------------------------------------------


def test_hash_follows_the_issue_formula() -> None:
    """SHA-1 of 'RingsSkyMap', the builder's packed config and (N, raStart)."""
    cells = hashlib.sha1(b"RingsSkyMap")
    cells.update(struct.pack("<iiiiidd3sd", 150, 150, 50, 20, 1, 1.0 / 60, 0.2, b"TAN", 0.0))
    cells.update(struct.pack("<id", 120, 0.0))
    assert LSST.hash() == cells.digest()
    legacy = hashlib.sha1(b"RingsSkyMap")
    legacy.update(struct.pack("<iiidd3sd", 4000, 4000, 100, 1.0 / 60, 0.168, b"TAN", 0.0))
    legacy.update(struct.pack("<id", 120, 0.0))
    assert HSC.hash() == legacy.digest()
    assert skymap_of(CONFIGS / "lsst_cells_v1.py").hash() == LSST.hash()


def test_lsst_cells_v1_record_is_rubins() -> None:
    """The skymap row of lsst_cells_v1 in Rubin's repositories (hash in
    base64 as the registry stores it, 18938 tracts, 10x10 patches), as a
    public script copies it into a test repository."""
    assert base64.b64encode(LSST.hash()).decode() == "4nNuQSRN8Au9uTrsrArkstGd2pE="
    assert len(LSST) == 18938
    assert {LSST[i].num_patches for i in (0, 1, 9000, 18937)} == {(10, 10)}


@pytest.mark.parametrize(
    "key, value",
    [
        ("skyMap.rings.numRings", "119"),
        ("skyMap.rings.raStart", "1.0"),
        ("skyMap.rings.projection", "STG"),
        ("skyMap.rings.pixelScale", "0.21"),
        ("skyMap.rings.tractOverlap", "0.02"),
        ("skyMap.rings.tractBuilder.cells.cellInnerDimensions", "(151, 151)"),
        ("skyMap.rings.tractBuilder.cells.cellBorder", "49"),
        ("skyMap.rings.tractBuilder.cells.numCellsPerPatchInner", "21"),
        ("skyMap.rings.tractBuilder.cells.numCellsInPatchBorder", "0"),
        ("skyMap.rings.tractBuilder.name", "legacy"),
    ],
)
def test_hash_depends_on_each_parameter(key: str, value: str) -> None:
    assert skymap_of(CONFIGS / "lsst_cells_v1.py", **{key: value}).hash() != LSST.hash()


def test_discrete_example() -> None:
    """The shipped discrete skymap: one tract on the demo field, holding it."""
    skymap = skymap_of(CONFIGS / "discrete_example.py")
    assert len(skymap) == 1
    assert skymap.find_tract_id(34.5, -5.0) == 0
    assert skymap.find_tract_id(34.5 + 1.0, -5.0) == 0
    assert skymap.find_tract_id(200.0, 30.0) is None
    assert skymap[0].contains(34.5, -4.0)


# --- butler register-skymap ----------------------------------------------------


def register(repo: Path, config: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "butler", "register-skymap", repo, "-C", config, *options],
        capture_output=True,
        text=True,
    )


def plain_repo(path: Path) -> Path:
    """Make a repository as a plain ``butler create`` does (default
    configuration, SQLite), without the command's start-up time."""
    Butler.makeRepo(str(path))
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain repository with small_rings registered (in this process; the
    command is run by the tests that follow)."""
    path = plain_repo(tmp_path_factory.mktemp("skymap") / "repo")
    with Butler.from_config(str(path), writeable=True) as butler:
        assert register_skymap(butler, load_register_config(SMALL))
    return path


def small() -> RingsSkyMap:
    return skymap_of(SMALL)


def test_registered_records(repo: Path) -> None:
    skymap = small()
    with Butler.from_config(str(repo)) as butler:
        (record,) = butler.query_dimension_records("skymap")
        assert (record.name, record.hash) == ("small_rings", skymap.hash())
        assert (record.tract_max, record.patch_nx_max, record.patch_ny_max) == (42, 4, 4)
        tracts = butler.query_dimension_records("tract", skymap="small_rings")
        assert sorted(t.id for t in tracts) == list(range(42))
        for tract in tracts:
            ra, dec = skymap.tract_center(tract.id)
            assert tract.region.contains(UnitVector3d(LonLat.fromDegrees(ra, dec)))
        patches = butler.query_dimension_records("patch", skymap="small_rings", limit=None)
        assert len(patches) == 42 * 16
        for patch in patches[::37]:
            info = skymap[patch.tract].patch(patch.id)
            assert (patch.cell_x, patch.cell_y) == info.index
            centre = skymap[patch.tract].wcs.wcs_pix2world(
                [(info.inner_bbox.x.start + info.inner_bbox.x.stop - 1) / 2],
                [(info.inner_bbox.y.start + info.inner_bbox.y.stop - 1) / 2],
                0,
            )
            assert patch.region.contains(UnitVector3d(LonLat.fromDegrees(centre[0][0], centre[1][0])))
        assert load_skymap(butler, "small_rings").hash() == skymap.hash()
        with pytest.raises(LookupError, match="skymap 'lsst_cells_v1' is not registered"):
            load_skymap(butler, "lsst_cells_v1")
        refs = butler.query_datasets(SKYMAP_DATASET_TYPE, collections=SKYMAP_RUN)
        assert [ref.dataId["skymap"] for ref in refs] == ["small_rings"]


def test_reregistration_is_a_no_op(repo: Path) -> None:
    result = register(repo, SMALL)
    assert result.returncode == 0, result.stderr
    assert "Skymap small_rings is already registered with this geometry" in result.stderr
    with Butler.from_config(str(repo)) as butler:
        assert len(butler.query_dimension_records("patch", limit=None)) == 42 * 16
        assert len(butler.query_datasets(SKYMAP_DATASET_TYPE, collections=SKYMAP_RUN)) == 1


def test_other_geometry_refused(repo: Path) -> None:
    other = small_with(**{"skyMap.rings.raStart": "11.0"}).hash()
    result = register(repo, SMALL, "-c", "skyMap.rings.raStart=11.0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: skymap small_rings is registered with another geometry (hash {small().hash().hex()}) "
        f"than this config's (hash {other.hex()}); not registered"
    ]


def small_with(**overrides: str) -> RingsSkyMap:
    return skymap_of(SMALL, **overrides)


def test_bad_config_lines(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    result = register(repo, missing)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: {missing}: no such skymap config file"]
    with pytest.raises(SkyMapRegistrationError) as caught:
        load_register_config(SMALL, {"skyMap.rings.numRing": "3"})
    assert str(caught.value) == "-c skyMap.rings.numRing=3: no such config field"
    with pytest.raises(SkyMapRegistrationError) as caught:
        load_register_config(SMALL, {"skyMap.rings.numRings": "0"})
    assert str(caught.value).startswith("-c skyMap.rings.numRings=0: Field")
    assert "\n" not in str(caught.value)
    broken = tmp_path / "broken.py"
    broken.write_text("config.nonsense = 1\n")
    with pytest.raises(SkyMapRegistrationError, match="broken.py: not a skymap config"):
        load_register_config(broken)


def test_failed_registration_leaves_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A registration whose dataset cannot be written (a file where the
    datastore puts the run's directory) leaves no skymap, tract or patch
    record, and says why in one line.  (The discrete example: one small
    field, quick to write; the rollback is the same for any skymap.)"""
    path = plain_repo(tmp_path / "repo")
    (path / SKYMAP_RUN).write_text("not a directory")
    with Butler.from_config(str(path), writeable=True) as butler:
        with pytest.raises(SkyMapRegistrationError) as caught:
            register_skymap(butler, load_register_config(CONFIGS / "discrete_example.py"))
        for element in ("skymap", "tract", "patch"):
            assert butler.query_dimension_records(element, explain=False) == []
    message = str(caught.value)
    assert message.startswith("skymap discrete_example: the skyMap dataset could not be written (")
    assert message.endswith("); nothing registered") and "\n" not in message
    # The datastore's warning about undoing the failed write would be a second line.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
