"""WFCAM visits coadded by a real ``pipetask run`` of
pipelines/WFCAM/DRP.yaml#step1,step3 onto a registered skymap: two synthetic
CASU WFCAM stacks of the same pointing (each with its own jitter and seeing)
through isr, calibrateImage (header WCS and zero point), makeDirectWarp and
assembleCellCoadd, and the coadd's stars against the simulation's truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from lsst.daf.butler import Butler

from commands import ROOT, invoke
from lsst.obs.vista.coadd.resampling import resample_image
from lsst.obs.vista.psf_shape import fwhm_from_moments, kernel_moments
from lsst.obs.vista.sim import SimulationConfig, read_source_truth
from lsst.obs.vista.sim.wfcam import write_wfcam_stack

pytestmark = pytest.mark.slow

SEED = ROOT / "config" / "butler" / "seed.yaml"
PIPELINE = ROOT / "pipelines" / "WFCAM" / "DRP.yaml"
OUTPUT = "u/test/wfcam-coadd"
SKYMAP = "wfcam_test"
CONFIG = SimulationConfig(
    instrument="WFCAM",
    size=256,
    detectors=(1,),
    seed=4,
    jitter=2.0,
    filter_name="J",
    star_density=40.0,
    galaxy_density=0.0,
    bright_star_density=0.0,
)
"""Miniature WFCAM stacks with enough stars for calibrateImage's PSF model."""

STACKS = (0, 6)
"""Stack indices: the first offset of two tiles, the same pointing."""

STAMP = 10
"""Half-size (tract pixels) of the stamps the coadd's stars are measured in."""

ISOLATION = 1.5 * STAMP
"""Distance (tract pixels) within which a star must have no other source
brighter than 1% of it."""

SKYMAP_CONFIG = """\
config.name = {name!r}
config.skyMap.name = "discrete"
field = config.skyMap["discrete"]
field.raList = [{ra!r}]
field.decList = [{dec!r}]
field.radiusList = [0.005]
field.projection = "TAN"
field.pixelScale = 0.2
field.tractOverlap = 1.0 / 60
field.tractBuilder.name = "cells"
field.tractBuilder["cells"].cellInnerDimensions = (150, 150)
field.tractBuilder["cells"].cellBorder = 50
field.tractBuilder["cells"].numCellsPerPatchInner = 6
field.tractBuilder["cells"].numCellsInPatchBorder = 1
"""
"""One tract of one patch of 6 x 6 cells on lsst_cells_v1's pixels, centred
on the stacks' pointing (a 0.005 degree radius is grown to one patch)."""


@pytest.fixture(scope="module")
def coadded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The stacks ingested into a seeded repository, the skymap registered,
    and step1 and step3 run by one ``pipetask run``."""
    root = tmp_path_factory.mktemp("wfcam_coadd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        stacks = [write_wfcam_stack(root / "data", index, CONFIG) for index in STACKS]
        wcs = WCS(fits.getheader(stacks[0].stack, 1))
    ra, dec = wcs.pixel_to_world_values((CONFIG.size - 1) / 2, (CONFIG.size - 1) / 2)
    skymap_config = root / "skymap.py"
    skymap_config.write_text(SKYMAP_CONFIG.format(name=SKYMAP, ra=float(ra), dec=float(dec)))
    repo = root / "repo"
    invoke("butler", "create", "--seed-config", SEED, repo)
    invoke("ingestImages.py", repo, root / "data")
    invoke("butler", "register-skymap", repo, "-C", skymap_config)
    log = root / "pipetask.log"
    invoke(
        "pipetask", "--log-file", log, "run", "-b", repo, "-i", "WFCAM/defaults,skymaps", "-o", OUTPUT,
        "--register-dataset-types", "-p", f"{PIPELINE}#step1,step3", "-d", f"skymap='{SKYMAP}'",
    )  # fmt: skip
    truths = [read_source_truth(stack.truth, 1) for stack in stacks]
    return {"repo": repo, "truths": truths, "log": log.read_text()}


@pytest.fixture(scope="module")
def coadd(coadded: dict):
    """The patch's ``deep_coadd`` and ``deep_coadd_n_image``."""
    with Butler.from_config(str(coadded["repo"]), collections=OUTPUT) as butler:
        (ref,) = butler.query_datasets("deep_coadd")
        return butler.get(ref), butler.get("deep_coadd_n_image", ref.dataId)


@pytest.fixture(scope="module")
def stars(coadded: dict, coadd) -> dict[str, np.ndarray]:
    """`measure_stars` on the coadd."""
    return measure_stars(*coadd, coadded["truths"])


