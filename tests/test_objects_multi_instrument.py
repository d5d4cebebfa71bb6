"""pipelines/MultiInstrument/DRP-objects.yaml through a real ``pipetask``: a
field observed by three instruments on one skymap, VIRCAM in J and Ks,
WFCAM in H and DECam in z (`object_field`'s objects, whose colours are
known, on 256-pixel detectors; DECam's are two of its CCDs, S4 and N4, at
its pixel scale and orientation, twice as tall as wide, from a CP trio with
a real header through DECam's isr).  Each instrument's step3 runs with its
own DRP.yaml, restricted to its bands; then objects and step4 run once over
all three instruments, through ``multiBandDriver.py``, which takes the
multi-instrument pipeline for inputs holding several instruments' visits.

The VIRCAM and WFCAM simulators cannot provide this field: each draws its
own sky (the source count and positions follow from the camera's layout)
with one magnitude per source in every filter, and there is no DECam
simulator, so the truth here is `object_field`'s.

Checked: every band's deep_coadd is made of its own instrument's warps and
fills the object table's columns; bright stars' z - Ks, J - Ks and H - Ks
colours against truth; object_forced_source on the visits of every
instrument, in their bands."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler
from scipy.spatial import cKDTree

import coadd_field as field
import object_field
from commands import BIN, ROOT, invoke
from lsst.obs.vista import DecamCp, Vircam, Wfcam
from lsst.obs.vista.skymap import RegisterSkyMapConfig, make_skymap, register_skymap

pytestmark = pytest.mark.slow

SKYMAP = "multi_instrument_test"
OUTPUT = "u/test/multi"
SIZE = 256
"""Detector side (pixels); DECam's are twice as tall."""

VISITS = field.VISITS[:2]
"""Two dithers per band."""

COVERED_HALF_HEIGHT = 160
"""Half-height (tract pixels) of the band every visit covers: 256-pixel
VIRCAM-like detectors are 435 tract pixels tall, the dithers move them by up
to 40 (DECam's two CCDs are 710 tall together)."""

CELLS_PER_PATCH = 4
"""Patches of 4 x 4 cells (480 tract pixels inside, 720 with the border)
instead of `coadd_field`'s 6 x 6: the patch at the field centre is still
centred on it, and warps and coadds have 0.56 times the pixels."""

BANDS = {"VIRCAM": ("J", "Ks"), "WFCAM": ("H",), "DECam": ("z",)}
"""Each instrument's bands; no band comes from two instruments."""

LAYOUTS = {"VIRCAM": field.LAYOUT, "WFCAM": field.LAYOUT, "DECam": field.decam_layout(SIZE)}
"""Each instrument's pair of detectors (VIRCAM's layout for WFCAM too)."""

MATCH_RADIUS = 2.0
"""Tract pixels between an object and the true star it is taken to be."""


def visits_of(band_index: int) -> tuple[field.Visit, ...]:
    """`VISITS`, numbered apart for each band of an instrument."""
    return tuple(dataclasses.replace(visit, visit=visit.visit + 10 * band_index) for visit in VISITS)


def skymap_config():
    config = field.skymap_config()
    config.tractBuilder["cells"].numCellsPerPatchInner = CELLS_PER_PATCH
    return config


def pipetask(root: Path, pipeline: str, query: str) -> None:
    """Run one instrument's step in this process (multiBandDriver.py, the
    subject here, runs in its own)."""
    invoke(
        "pipetask", "run", "--register-dataset-types", "-b", root,
        "-i", "visits,skymaps", "-o", OUTPUT, "-p", ROOT / "pipelines" / pipeline, "-d", query,
    )  # fmt: skip


@pytest.fixture(scope="module")
def truth() -> object_field.Truth:
    return object_field.truth(covered_half_height=COVERED_HALF_HEIGHT, skymap=make_skymap(skymap_config()))