def measure_stars(image, n_image, truths) -> dict[str, np.ndarray]:
    """PSF flux over true flux, S/N and FWHM over the cell PSF's of the
    isolated true stars whose stamp lies within one cell of the coadd
    ``image`` that both visits cover with exact PSF."""
    first, second = truths
    common, i, j = np.intersect1d(first["id"], second["id"], return_indices=True)
    assert common.size > 20
    # Both truths are at their stack's epoch: the mean position.
    ra = 0.5 * (np.asarray(first["ra"])[i] + np.asarray(second["ra"])[j])
    dec = 0.5 * (np.asarray(first["dec"])[i] + np.asarray(second["dec"])[j])
    flux = np.asarray(first["flux_njy"])[i]
    position = image.sky_projection.sky_to_pixel(SkyCoord(ra, dec, unit="deg"))
    x, y = np.asarray(position.x), np.asarray(position.y)
    # Isolated: no other source within the stamp's diagonal brighter than 1% of the star.
    distance = np.hypot(x[:, np.newaxis] - x, y[:, np.newaxis] - y)
    crowded = (distance < ISOLATION) & (flux[np.newaxis, :] > 0.01 * flux[:, np.newaxis])
    isolated = np.count_nonzero(crowded, axis=1) == 1
    bad = image.mask.schema.bitmask("NO_DATA", "INEXACT_PSF", "CLIPPED", "REJECTED", "SATURATED")
    rows = []
    for xs, ys, true_flux in zip(x[isolated], y[isolated], flux[isolated], strict=True):
        ix, iy = round(xs), round(ys)
        if not image.bbox.contains(x=ix, y=iy):
            continue
        cell_box = image.grid.bbox_of(image.grid.index_of(x=ix, y=iy))
        if not (
            cell_box.x.start + STAMP <= ix < cell_box.x.stop - STAMP
            and cell_box.y.start + STAMP <= iy < cell_box.y.stop - STAMP
        ):
            continue  # the stamp would mix cells
        pixels = (
            slice(iy - STAMP - image.bbox.y.start, iy + STAMP + 1 - image.bbox.y.start),
            slice(ix - STAMP - image.bbox.x.start, ix + STAMP + 1 - image.bbox.x.start),
        )
        if np.any(image.mask.array[pixels] & bad) or np.any(n_image.array[pixels] < 2):
            continue
        stamp = image.image.array[pixels].astype(float)
        kernel = image.psf.compute_kernel_image(x=xs, y=ys)
        offsets = np.arange(-STAMP, STAMP + 1, dtype=float)
        oy, ox = np.meshgrid(offsets + (iy - ys), offsets + (ix - xs), indexing="ij")
        model = resample_image(kernel.array, ox - kernel.bbox.x.start, oy - kernel.bbox.y.start)
        norm = float(np.sum(model * model))
        psf_flux = float(np.sum(model * stamp)) / norm
        error = float(np.sqrt(np.sum(model**2 * image.variance.array[pixels]))) / norm
        star_fwhm = fwhm_from_moments(*kernel_moments(stamp)[:2])
        psf_fwhm = fwhm_from_moments(*kernel_moments(kernel.array)[:2])
        rows.append((psf_flux / true_flux, true_flux / error, float(star_fwhm) / float(psf_fwhm)))
    names = ("flux_ratio", "snr", "fwhm_ratio")
    return {name: np.array(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def test_coadd_of_both_visits(coadded: dict, coadd) -> None:
    """One coadd of the patch in J, in nJy, made of both visits' warps."""
    image, n_image = coadd
    assert "makeDirectWarp" in coadded["log"] and "assembleCellCoadd" in coadded["log"]
    assert image.band == "J" and str(image.unit) == "nJy"
    assert image.metadata["N_INPUTS"] == 2
    assert len(set(image.provenance.inputs["visit"])) == 2
    assert set(image.provenance.inputs["instrument"]) == {"WFCAM"}
    assert n_image.array.max() == 2


def test_warps_written_with_the_warp_recipe(coadded: dict) -> None:
    """The seed's ``warp`` write recipe reaches the butler's files: the
    warps' image, variance and cell PSFs plain, their masks RICE_1 in tiles
    of 150 x 150 pixels."""
    with Butler.from_config(str(coadded["repo"]), collections=OUTPUT) as butler:
        for name in ("direct_warp", "direct_warp_noise0"):
            refs = butler.query_datasets(name)
            assert len(refs) == 2
            # As stored: compressed planes are binary tables with ZCMPTYPE.
            with fits.open(butler.getURI(refs[0]).ospath, disable_image_compression=True) as hdus:
                compression = {hdu.name: hdu.header.get("ZCMPTYPE") for hdu in hdus}
                mask_tile = (hdus["MASK"].header["ZTILE2"], hdus["MASK"].header["ZTILE1"])
            planes = ("IMAGE", "VARIANCE", "PSF") if name == "direct_warp" else ("IMAGE", "VARIANCE")
            assert {plane: compression[plane] for plane in planes} == dict.fromkeys(planes), name
            assert compression["MASK"] == "RICE_1", name
            assert mask_tile == (150, 150), name


def test_star_fluxes_against_truth(stars: dict[str, np.ndarray]) -> None:
    """PSF fluxes with the coadd's cell PSF: each star with S/N > 500 within
    1% of the truth, and the median of those with S/N > 100 too (their S/N,
    from the variance plane, leaves out the pixel correlation of CASU's and
    the warps' resampling)."""
    brightest = stars["snr"] > 500
    bright = stars["snr"] > 100
    assert np.count_nonzero(brightest) >= 5, stars["snr"]
    assert np.all(np.abs(stars["flux_ratio"][brightest] - 1) < 0.01), stars["flux_ratio"][brightest]
    assert abs(np.median(stars["flux_ratio"][bright]) - 1) < 0.01, stars["flux_ratio"][bright]


def test_cell_psf_matches_its_stars(stars: dict[str, np.ndarray]) -> None:
    """The FWHM of the cell PSF (both visits' Piff models warped and
    combined with the coadd's weights) is that of its stars with S/N > 500
    within 2%."""
    brightest = stars["snr"] > 500
    assert np.count_nonzero(brightest) >= 5, stars["snr"]
    assert np.all(np.abs(stars["fwhm_ratio"][brightest] - 1) < 0.02), stars["fwhm_ratio"][brightest]