@pytest.fixture(scope="module")
def repository(tmp_path_factory, truth) -> Path:
    root = tmp_path_factory.mktemp("multi_instrument_repo")
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    for instrument in (Vircam(), Wfcam(), DecamCp()):
        instrument.register(butler.registry)
    config = RegisterSkyMapConfig()
    config.name = SKYMAP
    config.skyMap.name = "discrete"
    config.skyMap["discrete"] = skymap_config()
    register_skymap(butler, config)
    for instrument, bands in BANDS.items():
        for k, band in enumerate(bands):
            base = field.make_base(
                tmp_path_factory.mktemp(f"base_{band}"), size=SIZE, instrument=instrument, filter_name=band
            )
            object_field.put_visits(
                butler, base, truth, visits=visits_of(k), seed=50 + k, layout=LAYOUTS[instrument]
            )
    patch = make_skymap(skymap_config())[0].find_patch(*field.CENTRE).id
    in_patch = f"skymap='{SKYMAP}' AND tract=0 AND patch={patch}"
    for instrument, bands in BANDS.items():
        band_list = ", ".join(f"'{band}'" for band in bands)
        pipetask(root, f"{instrument}/DRP.yaml#step3", f"{in_patch} AND band IN ({band_list})")
    # The coadds are in the one patch: multiBandDriver.py runs objects and step4 over the tract, with
    # the multi-instrument pipeline because the inputs hold visits of three instruments.
    result = subprocess.run(
        [
            str(BIN / "multiBandDriver.py"), str(root), "--skymap", SKYMAP, "--tract", "0",
            "-i", OUTPUT, "-o", OUTPUT,
        ],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = [line for line in result.stderr.splitlines() if line.startswith("$ pipetask run")]
    pipelines = [Path(words[words.index("-p") + 1]) for words in map(shlex.split, commands)]
    assert [(p.parent.name, p.name) for p in pipelines] == [
        ("MultiInstrument", "DRP-objects.yaml#objects"),
        ("MultiInstrument", "DRP-objects.yaml#step4"),
    ], commands
    return root


@pytest.fixture(scope="module")
def butler(repository: Path) -> Butler:
    return Butler.from_config(str(repository), collections=[OUTPUT])


def test_each_band_from_its_instrument(butler: Butler) -> None:
    for instrument, bands in BANDS.items():
        warps = butler.query_datasets("direct_warp", where=f"instrument='{instrument}'")
        assert {ref.dataId["band"] for ref in warps} == set(bands)
    coadds = butler.query_datasets("deep_coadd")
    assert sorted(ref.dataId["band"] for ref in coadds) == sorted(
        b for bands in BANDS.values() for b in bands
    )


def test_object_table_has_every_band(butler: Butler, truth: object_field.Truth) -> None:
    table = butler.get("object", skymap=SKYMAP, tract=0)
    primary = table[table["detect_isPrimary"]]
    assert len(primary) > 100
    for bands in BANDS.values():
        for band in bands:
            flux = np.asarray(primary[f"{band}_psfFlux"])
            assert np.count_nonzero(np.isfinite(flux)) > 0.9 * len(primary), band
            assert not np.all(primary[f"{band}_pixelFlags_nodata"]), band
    # Ks first in the priority list, then H, J and z.
    assert set(primary["refBand"]) <= {"Ks", "H", "J", "z"} and np.mean(primary["refBand"] == "Ks") > 0.8


def test_star_colours_against_truth(butler: Butler, truth: object_field.Truth) -> None:
    table = butler.get("object", skymap=SKYMAP, tract=0)
    primary = table[table["detect_isPrimary"]]
    tract = make_skymap(skymap_config())[0]
    x, y = tract.wcs.wcs_world2pix(np.asarray(primary["coord_ra"]), np.asarray(primary["coord_dec"]), 0)
    distance, index = cKDTree(np.column_stack([truth.x, truth.y])).query(np.column_stack([x, y]))
    star = (distance < MATCH_RADIUS) & truth.is_star[index]
    snr = {
        band: np.asarray(primary[f"{band}_psfFlux"]) / np.asarray(primary[f"{band}_psfFluxErr"])
        for band in ("z", "J", "H", "Ks")
    }
    bright = star & np.all([s > 50 for s in snr.values()], axis=0)
    assert np.count_nonzero(bright) >= 15
    for band in ("z", "J", "H"):
        # Where a cell's visits do not all cover a star (a detector gap or edge in some visit),
        # the cell's PSF is not the star's and its PSF flux is off by up to 0.1 mag: the
        # instruments' gaps fall in different places, so such stars' colours do not cancel.
        exact = ~np.asarray(primary[f"{band}_pixelFlags_inexact_psf"] | primary["Ks_pixelFlags_inexact_psf"])
        rows = np.nonzero(bright & exact)[0]
        assert rows.size >= 8, band
        measured = -2.5 * np.log10(
            np.asarray(primary[f"{band}_psfFlux"])[rows] / np.asarray(primary["Ks_psfFlux"])[rows]
        )
        true = -2.5 * np.log10(truth.flux[band][index[rows]] / truth.flux["Ks"][index[rows]])
        error = 2.5 / np.log(10) * np.hypot(1 / snr[band][rows], 1 / snr["Ks"][rows])
        residual = measured - true
        print(
            f"{band} - Ks of {rows.size} stars at S/N > 50 with exact PSFs: median residual "
            f"{np.median(residual):+.4f}, max |residual| {np.max(np.abs(residual)):.4f}, "
            f"median error {np.median(error):.4f} mag"
        )
        assert abs(np.median(residual)) < 0.01
        assert np.all(np.abs(residual) < 0.02 + 3 * error)


def test_forced_sources_on_every_instrument(butler: Butler) -> None:
    refs = butler.query_datasets("object_forced_source")
    expected = {
        (instrument, visit.visit, detector)
        for instrument, bands in BANDS.items()
        for k in range(len(bands))
        for visit in visits_of(k)
        for detector in LAYOUTS[instrument].detectors
    }
    assert {
        (ref.dataId["instrument"], ref.dataId["visit"], ref.dataId["detector"]) for ref in refs
    } == expected
    table = butler.get("object", skymap=SKYMAP, tract=0)
    row_of = {int(i): k for k, i in enumerate(table["objectId"])}
    for ref in refs:
        rows = butler.get(ref)
        band = ref.dataId["band"]
        assert len(rows) > 20 and set(rows["band"]) == {band}
        # The visit measures the stars' flux in its band as the coadd does: a scaling or a band
        # from the wrong instrument would move the median ratio.  (Galaxies' PSF fluxes depend on
        # the seeing, which differs between the visits and the coadd.)
        coadd = table[[row_of[int(i)] for i in rows["objectId"]]]
        flux, error = np.asarray(rows["psfFlux"]), np.asarray(rows["psfFluxErr"])
        good = ~np.asarray(rows["psfFlux_flag"]) & ~np.asarray(rows["pixelFlags_edge"]) & (flux > 20 * error)
        good &= np.asarray(coadd["refExtendedness"]) == 0
        ratio = np.median(flux[good] / np.asarray(coadd[f"{band}_psfFlux"])[good])
        n_stars = np.count_nonzero(good)
        print(f"{dict(ref.dataId.required)}: visit / coadd PSF flux of {n_stars} stars {ratio:.4f}")
        assert n_stars > 8 and abs(ratio - 1) < 0.02, (ref.dataId, ratio)
